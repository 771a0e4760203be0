//! The store traits for people and what they hold short of tokens: directory users,
//! operators, temporary codes, self-service enrolment, token resets under dual control.

use crate::{OperatorRecord, ResetRequest, StoreError, TempCodeRecord, UserRecord, approvals, registration};

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
