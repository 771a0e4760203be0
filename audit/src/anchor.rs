//! Anchoring a stream outside its own files. Once a signed checkpoint is on disk, its head (the
//! checkpoint record's number and hash, and its file) is handed to an [`AnchorBook`] — the
//! store, behind the `store` feature — by a task of its own, so the writer thread never waits
//! for a database. A writer that opens compares its files with the newest anchored head
//! ([`compare`]): files that end before it (records cut off, or the stream deleted) or that do
//! not hold it (rewritten) are a [`ChainGap`], which the writer records loudly before anything
//! else instead of carrying on as if nothing happened.

#[cfg(feature = "store")]
mod store;

use crate::AuditError;
use crate::files::{for_each_line, list_dir};
use rampart_core::audit::{ChainGap, GapKind, check_line};
use rampart_core::clock::Clock;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[cfg(feature = "store")]
pub use store::StoreBook;

/// How long a failed anchoring waits before it is tried again (sooner when a newer head comes).
const RETRY: Duration = Duration::from_secs(5);

/// A checkpoint's head, as anchored outside the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorHead {
    /// The checkpoint key's id (`rampart_core::audit::checkpoint::key_id` of its public half).
    pub key_id: String,
    /// The stream.
    pub stream: String,
    /// The checkpoint record's sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// The file it is in (name only).
    pub file: String,
}

/// Where streams and their checkpoint heads are kept outside the audit folder. Errors are the
/// book's own words, for the log; they never carry record content.
#[async_trait::async_trait]
pub trait AnchorBook: Send + Sync + std::fmt::Debug {
    /// Registers the stream (`key_id`, `stream`) written by `service` as its writer opens, and
    /// returns the newest head anchored for it.
    async fn open_stream(
        &self,
        key_id: &str,
        stream: &str,
        service: &str,
        now: i64,
    ) -> Result<Option<AnchorHead>, String>;

    /// Records a head; recording the same head twice is harmless.
    async fn record(&self, head: &AnchorHead, now: i64) -> Result<(), String>;
}

/// How the files in `dir` of `stream`, whose chain ends before record `next_seq`, stand against
/// the anchored `head`: `None` when they hold it as anchored.
pub(crate) fn compare(
    dir: &Path,
    stream: &str,
    next_seq: u64,
    head: &AnchorHead,
) -> Result<Option<ChainGap>, AuditError> {
    let files_end_seq = next_seq.checked_sub(1);
    let gap = |gap| ChainGap {
        gap,
        files_end_seq,
        anchored_seq: head.seq,
        anchored_hash: head.hash.clone(),
        anchored_file: head.file.clone(),
    };
    if files_end_seq.is_none_or(|end| end < head.seq) {
        return Ok(Some(gap(GapKind::Cut)));
    }
    // The anchored record is in the newest file that starts at or before it.
    let streams = list_dir(dir)?;
    let holder = streams
        .get(stream)
        .and_then(|files| files.iter().rev().find(|file| file.first_seq <= head.seq));
    let mut found = None;
    if let Some(file) = holder {
        for_each_line(&file.path, |_, bytes, terminated| {
            if found.is_none()
                && terminated
                && let Ok(link) = check_line(bytes)
                && link.seq == head.seq
            {
                found = Some(link.hash);
            }
        })?;
    }
    Ok((found.as_deref() != Some(head.hash.as_str())).then(|| gap(GapKind::Differs)))
}

/// Carries the newest published head to `book` until the writer has stopped and its last head
/// is recorded (or the task is given up). A head that cannot be recorded is tried again, or
/// replaced by a newer one; the error is logged once per failing spell. `lock` is the stream's
/// lock, held until the last head is anchored so a successor reads the final head.
pub(crate) async fn forward(
    mut heads: watch::Receiver<Option<AnchorHead>>,
    book: Arc<dyn AnchorBook>,
    lock: Arc<std::fs::File>,
    clock: Clock,
) {
    let _lock = lock;
    let mut recorded: Option<u64> = None;
    let mut failing = false;
    loop {
        let head = heads.borrow_and_update().clone();
        if let Some(head) = head.filter(|head| recorded != Some(head.seq)) {
            match book.record(&head, clock.now()).await {
                Ok(()) => {
                    recorded = Some(head.seq);
                    if failing {
                        tracing::info!(target: "rampart::audit", stream = %head.stream, seq = head.seq, "audit checkpoints are anchored in the store again");
                        failing = false;
                    }
                }
                Err(error) => {
                    if !failing {
                        tracing::error!(
                            target: "rampart::audit", stream = %head.stream, seq = head.seq, error = %error,
                            "cannot anchor an audit checkpoint in the store; trying again"
                        );
                        failing = true;
                    }
                    tokio::select! {
                        changed = heads.changed() => if changed.is_err() {
                            // The writer has stopped: only this head is left to record.
                            tokio::time::sleep(RETRY).await;
                        },
                        () = tokio::time::sleep(RETRY) => {}
                    }
                    continue;
                }
            }
        }
        if heads.changed().await.is_err() {
            let last = heads.borrow().as_ref().map(|head| head.seq);
            if last.is_none() || last == recorded {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::files::file_name;
    use rampart_core::audit::{GENESIS, seal};
    use serde_json::json;

    /// `n` records of stream `gw` in one file; their hashes.
    fn write(dir: &Path, first: u64, n: u64, prev: &str) -> Vec<String> {
        let mut prev = prev.to_owned();
        let mut text = Vec::new();
        let mut hashes = Vec::new();
        for seq in first..first + n {
            let sealed = seal(seq, &prev, &json!({"message": "x"})).unwrap();
            text.extend_from_slice(&sealed.line);
            prev.clone_from(&sealed.hash);
            hashes.push(sealed.hash);
        }
        std::fs::write(dir.join(file_name("gw", first)), text).unwrap();
        hashes
    }

    fn head(seq: u64, hash: &str) -> AnchorHead {
        AnchorHead {
            key_id: "k".into(),
            stream: "gw".into(),
            seq,
            hash: hash.into(),
            file: file_name("gw", 0),
        }
    }

    #[test]
    fn files_that_hold_the_head_pass_and_others_are_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        let first = write(dir.path(), 0, 5, GENESIS);
        let second = write(dir.path(), 5, 5, &first[4]);
        // Held as anchored, with records after it: as it should be after a crash.
        assert_eq!(compare(dir.path(), "gw", 10, &head(4, &first[4])).unwrap(), None);
        assert_eq!(compare(dir.path(), "gw", 10, &head(9, &second[4])).unwrap(), None);
        // Ends before the head.
        let cut = compare(dir.path(), "gw", 10, &head(12, &"a".repeat(64)))
            .unwrap()
            .unwrap();
        assert_eq!((cut.gap, cut.files_end_seq, cut.missing()), (GapKind::Cut, Some(9), 3));
        // No file left.
        let gone = compare(dir.path(), "gw", 0, &head(12, &"a".repeat(64)))
            .unwrap()
            .unwrap();
        assert_eq!((gone.gap, gone.files_end_seq), (GapKind::Cut, None));
        // Another record under the anchored number.
        let other = compare(dir.path(), "gw", 10, &head(7, &first[2])).unwrap().unwrap();
        assert_eq!(other.gap, GapKind::Differs);
    }

    #[derive(Debug, Default)]
    struct Book {
        recorded: std::sync::Mutex<Vec<u64>>,
        fail_first: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl AnchorBook for Book {
        async fn open_stream(&self, _: &str, _: &str, _: &str, _: i64) -> Result<Option<AnchorHead>, String> {
            Ok(None)
        }
        async fn record(&self, head: &AnchorHead, _: i64) -> Result<(), String> {
            if self.fail_first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                return Err("database down".into());
            }
            self.recorded.lock().unwrap().push(head.seq);
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_last_head_is_recorded_after_the_writer_stops_even_after_a_failure() {
        let book = Arc::new(Book::default());
        book.fail_first.store(true, std::sync::atomic::Ordering::SeqCst);
        let (tx, rx) = watch::channel(None);
        let lock = Arc::new(tempfile::tempfile().unwrap());
        let task = tokio::spawn(forward(rx, book.clone(), lock, Clock::system()));
        tx.send_replace(Some(head(3, "h3")));
        tokio::task::yield_now().await;
        tx.send_replace(Some(head(8, "h8")));
        drop(tx);
        task.await.unwrap();
        // However the task met the two heads, the newest is the one recorded last.
        assert_eq!(book.recorded.lock().unwrap().last(), Some(&8));
    }
}
