//! The gateway's admin API (JSON): sessions, the policy in force, readiness and the gateways
//! sharing the store.

use serde::{Deserialize, Serialize};

/// A live session on this gateway, as the service desk and security team see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// Public session id (not a credential).
    pub id: String,
    /// The gateway that holds it (`HOST:PORT`), when known.
    #[serde(default)]
    pub gateway: Option<String>,
    /// Normalised username.
    pub user: String,
    /// The person's stable directory id.
    pub user_id: String,
    /// Directory groups the session decides with (refreshed from the directory).
    pub groups: Vec<String>,
    /// Source address of the latest connection (`ip:port`).
    pub source: String,
    /// When the session began, unix seconds.
    pub since: i64,
    /// When the session ends at the latest, unix seconds.
    pub expires_at: i64,
    /// Last login, stream or byte moved, unix seconds.
    pub last_activity: i64,
    /// QUIC connections attached now (0 while the client reconnects).
    pub connections: u32,
    /// Forwarded connections open now.
    pub active_flows: u32,
    /// Every resource this session has opened, by name.
    pub resources_used: Vec<String>,
    /// Bytes carried from the client to targets.
    pub bytes_to_targets: u64,
    /// Bytes carried from targets to the client.
    pub bytes_from_targets: u64,
}

/// Answer to `GET /v1/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionList {
    /// Live sessions, oldest first.
    pub sessions: Vec<SessionView>,
}

/// Answer to a kill: the sessions ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillResult {
    /// Ids of the sessions ended by this request.
    pub ended: Vec<String>,
}

/// The policy in force and the outcome of the latest reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStatus {
    /// The policy file.
    pub path: String,
    /// SHA-256 (hex) of the file content in force.
    pub sha256: String,
    /// When it was loaded, unix seconds.
    pub loaded_at: i64,
    /// Resources defined.
    pub resources: usize,
    /// Rules defined (including each resource's own allow list).
    pub rules: usize,
    /// Problems of the latest rejected edit, if the file on disk is not the one in force.
    pub rejected: Vec<String>,
    /// Only in a reload's answer: `true` when the file's content took effect now, `false` when
    /// the file already was the policy in force and nothing changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reloaded: Option<bool>,
}

/// One readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// `store`, `directory`, `policy`, `clock` (this gateway's clock against the database's).
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Plain words, e.g. the error; only for callers with an operator key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Answer to `/readyz` (200 when every check passes, 503 otherwise; 429 to callers without a
/// key beyond their budget).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// All checks passed.
    pub ready: bool,
    /// Each check.
    pub checks: Vec<Check>,
}

/// Error body of every failed admin request (same shape as the provisioner's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Machine-readable code: `unauthorized`, `forbidden`, `not_found`, `invalid`, `unavailable`.
    pub error: String,
    /// Plain-language explanation.
    pub message: String,
}

/// A gateway sharing the store, as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayView {
    /// `HOST:PORT`.
    pub id: String,
    /// Its QUIC listen address.
    pub address: String,
    /// Its admin listener, if any.
    pub admin_url: Option<String>,
    /// Its software version.
    pub version: String,
    /// When it started, unix seconds.
    pub started_at: i64,
    /// Its latest heartbeat, unix seconds.
    pub last_seen_at: i64,
    /// Sessions with a connection on it at that heartbeat.
    pub sessions: u64,
    /// Forwarded connections open on it then.
    pub flows: u64,
    /// `up` (heard from within three heartbeats), `silent` (not heard from since: down or cut
    /// off) or `stopped` (shut down cleanly).
    pub state: String,
}

/// Answer to `GET /v1/gateways`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayList {
    /// Every gateway that registered in the store, by id.
    pub gateways: Vec<GatewayView>,
}
