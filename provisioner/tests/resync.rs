//! Resync through the service, in process with a real SQLite store: the later of the two codes
//! becomes the token's replay mark, and that mark never moves back. Two codes at or before the
//! last step a gateway accepted are refused and change nothing, so a code already used stays
//! used (SECURITY.md, requirement 3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_core::clock::Clock;
use rampart_core::totp::{TotpParams, generate_totp};
use rampart_directory::LocalDirectory;
use rampart_provisioner::{Provisioner, ProvisionerSettings, ServiceError};
use rampart_store::{KeyRing, SqliteStore, StepOutcome, Store, TokenRecord, UserRecord};
use std::sync::Arc;

const SEED: &[u8; 20] = b"12345678901234567890";

fn key_ring() -> KeyRing {
    KeyRing::from_keys([(1, &[0x42u8; 32])]).unwrap()
}

/// A provisioner whose store holds alice with the pending token `t1` (seed [`SEED`]).
async fn provisioner(dir: &std::path::Path) -> (Provisioner, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("state")).await.unwrap());
    store
        .upsert_user(&UserRecord {
            id: "u-alice".into(),
            username: "alice".into(),
            display_name: "Alice".into(),
            password_hash: None,
            enabled: true,
            groups: vec![],
            created_at: 0,
        })
        .await
        .unwrap();
    store
        .insert_token(&TokenRecord::pending(
            "t1".into(),
            "u-alice".into(),
            TotpParams::default(),
            key_ring().seal("t1", SEED).unwrap(),
            0,
        ))
        .await
        .unwrap();
    let directory = Arc::new(LocalDirectory::new(store.clone()).unwrap());
    let app = Provisioner::new(
        store.clone(),
        Arc::new(key_ring()),
        directory,
        ProvisionerSettings::default(),
        Clock::system(),
    );
    (app, store)
}

/// Alice's code for time step `step`.
fn code(step: u64) -> String {
    let params = TotpParams::default();
    generate_totp(SEED, &params, step * params.period).unwrap()
}

#[tokio::test]
async fn a_resync_never_makes_an_accepted_code_valid_again() {
    let dir = tempfile::tempdir().unwrap();
    let (app, store) = provisioner(dir.path()).await;
    let now = TotpParams::default().step_at(u64::try_from(unix_now()).unwrap());

    // Alice's phone runs four steps fast: her two codes bring the token in line.
    app.resync("desk", "alice", &code(now + 3), &code(now + 4))
        .await
        .unwrap();
    assert_eq!(store.token_by_id("t1").await.unwrap().unwrap().last_step, Some(now + 4));
    // She logs in with her next code.
    assert_eq!(
        store.accept_step("t1", now + 5, 10, unix_now()).await.unwrap(),
        StepOutcome::Accepted { activated: false }
    );
    let before = store.token_by_id("t1").await.unwrap().unwrap();

    // Codes at or before that step, such as the pair the help desk typed before or one that
    // includes the code she just used, would move the mark back: refused, nothing changes.
    for (first, second) in [(now + 3, now + 4), (now + 4, now + 5), (now - 10, now - 9)] {
        match app.resync("desk", "alice", &code(first), &code(second)).await {
            Err(ServiceError::Conflict(message)) => {
                assert!(message.contains("not newer than the last code"), "{message}");
                assert!(!message.contains(&code(second)), "no code in the answer: {message}");
            }
            other => panic!("resync with steps {first}, {second}: {other:?}"),
        }
    }
    assert_eq!(store.token_by_id("t1").await.unwrap().unwrap(), before);
    assert_eq!(
        store.accept_step("t1", now + 5, 10, unix_now()).await.unwrap(),
        StepOutcome::Replayed,
        "the code she used stays used"
    );

    // Two newer codes still resynchronise.
    app.resync("desk", "alice", &code(now + 6), &code(now + 7))
        .await
        .unwrap();
    assert_eq!(store.token_by_id("t1").await.unwrap().unwrap().last_step, Some(now + 7));
}

/// Unix seconds now on the system clock.
fn unix_now() -> i64 {
    Clock::system().now()
}
