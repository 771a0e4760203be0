//! Rampart persistence behind one trait, [`Store`]: users, TOTP tokens with sealed seeds and
//! their replay/lockout state, and sessions. [`SqliteStore`] (one WAL file in the state
//! directory) is the embedded default; the SQL is portable so a PostgreSQL backend can share it.
//!
//! Guarantees every backend keeps:
//! - [`Store::accept_step`] is one atomic conditional update: for a token and a time step, at
//!   most one call ever returns [`StepOutcome::Accepted`], across tasks and processes.
//! - A write has reached durable storage when its method returns `Ok`.
//! - The store never reads the clock: callers pass `now` (unix seconds).
//! - Seeds are stored only sealed ([`KeyRing`]); no error or `Debug` output contains a seed,
//!   sealed blob, password hash or ticket hash.

mod error;
mod model;
pub mod seal;
mod sql;
mod sqlite;

pub use error::StoreError;
pub use model::{SessionRecord, StepOutcome, TokenRecord, TokenState, UserRecord};
pub use seal::{KeyRing, SealError, SealedSeed};
pub use sqlite::{DB_FILE_NAME, SqliteStore};

/// Persistence used by gateways and provisioners. Object safe: share it as `Arc<dyn Store>`.
#[async_trait::async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Inserts the user or updates it by id (everything but `created_at`), replacing its groups.
    /// A username already held by another id is [`StoreError::Conflict`].
    async fn upsert_user(&self, user: &UserRecord) -> Result<(), StoreError>;

    /// The user whose normalised username equals `username` exactly (no case folding here:
    /// callers normalise first).
    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;

    /// The user with stable id `id`.
    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;

    /// Stores a newly issued token. [`StoreError::Conflict`] if the user already has a live
    /// (pending or active) token or the id exists; [`StoreError::NotFound`] if the user does
    /// not exist.
    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError>;

    /// The user's pending or active token, if any (there is at most one).
    async fn live_token_for_user(&self, user_id: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Moves a token to `state`. Terminal states (revoked, lost, expired) may be set from any
    /// state; `active` only from pending or active (setting `activated_at` if unset); `pending`
    /// only from pending. Anything else, such as reviving a revoked token, is
    /// [`StoreError::Conflict`]; an unknown id is [`StoreError::NotFound`].
    async fn set_token_state(&self, token_id: &str, state: TokenState, now: i64) -> Result<(), StoreError>;

    /// Records a verified code's time step in one atomic conditional update: accepted only if
    /// the token is live, `step` is newer than the last accepted step and failures are below
    /// `max_failures`. Acceptance resets failures and activates a pending token. Otherwise
    /// reports [`StepOutcome::NotLive`] (also for an unknown id), [`StepOutcome::Locked`] or
    /// [`StepOutcome::Replayed`], in that order of precedence.
    async fn accept_step(
        &self,
        token_id: &str,
        step: u64,
        max_failures: u32,
        now: i64,
    ) -> Result<StepOutcome, StoreError>;

    /// Atomically adds one failed attempt and returns the new count; [`StoreError::NotFound`]
    /// for an unknown id.
    async fn record_failure(&self, token_id: &str, now: i64) -> Result<u32, StoreError>;

    /// Stores a new session; a duplicate id or ticket hash is [`StoreError::Conflict`].
    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError>;

    /// The session whose resume ticket hashes to `ticket_hash`, including ended and expired
    /// ones: the caller checks `ended_at` and `expires_at`.
    async fn session_by_ticket_hash(&self, ticket_hash: &[u8]) -> Result<Option<SessionRecord>, StoreError>;

    /// Ends a session with `reason`. Ending an ended session keeps the first time and reason;
    /// an unknown id is [`StoreError::NotFound`].
    async fn end_session(&self, session_id: &str, reason: &str, now: i64) -> Result<(), StoreError>;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
}
