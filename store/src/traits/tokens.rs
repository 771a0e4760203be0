//! The store trait for TOTP tokens: issue, life cycle, the replay and lockout gate.

use crate::{
    IssueOutcome, StepOutcome, StoreError, TokenEvent, TokenIssue, TokenQuery, TokenRecord, TokenState, TokenView,
};

/// TOTP tokens: issue, life cycle, the replay and lockout gate, operator changes and their history.
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync + std::fmt::Debug {
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

    /// Issues one token in one transaction: upserts the person, applies `issue.mode` to an
    /// existing live token (revoking it with a `replaced` event when replacing), inserts the
    /// token and records an `issued` event by `issue.actor`.
    async fn issue_token(&self, issue: &TokenIssue, now: i64) -> Result<IssueOutcome, StoreError>;

    /// Issues many tokens as [`Store::issue_token`](TokenStore::issue_token) would, in one transaction (one disk sync
    /// for the whole batch). Each request succeeds or fails on its own: a refused one writes
    /// nothing and does not stop the others. Returns one outcome per request, in order; the
    /// outer error means nothing was written.
    async fn issue_tokens(
        &self,
        issues: &[TokenIssue],
        now: i64,
    ) -> Result<Vec<Result<IssueOutcome, StoreError>>, StoreError>;

    /// Marks tokens as delivered (their QR code reached the enrolment output) and records a
    /// `delivered` event for each; returns how many changed. Already delivered or unknown ids
    /// are ignored.
    async fn confirm_delivery(&self, token_ids: &[String], actor: &str, now: i64) -> Result<u64, StoreError>;

    /// The token with id `token_id`, in any state.
    async fn token_by_id(&self, token_id: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// Tokens matching `query` with their owners, newest first.
    async fn list_tokens(&self, query: &TokenQuery) -> Result<Vec<TokenView>, StoreError>;

    /// Moves a token to a terminal state (revoked, lost, expired), ends the sessions it opened
    /// (reason `token_<state>`) and records the event with `detail`, in one transaction. A live-state target is [`StoreError::Conflict`]; an
    /// already-terminal token is [`StoreError::Conflict`] too; unknown id: NotFound.
    async fn end_token(
        &self,
        token_id: &str,
        state: TokenState,
        actor: &str,
        detail: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Resets the failure counter of a live token locked at `lock_at` wrong codes (operator
    /// unlock) and records `unlocked`: true. A live token with fewer failures is not locked:
    /// false, and nothing is changed or recorded. A terminal token is [`StoreError::Conflict`].
    async fn unlock_token(&self, token_id: &str, lock_at: u32, actor: &str, now: i64) -> Result<bool, StoreError>;

    /// Resynchronises a live token: records `step` (the later of two consecutive verified
    /// codes) as the last accepted step and `drift_steps` (how far the owner's device runs
    /// ahead of the server, in steps), resets failures, activates a pending token, and records
    /// `resynced`. A terminal token is [`StoreError::Conflict`].
    async fn resync_token(
        &self,
        token_id: &str,
        step: u64,
        drift_steps: i64,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Appends one event to the token history (e.g. the gateway's `activated` or `locked`).
    async fn record_token_event(&self, event: &TokenEvent) -> Result<(), StoreError>;

    /// The history of one person's tokens (all of them when `user_id` is `None`), oldest
    /// first, at most `limit` most recent events.
    async fn token_events(&self, user_id: Option<&str>, limit: u32) -> Result<Vec<TokenEvent>, StoreError>;
}
