//! Plain records the store reads and writes, and the outcome of accepting a TOTP step.
//! `Debug` output never shows sealed blobs, password hashes or ticket hashes.

use std::fmt;

use rampart_core::totp::TotpParams;

use crate::seal::SealedSeed;

/// A seed-sealing key as the store keeps it: wrapped by a key-encryption key. `Debug` shows
/// no key bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedSealKey {
    /// The key id sealed seeds name.
    pub id: u32,
    /// The key, AES-256-GCM-wrapped by the key-encryption key `kek_id`.
    pub wrapped: Vec<u8>,
    /// Fingerprint of the key-encryption key that wrapped it.
    pub kek_id: String,
    /// When it was made, unix seconds.
    pub created_at: i64,
    /// Who made it (an operator, or `init`).
    pub created_by: String,
}

impl fmt::Debug for WrappedSealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedSealKey")
            .field("id", &self.id)
            .field("kek_id", &self.kek_id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// A person known to Rampart, keyed by the directory's stable id.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable id from the directory (entryUUID / objectGUID), never the typed name.
    pub id: String,
    /// Normalised (trimmed, lowercase) login name. Lookups match it exactly; callers normalise.
    pub username: String,
    /// Name shown to operators.
    pub display_name: String,
    /// PHC-format password hash for locally managed users; `None` when the directory checks
    /// passwords.
    pub password_hash: Option<String>,
    /// False when the account is disabled.
    pub enabled: bool,
    /// Group names. Stored deduplicated and read back sorted.
    pub groups: Vec<String>,
    /// Unix seconds when the record was first written.
    pub created_at: i64,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("display_name", &self.display_name)
            .field("has_password_hash", &self.password_hash.is_some())
            .field("enabled", &self.enabled)
            .field("groups", &self.groups)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Life-cycle state of a TOTP token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenState {
    /// Issued, no valid code seen yet.
    Pending,
    /// At least one valid code seen.
    Active,
    /// Withdrawn by an operator. Terminal.
    Revoked,
    /// Reported lost by its owner. Terminal.
    Lost,
    /// Past its validity. Terminal.
    Expired,
}

impl TokenState {
    /// Every state, in life-cycle order.
    pub const ALL: [TokenState; 5] = [Self::Pending, Self::Active, Self::Revoked, Self::Lost, Self::Expired];

    /// The name stored in the database: `pending`, `active`, `revoked`, `lost`, `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Revoked => "revoked",
            Self::Lost => "lost",
            Self::Expired => "expired",
        }
    }

    /// Parses a name written by [`TokenState::as_str`] (exact, lowercase).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// True for the states in which codes may be accepted (pending, active). A user has at
    /// most one live token.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Pending | Self::Active)
    }
}

impl fmt::Display for TokenState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A TOTP token: its parameters, its sealed seed and its replay and lockout state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Random token id; also bound into the sealed seed's associated data.
    pub id: String,
    /// Stable id of the owning user.
    pub user_id: String,
    /// Life-cycle state.
    pub state: TokenState,
    /// How codes are computed.
    pub params: TotpParams,
    /// The seed, sealed for this token id (its `Debug` shows only the length).
    pub sealed: SealedSeed,
    /// Highest time step accepted so far; codes at or before it are replays.
    pub last_step: Option<u64>,
    /// Consecutive failed codes since the last success.
    pub failures: u32,
    /// Unix seconds of issue.
    pub created_at: i64,
    /// Unix seconds of the first accepted code (or of an operator's activation).
    pub activated_at: Option<i64>,
    /// Unix seconds of the last accepted code.
    pub last_used_at: Option<i64>,
    /// Time steps the owner's device runs ahead of the server (negative: behind), learnt by a
    /// resync; codes are checked at `now + drift_steps * period`. New tokens: 0.
    pub drift_steps: i64,
}

impl TokenRecord {
    /// A newly issued token, pending until its first accepted code: no step seen, no
    /// failures, no drift.
    pub fn pending(id: String, user_id: String, params: TotpParams, sealed: SealedSeed, created_at: i64) -> Self {
        Self {
            id,
            user_id,
            state: TokenState::Pending,
            params,
            sealed,
            last_step: None,
            failures: 0,
            created_at,
            activated_at: None,
            last_used_at: None,
            drift_steps: 0,
        }
    }
}

/// A login session. The store holds only a hash of the bearer ticket.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Random session id.
    pub id: String,
    /// SHA-256 of the resume ticket; the ticket itself is never stored. Omitted from `Debug`.
    pub ticket_hash: Vec<u8>,
    /// Stable id of the user.
    pub user_id: String,
    /// Normalised username at login.
    pub username: String,
    /// Groups at login.
    pub groups: Vec<String>,
    /// Where the login came from (e.g. the client's socket address).
    pub source: String,
    /// Unix seconds of login.
    pub created_at: i64,
    /// Unix seconds after which the session is no longer valid.
    pub expires_at: i64,
    /// Unix seconds when the session was ended early (logout, admin kill, revocation).
    pub ended_at: Option<i64>,
    /// Why it was ended.
    pub end_reason: Option<String>,
    /// The token whose code opened the session (`None` for a temporary one-time code); the
    /// session ends when that token is revoked, lost or replaced.
    pub token_id: Option<String>,
    /// When a gateway last saw the session in use, if since its creation.
    pub last_seen_at: Option<i64>,
    /// The gateway that holds it: the one that opened it, then the one it last resumed on.
    pub gateway_id: Option<String>,
    /// The client's Ed25519 public key (32 bytes) that must sign every resume; `None`: the
    /// session cannot be resumed.
    pub client_key: Option<Vec<u8>>,
}

/// A gateway sharing the store, as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayNode {
    /// Chosen by the gateway: its host name and QUIC port.
    pub id: String,
    /// Its QUIC listen address.
    pub address: String,
    /// Its admin listener, `https://…`, if it has one.
    pub admin_url: Option<String>,
    /// Its software version.
    pub version: String,
    /// When it started, unix seconds.
    pub started_at: i64,
    /// Its latest heartbeat, unix seconds.
    pub last_seen_at: i64,
    /// Sessions with a connection on it at the latest heartbeat.
    pub sessions: u64,
    /// Forwarded connections open on it at the latest heartbeat.
    pub flows: u64,
    /// When it stopped cleanly, if it did.
    pub stopped_at: Option<i64>,
}

/// What a presented resume ticket is to the store
/// ([`SessionStore::session_for_ticket`](crate::SessionStore::session_for_ticket)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketMatch {
    /// The session's current ticket.
    Current(SessionRecord),
    /// A ticket one of the session's resumes replaced: whoever presents it holds a copy of the
    /// session made before that resume.
    Replaced(SessionRecord),
}

/// Result of [`SessionStore::rotate_ticket`](crate::SessionStore::rotate_ticket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The presented ticket was current: the new one replaced it.
    Rotated,
    /// The presented ticket was no longer current (another resume replaced it first), or the
    /// session ended or expired: nothing changed.
    NotCurrent,
}

/// One entry of the feed of session ends ([`crate::Store::sessions_ended_after`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    /// Position of the end in the feed: assigned when the end commits, increasing in commit
    /// order; sessions ended together share it.
    pub seq: u64,
    /// The session's id.
    pub id: String,
    /// Why it ended.
    pub reason: String,
    /// Who ended it, when recorded (ends before schema 12 name no one).
    pub ended_by: Option<EndedBy>,
}

/// Who ended a session: kept with the end in the store, so every gateway's session-end record
/// names the same operator or rule, wherever the session was attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndedBy {
    /// An operator (API key holder) by name: a kill, or a token change that ended the session.
    Operator(String),
    /// A rule of the product, by the end's reason: `idle`, `expired`, `session_limit`,
    /// `ticket_reused`, `account_disabled`, `groups_changed`, …
    Rule(String),
    /// The person themselves (logout), by username.
    Person(String),
}

impl EndedBy {
    /// The stored form: `operator:NAME`, `rule:NAME` or `person:NAME`.
    pub fn to_stored(&self) -> String {
        match self {
            Self::Operator(name) => format!("operator:{name}"),
            Self::Rule(name) => format!("rule:{name}"),
            Self::Person(name) => format!("person:{name}"),
        }
    }

    /// Reads [`EndedBy::to_stored`]'s form; `None` for anything else.
    pub fn from_stored(text: &str) -> Option<Self> {
        let (kind, name) = text.split_once(':')?;
        let name = name.to_owned();
        match kind {
            "operator" => Some(Self::Operator(name)),
            "rule" => Some(Self::Rule(name)),
            "person" => Some(Self::Person(name)),
            _ => None,
        }
    }
}

/// For people: `operator desk-ann`, `rule idle`, `person alice`.
impl fmt::Display for EndedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Operator(name) => write!(f, "operator {name}"),
            Self::Rule(name) => write!(f, "rule {name}"),
            Self::Person(name) => write!(f, "person {name}"),
        }
    }
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("username", &self.username)
            .field("groups", &self.groups)
            .field("source", &self.source)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("ended_at", &self.ended_at)
            .field("end_reason", &self.end_reason)
            .finish_non_exhaustive()
    }
}

/// Result of [`Store::accept_step`](crate::Store::accept_step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// The step was recorded and failures reset; `activated` is true when this call moved the
    /// token from pending to active.
    Accepted {
        /// The token went pending → active in this call.
        activated: bool,
    },
    /// The step is at or before the last accepted one.
    Replayed,
    /// The token has reached the failure limit; an operator must unlock it.
    Locked,
    /// The token is revoked, lost, expired or does not exist.
    NotLive,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn token_state_names_round_trip() {
        for state in TokenState::ALL {
            assert_eq!(TokenState::parse(state.as_str()), Some(state));
        }
        assert_eq!(TokenState::parse("Active"), None);
        assert_eq!(TokenState::parse(""), None);
    }

    #[test]
    fn debug_hides_secrets() {
        let session = SessionRecord {
            id: "s1".into(),
            ticket_hash: vec![0xEE; 32],
            user_id: "u1".into(),
            username: "alice".into(),
            groups: vec![],
            source: "127.0.0.1:1".into(),
            created_at: 0,
            expires_at: 1,
            ended_at: None,
            end_reason: None,
            token_id: None,
            last_seen_at: None,
            gateway_id: None,
            client_key: None,
        };
        assert!(!format!("{session:?}").contains("238"));
        let user = UserRecord {
            id: "u1".into(),
            username: "alice".into(),
            display_name: "Alice".into(),
            password_hash: Some("$argon2id$secret".into()),
            enabled: true,
            groups: vec![],
            created_at: 0,
        };
        assert!(!format!("{user:?}").contains("argon2"));
    }
}
