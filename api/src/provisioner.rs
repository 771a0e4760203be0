//! The provisioner's REST API: request and response bodies of its token, report, operator and
//! key routes, with the bulk enrolment, self-service enrolment and readiness bodies in
//! submodules (all re-exported here). Described in the provisioner's OpenAPI document.

mod enrol;
mod readiness;
mod self_service;

pub use enrol::*;
pub use readiness::*;
pub use self_service::*;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Version prefix of every API route.
pub const API_PREFIX: &str = "/v1";

/// An error answer: a stable machine code and a sentence for people.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// Stable code, e.g. `unauthorized`, `forbidden`, `not_found`, `conflict`, `invalid`,
    /// `unavailable`; `not_locked` for an unlock of a token that is not locked.
    pub error: String,
    /// What went wrong and what to do, in plain words.
    pub message: String,
}

/// Who the presented API key belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    /// Operator name.
    pub name: String,
    /// `admin`, `helpdesk` or `auditor`.
    pub role: String,
}

/// Ask for a token for one person.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct IssueRequest {
    /// Replace the person's current token if they have one (it is revoked).
    #[serde(default)]
    pub reissue: bool,
    /// Also return the QR code as `svg` or `png` (base64) in the answer.
    #[serde(default)]
    pub qr: Option<QrFormat>,
}

/// Image formats for a QR code in an API answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QrFormat {
    /// SVG document.
    Svg,
    /// PNG image, base64-encoded.
    Png,
}

/// A newly issued token. The only answer that ever contains its secret: the `otpauth_uri`
/// (and the QR code made from it). Show it to the person once, then forget it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuedToken {
    /// Token id.
    pub token_id: String,
    /// The person's username.
    pub username: String,
    /// The person's display name.
    pub display_name: String,
    /// The person's stable directory id.
    pub user_id: String,
    /// `otpauth://totp/ISSUER:ACCOUNT?secret=...` for authenticator apps.
    pub otpauth_uri: String,
    /// Issuer shown in authenticator apps.
    pub issuer: String,
    /// Unix seconds of issue.
    pub issued_at: i64,
    /// The token this one replaced (revoked), if any.
    pub replaced: Option<String>,
    /// The QR code as an SVG document, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_svg: Option<String>,
    /// The QR code as a base64 PNG, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_png_base64: Option<String>,
}

/// A token as operators see it; never its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    /// Token id.
    pub token_id: String,
    /// Owner's username.
    pub username: String,
    /// Owner's display name.
    pub display_name: String,
    /// Owner's groups.
    pub groups: Vec<String>,
    /// `pending`, `active`, `revoked`, `lost` or `expired`.
    pub state: String,
    /// True when wrong codes reached the lockout limit; an operator must unlock it.
    pub locked: bool,
    /// Wrong codes since the last good one.
    pub failures: u32,
    /// Unix seconds of issue.
    pub issued_at: i64,
    /// Who issued it.
    pub issued_by: String,
    /// Unix seconds of the first good code.
    pub activated_at: Option<i64>,
    /// Unix seconds of the last good code.
    pub last_used_at: Option<i64>,
    /// False while a bulk enrolment has issued it but not yet written its QR code.
    pub delivered: bool,
}

/// One change in a person's token history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenEventInfo {
    /// Unix seconds.
    pub at: i64,
    /// Operator name, `gateway` or `system`.
    pub actor: String,
    /// What happened (`issued`, `activated`, `revoked`, `lost`, `unlocked`, ...).
    pub action: String,
    /// Username of the person.
    pub username: String,
    /// Token concerned.
    pub token_id: Option<String>,
    /// Reason or detail.
    pub detail: String,
}

/// A person, their tokens and the history of changes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PersonInfo {
    /// Username.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Stable directory id.
    pub user_id: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Every token, newest first.
    pub tokens: Vec<TokenInfo>,
    /// Changes, oldest first.
    pub history: Vec<TokenEventInfo>,
}

/// A reason for a change, kept in the history.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ReasonRequest {
    /// Free text, e.g. a ticket number.
    #[serde(default)]
    pub reason: String,
}

/// Report a token lost, and optionally help the person keep working.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct LostRequest {
    /// Free text, e.g. a ticket number.
    #[serde(default)]
    pub reason: String,
    /// Issue a temporary one-time code the person can use once instead of a token code.
    #[serde(default)]
    pub temporary_code: bool,
    /// Issue a replacement token now.
    #[serde(default)]
    pub replacement: bool,
    /// QR format for the replacement, if any.
    #[serde(default)]
    pub qr: Option<QrFormat>,
}

/// What a lost report did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LostResponse {
    /// The token marked lost, if the person had a live one.
    pub lost_token: Option<String>,
    /// The temporary code, if asked for.
    pub temporary_code: Option<TemporaryCode>,
    /// The replacement token, if asked for.
    pub replacement: Option<IssuedToken>,
    /// With dual control on, the request for the temporary code and/or replacement, which a
    /// second operator must approve (the answer is then 202); the token is marked lost at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_approval: Option<ResetRequestInfo>,
}

/// A token reset (temporary code, replacement, unlock) waiting for, or given, a second
/// operator's approval. Never holds a code or a seed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResetRequestInfo {
    /// Request id, for `rampart token approve ID`.
    pub request_id: String,
    /// The person's username.
    pub username: String,
    /// The person's stable directory id.
    pub user_id: String,
    /// `temporary_code`, `replacement`, `temporary_code+replacement` or `unlock`.
    pub action: String,
    /// The token an unlock is for.
    pub token_id: Option<String>,
    /// The requester's reason.
    pub reason: String,
    /// The operator who asked.
    pub requested_by: String,
    /// Unix seconds of the request.
    pub requested_at: i64,
    /// Unix seconds until which it may be approved (pending) or collected (approved).
    pub expires_at: i64,
    /// `pending`, `approved` (its requester may collect the result), `denied`, `done` or
    /// `expired`.
    pub state: String,
    /// The operator who approved or denied it.
    pub decided_by: Option<String>,
    /// Unix seconds of the approval or denial.
    pub decided_at: Option<i64>,
    /// Why it was denied.
    #[serde(default)]
    pub decision_reason: String,
    /// Unix seconds when it was carried out.
    pub completed_at: Option<i64>,
}

/// The answer of an operation that dual control may hold back: carried out (`Done`), or
/// waiting for a second operator's approval (`AwaitingApproval`, answered with 202).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Gated<T> {
    /// Waiting for a second operator: `rampart token approve ID`.
    AwaitingApproval(Box<ResetRequestInfo>),
    /// Carried out.
    Done(T),
}

/// Which reset requests to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResetRequestQuery {
    /// Every request, also decided and expired ones (default: only open ones).
    #[serde(default)]
    pub all: bool,
}

/// Collect an approved reset.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CollectRequest {
    /// QR format for a replacement token, if any.
    #[serde(default)]
    pub qr: Option<QrFormat>,
}

/// What collecting an approved reset made: shown once, to the operator who asked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CollectedReset {
    /// The request, now done.
    pub request: ResetRequestInfo,
    /// The temporary code, if the request was for one.
    pub temporary_code: Option<TemporaryCode>,
    /// The replacement token, if the request was for one.
    pub replacement: Option<IssuedToken>,
}

/// A one-time code for one person, valid until `expires_at`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TemporaryCode {
    /// The code: typed at login instead of a token code, once.
    pub code: String,
    /// Unix seconds after which it no longer works.
    pub expires_at: i64,
}

/// Two consecutive codes from the person's authenticator.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResyncRequest {
    /// A code.
    pub first_code: String,
    /// The code shown right after it.
    pub second_code: String,
}

/// A token's state after an operator action.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenChanged {
    /// The token as it is now.
    pub token: TokenInfo,
}

/// Which tokens to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenListQuery {
    /// Only this state.
    pub state: Option<String>,
    /// Only members of this group.
    pub group: Option<String>,
    /// Only this person.
    pub user: Option<String>,
    /// Only locked tokens.
    #[serde(default)]
    pub locked: bool,
}

/// Report parameters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// List pending tokens issued more than this many days ago (default 7).
    pub pending_days: Option<u32>,
}

/// The token report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenReport {
    /// Unix seconds the report was made.
    pub generated_at: i64,
    /// Count of tokens per state (every state present, zero included).
    pub by_state: std::collections::BTreeMap<String, u64>,
    /// People enrolled (with a live token).
    pub people_with_live_token: u64,
    /// The threshold used for `pending_older`.
    pub pending_days: u32,
    /// Pending tokens older than the threshold: people who never finished setting up.
    pub pending_older: Vec<TokenInfo>,
    /// Locked live tokens.
    pub locked: Vec<TokenInfo>,
    /// Per group: count of live tokens by state.
    pub per_group: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
}

/// Create an operator.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewOperator {
    /// Unique name.
    pub name: String,
    /// `admin`, `helpdesk` or `auditor`.
    pub role: String,
}

/// An operator (never the key).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperatorInfo {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Unix seconds of withdrawal.
    pub revoked_at: Option<i64>,
}

/// A new operator and its API key, shown only in this answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedOperator {
    /// The operator.
    pub operator: OperatorInfo,
    /// The API key: give it to the operator; it cannot be shown again.
    pub api_key: String,
}

/// A seed-sealing key and how many tokens it seals.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyInfo {
    /// Key id.
    pub id: u32,
    /// True for the key new tokens are sealed with.
    pub current: bool,
    /// Tokens sealed under it.
    pub tokens: u64,
}

/// The seed-sealing keys.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeysInfo {
    /// Every key.
    pub keys: Vec<KeyInfo>,
}

/// Outcome of a key rotation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RotateResponse {
    /// The new current key.
    pub new_key: u32,
    /// Tokens re-sealed under it.
    pub resealed: u64,
    /// Tokens that could not be opened (corrupt or sealed under a missing key).
    pub failed: Vec<String>,
    /// Keys now sealing nothing, which `rampart keys retire` may remove.
    pub retirable: Vec<u32>,
}

/// Health answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}
