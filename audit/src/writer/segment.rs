//! The files one writer appends to: opening a stream's next file, finding where its chain ends,
//! and cutting a torn last line (a crash or a failed write mid-record) back to the last complete
//! record, so that nothing is ever appended after partial bytes — which would merge them with a
//! real record and make `verify` call it edited forever. Cut bytes are kept beside the file
//! (`STREAM-SEQ.jsonl.torn`), never dropped silently.

use crate::AuditError;
use crate::files::{file_name, for_each_line, list_dir, torn_path};
use rampart_core::audit::{GENESIS, check_line};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Bytes read at a time when looking back for the last `\n`.
const TAIL_CHUNK: u64 = 64 * 1024;

/// An audit file open for appending.
#[derive(Debug)]
pub(super) struct Segment {
    pub(super) file: File,
    pub(super) path: PathBuf,
    /// Bytes known to be on file; always the end of a complete record (or 0).
    pub(super) len: u64,
}

/// Opens (or creates) the file whose first record is `seq`; a torn end is cut first.
pub(super) fn open_segment(dir: &Path, stream: &str, seq: u64) -> Result<Segment, AuditError> {
    let path = dir.join(file_name(stream, seq));
    let mut options = OpenOptions::new();
    options.read(true).create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
    let file = options
        .open(&path)
        .map_err(|e| AuditError::io("cannot open", &path, e))?;
    let len = cut_torn_end(&file, &path)?;
    Ok(Segment { file, path, len })
}

/// Cuts a torn end off the newest file of `stream`: the only file a crash can have left
/// mid-record. Older files are left as they are: damage there is evidence for `verify`.
pub(super) fn repair_newest(dir: &Path, stream: &str) -> Result<(), AuditError> {
    let streams = list_dir(dir)?;
    let Some(newest) = streams.get(stream).and_then(|files| files.last()) else {
        return Ok(());
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&newest.path)
        .map_err(|e| AuditError::io("cannot open", &newest.path, e))?;
    cut_torn_end(&file, &newest.path)?;
    Ok(())
}

/// If `file` does not end in `\n`, appends the bytes after its last `\n` to `<path>.torn`,
/// syncs that, and only then cuts the file back to that `\n`. Returns the length afterwards.
pub(super) fn cut_torn_end(file: &File, path: &Path) -> Result<u64, AuditError> {
    let len = file
        .metadata()
        .map_err(|e| AuditError::io("cannot read", path, e))?
        .len();
    let keep = complete_len(file, len).map_err(|e| AuditError::io("cannot read", path, e))?;
    if keep == len {
        return Ok(len);
    }
    let torn = torn_path(path);
    save_tail(file, keep, &torn)
        .map_err(|e| AuditError::io("cannot keep the torn end of an audit file in", &torn, e))?;
    file.set_len(keep)
        .and_then(|()| file.sync_data())
        .map_err(|e| AuditError::io("cannot cut the torn end of", path, e))?;
    // Sizes and names only: the cut bytes are record content.
    tracing::warn!(
        target: "rampart::audit", file = %path.display(), kept_in = %torn.display(), bytes = len - keep,
        "an audit file ended mid-record (a crash during a write?); cut back to its last complete record"
    );
    Ok(keep)
}

/// Where the stream's chain ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ChainEnd {
    /// The next sequence number.
    pub(super) next_seq: u64,
    /// The last record's hash.
    pub(super) hash: String,
    /// The last record is not a checkpoint: an earlier run stopped without signing its tail.
    pub(super) unsigned_tail: bool,
}

/// Where the stream's chain ends, and whether its last records are signed.
pub(super) fn chain_end(dir: &Path, stream: &str) -> Result<ChainEnd, AuditError> {
    let streams = list_dir(dir)?;
    let new = ChainEnd {
        next_seq: 0,
        hash: GENESIS.to_owned(),
        unsigned_tail: false,
    };
    let Some(files) = streams.get(stream) else {
        return Ok(new);
    };
    for file in files.iter().rev() {
        let mut last = None;
        for_each_line(&file.path, |_, bytes, terminated| {
            if terminated && let Ok(link) = check_line(bytes) {
                last = Some(ChainEnd {
                    next_seq: link.seq + 1,
                    hash: link.hash,
                    // A checkpoint's body is the only one with this key at the top level; a
                    // string holding the same text has its quotes escaped.
                    unsigned_tail: !bytes.windows(CHECKPOINT_KEY.len()).any(|w| w == CHECKPOINT_KEY),
                });
            }
        })?;
        if let Some(end) = last {
            return Ok(end);
        }
    }
    Ok(new)
}

/// How a checkpoint record's body starts its signature.
const CHECKPOINT_KEY: &[u8] = b"\"checkpoint\":{";

/// Creates the audit folder (mode 0750) when missing.
pub(super) fn create_private_dir(dir: &Path) -> Result<(), AuditError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o750);
    builder
        .create(dir)
        .map_err(|e| AuditError::io("cannot create the audit folder", dir, e))
}

/// The length of `file` up to and including its last `\n` (0 if it has none).
fn complete_len(mut file: &File, len: u64) -> std::io::Result<u64> {
    let mut end = len;
    let mut buf = Vec::new();
    while end > 0 {
        // The last byte alone first: almost always a `\n`.
        let step = if end == len { 1 } else { TAIL_CHUNK };
        let start = end.saturating_sub(step);
        buf.resize(usize::try_from(end - start).unwrap_or(0), 0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf)?;
        if let Some(at) = buf.iter().rposition(|b| *b == b'\n') {
            return Ok(start + at as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Appends `file` from byte `from` on to `torn` and syncs it.
fn save_tail(mut file: &File, from: u64, torn: &Path) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o640);
    let mut out = options.open(torn)?;
    file.seek(SeekFrom::Start(from))?;
    std::io::copy(&mut file, &mut out)?;
    out.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_torn_end_is_cut_and_kept_beside_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name("gw", 0));
        // Longer than one read, so the search for the last `\n` crosses chunks.
        let torn = "x".repeat(TAIL_CHUNK as usize + 10);
        std::fs::write(&path, format!("{{\"a\":1}}\n{{\"b\":2}}\n{torn}")).unwrap();
        let segment = open_segment(dir.path(), "gw", 0).unwrap();
        assert_eq!(segment.len, 16);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"b\":2}\n");
        assert_eq!(std::fs::read_to_string(torn_path(&path)).unwrap(), torn);
        // A second tear is added to the side file, not written over it.
        std::fs::write(&path, "half").unwrap();
        assert_eq!(open_segment(dir.path(), "gw", 0).unwrap().len, 0);
        assert_eq!(
            std::fs::read_to_string(torn_path(&path)).unwrap(),
            format!("{torn}half")
        );
        // Whole lines are left alone.
        std::fs::write(&path, "a\n").unwrap();
        assert_eq!(open_segment(dir.path(), "gw", 0).unwrap().len, 2);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\n");
    }
}
