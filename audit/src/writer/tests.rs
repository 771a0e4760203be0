//! The writer under faults: writes that fail half-way (as on a full disk), a full queue, and a
//! writer that does not answer. The chain must stay whole, the loss must be on the record, and
//! those waiting for a flush must hear the truth.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::config::AuditConfig;
use crate::files::list_dir;
use crate::keys::{public_key_path, read_public_key};
use crate::verify::{VerifyOptions, verify_paths};
use rampart_core::audit::{Activity, Class, Status, User};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

fn settings(state: &Path, max_file_bytes: u64) -> AuditSettings {
    AuditConfig {
        max_file_bytes,
        ..AuditConfig::default()
    }
    .settings(state, "gateway")
    .unwrap()
}

fn event(i: usize) -> AuditEvent {
    AuditEvent::new(
        Class::Authentication,
        Activity::LOGON,
        1_700_000_000_000,
        Status::Success,
        "login",
    )
    .user(User::named(&format!("user{i}")))
}

/// A started writer and the switch that makes its writes fail.
fn open(s: &AuditSettings) -> (AuditLog, AuditWriter, Arc<AtomicBool>) {
    let writer = Writer::open(s, "test").unwrap();
    let fail = Arc::clone(&writer.fail_writes);
    let (handle, rx) = queue(QUEUE_CAPACITY, FLUSH_TIMEOUT, Clock::system());
    let (log, running) = start(writer, handle, rx).unwrap();
    (log, running, fail)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    list_dir(dir)
        .unwrap()
        .get("gateway")
        .map(|files| files.iter().map(|f| f.path.clone()).collect())
        .unwrap_or_default()
}

/// Every record of the stream, in order.
fn records(dir: &Path) -> Vec<Value> {
    files(dir)
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(
                text.is_empty() || text.ends_with('\n'),
                "{} ends mid-line",
                path.display()
            );
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn users(records: &[Value]) -> Vec<&str> {
    records.iter().filter_map(|r| r["user"]["name"].as_str()).collect()
}

fn assert_verifies(s: &AuditSettings) {
    let options = VerifyOptions {
        public_key: Some(read_public_key(&public_key_path(&s.signing_key)).unwrap()),
        allow_missing_start: false,
        ..VerifyOptions::default()
    };
    let reports = verify_paths(std::slice::from_ref(&s.dir), &options).unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].finding, None, "{:?}", reports[0].finding);
}

#[tokio::test]
async fn a_failed_write_is_cut_back_counted_and_reported_once_writing_works() {
    let state = tempfile::tempdir().unwrap();
    let s = settings(state.path(), 1 << 20);
    let (log, writer, fail) = open(&s);
    assert_eq!(log.try_record_flushed(event(0)).await, Ok(()));

    fail.store(true, Ordering::SeqCst);
    let refused = log.try_record_flushed(event(1)).await;
    assert!(
        matches!(&refused, Err(FlushError::WriteFailed(why)) if why.contains("No space left")),
        "{refused:?}"
    );
    log.record(event(2));
    assert!(
        log.try_flush().await.is_err(),
        "a flush after a dropped event must fail"
    );
    assert!(log.try_record_flushed(event(3)).await.is_err());
    // Half of each failed write reached the file and was cut back out: only whole records.
    let on_file = records(&s.dir);
    assert_eq!(users(&on_file), ["user0"]);

    fail.store(false, Ordering::SeqCst);
    assert_eq!(log.try_record_flushed(event(4)).await, Ok(()));
    // Event 3 was dropped since the last flush answered; the next one has nothing to report.
    assert!(log.try_flush().await.is_err());
    assert_eq!(log.try_flush().await, Ok(()));
    drop(log);
    writer.finish().await;

    let on_file = records(&s.dir);
    assert_eq!(users(&on_file), ["user0", "user4"]);
    let seqs: Vec<u64> = on_file.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..on_file.len() as u64).collect::<Vec<_>>(), "no number skipped");
    let report = &on_file[1];
    assert_eq!(report["class_uid"], 1008);
    assert_eq!(report["status_detail"], "records_dropped");
    assert_eq!(report["count"], 3);
    assert_eq!(report["unmapped"]["dropped_write_failed"], 3);
    assert_eq!(report["unmapped"]["dropped_queue_full"], 0);
    assert!(
        report["unmapped"]["write_error"]
            .as_str()
            .unwrap()
            .contains("No space left")
    );
    assert_eq!(report["metadata"]["log_name"], "gateway");
    assert!(on_file.last().unwrap().get("checkpoint").is_some());
    assert_eq!(files(&s.dir).len(), 1, "no new file for a failed write");
    assert_verifies(&s);
}

#[tokio::test]
async fn failing_batches_do_not_open_new_files() {
    let state = tempfile::tempdir().unwrap();
    let s = settings(state.path(), 4096);
    let (log, writer, fail) = open(&s);
    for i in 0..15 {
        log.record(event(i));
    }
    assert_eq!(log.try_flush().await, Ok(()));
    let before = files(&s.dir).len();
    assert!(before >= 2, "expected rotation, got {before} files");

    fail.store(true, Ordering::SeqCst);
    for i in 100..130 {
        assert!(log.try_record_flushed(event(i)).await.is_err());
    }
    assert_eq!(files(&s.dir).len(), before);

    fail.store(false, Ordering::SeqCst);
    for i in 200..215 {
        log.record(event(i));
    }
    assert!(
        log.try_flush().await.is_err(),
        "30 events were dropped since the last flush"
    );
    drop(log);
    writer.finish().await;
    let on_file = records(&s.dir);
    let reports: Vec<&Value> = on_file.iter().filter(|r| r["class_uid"] == 1008).collect();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["count"], 30);
    assert_eq!(users(&on_file).len(), 30);
    assert_verifies(&s);
}

#[tokio::test]
async fn a_full_queue_drops_without_waiting_and_the_loss_is_reported() {
    let state = tempfile::tempdir().unwrap();
    let s = settings(state.path(), 1 << 20);
    let writer = Writer::open(&s, "test").unwrap();
    // The writer is not running yet: the queue fills up.
    let (handle, rx) = queue(4, FLUSH_TIMEOUT, Clock::system());
    let log = AuditLog {
        inner: Some(handle.clone()),
    };
    for i in 0..10 {
        log.record(event(i));
    }
    assert_eq!(log.try_record_flushed(event(10)).await, Err(FlushError::QueueFull));
    let (_, running) = start(writer, handle, rx).unwrap();
    // Until the writer has taken the queued ones, a flush may find the queue full too.
    for _ in 0..500 {
        if users(&records(&s.dir)).len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(log.try_flush().await, Err(FlushError::QueueFull));
    assert_eq!(log.try_flush().await, Ok(()));
    drop(log);
    running.finish().await;

    let on_file = records(&s.dir);
    assert_eq!(on_file[0]["status_detail"], "records_dropped");
    assert_eq!(on_file[0]["count"], 7);
    assert_eq!(on_file[0]["unmapped"]["dropped_queue_full"], 7);
    assert!(on_file[0]["unmapped"].get("write_error").is_none());
    assert_eq!(users(&on_file), ["user0", "user1", "user2", "user3"]);
    assert_verifies(&s);
}

#[tokio::test]
async fn a_flush_reports_a_writer_that_does_not_answer_or_has_stopped() {
    let (handle, rx) = queue(4, Duration::from_millis(50), Clock::system());
    let log = AuditLog { inner: Some(handle) };
    assert_eq!(
        log.try_flush().await,
        Err(FlushError::TimedOut(Duration::from_millis(50)))
    );
    assert_eq!(
        log.try_record_flushed(event(0)).await,
        Err(FlushError::TimedOut(Duration::from_millis(50)))
    );
    drop(rx);
    assert_eq!(log.try_flush().await, Err(FlushError::Stopped));
    assert_eq!(log.try_record_flushed(event(1)).await, Err(FlushError::Stopped));
    log.record(event(2));
    assert_eq!(AuditLog::disabled().try_flush().await, Ok(()));
    assert_eq!(AuditLog::disabled().try_record_flushed(event(3)).await, Ok(()));
}

/// A run that stopped without its last checkpoint (a crash) left its tail unsigned: the next
/// run counts it as unsigned, so its first checkpoint (due within seconds of opening, or at a
/// clean stop, whichever comes first) signs it. Before, a run that wrote nothing new left the
/// earlier tail unsigned for good.
#[tokio::test]
async fn the_next_run_signs_an_earlier_runs_unsigned_tail() {
    let state = tempfile::tempdir().unwrap();
    let s = settings(state.path(), 1 << 20);
    let (log, writer, _) = open(&s);
    for i in 0..3 {
        log.record(event(i));
    }
    writer.finish().await;
    // Cut the last checkpoint off, as a crash just before it would have left the file.
    let file = files(&s.dir).pop().unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.last().unwrap().contains("\"checkpoint\":{"));
    let cut: String = lines[..lines.len() - 1].iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, cut).unwrap();
    assert_eq!(records(&s.dir).len(), 3);

    let (_log, writer, _) = open(&s);
    writer.finish().await;
    let on_file = records(&s.dir);
    assert_eq!(on_file.len(), 4, "one checkpoint added, nothing else");
    assert_eq!(on_file[3]["checkpoint"]["covers_seq"], 2);
    assert_verifies(&s);

    // A stream that ends with a checkpoint has nothing to sign: a run that writes nothing adds
    // nothing.
    let (_log, writer, _) = open(&s);
    writer.finish().await;
    assert_eq!(records(&s.dir).len(), 4);
}

/// A run that writes nothing at first still signs its first records within seconds of their
/// arrival, not a whole `checkpoint_secs` later.
#[tokio::test]
async fn a_runs_first_records_are_signed_within_seconds_even_after_an_idle_start() {
    let state = tempfile::tempdir().unwrap();
    let s = settings(state.path(), 1 << 20);
    assert!(s.checkpoint_every >= Duration::from_secs(60));
    let (log, writer, _) = open(&s);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    log.record(event(1));
    let deadline = std::time::Instant::now() + Duration::from_secs(6);
    loop {
        let on_file = records(&s.dir);
        if on_file.last().is_some_and(|r| r.get("checkpoint").is_some()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not signed: {on_file:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    writer.finish().await;
}
