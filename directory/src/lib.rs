//! Directory adapters: who a person is (a stable id), their groups and whether the account is
//! enabled, checked with their password. `local` keeps argon2id hashes in the store; `ldap`
//! asks OpenLDAP or Active Directory. Both sit behind the [`Directory`] trait; [`DirectoryConfig`]
//! is the `[directory]` table that chooses one, and [`open_directory`] opens it.

mod config;
pub mod ldap;
mod local;
mod password;

pub use config::{DirectoryConfig, OpenDirectoryError, open_directory};
pub use ldap::LdapDirectory;
pub use local::LocalDirectory;
pub use password::{PasswordError, hash_password};

use rampart_core::secret::Sensitive;
use std::fmt;

/// A person as the directory knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The directory's stable identifier (entryUUID, objectGUID, or the local user id).
    /// Tokens and sessions are keyed by it, never by the typed name.
    pub stable_id: String,
    /// Normalised username.
    pub username: String,
    /// Name to show.
    pub display_name: String,
    /// Group names.
    pub groups: Vec<String>,
    /// E-mail address, when the directory has one (LDAP `mail_attribute`).
    pub email: Option<String>,
}

/// A group's people for enrolment: who can be enrolled, and everyone listed in the group who
/// cannot, each with why, so nobody is left out without a word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupRoster {
    /// The enabled people, as [`Directory::group_members`] lists them.
    pub members: Vec<DirectoryUser>,
    /// Everyone else the group lists, sorted by name.
    pub left_out: Vec<LeftOut>,
}

/// A group member that cannot be enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// The username when the entry has one, else its DN.
    pub name: String,
    /// Why.
    pub reason: LeftOutReason,
}

/// Why a group member cannot be enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftOutReason {
    /// The account is disabled in the directory.
    Disabled,
    /// The entry is not a person the user filter matches (a nested group, a device).
    NotAPerson,
    /// The member's DN is outside `user_base`, where nobody can log in from.
    OutsideUserBase,
    /// The group names an entry that does not exist.
    NoSuchEntry,
    /// The entry has no usable username.
    NoUsername,
    /// The entry has no stable id.
    NoStableId,
    /// Several entries share the username; a login refuses them too.
    SharedUsername,
}

impl LeftOutReason {
    /// Short name for machines: `disabled`, `not_a_person`, `outside_user_base`,
    /// `no_such_entry`, `no_username`, `no_stable_id`, `shared_username`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::NotAPerson => "not_a_person",
            Self::OutsideUserBase => "outside_user_base",
            Self::NoSuchEntry => "no_such_entry",
            Self::NoUsername => "no_username",
            Self::NoStableId => "no_stable_id",
            Self::SharedUsername => "shared_username",
        }
    }

    /// What to tell the service desk.
    pub fn explain(self) -> &'static str {
        match self {
            Self::Disabled => "disabled in the directory",
            Self::NotAPerson => "not a person (the user filter does not match the entry)",
            Self::OutsideUserBase => "outside user_base, so they cannot log in",
            Self::NoSuchEntry => "the group lists an entry that does not exist",
            Self::NoUsername => "the entry has no usable username (username_attribute)",
            Self::NoStableId => "the entry has no stable id (id_attribute)",
            Self::SharedUsername => "several directory entries share this username",
        }
    }
}

/// Why the directory refused a person. The client always gets one answer for all of these;
/// the distinction is for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// No such user.
    UnknownUser,
    /// The password does not match.
    WrongPassword,
    /// Empty or white-space-only password: refused before any check.
    EmptyPassword,
    /// The account is disabled in the directory (a disabled rule, or the server says so).
    Disabled,
    /// The directory has locked the account (too many wrong passwords there).
    Locked,
    /// The password has expired or must be changed before it can be used.
    PasswordExpired,
    /// The account itself has expired.
    AccountExpired,
    /// The account may not log in now or from here (logon hours, allowed workstations).
    Restricted,
    /// The server refused the bind with another LDAP result (e.g. 19 constraintViolation,
    /// 50 insufficientAccessRights, 53 unwillingToPerform): a refusal, not an outage.
    BindRefused(u32),
}

impl RejectReason {
    /// Short name for logs and metrics: `unknown_user`, `wrong_password`, `empty_password`,
    /// `disabled`, `locked`, `password_expired`, `account_expired`, `restricted`,
    /// `bind_refused`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown_user",
            Self::WrongPassword => "wrong_password",
            Self::EmptyPassword => "empty_password",
            Self::Disabled => "disabled",
            Self::Locked => "locked",
            Self::PasswordExpired => "password_expired",
            Self::AccountExpired => "account_expired",
            Self::Restricted => "restricted",
            Self::BindRefused(_) => "bind_refused",
        }
    }
}

/// [`RejectReason::as_str`], with the LDAP result of a refused bind: `bind_refused (LDAP result 53)`.
impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BindRefused(code) => write!(f, "{} (LDAP result {code})", self.as_str()),
            other => f.write_str(other.as_str()),
        }
    }
}

/// The person a typed name resolved to, as far as the directory got before refusing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReachedPerson {
    /// The directory's stable identifier.
    pub stable_id: String,
    /// The directory's spelling of the username, normalised.
    pub username: String,
}

/// A refusal: why, and whom it concerned when the directory had resolved the name (every
/// refusal after the lookup: a wrong password, a disabled or locked account, a refused bind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The real reason, for the audit log.
    pub reason: RejectReason,
    /// The person reached, when the name resolved to one.
    pub person: Option<ReachedPerson>,
}

impl Rejection {
    /// A refusal that reached nobody (unknown name, empty password).
    pub fn anonymous(reason: RejectReason) -> Self {
        Self { reason, person: None }
    }

    /// A refusal of `person`, when known.
    pub fn of(reason: RejectReason, person: Option<ReachedPerson>) -> Self {
        Self { reason, person }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.reason.fmt(f)
    }
}

/// A directory answer other than success.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DirectoryError {
    /// The person is refused.
    #[error("rejected: {0}")]
    Rejected(Rejection),
    /// The directory cannot answer now (down, hung, overloaded): fail closed, retry later.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// No group of this name exists (LDAP: no group entry under `group_base` carries it).
    #[error("no such group: {0}")]
    UnknownGroup(String),
}

/// A source of identities and password checks.
#[async_trait::async_trait]
pub trait Directory: Send + Sync + fmt::Debug {
    /// Checks `password` for the normalised `username` and returns who they are.
    /// Implementations refuse empty passwords before contacting anything.
    async fn authenticate(&self, username: &str, password: &Sensitive<String>)
    -> Result<DirectoryUser, DirectoryError>;

    /// Looks a person up without a password (enrolment, periodic re-checks).
    async fn lookup(&self, username: &str) -> Result<Option<DirectoryUser>, DirectoryError>;

    /// The enabled people in the group named `group` (a name as [`DirectoryUser::groups`]
    /// reports it), each with all of their groups, sorted by username; for enrolling a whole
    /// group. Disabled accounts are left out. [`DirectoryError::UnknownGroup`] when the
    /// directory can tell that no such group exists (LDAP); the local directory cannot tell an
    /// unknown group from an empty one and returns an empty list.
    async fn group_members(&self, group: &str) -> Result<Vec<DirectoryUser>, DirectoryError>;

    /// [`Directory::group_members`] with everyone the group lists who cannot be enrolled, and
    /// why (disabled, not a person, …).
    async fn group_roster(&self, group: &str) -> Result<GroupRoster, DirectoryError> {
        Ok(GroupRoster {
            members: self.group_members(group).await?,
            left_out: Vec::new(),
        })
    }

    /// Looks a person up whether or not the account is enabled: the person and whether it is,
    /// so enrolment can say "disabled" rather than "not found".
    async fn lookup_any(&self, username: &str) -> Result<Option<(DirectoryUser, bool)>, DirectoryError> {
        Ok(self.lookup(username).await?.map(|person| (person, true)))
    }
}

/// True when a password is empty or only white space.
pub fn is_blank(password: &str) -> bool {
    password.trim().is_empty()
}

/// Refuses an empty or white-space-only password. Every adapter calls this before contacting
/// anything: for LDAP an empty simple bind is an unauthenticated bind, which servers accept
/// (RFC 4513 §5.1.2).
pub fn refuse_blank(password: &Sensitive<String>) -> Result<(), DirectoryError> {
    if is_blank(password.expose()) {
        Err(DirectoryError::Rejected(Rejection::anonymous(
            RejectReason::EmptyPassword,
        )))
    } else {
        Ok(())
    }
}
