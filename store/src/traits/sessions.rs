//! The store traits for sessions: tunnel sessions on every gateway, web console sign-ins.

use crate::{EndedBy, EndedSession, Rotation, SessionRecord, StoreError, TicketMatch, WebSession};

/// Sessions on every gateway: created at login, found by ticket, ended once, and the feed of ends every gateway follows.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + std::fmt::Debug {
    /// Stores a new session; a duplicate id or ticket hash is [`StoreError::Conflict`].
    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError>;

    /// Stores a new session and ends the person's oldest live sessions beyond `max_live`
    /// (with `reason`, and that rule as their ender), in one transaction serialised per person, so logins at the same moment
    /// on several gateways can neither exceed the limit nor end each other's new sessions.
    /// Returns the ids it ended.
    async fn create_session_within(
        &self,
        session: &SessionRecord,
        max_live: u32,
        reason: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// Records that a session now lives on gateway `gateway_id` (it resumed there).
    async fn move_session(&self, session_id: &str, gateway_id: &str) -> Result<(), StoreError>;

    /// The session whose resume ticket hashes to `ticket_hash`, including ended and expired
    /// ones: the caller checks `ended_at` and `expires_at`.
    async fn session_by_ticket_hash(&self, ticket_hash: &[u8]) -> Result<Option<SessionRecord>, StoreError>;

    /// The session whose current ticket, or a ticket one of its resumes replaced, hashes to
    /// `ticket_hash` (ended and expired ones included).
    async fn session_for_ticket(&self, ticket_hash: &[u8]) -> Result<Option<TicketMatch>, StoreError>;

    /// Replaces a live session's ticket hash `current` by `next` and records that it now lives
    /// on `gateway_id`, in one conditional statement (a compare-and-swap on `current`): of
    /// several resumes presenting the same ticket at once, on any gateways, at most one gets
    /// [`Rotation::Rotated`]. `current` is kept among the replaced tickets in the same
    /// transaction.
    async fn rotate_ticket(
        &self,
        session_id: &str,
        current: &[u8],
        next: &[u8],
        gateway_id: &str,
        now: i64,
    ) -> Result<Rotation, StoreError>;

    /// Ends a session with `reason`, at the next position of the feed of session ends, naming
    /// no one as its ender ([`SessionStore::end_session_by`] does).
    async fn end_session(&self, session_id: &str, reason: &str, now: i64) -> Result<(), StoreError> {
        self.end_session_by(session_id, reason, None, now).await
    }

    /// Ends a session with `reason` and who ended it, at the next position of the feed of
    /// session ends. Ending an ended session keeps the first time, reason, position and ender;
    /// an unknown id is [`StoreError::NotFound`].
    async fn end_session_by(
        &self,
        session_id: &str,
        reason: &str,
        ended_by: Option<&EndedBy>,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Live (not ended, not expired at `now`) sessions of a user, oldest first.
    async fn live_sessions_for_user(&self, user_id: &str, now: i64) -> Result<Vec<SessionRecord>, StoreError>;

    /// Live sessions of everyone (on any gateway, connected or between connections), oldest
    /// first, at most `limit`.
    async fn live_sessions(&self, now: i64, limit: u32) -> Result<Vec<SessionRecord>, StoreError>;

    /// Ends every session of a user that has not ended yet, at one feed position; returns their
    /// ids.
    async fn end_user_sessions(&self, user_id: &str, reason: &str, now: i64) -> Result<Vec<String>, StoreError> {
        self.end_user_sessions_by(user_id, reason, None, now).await
    }

    /// [`SessionStore::end_user_sessions`], naming who ended them.
    async fn end_user_sessions_by(
        &self,
        user_id: &str,
        reason: &str,
        ended_by: Option<&EndedBy>,
        now: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// The latest position of the feed of session ends: a gateway starts following the feed
    /// here (ends before it concern sessions it does not hold).
    async fn session_end_seq(&self) -> Result<u64, StoreError>;

    /// Sessions whose end has a feed position after `after`, in feed order. Gateways poll this
    /// with the last position they saw to close sessions ended elsewhere: by an operator,
    /// another gateway, or a token change ([`Store::end_token`](crate::TokenStore::end_token) and replacing issues end the
    /// token's sessions). Positions are assigned in the transaction that ends the sessions and
    /// become visible in increasing order, whatever `now` the writer passed and however long it
    /// waited for the write lock, so polling from the last position seen returns every later
    /// end exactly once. Sessions stored already ended have no position (no gateway holds them).
    async fn sessions_ended_after(&self, after: u64) -> Result<Vec<EndedSession>, StoreError>;

    /// Records that a session was in use at `now` (kept if later than the stored time).
    async fn touch_session(&self, session_id: &str, now: i64) -> Result<(), StoreError>;
}

/// Browser sessions of the provisioner's web console, shared by every provisioner host: a
/// session is known by the hash of its cookie ([`web_sessions::web_session_hash`](crate::web_sessions::web_session_hash)) and works
/// until it is ended, sits idle too long or expires. Finding a session and noting that it was
/// seen is one conditional update, so a session ended on one host works on no other.
#[async_trait::async_trait]
pub trait WebSessionStore: Send + Sync + std::fmt::Debug {
    /// Stores a new session for a known person ([`StoreError::NotFound`] otherwise); a hash
    /// already stored is [`StoreError::Conflict`].
    async fn start_web_session(&self, session: &WebSession) -> Result<(), StoreError>;

    /// The session whose cookie hashes to `id_hash` if it has not ended, expires after `now`
    /// and was last seen less than `idle_secs` before `now`; it is then marked seen at `now`
    /// (never moved back) and returned with that time. Otherwise `None`, and nothing changes.
    async fn web_session(&self, id_hash: &[u8], now: i64, idle_secs: i64) -> Result<Option<WebSession>, StoreError>;

    /// Ends the session (sign-out); true if it had neither ended nor expired.
    async fn end_web_session(&self, id_hash: &[u8], now: i64) -> Result<bool, StoreError>;

    /// Ends every session of one person that has neither ended nor expired; how many.
    async fn end_web_sessions_for_user(&self, user_id: &str, now: i64) -> Result<u64, StoreError>;

    /// Deletes the sessions that ended or expired before `before`; how many.
    async fn purge_web_sessions(&self, before: i64) -> Result<u64, StoreError>;
}
