//! Reading what the gateway writes: flow log and audit trail lines, waited for, since both
//! are written in the background.

use super::PATIENCE;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Polls `find` until it finds something, for at most [`PATIENCE`].
pub async fn eventually<T>(what: &str, mut find: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(found) = find() {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "no {what} within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The JSON lines of a file (none if it does not exist yet); a torn last line is skipped.
pub fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// Every record in the audit files of `dir`.
pub fn audit_records(dir: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files.iter().flat_map(|f| read_lines(f)).collect()
}
