//! The writer against a real folder: rotation by size, the chain continuing across files and
//! restarts, checkpoints that verify with the public key, one writer per stream, and every
//! kind of tampering named by `verify_paths`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_audit::files::list_dir;
use rampart_audit::keys::{public_key_path, read_public_key};
use rampart_audit::verify::{VerifyOptions, verify_paths};
use rampart_audit::{AuditConfig, AuditError, AuditLog, AuditSettings};
use rampart_core::audit::{Activity, AuditEvent, Class, Problem, Status, User};
use rampart_core::clock::Clock;
use std::io::Write;
use std::path::{Path, PathBuf};

fn settings(state: &Path, max_file_bytes: u64) -> AuditSettings {
    let config = AuditConfig {
        max_file_bytes,
        ..AuditConfig::default()
    };
    config.settings(state, "gateway").unwrap()
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

async fn write(settings: &AuditSettings, n: usize) {
    let (log, writer) = AuditLog::open(settings, "test", Clock::system()).unwrap();
    for i in 0..n {
        log.record(event(i));
    }
    log.flush().await;
    drop(log);
    writer.finish().await;
}

fn options(settings: &AuditSettings) -> VerifyOptions {
    VerifyOptions {
        public_key: Some(read_public_key(&public_key_path(&settings.signing_key)).unwrap()),
        allow_missing_start: false,
        ..VerifyOptions::default()
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    list_dir(dir).unwrap()["gateway"]
        .iter()
        .map(|f| f.path.clone())
        .collect()
}

#[tokio::test]
async fn a_rotated_log_continues_its_chain_across_files_and_restarts() {
    let state = tempfile::tempdir().unwrap();
    let s = settings(state.path(), 4096);
    write(&s, 100).await;
    write(&s, 50).await;
    let files = files(&s.dir);
    assert!(
        files.len() >= 4,
        "expected rotation into several files, got {}",
        files.len()
    );
    let reports = verify_paths(std::slice::from_ref(&s.dir), &options(&s)).unwrap();
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!(report.finding, None, "{:?}", report.finding);
    // 150 events plus a checkpoint closing each file and each run.
    assert!(report.summary.records > 150);
    assert!(report.summary.checkpoints_verified as usize >= files.len() - 1);
    assert_eq!(report.summary.first_seq, Some(0));
    // Each file but the last ends with a checkpoint.
    for file in &files[..files.len() - 1] {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.lines().last().unwrap().contains("\"checkpoint\""),
            "{}",
            file.display()
        );
    }
}

#[tokio::test]
async fn one_writer_per_stream_and_folder() {
    let state = tempfile::tempdir().unwrap();
    let s = settings(state.path(), 1 << 20);
    let (_log, writer) = AuditLog::open(&s, "test", Clock::system()).unwrap();
    let err = AuditLog::open(&s, "test", Clock::system()).unwrap_err();
    assert!(matches!(err, AuditError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("in use by another process"));
    writer.finish().await;
    // Released at the end.
    let (_log, writer) = AuditLog::open(&s, "test", Clock::system()).unwrap();
    writer.finish().await;
}

#[tokio::test]
async fn a_flushed_record_is_in_the_file_before_the_call_returns() {
    let state = tempfile::tempdir().unwrap();
    let s = settings(state.path(), 1 << 20);
    let (log, writer) = AuditLog::open(&s, "test", Clock::system()).unwrap();
    log.record_flushed(event(7)).await;
    let text = std::fs::read_to_string(&files(&s.dir)[0]).unwrap();
    assert!(text.contains("\"user7\""));
    assert_eq!(text.lines().count(), 1);
    writer.finish().await;
}

/// Writes a two-run log, applies `tamper` to its files, and returns what verify finds.
async fn tampered(tamper: impl FnOnce(&[PathBuf])) -> (rampart_core::audit::Finding, Vec<PathBuf>) {
    let state = tempfile::tempdir().unwrap();
    let s = settings(state.path(), 4096);
    write(&s, 80).await;
    let files = files(&s.dir);
    assert!(files.len() >= 3);
    tamper(&files);
    let reports = verify_paths(std::slice::from_ref(&s.dir), &options(&s)).unwrap();
    let finding = reports[0].finding.clone().expect("tampering must be found");
    // Keep the folder alive until verified.
    drop(state);
    (finding, files)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

#[tokio::test]
async fn one_edited_byte_is_named_with_file_and_line() {
    let (finding, files) = tampered(|files| {
        let mut l = lines(&files[1]);
        l[2] = l[2].replacen("user", "usex", 1);
        write_lines(&files[1], &l);
    })
    .await;
    assert_eq!(finding.problem, Problem::Edited);
    assert_eq!(finding.place.as_ref().unwrap().file, files[1].display().to_string());
    assert_eq!(finding.place.as_ref().unwrap().line, 3);
}

#[tokio::test]
async fn a_deleted_record_is_named() {
    let (finding, files) = tampered(|files| {
        let mut l = lines(&files[0]);
        l.remove(4);
        write_lines(&files[0], &l);
    })
    .await;
    assert_eq!(finding.problem, Problem::Missing { from: 4, to: 4 });
    assert_eq!(
        (
            finding.place.as_ref().unwrap().file.clone(),
            finding.place.as_ref().unwrap().line
        ),
        (files[0].display().to_string(), 5)
    );
}

#[tokio::test]
async fn swapped_records_are_named() {
    let (finding, _) = tampered(|files| {
        let mut l = lines(&files[1]);
        l.swap(1, 2);
        write_lines(&files[1], &l);
    })
    .await;
    assert!(matches!(finding.problem, Problem::Reordered { .. }), "{finding}");
    assert_eq!(finding.place.as_ref().unwrap().line, 2);
}

#[tokio::test]
async fn truncation_mid_record_and_at_a_line_end_are_named() {
    let (finding, files) = tampered(|files| {
        let bytes = std::fs::read(&files[0]).unwrap();
        std::fs::write(&files[0], &bytes[..bytes.len() - 40]).unwrap();
    })
    .await;
    assert_eq!(finding.problem, Problem::Truncated);
    assert_eq!(finding.place.as_ref().unwrap().file, files[0].display().to_string());
    // Cutting whole records off the end of a rotated file breaks the link to the next file.
    let (finding, files) = tampered(|files| {
        let mut l = lines(&files[0]);
        l.truncate(l.len() - 3);
        write_lines(&files[0], &l);
    })
    .await;
    assert!(matches!(finding.problem, Problem::Missing { .. }), "{finding}");
    assert_eq!(finding.place.as_ref().unwrap().file, files[1].display().to_string());
    assert_eq!(finding.place.as_ref().unwrap().line, 1);
}

#[tokio::test]
async fn a_deleted_file_is_named() {
    let (finding, files) = tampered(|files| std::fs::remove_file(&files[1]).unwrap()).await;
    assert!(matches!(finding.problem, Problem::Missing { .. }), "{finding}");
    assert_eq!(finding.place.as_ref().unwrap().file, files[2].display().to_string());
}

#[tokio::test]
async fn a_torn_last_line_is_cut_on_restart_and_kept_beside_its_file() {
    let state = tempfile::tempdir().unwrap();
    let s = settings(state.path(), 1 << 20);
    write(&s, 5).await;
    // A crash in the middle of a write: the file ends in part of a record.
    let newest = files(&s.dir).pop().unwrap();
    let whole = std::fs::read(&newest).unwrap();
    let partial = br#"{"seq":6,"time":1700000000000,"class_uid":3002,"user":{"na"#;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .unwrap()
        .write_all(partial)
        .unwrap();
    write(&s, 5).await;
    assert!(
        std::fs::read(&newest).unwrap() == whole,
        "cut back to its last whole record"
    );
    let torn = rampart_audit::files::torn_path(&newest);
    assert_eq!(std::fs::read(&torn).unwrap(), partial.to_vec());
    let reports = verify_paths(std::slice::from_ref(&s.dir), &options(&s)).unwrap();
    assert_eq!(reports.len(), 1, "the side file is not an audit file");
    assert_eq!(reports[0].finding, None, "{:?}", reports[0].finding);
    // 10 events and a checkpoint closing each run: the chain went on from the last whole record.
    assert_eq!(reports[0].summary.records, 12);
}

#[tokio::test]
async fn a_crash_right_after_rotation_is_not_merged_into_the_next_record() {
    let state = tempfile::tempdir().unwrap();
    let s = settings(state.path(), 1 << 20);
    write(&s, 3).await;
    // The next file was created and its first record torn: a restart would append to it.
    let last = lines(files(&s.dir).last().unwrap()).len() as u64;
    let next = s.dir.join(rampart_audit::files::file_name("gateway", last));
    std::fs::write(&next, br#"{"seq":4,"ti"#).unwrap();
    write(&s, 3).await;
    let text = std::fs::read_to_string(&next).unwrap();
    assert!(text.starts_with(r#"{"seq":4,"time":"#), "{text}");
    let reports = verify_paths(std::slice::from_ref(&s.dir), &options(&s)).unwrap();
    assert_eq!(reports[0].finding, None, "{:?}", reports[0].finding);
    assert_eq!(
        std::fs::read(rampart_audit::files::torn_path(&next)).unwrap(),
        br#"{"seq":4,"ti"#.to_vec()
    );
}

#[tokio::test]
async fn files_passed_off_as_another_stream_are_named() {
    let state = tempfile::tempdir().unwrap();
    let s = settings(state.path(), 1 << 20);
    write(&s, 5).await;
    // Another stream's whole, validly signed trail put in place of this one.
    let copy = state.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for (i, file) in files(&s.dir).iter().enumerate() {
        std::fs::copy(
            file,
            copy.join(rampart_audit::files::file_name("provisioner", i as u64 * 1000)),
        )
        .unwrap();
    }
    let reports = verify_paths(std::slice::from_ref(&copy), &options(&s)).unwrap();
    let finding = reports[0].finding.clone().expect("a checkpoint of another stream");
    assert_eq!(
        finding.problem,
        Problem::OtherStream {
            expected: "provisioner".into(),
            found: "gateway".into()
        }
    );
    // A single file given under a name of one's own is checked against its first checkpoint.
    let loose = state.path().join("evidence.jsonl");
    std::fs::copy(&files(&s.dir)[0], &loose).unwrap();
    let reports = verify_paths(&[loose], &options(&s)).unwrap();
    assert_eq!(reports[0].finding, None, "{:?}", reports[0].finding);
}
