//! The replay gate under concurrency: one valid code submitted many times at once, in one
//! process and in two processes sharing the SQLite file, is accepted exactly once. The feed of
//! session ends, followed while two stores end sessions at once, gives each end exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use rampart_store::prelude::*;
use rampart_store::{SqliteStore, StepOutcome, Store};

const SUBMISSIONS: usize = 100;

async fn submit_concurrently(stores: &[Arc<dyn Store>], step: u64) -> Vec<StepOutcome> {
    let tasks: Vec<_> = (0..SUBMISSIONS)
        .map(|i| {
            let store = Arc::clone(&stores[i % stores.len()]);
            tokio::spawn(async move { store.accept_step("t1", step, 5, NOW).await })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(SUBMISSIONS);
    for task in tasks {
        outcomes.push(task.await.unwrap().unwrap());
    }
    outcomes
}

fn accepted(outcomes: &[StepOutcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| matches!(o, StepOutcome::Accepted { .. }))
        .count()
}

async fn one_store_accepts_a_step_exactly_once(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    user_with_token(&*store, "u1", "t1").await;
    let stores: Vec<Arc<dyn Store>> = vec![store];

    let first = submit_concurrently(&stores, 500).await;
    assert_eq!(accepted(&first), 1);
    assert!(first.contains(&StepOutcome::Accepted { activated: true }));
    assert_eq!(
        first.iter().filter(|o| **o == StepOutcome::Replayed).count(),
        SUBMISSIONS - 1
    );

    let next = submit_concurrently(&stores, 501).await;
    assert_eq!(accepted(&next), 1);
    assert!(next.contains(&StepOutcome::Accepted { activated: false }));
}

async fn two_processes_on_one_file_accept_a_step_exactly_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let gateway_a = db.open().await;
    let gateway_b = db.open().await;
    user_with_token(&*gateway_a, "u1", "t1").await;
    let stores: Vec<Arc<dyn Store>> = vec![gateway_a, gateway_b];

    for step in [900, 901, 902] {
        let outcomes = submit_concurrently(&stores, step).await;
        assert_eq!(accepted(&outcomes), 1, "step {step}: {outcomes:?}");
    }
    let live = stores[1].live_token_for_user("u1").await.unwrap().unwrap();
    assert_eq!(live.last_step, Some(902));
}

async fn concurrent_failures_are_all_counted(backend: Backend) {
    let db = TestDb::new(backend).await;
    let gateway_a = db.open().await;
    let gateway_b = db.open().await;
    user_with_token(&*gateway_a, "u1", "t1").await;
    let stores: Vec<Arc<dyn Store>> = vec![gateway_a, gateway_b];
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&stores[i % 2]);
            tokio::spawn(async move { store.record_failure("t1", NOW).await })
        })
        .collect();
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.unwrap().unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=50).collect::<Vec<u32>>());
}

async fn the_feed_of_session_ends_gives_every_concurrent_end_exactly_once(backend: Backend) {
    const SESSIONS: usize = 120;
    let db = TestDb::new(backend).await;
    let gateway_a = db.open().await;
    let gateway_b = db.open().await;
    let ids: Vec<String> = (0..SESSIONS).map(|i| format!("s{i:03}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let hash = [u8::try_from(i).unwrap(); 32];
        gateway_a.create_session(&session(id, &hash)).await.unwrap();
    }
    let poller = db.open().await;
    let start = poller.session_end_seq().await.unwrap();
    let writers: Vec<Arc<dyn Store>> = vec![gateway_a, gateway_b];

    // Ends race each other from two stores, their times anywhere in the last hour (writers
    // whose clocks disagree), while the poller follows the feed from its last position.
    let tasks: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let store = Arc::clone(&writers[i % 2]);
            let id = id.clone();
            let now = NOW - i64::try_from((i * 37) % 3600).unwrap();
            tokio::spawn(async move { store.end_session(&id, "admin_kill", now).await })
        })
        .collect();
    let mut seen: Vec<String> = Vec::new();
    let mut cursor = start;
    let mut writers_done = false;
    loop {
        let ended = poller.sessions_ended_after(cursor).await.unwrap();
        for end in &ended {
            assert!(end.seq > cursor, "positions only grow: {end:?} after {cursor}");
            cursor = end.seq;
            seen.push(end.id.clone());
        }
        if writers_done && ended.is_empty() {
            break;
        }
        writers_done = tasks.iter().all(tokio::task::JoinHandle::is_finished);
        tokio::task::yield_now().await;
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let count = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), count, "no end fed twice");
    assert_eq!(seen, ids, "every end fed");
}

/// Environment variables that turn [`child_submitter`] into a worker of
/// [`separate_os_processes_accept_a_step_exactly_once`].
const CHILD_DB_DIR: &str = "RAMPART_STORE_TEST_CHILD_DIR";
const CHILD_START_MS: &str = "RAMPART_STORE_TEST_CHILD_START_MS";

fn unix_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// Does nothing in a normal run. Re-executed by the test below as a separate OS process
/// (a second gateway): opens the shared file, waits for the common start time, submits the
/// step and prints how many submissions were accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn child_submitter() {
    let Ok(dir) = std::env::var(CHILD_DB_DIR) else {
        return;
    };
    let start: u128 = std::env::var(CHILD_START_MS).unwrap().parse().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(std::path::Path::new(&dir)).await.unwrap());
    let wait = start.saturating_sub(unix_millis());
    tokio::time::sleep(std::time::Duration::from_millis(u64::try_from(wait).unwrap())).await;
    let outcomes = submit_concurrently(&[store], 4242).await;
    println!("CHILD-ACCEPTED={}", accepted(&outcomes));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_os_processes_accept_a_step_exactly_once() {
    if std::env::var(CHILD_DB_DIR).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    user_with_token(&store, "u1", "t1").await;
    let start = (unix_millis() + 1500).to_string();
    let children: Vec<_> = (0..2)
        .map(|_| {
            tokio::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child_submitter", "--nocapture", "--test-threads=1"])
                .env(CHILD_DB_DIR, dir.path())
                .env(CHILD_START_MS, &start)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut total = 0;
    for child in children {
        let output = child.wait_with_output().await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "child failed: {stdout}");
        let count: usize = stdout
            .lines()
            .find_map(|line| line.split_once("CHILD-ACCEPTED=").map(|(_, n)| n.trim()))
            .expect("child printed its count")
            .parse()
            .unwrap();
        total += count;
    }
    assert_eq!(total, 1);
    let live = store.live_token_for_user("u1").await.unwrap().unwrap();
    assert_eq!(live.last_step, Some(4242));
}

both_backends!(
    one_store_accepts_a_step_exactly_once,
    two_processes_on_one_file_accept_a_step_exactly_once,
    concurrent_failures_are_all_counted,
    the_feed_of_session_ends_gives_every_concurrent_end_exactly_once,
);
