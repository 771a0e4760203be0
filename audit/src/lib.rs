//! Rampart's audit trail on disk. Each process appends OCSF-shaped events to its own stream of
//! chained JSON-lines files in an audit directory (`STREAM-SEQ.jsonl`, rotated by size and age),
//! with periodic checkpoints signed by an Ed25519 key kept outside that directory. A crash's torn
//! last line is cut off (and kept beside its file) before appending; failed writes and a full
//! queue never leave a gap in the chain — the loss is counted and written as a record. Each
//! checkpoint's head is anchored outside the folder (in the store), so records cut off the end
//! or a stream deleted whole are found by the next writer and by `verify`. The same crate reads
//! the files back to verify the chain and to query or follow records.

pub mod anchor;
pub mod config;
pub mod files;
#[cfg(feature = "http")]
pub mod http;
pub mod keys;
pub mod query;
pub mod verify;
pub mod writer;

pub use config::{AuditConfig, AuditSettings};
pub use writer::{AuditLog, AuditWriter, FlushError};

/// Why the audit trail cannot be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file or folder could not be used.
    #[error("{what} {path}: {cause}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or folder.
        path: String,
        /// The operating system's answer (part of the message, not a separate source, so an
        /// error chain does not say it twice).
        cause: std::io::Error,
    },
    /// Another process writes the same stream into the same folder.
    #[error(
        "audit stream {stream:?} in {dir} is in use by another process; give each process its own `stream` in [audit]"
    )]
    InUse {
        /// The stream.
        stream: String,
        /// The folder.
        dir: String,
    },
    /// A key file is not what it should be.
    #[error("{0}")]
    Key(String),
    /// The anchor book (the store) could not be read when the stream opened.
    #[error("cannot read the audit trail's anchors from the store: {0}")]
    Anchor(String),
}

impl AuditError {
    pub(crate) fn io(what: &'static str, path: &std::path::Path, cause: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.display().to_string(),
            cause,
        }
    }
}
