//! Anchored writers against a real SQLite store: every checkpoint's head reaches the store; a
//! tail cut off, a stream deleted or a file rewritten while the writer was stopped is named by
//! `verify_paths` with the store's anchors, and the restarted writer records a chain gap
//! instead of continuing as if nothing happened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_audit::anchor::StoreBook;
use rampart_audit::files::list_dir;
use rampart_audit::keys::{public_key_path, read_public_key};
use rampart_audit::verify::{Anchoring, StreamReport, VerifyOptions, verify_paths};
use rampart_audit::{AuditConfig, AuditLog, AuditSettings};
use rampart_core::audit::checkpoint::key_id;
use rampart_core::audit::{Activity, AuditEvent, Class, GENESIS, Problem, Status, User, seal};
use rampart_core::clock::Clock;
use rampart_store::{SqliteStore, Store};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Setup {
    _dir: tempfile::TempDir,
    settings: AuditSettings,
    store: Arc<dyn Store>,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let settings = AuditConfig::default().settings(dir.path(), "gateway").unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("state")).await.unwrap());
    Setup {
        _dir: dir,
        settings,
        store,
    }
}

impl Setup {
    /// Opens the anchored writer, records `n` logins, and stops it cleanly.
    async fn run(&self, n: usize) {
        let book = Arc::new(StoreBook::new(self.store.clone()));
        let (log, writer) = AuditLog::open_anchored(&self.settings, "test", book, Clock::system())
            .await
            .unwrap();
        for i in 0..n {
            log.record(
                AuditEvent::new(Class::Authentication, Activity::LOGON, 1, Status::Success, "login")
                    .user(User::named(&format!("user{i}"))),
            );
        }
        log.flush().await;
        drop(log);
        writer.finish().await;
    }

    fn public_key(&self) -> Vec<u8> {
        read_public_key(&public_key_path(&self.settings.signing_key)).unwrap()
    }

    async fn verify(&self) -> StreamReport {
        let key = self.public_key();
        let anchors = StoreBook::new(self.store.clone()).anchors(&key_id(&key)).await.unwrap();
        let options = VerifyOptions {
            public_key: Some(key),
            anchors: Some(anchors),
            ..VerifyOptions::default()
        };
        let mut reports = verify_paths(std::slice::from_ref(&self.settings.dir), &options).unwrap();
        assert_eq!(reports.len(), 1, "{reports:?}");
        reports.remove(0)
    }

    fn files(&self) -> Vec<PathBuf> {
        list_dir(&self.settings.dir)
            .unwrap()
            .get("gateway")
            .map(|files| files.iter().map(|f| f.path.clone()).collect())
            .unwrap_or_default()
    }

    fn records(&self) -> Vec<Value> {
        self.files()
            .iter()
            .flat_map(|path| {
                std::fs::read_to_string(path)
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    async fn head(&self) -> u64 {
        let key = key_id(&self.public_key());
        self.store
            .audit_anchors(&key, "gateway")
            .await
            .unwrap()
            .last()
            .unwrap()
            .seq
    }
}

fn keep_lines(path: &Path, n: usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let kept: String = text.lines().take(n).map(|l| format!("{l}\n")).collect();
    std::fs::write(path, kept).unwrap();
}

fn gaps(records: &[Value]) -> Vec<&Value> {
    records.iter().filter(|r| r["status_detail"] == "chain_gap").collect()
}

#[tokio::test]
async fn every_checkpoint_reaches_the_store_and_an_intact_stream_matches_it() {
    let s = setup().await;
    s.run(10).await;
    s.run(5).await;
    let records = s.records();
    let last = records.last().unwrap();
    assert!(last.get("checkpoint").is_some(), "a clean stop ends with a checkpoint");
    assert_eq!(s.head().await, last["seq"].as_u64().unwrap());
    let report = s.verify().await;
    assert_eq!(report.finding, None, "{report:?}");
    assert_eq!(report.anchoring, Anchoring::Checked { anchors: 2 });
    assert_eq!(report.summary.anchors_matched, 2);
    assert!(gaps(&records).is_empty());
}

#[tokio::test]
async fn a_cut_tail_is_named_and_the_restarted_writer_records_the_gap() {
    let s = setup().await;
    s.run(20).await;
    let anchored = s.head().await;
    assert_eq!(anchored, 20, "records 0 to 19 and the closing checkpoint");
    // While stopped, the last five records (closing checkpoint included) are cut at a line's end.
    keep_lines(&s.files()[0], 16);
    let report = s.verify().await;
    let finding = report.finding.unwrap();
    assert_eq!(
        finding.problem,
        Problem::CutTail {
            last: Some(15),
            anchored: 20,
            file: "gateway-0000000000000000.jsonl".into()
        }
    );

    s.run(3).await;
    let records = s.records();
    let gap = gaps(&records);
    assert_eq!(gap.len(), 1, "exactly one gap record");
    assert_eq!(gap[0]["seq"], 21, "numbered on after the anchored record");
    assert_eq!(gap[0]["prev_hash"].as_str().unwrap().len(), 64);
    assert_eq!(gap[0]["unmapped"]["gap"], "cut");
    assert_eq!(gap[0]["unmapped"]["files_end_seq"], 15);
    assert_eq!(gap[0]["count"], 5);
    // The gap stays on record: the chain itself now says which records are missing.
    let finding = s.verify().await.finding.unwrap();
    assert_eq!(finding.problem, Problem::Missing { from: 16, to: 20 });
    // The store moved past the gap: the next start records no new one.
    s.run(1).await;
    assert_eq!(gaps(&s.records()).len(), 1);
}

#[tokio::test]
async fn a_deleted_stream_is_named_and_the_restarted_writer_records_the_gap() {
    let s = setup().await;
    s.run(7).await;
    for file in s.files() {
        std::fs::remove_file(file).unwrap();
    }
    let report = s.verify().await;
    assert_eq!(report.files, 0);
    assert_eq!(
        report.finding.unwrap().problem,
        Problem::Deleted {
            anchored: 7,
            file: "gateway-0000000000000000.jsonl".into()
        }
    );
    s.run(1).await;
    let records = s.records();
    assert_eq!(records[0]["status_detail"], "chain_gap");
    assert_eq!(records[0]["seq"], 8);
    assert!(records[0]["unmapped"].get("files_end_seq").is_none());
}

#[tokio::test]
async fn a_file_rewritten_without_checkpoints_does_not_hold_the_anchor() {
    let s = setup().await;
    s.run(9).await;
    // The same number of records, hashed anew by someone without the signing key.
    let path = &s.files()[0];
    let mut prev = GENESIS.to_owned();
    let mut text = Vec::new();
    for seq in 0..10 {
        let sealed = seal(seq, &prev, &json!({"message": "login", "user": {"name": "nobody"}})).unwrap();
        text.extend_from_slice(&sealed.line);
        prev = sealed.hash;
    }
    std::fs::write(path, text).unwrap();
    let finding = s.verify().await.finding.unwrap();
    assert!(matches!(finding.problem, Problem::NotAnchored { .. }), "{finding}");
    assert_eq!(finding.seq, Some(9));
    s.run(0).await;
    let records = s.records();
    let gap = gaps(&records);
    assert_eq!(gap.len(), 1);
    assert_eq!(gap[0]["unmapped"]["gap"], "differs");
}

#[tokio::test]
async fn a_stream_deleted_before_its_first_checkpoint_is_still_named() {
    let s = setup().await;
    // Opened (its first file created, the stream registered) and stopped before any record.
    s.run(0).await;
    assert_eq!(s.files().len(), 1);
    for file in s.files() {
        std::fs::remove_file(file).unwrap();
    }
    // Without the store's list of streams nothing is left to report on.
    let options = VerifyOptions {
        public_key: Some(s.public_key()),
        ..VerifyOptions::default()
    };
    assert!(
        verify_paths(std::slice::from_ref(&s.settings.dir), &options)
            .unwrap()
            .is_empty()
    );
    let report = s.verify().await;
    assert_eq!(report.files, 0);
    assert_eq!(report.finding.unwrap().problem, Problem::DeletedUnanchored);
}
