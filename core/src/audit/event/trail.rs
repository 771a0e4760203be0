//! The trail's reports about itself: records a writer dropped, and a chain that does not
//! reach the head the store anchored.

use serde::{Deserialize, Serialize};

/// What a restarted writer found missing or changed: its files against the last checkpoint
/// head recorded in the store (a chain-gap record's OCSF `unmapped`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainGap {
    /// `cut`: the files end before the anchored record; `differs`: the files hold another
    /// record under the anchored number, or not that record at all.
    pub gap: GapKind,
    /// The last record on file (none: no file of the stream is left).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_end_seq: Option<u64>,
    /// The record the store anchored: the stream's last checkpoint it was told of.
    pub anchored_seq: u64,
    /// That record's hash.
    pub anchored_hash: String,
    /// The file that held it.
    pub anchored_file: String,
}

/// How a stream's files disagree with the store's anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// Records up to the anchored one are gone from the end of the stream.
    Cut,
    /// The anchored record is not in the files as it was anchored.
    Differs,
}

impl ChainGap {
    /// Records known to be missing: from after the last one on file to the anchored one (a
    /// `differs` gap counts the anchored record alone).
    pub fn missing(&self) -> u64 {
        match self.gap {
            GapKind::Cut => self
                .anchored_seq
                .saturating_sub(self.files_end_seq.map_or(0, |end| end.saturating_add(1)))
                .saturating_add(1),
            GapKind::Differs => 1,
        }
    }
}

/// Why audit records were dropped, cause by cause (a loss report's OCSF `unmapped`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordLoss {
    /// Events not written because the file could not be written (disk full, I/O error).
    pub dropped_write_failed: u64,
    /// Events refused because the writer's queue was full.
    pub dropped_queue_full: u64,
    /// The first write error, as the operating system put it (never record content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_error: Option<String>,
}

impl RecordLoss {
    /// Records dropped for any cause.
    pub fn total(&self) -> u64 {
        self.dropped_write_failed.saturating_add(self.dropped_queue_full)
    }
}
