//! Audit files on disk: names (`STREAM-SEQ.jsonl`, SEQ the first record's number, 16 digits),
//! listing a folder's streams in order, and reading lines with whether each ended in `\n`.
//! A torn last line cut off after a crash is kept beside its file as `STREAM-SEQ.jsonl.torn`,
//! which no listing takes for an audit file.

use crate::AuditError;
use crate::config::valid_stream_name;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// One audit file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamFile {
    /// Its stream.
    pub stream: String,
    /// The first record's sequence number, from its name.
    pub first_seq: u64,
    /// Where it is.
    pub path: PathBuf,
}

/// The name of the file whose first record is `seq`.
pub fn file_name(stream: &str, seq: u64) -> String {
    format!("{stream}-{seq:016}.jsonl")
}

/// Where the torn end cut from the audit file `path` is kept: `path` + `.torn`.
pub fn torn_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".torn");
    PathBuf::from(name)
}

/// Stream and first sequence number from a file name.
pub fn parse_name(name: &str) -> Option<(String, u64)> {
    let stem = name.strip_suffix(".jsonl")?;
    let (stream, seq) = stem.rsplit_once('-')?;
    if !valid_stream_name(stream) || seq.len() != 16 {
        return None;
    }
    Some((stream.to_owned(), seq.parse().ok()?))
}

/// The audit files in `dir`, grouped by stream, each stream in order.
pub fn list_dir(dir: &Path) -> Result<BTreeMap<String, Vec<StreamFile>>, AuditError> {
    let mut streams: BTreeMap<String, Vec<StreamFile>> = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| AuditError::io("cannot list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| AuditError::io("cannot list", dir, e))?;
        let name = entry.file_name();
        let Some((stream, first_seq)) = name.to_str().and_then(parse_name) else {
            continue;
        };
        streams.entry(stream.clone()).or_default().push(StreamFile {
            stream,
            first_seq,
            path: entry.path(),
        });
    }
    for files in streams.values_mut() {
        files.sort();
    }
    Ok(streams)
}

/// Folders and files as given on a command line, grouped by stream and ordered. A file whose
/// name is not an audit file name is its own stream, named after the file.
pub fn collect(paths: &[PathBuf]) -> Result<BTreeMap<String, Vec<StreamFile>>, AuditError> {
    let mut streams: BTreeMap<String, Vec<StreamFile>> = BTreeMap::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| AuditError::io("cannot read", path, e))?;
        if meta.is_dir() {
            for (stream, files) in list_dir(path)? {
                streams.entry(stream).or_default().extend(files);
            }
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let (stream, first_seq) = parse_name(name).unwrap_or_else(|| (name.to_owned(), 0));
        streams.entry(stream.clone()).or_default().push(StreamFile {
            stream,
            first_seq,
            path: path.clone(),
        });
    }
    for files in streams.values_mut() {
        files.sort();
        files.dedup();
    }
    Ok(streams)
}

/// Calls `each(line_number, bytes, terminated)` for every line of `path`, without its `\n`.
pub fn for_each_line(path: &Path, mut each: impl FnMut(u64, &[u8], bool)) -> Result<(), AuditError> {
    let file = std::fs::File::open(path).map_err(|e| AuditError::io("cannot open", path, e))?;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| AuditError::io("cannot read", path, e))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        let terminated = buf.last() == Some(&b'\n');
        if terminated {
            buf.pop();
        }
        each(number, &buf, terminated);
    }
}

/// The complete lines of `path` from byte `offset` on, and the offset after the last of them
/// (a line still being written is left for the next call).
pub fn read_new_lines(path: &Path, offset: u64) -> Result<(Vec<Vec<u8>>, u64), AuditError> {
    let mut file = std::fs::File::open(path).map_err(|e| AuditError::io("cannot open", path, e))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| AuditError::io("cannot read", path, e))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| AuditError::io("cannot read", path, e))?;
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let lines = bytes[..complete]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    Ok((lines, offset + complete as u64))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_ignored() {
        let name = file_name("gateway", 42);
        assert_eq!(name, "gateway-0000000000000042.jsonl");
        assert_eq!(parse_name(&name), Some(("gateway".into(), 42)));
        for other in [
            "flows.jsonl",
            "gateway-42.jsonl",
            "a-b-0000000000000001.jsonl",
            "gateway-0000000000000042.json",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }

    #[test]
    fn a_folder_lists_streams_in_sequence_order() {
        let dir = tempfile::tempdir().unwrap();
        let torn = torn_path(&dir.path().join(file_name("gw", 7)));
        assert_eq!(
            torn.file_name().unwrap().to_str().unwrap(),
            "gw-0000000000000007.jsonl.torn"
        );
        for name in [
            file_name("gw", 100),
            file_name("gw", 7),
            file_name("prov", 0),
            "notes.txt".into(),
            torn.file_name().unwrap().to_str().unwrap().to_owned(),
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let streams = list_dir(dir.path()).unwrap();
        assert_eq!(streams.keys().collect::<Vec<_>>(), ["gw", "prov"]);
        let seqs: Vec<u64> = streams["gw"].iter().map(|f| f.first_seq).collect();
        assert_eq!(seqs, [7, 100]);
    }

    #[test]
    fn lines_know_whether_they_ended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "a\nbb\nccc").unwrap();
        let mut seen = Vec::new();
        for_each_line(&path, |n, bytes, ended| seen.push((n, bytes.to_vec(), ended))).unwrap();
        assert_eq!(
            seen,
            [
                (1, b"a".to_vec(), true),
                (2, b"bb".to_vec(), true),
                (3, b"ccc".to_vec(), false)
            ]
        );
        let (lines, offset) = read_new_lines(&path, 2).unwrap();
        assert_eq!(lines, [b"bb".to_vec()]);
        assert_eq!(offset, 5);
    }
}
