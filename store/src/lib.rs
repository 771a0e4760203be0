//! Rampart persistence behind traits per concern ([`PeopleStore`], [`TokenStore`],
//! [`SessionStore`], [`TempCodeStore`], [`RegistrationStore`], [`ApprovalStore`], [`OperatorStore`], [`VmStore`], [`KeyStore`],
//! [`GatewayStore`], [`AuditAnchorStore`], [`WebSessionStore`], [`ReadinessStore`], [`StoreHealth`]; [`Store`] is all of them). [`SqliteStore`] (one WAL file in the state
//! directory) is the embedded default and [`PgStore`] the scale-out backend; both run the same
//! SQL and the same code (`ops/`), differing only where each backend's `dialect` says.
//!
//! Guarantees every backend keeps:
//! - [`Store::accept_step`] is one atomic conditional update: for a token and a time step, at
//!   most one call ever returns [`StepOutcome::Accepted`], across tasks and processes.
//! - A write has reached durable storage when its method returns `Ok` (on PostgreSQL with a
//!   synchronous standby, on the standby too).
//! - Every rule that must hold across processes and hosts (a step accepted once, failures
//!   counted, one VM per holder, temporary codes used once) is one conditional statement or one
//!   transaction that cannot interleave wrongly.
//! - The store never reads the clock: callers pass `now` (unix seconds).
//! - Seeds are stored only sealed ([`KeyRing`]); no error or `Debug` output contains a seed,
//!   sealed blob, password hash or ticket hash.

pub mod access;
pub mod approvals;
pub mod audit_anchors;
pub mod clock;
mod config;
pub mod copy;
mod error;
mod model;
mod postgres;
mod provisioning;
pub mod readiness;
pub mod registration;
pub mod schema;
pub mod seal;
mod sql;
mod sqlite;
pub mod temp_code;
pub mod vms;
pub mod web_sessions;

pub use approvals::ResetRequest;
pub use audit_anchors::{AuditAnchor, AuditStream};
pub use config::{MASTER_KEY_FILE, MigrationReport, PASSWORD_ENV, StoreConfig, StoreTarget, URL_ENV, without_password};
pub use error::StoreError;
pub use model::{
    EndedBy, EndedSession, GatewayNode, Rotation, SessionRecord, StepOutcome, TicketMatch, TokenRecord, TokenState,
    UserRecord, WrappedSealKey,
};
pub use postgres::{PgSettings, PgStore, parse_hosts};
pub use provisioning::{
    IssueMode, IssueOutcome, OperatorRecord, OperatorRole, TempCodeRecord, TokenEvent, TokenIssue, TokenQuery,
    TokenView,
};
pub use seal::{KeyRing, SealError, SealedSeed};
pub use sqlite::{DB_FILE_NAME, SqliteStore};
pub use vms::{AllocationRequest, PoolCounts, PoolRecord, VmChange, VmEvent, VmGuard, VmRecord, VmState};
pub use web_sessions::WebSession;

/// People as the directory last described them: stable id, normalised username, display name, groups, enabled.
#[async_trait::async_trait]
pub trait PeopleStore: Send + Sync + std::fmt::Debug {
    /// Inserts the user or updates it by id (everything but `created_at`), replacing its groups.
    /// A username already held by another id is [`StoreError::Conflict`].
    async fn upsert_user(&self, user: &UserRecord) -> Result<(), StoreError>;

    /// The user whose normalised username equals `username` exactly (no case folding here:
    /// callers normalise first).
    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;

    /// The user with stable id `id`.
    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;

    /// Every user in `group`, sorted by username.
    async fn users_in_group(&self, group: &str) -> Result<Vec<UserRecord>, StoreError>;
}

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

    /// Issues many tokens as [`Store::issue_token`] would, in one transaction (one disk sync
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
    /// another gateway, or a token change ([`Store::end_token`] and replacing issues end the
    /// token's sessions). Positions are assigned in the transaction that ends the sessions and
    /// become visible in increasing order, whatever `now` the writer passed and however long it
    /// waited for the write lock, so polling from the last position seen returns every later
    /// end exactly once. Sessions stored already ended have no position (no gateway holds them).
    async fn sessions_ended_after(&self, after: u64) -> Result<Vec<EndedSession>, StoreError>;

    /// Records that a session was in use at `now` (kept if later than the stored time).
    async fn touch_session(&self, session_id: &str, now: i64) -> Result<(), StoreError>;
}

/// Temporary one-time codes for a person whose token is lost.
#[async_trait::async_trait]
pub trait TempCodeStore: Send + Sync + std::fmt::Debug {
    /// Stores a temporary one-time code and records `temp_code_issued`. Earlier unused codes of
    /// the same person are withdrawn: only the newest works.
    async fn insert_temp_code(&self, code: &TempCodeRecord) -> Result<(), StoreError>;

    /// Atomically uses the person's unexpired, unused temporary code whose hash is
    /// `code_hash`; true if one was used (and `temp_code_used` recorded). A wrong code counts
    /// against the person's live codes, which are spent after
    /// [`MAX_TEMP_CODE_FAILURES`](crate::temp_code::MAX_TEMP_CODE_FAILURES) wrong tries.
    async fn consume_temp_code(&self, user_id: &str, code_hash: &[u8], now: i64) -> Result<bool, StoreError>;
}

/// Self-service enrolment: registration codes the desk issues, and the enrolments a person
/// opens with one and their directory password, confirmed by the first code of their new
/// authenticator. Every check, failure count and confirmation is one conditional statement or
/// one transaction, so a code opens at most one token however many tries arrive at once.
#[async_trait::async_trait]
pub trait RegistrationStore: Send + Sync + std::fmt::Debug {
    /// Stores a code for a known person (else [`StoreError::NotFound`]), withdrawing their
    /// earlier unused codes, and records `registration_code_issued`.
    async fn issue_registration_code(&self, code: &registration::RegistrationCode) -> Result<(), StoreError>;

    /// Whether `code_hash` is the person's live code (unused, not withdrawn, unexpired). A miss
    /// is not counted (anyone knowing a username could otherwise spend the person's code); the
    /// right code with a wrong password is ([`Self::fail_registration_code`]), and
    /// [`MAX_REGISTRATION_FAILURES`](registration::MAX_REGISTRATION_FAILURES) of those spend it.
    async fn check_registration_code(
        &self,
        user_id: &str,
        code_hash: &[u8],
        now: i64,
    ) -> Result<registration::CodeCheck, StoreError>;

    /// Counts a wrong try (the right code with a wrong password) against the live code; the
    /// limit spends it (`registration_code_spent`).
    async fn fail_registration_code(&self, user_id: &str, now: i64) -> Result<registration::CodeCheck, StoreError>;

    /// The person's newest `limit` codes, newest first, as they stand at `now`.
    async fn registration_codes(
        &self,
        user_id: &str,
        limit: u32,
        now: i64,
    ) -> Result<Vec<registration::RegistrationCodeView>, StoreError>;

    /// Stores an enrolment in place of the person's earlier unconfirmed one; records
    /// `enrolment_started`.
    async fn start_enrolment(&self, enrolment: &registration::Enrolment) -> Result<(), StoreError>;

    /// The enrolment with this id, expired or not.
    async fn enrolment(&self, id: &str) -> Result<Option<registration::Enrolment>, StoreError>;

    /// Deletes the enrolments that expired before `before`, unconfirmed: their sealed seeds
    /// serve nothing once no confirmation can take them. Returns how many.
    async fn purge_enrolments(&self, before: i64) -> Result<u64, StoreError>;

    /// Counts a wrong first code; the tries left (`Some(0)`: dropped, `enrolment_spent`), or
    /// `None` for an unknown or expired enrolment.
    async fn fail_enrolment(&self, id: &str, now: i64) -> Result<Option<u32>, StoreError>;

    /// Turns the enrolment into the person's active token (its seed as `confirmed` sealed it,
    /// a live token replaced or, per `confirmed.mode`, refused), its registration code redeemed
    /// and the confirming step recorded as used, in one transaction; records `enrolled`.
    /// [`Confirmation::Gone`](registration::Confirmation::Gone), writing nothing, when the
    /// enrolment or its code no longer works or a live token may not be replaced.
    async fn confirm_enrolment(
        &self,
        id: &str,
        user: &UserRecord,
        confirmed: &registration::Confirmed,
        now: i64,
    ) -> Result<registration::Confirmation, StoreError>;
}

/// Token resets under dual control: requests one operator makes and a second approves or
/// denies before they expire. Approving, denying and collecting are each one conditional
/// update in one transaction with what they carry out, so of two operators acting on one
/// request at once (from any host) exactly one succeeds; a refusal changes nothing.
#[async_trait::async_trait]
pub trait ApprovalStore: Send + Sync + std::fmt::Debug {
    /// Stores a pending request and records `reset_requested` by its requester (`username`
    /// is ignored). An unknown person is [`StoreError::NotFound`], an existing id
    /// [`StoreError::Conflict`].
    async fn request_reset(&self, request: &ResetRequest) -> Result<(), StoreError>;

    /// The request with id `id`, in any state.
    async fn reset_request(&self, id: &str) -> Result<Option<ResetRequest>, StoreError>;

    /// Requests still open (pending or approved, not expired) at `open_at`, or every request
    /// when `None`; newest first, at most `limit`.
    async fn reset_requests(&self, open_at: Option<i64>, limit: u32) -> Result<Vec<ResetRequest>, StoreError>;

    /// Approves a pending request before it expires, unless `approver` made it, and records
    /// `reset_approved`. An unlock is carried out in the same transaction (the request is then
    /// done; a token that is no longer live refuses it and the request stays pending); a
    /// request whose result holds a secret may then be collected until `collect_by`.
    async fn approve_reset(
        &self,
        id: &str,
        approver: &str,
        now: i64,
        collect_by: i64,
    ) -> Result<Result<ResetRequest, approvals::ApprovalRefusal>, StoreError>;

    /// Denies a request not yet carried out (its requester withdraws it this way) and records
    /// `reset_denied` with `reason`.
    async fn deny_reset(
        &self,
        id: &str,
        by: &str,
        reason: &str,
        now: i64,
    ) -> Result<Result<ResetRequest, approvals::ApprovalRefusal>, StoreError>;

    /// Collects an approved request: only its requester, once, before it expires. Marks it
    /// done and stores `grant` (temporary code, replacement token) with their events and
    /// `reset_collected`, in one transaction.
    async fn collect_reset(
        &self,
        id: &str,
        requester: &str,
        grant: &approvals::ResetGrant,
        now: i64,
    ) -> Result<Result<approvals::CollectedReset, approvals::ApprovalRefusal>, StoreError>;
}

/// Operators of the provisioner and gateway admin APIs, known by the hash of their API key.
#[async_trait::async_trait]
pub trait OperatorStore: Send + Sync + std::fmt::Debug {
    /// Stores a new operator; a duplicate name or key hash is [`StoreError::Conflict`].
    async fn insert_operator(&self, operator: &OperatorRecord) -> Result<(), StoreError>;

    /// The operator whose API key hashes to `key_hash`, revoked ones included.
    async fn operator_by_key_hash(&self, key_hash: &[u8]) -> Result<Option<OperatorRecord>, StoreError>;

    /// Every operator, by name.
    async fn list_operators(&self) -> Result<Vec<OperatorRecord>, StoreError>;

    /// Withdraws an operator's key by name; unknown or already revoked: NotFound.
    async fn revoke_operator(&self, name: &str, now: i64) -> Result<(), StoreError>;
}

/// VM pools, their machines, allocations and VM history.
#[async_trait::async_trait]
pub trait VmStore: Send + Sync + std::fmt::Debug {
    /// Creates a VM pool; an existing name is [`StoreError::Conflict`].
    async fn create_pool(&self, pool: &PoolRecord) -> Result<(), StoreError>;

    /// Every pool by name, or the one named.
    async fn pools(&self, name: Option<&str>) -> Result<Vec<PoolRecord>, StoreError>;

    /// Adds VMs in one transaction, each with an `added` event: a duplicate id is
    /// [`StoreError::Conflict`] and an unknown pool [`StoreError::NotFound`], and then nothing
    /// is added.
    async fn add_vms(&self, vms: &[VmRecord], actor: &str, now: i64) -> Result<(), StoreError>;

    /// VMs, optionally of one pool, in one state, held by one username.
    async fn vms(
        &self,
        pool: Option<&str>,
        state: Option<VmState>,
        holder: Option<&str>,
    ) -> Result<Vec<VmRecord>, StoreError>;

    /// One VM.
    async fn vm(&self, id: &str) -> Result<Option<VmRecord>, StoreError>;

    /// Gives a free VM (the named one, or any) to a person in one atomic conditional update:
    /// a VM never gets two holders, and a person who already holds one in the pool gets
    /// [`StoreError::Conflict`] unless `allow_second`. No free VM is a conflict too.
    async fn allocate_vm(&self, request: &AllocationRequest, now: i64) -> Result<VmRecord, StoreError>;

    /// Applies a state change if the VM is in one of `change.from` and meets `change.only_if`,
    /// with its event; otherwise [`StoreError::Conflict`] naming what did not hold.
    async fn change_vm(&self, change: &VmChange, now: i64) -> Result<VmRecord, StoreError>;

    /// Gives an allocated VM to another person (who must hold none in the pool).
    async fn reassign_vm(
        &self,
        vm_id: &str,
        user_id: &str,
        username: &str,
        actor: &str,
        now: i64,
    ) -> Result<VmRecord, StoreError>;

    /// The VM `user_id` holds in `pool` (the earliest, if asked to hold several).
    async fn vm_held(&self, user_id: &str, pool: &str) -> Result<Option<VmRecord>, StoreError>;

    /// Notes that the holder used the VM at `now` (a forwarded connection ended).
    async fn touch_vm_flow(&self, vm_id: &str, now: i64) -> Result<(), StoreError>;

    /// Each pool's capacity and VMs by state.
    async fn pool_counts(&self) -> Result<Vec<PoolCounts>, StoreError>;

    /// VM events from `since` on, optionally of one pool, oldest first.
    async fn vm_events(&self, pool: Option<&str>, since: i64) -> Result<Vec<VmEvent>, StoreError>;
}

/// Seed-sealing keys held in the store (wrapped by a key-encryption key), and sealed seeds for
/// re-sealing under a new key.
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    /// Every token's id and sealed seed, for re-sealing under a new key.
    async fn sealed_seeds(&self) -> Result<Vec<(String, SealedSeed)>, StoreError>;

    /// Replaces a token's sealed seed if it still equals `old` (compare and swap); returns
    /// whether it did.
    async fn reseal(&self, token_id: &str, old: &SealedSeed, new: &SealedSeed) -> Result<bool, StoreError>;

    /// Every seed-sealing key kept in the store, by id.
    async fn seal_keys(&self) -> Result<Vec<WrappedSealKey>, StoreError>;

    /// Stores a new seal key. An existing id is [`StoreError::Conflict`]: of two nodes adding
    /// the next key at once, one wins and the other learns it lost.
    async fn add_seal_key(&self, key: &WrappedSealKey) -> Result<(), StoreError>;

    /// Deletes seal key `id`, in one transaction with the checks that it is not the current
    /// (highest) key and that no token is sealed under it ([`StoreError::Conflict`]
    /// otherwise); an unknown id is [`StoreError::NotFound`].
    async fn retire_seal_key(&self, id: u32) -> Result<(), StoreError>;
}

/// The audit trail anchored outside its files: the streams writers opened and every signed
/// checkpoint's head, so records cut off a stream's end, or a stream deleted whole, are told
/// from a trail that simply ended. A stream is named by its checkpoint key's id and its name.
#[async_trait::async_trait]
pub trait AuditAnchorStore: Send + Sync + std::fmt::Debug {
    /// Registers a stream as its writer opens it (or notes that it opened again) and returns
    /// the newest head anchored for it, for the writer to compare its files with.
    async fn open_audit_stream(
        &self,
        key_id: &str,
        stream: &str,
        service: &str,
        now: i64,
    ) -> Result<Option<AuditAnchor>, StoreError>;

    /// Records a checkpoint's head. Recording the same head again changes nothing; another
    /// hash under a number already anchored is [`StoreError::Conflict`].
    async fn anchor_audit_head(&self, anchor: &AuditAnchor) -> Result<(), StoreError>;

    /// Every stream ever opened, with its newest head, by key id and name.
    async fn audit_streams(&self) -> Result<Vec<AuditStream>, StoreError>;

    /// Every head anchored for one stream, lowest number first.
    async fn audit_anchors(&self, key_id: &str, stream: &str) -> Result<Vec<AuditAnchor>, StoreError>;
}

/// Browser sessions of the provisioner's web console, shared by every provisioner host: a
/// session is known by the hash of its cookie ([`web_sessions::web_session_hash`]) and works
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

/// Rehearsals reported by `rampart-connect doctor --rehearse`, and each person's steps towards
/// their first real connection (the readiness funnel, [`readiness::funnel`]).
#[async_trait::async_trait]
pub trait ReadinessStore: Send + Sync + std::fmt::Debug {
    /// Stores a rehearsal: an unknown person is [`StoreError::NotFound`], an existing id
    /// [`StoreError::Conflict`].
    async fn record_rehearsal(&self, rehearsal: &readiness::Rehearsal) -> Result<(), StoreError>;

    /// The person's newest rehearsal, passed or not.
    async fn latest_rehearsal(&self, user_id: &str) -> Result<Option<readiness::Rehearsal>, StoreError>;

    /// Every person the store knows (only members of `group` when given), sorted by username,
    /// with the first time of each step at or before `now`, read from one snapshot.
    async fn readiness(&self, group: Option<&str>, now: i64) -> Result<Vec<readiness::ReadinessRow>, StoreError>;
}

/// The database itself: whether it answers, and its clock.
#[async_trait::async_trait]
pub trait StoreHealth: Send + Sync + std::fmt::Debug {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The database's clock, in unix milliseconds, read in one round trip. Nodes compare their
    /// own clock with it; on SQLite it is this host's clock.
    async fn database_time_ms(&self) -> Result<i64, StoreError>;

    /// Which backend and where, for logs and health pages (never a password).
    fn describe(&self) -> String;
}

/// Every trait of the store, for `use rampart_store::prelude::*`: methods of a `dyn Store` come
/// from the concern traits, which must be in scope to call them.
pub mod prelude {
    pub use crate::{
        ApprovalStore, AuditAnchorStore, GatewayStore, KeyStore, OperatorStore, PeopleStore, ReadinessStore,
        RegistrationStore, SessionStore, Store, StoreHealth, TempCodeStore, TokenStore, VmStore, WebSessionStore,
    };
}

/// Gateways sharing the store: each registers itself and beats, so any node can list them.
#[async_trait::async_trait]
pub trait GatewayStore: Send + Sync + std::fmt::Debug {
    /// Registers (or re-registers after a restart) a gateway: its record replaces any older
    /// one with the same id.
    async fn register_gateway(&self, node: &GatewayNode) -> Result<(), StoreError>;

    /// A gateway's heartbeat: when, and how busy it is.
    async fn gateway_heartbeat(&self, id: &str, now: i64, sessions: u64, flows: u64) -> Result<(), StoreError>;

    /// A gateway stopped cleanly.
    async fn gateway_stopped(&self, id: &str, now: i64) -> Result<(), StoreError>;

    /// Every gateway that ever registered, by id.
    async fn gateway_nodes(&self) -> Result<Vec<GatewayNode>, StoreError>;
}

/// Everything a gateway or provisioner keeps: every concern above on one database. Object safe:
/// share it as `Arc<dyn Store>`; a part that needs one concern takes that trait instead.
pub trait Store:
    PeopleStore
    + TokenStore
    + SessionStore
    + TempCodeStore
    + RegistrationStore
    + ApprovalStore
    + OperatorStore
    + VmStore
    + KeyStore
    + GatewayStore
    + AuditAnchorStore
    + WebSessionStore
    + ReadinessStore
    + StoreHealth
{
}

impl<T> Store for T where
    T: PeopleStore
        + TokenStore
        + SessionStore
        + TempCodeStore
        + RegistrationStore
        + ApprovalStore
        + OperatorStore
        + VmStore
        + KeyStore
        + GatewayStore
        + AuditAnchorStore
        + WebSessionStore
        + ReadinessStore
        + StoreHealth
{
}
