//! Bulk enrolment: the batches of people the CLI sends, what happened to each row, delivery
//! confirmations, and a directory group's members.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::IssuedToken;

/// Most rows accepted in one batch.
pub const MAX_BATCH: usize = 500;

/// One row of a bulk enrolment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrolRow {
    /// Username as in the directory.
    pub username: String,
    /// E-mail address for the enrolment letter.
    #[serde(default)]
    pub email: Option<String>,
    /// Group noted for the enrolment letter.
    #[serde(default)]
    pub group: Option<String>,
}

/// A batch of people to enrol.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrolBatch {
    /// The people (at most 500 per batch).
    pub rows: Vec<EnrolRow>,
    /// Replace tokens that were already delivered (reissue everyone).
    #[serde(default)]
    pub reissue: bool,
}

/// What happened to one row of a batch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrolResult {
    /// Username from the row (normalised).
    pub username: String,
    /// `issued`; `skipped` (already enrolled: see `existing`); `disabled` (the account is
    /// disabled in the directory: no token); or `error` (see `reason`).
    pub status: String,
    /// Why it was skipped or failed, for people.
    #[serde(default)]
    pub reason: Option<String>,
    /// The new token, when issued. It stays undelivered until confirmed.
    #[serde(default)]
    pub issued: Option<IssuedToken>,
    /// The existing token, when skipped.
    #[serde(default)]
    pub existing_token: Option<String>,
    /// The existing token's issue and delivery, when skipped: which run's letter it was.
    #[serde(default)]
    pub existing: Option<ExistingToken>,
    /// The person's e-mail address in the directory, when it has one (for the manifest).
    #[serde(default)]
    pub email: Option<String>,
}

/// A token a person already holds, as an enrolment run reports it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExistingToken {
    /// Token id.
    pub token_id: String,
    /// `pending` (not used yet) or `active`.
    pub state: String,
    /// Unix seconds it was issued.
    pub issued_at: i64,
    /// The operator who issued it.
    pub issued_by: String,
    /// Unix seconds its QR code was delivered (written to an enrolment folder, or shown).
    #[serde(default)]
    pub delivered_at: Option<i64>,
}

/// Answer to a batch: one result per row, in order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrolBatchResponse {
    /// Results in row order.
    pub results: Vec<EnrolResult>,
}

/// Tokens whose QR codes have been safely written.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfirmRequest {
    /// Token ids.
    pub token_ids: Vec<String>,
}

/// How many tokens were newly marked delivered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfirmResponse {
    /// Count.
    pub confirmed: u64,
}

/// Members of a directory group.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GroupMembers {
    /// The group.
    pub group: String,
    /// Usernames of the enabled people, sorted.
    pub usernames: Vec<String>,
    /// Everyone else the group lists, with why they cannot be enrolled, sorted by name.
    #[serde(default)]
    pub left_out: Vec<LeftOutMember>,
}

/// A group member that cannot be enrolled.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LeftOutMember {
    /// The username, or the entry's DN when it has none.
    pub name: String,
    /// `disabled`, `not_a_person`, `outside_user_base`, `no_such_entry`, `no_username`,
    /// `no_stable_id` or `shared_username`.
    pub reason_code: String,
    /// The reason, for people.
    pub reason: String,
}
