//! Flow records: one per forwarded connection, written when it closes, for the security team.

use serde::{Deserialize, Serialize};

/// What happened to one forwarded connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// Always `"flow"`, so flow lines are easy to pick out of mixed logs.
    pub event: String,
    /// Session that opened the stream.
    pub session_id: String,
    /// Normalised username.
    pub user: String,
    /// The person's stable directory id.
    pub user_id: String,
    /// Client address as the gateway saw it.
    pub source: String,
    /// Resource name requested.
    pub resource: String,
    /// Target connected to (empty when refused before dialling).
    pub target: String,
    /// `allow` or `deny`.
    pub decision: String,
    /// Why it ended or was refused (`closed`, `forbidden`, `target_refused`, …).
    pub outcome: String,
    /// Bytes from the client to the target.
    pub bytes_to_target: u64,
    /// Bytes from the target to the client.
    pub bytes_from_target: u64,
    /// Start, RFC 3339.
    pub start: String,
    /// End, RFC 3339.
    pub end: String,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// The VM reached, for a resource that leads to the person's own machine in a pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<String>,
}
