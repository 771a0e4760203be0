//! Why a login was refused, and about whom: the real reason for the audit trail and the log,
//! one answer for the client. A refusal that reached a person (the directory resolved the
//! typed name) is recorded and delayed under that person, whatever the spelling.

use crate::backoff::BackoffKey;
use rampart_core::audit::User;
use rampart_core::protocol::ErrorCode;
use rampart_core::username::{UsernameError, normalize_username};
use rampart_directory::{ReachedPerson, RejectReason};
use std::fmt;

/// The real reason a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The typed name is not a username (spaces, control or compatibility characters, …).
    BadUsername(UsernameError),
    /// The directory refused the person (unknown, wrong password, disabled, locked, …).
    Directory(RejectReason),
    /// The person has no live token.
    NoToken,
    /// A temporary code that is wrong, used or expired.
    WrongTemporaryCode,
    /// A wrong TOTP code.
    WrongCode,
    /// A wrong TOTP code for a locked token (or the one that locked it).
    LockedWrongCode,
    /// The right password and a right code, but the token is locked.
    TokenLocked,
    /// A code at a step already used.
    CodeReplayed,
    /// The token stopped being live while the code was checked.
    TokenNotLive,
}

impl Refusal {
    /// What the client hears. Every refusal is `invalid_credentials`, except one: someone who
    /// gave the right password and a right code learns that their token is locked.
    pub(crate) fn code(self) -> ErrorCode {
        match self {
            Self::TokenLocked => ErrorCode::TokenLocked,
            _ => ErrorCode::InvalidCredentials,
        }
    }

    /// Short label for logs and metrics.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::BadUsername(_) => "bad_username",
            Self::Directory(reason) => reason.as_str(),
            Self::NoToken => "no_token",
            Self::WrongTemporaryCode => "wrong_temporary_code",
            Self::WrongCode => "wrong_code",
            Self::LockedWrongCode => "locked_wrong_code",
            Self::TokenLocked => "token_locked",
            Self::CodeReplayed => "code_replayed",
            Self::TokenNotLive => "token_not_live",
        }
    }
}

/// The label, with what the directory said for a refused bind (`bind_refused (LDAP result
/// 53)`) or why a name is not a username.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadUsername(why) => write!(f, "{}: {why}", self.label()),
            Self::Directory(reason) => reason.fmt(f),
            other => f.write_str(other.label()),
        }
    }
}

/// Whom a login attempt concerned, as far as it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subject {
    /// The person the directory resolved the typed name to.
    Person(ReachedPerson),
    /// A normalised name that reached nobody (unknown, or refused before the directory).
    Named(String),
    /// A typed name that does not normalise, as typed (a record is data, whatever it holds).
    Unnamed(String),
}

impl Subject {
    /// The subject of `typed` when the directory resolved `reached` (or nobody).
    pub(crate) fn of(typed: &str, reached: Option<ReachedPerson>) -> Self {
        match (reached, normalize_username(typed)) {
            (Some(person), _) => Self::Person(person),
            (None, Ok(name)) => Self::Named(name),
            (None, Err(_)) => Self::Unnamed(typed.to_owned()),
        }
    }

    /// The user on the audit record: the person's directory name and stable id when
    /// resolved, so a query by name finds every spelling that reached them.
    pub(crate) fn audit_user(&self) -> User {
        match self {
            Self::Person(person) => User::with_uid(&person.username, &person.stable_id),
            Self::Named(name) | Self::Unnamed(name) => User::named(name),
        }
    }

    /// The name for the text log (`<invalid>` for a name that does not normalise).
    pub(crate) fn shown_name(&self) -> &str {
        match self {
            Self::Person(person) => &person.username,
            Self::Named(name) => name,
            Self::Unnamed(_) => "<invalid>",
        }
    }

    /// The stable id, when a person was reached.
    pub(crate) fn stable_id(&self) -> Option<&str> {
        match self {
            Self::Person(person) => Some(&person.stable_id),
            _ => None,
        }
    }

    /// Whose growing delay a refusal adds to.
    pub(crate) fn backoff_key(&self) -> BackoffKey {
        match self {
            Self::Person(person) => BackoffKey::Person(person.stable_id.clone()),
            Self::Named(name) => BackoffKey::Name(name.clone()),
            Self::Unnamed(typed) => BackoffKey::typed(typed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> ReachedPerson {
        ReachedPerson {
            stable_id: "uuid-alice".into(),
            username: "alice".into(),
        }
    }

    #[test]
    fn every_refusal_but_a_locked_token_is_invalid_credentials() {
        for refusal in [
            Refusal::BadUsername(UsernameError::Space),
            Refusal::Directory(RejectReason::UnknownUser),
            Refusal::Directory(RejectReason::WrongPassword),
            Refusal::Directory(RejectReason::Locked),
            Refusal::Directory(RejectReason::Disabled),
            Refusal::Directory(RejectReason::BindRefused(53)),
            Refusal::NoToken,
            Refusal::WrongCode,
            Refusal::LockedWrongCode,
            Refusal::CodeReplayed,
        ] {
            assert_eq!(refusal.code(), ErrorCode::InvalidCredentials, "{refusal}");
        }
        assert_eq!(Refusal::TokenLocked.code(), ErrorCode::TokenLocked);
    }

    #[test]
    fn the_record_keeps_the_real_reason() {
        let refused = Refusal::Directory(RejectReason::BindRefused(19));
        assert_eq!(refused.label(), "bind_refused");
        assert_eq!(refused.to_string(), "bind_refused (LDAP result 19)");
        assert_eq!(
            Refusal::BadUsername(UsernameError::Space).to_string(),
            "bad_username: the username contains spaces"
        );
    }

    #[test]
    fn spellings_that_reached_a_person_are_that_person() {
        for typed in ["alice", " ALICE ", "ａｌｉｃｅ", "alice\t"] {
            let subject = Subject::of(typed, Some(alice()));
            assert_eq!(subject.audit_user().name, "alice");
            assert_eq!(subject.audit_user().uid.as_deref(), Some("uuid-alice"));
            assert_eq!(subject.backoff_key(), BackoffKey::Person("uuid-alice".into()));
        }
        let unknown = Subject::of(" Ｍallory", None);
        assert_eq!(unknown.audit_user().name, "mallory");
        assert_eq!(unknown.backoff_key(), BackoffKey::Name("mallory".into()));
        let junk = Subject::of("a\nb", None);
        assert_eq!(junk.audit_user().name, "a\nb", "kept as data");
        assert_eq!(junk.shown_name(), "<invalid>");
    }
}
