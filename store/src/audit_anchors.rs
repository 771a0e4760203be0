//! The audit trail's anchors outside its files: the streams writers opened ([`AuditStream`]) and
//! each signed checkpoint's head ([`AuditAnchor`]). A stream is named by its checkpoint key's id
//! and its name, so same-named streams of nodes with their own keys never mix.

/// One checkpoint's head, recorded once the checkpoint is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditAnchor {
    /// The checkpoint key's id (the first 16 hex digits of its public key's SHA-256).
    pub key_id: String,
    /// The stream's name.
    pub stream: String,
    /// The checkpoint record's sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// The file it is in (name only, `STREAM-SEQ.jsonl`).
    pub file: String,
    /// When it was recorded (unix seconds).
    pub recorded_at: i64,
}

/// A stream some writer opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditStream {
    /// The checkpoint key's id.
    pub key_id: String,
    /// The stream's name.
    pub stream: String,
    /// The service that writes it (`gateway`, `provisioner`, `dev`).
    pub service: String,
    /// When a writer first opened it (unix seconds).
    pub first_seen_at: i64,
    /// When a writer last opened it.
    pub last_opened_at: i64,
    /// Its newest anchored head, if a checkpoint was ever recorded.
    pub head: Option<AuditAnchor>,
}
