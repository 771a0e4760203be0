//! Behaviour of `SqliteStore` against real SQLite files: migrations, users, tokens, the
//! replay/lockout gate, sessions and sealed seeds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use rampart_store::prelude::*;
use rampart_store::{DB_FILE_NAME, EndedSession, SealError, SqliteStore, StepOutcome, Store, StoreError, TokenState};

#[tokio::test]
async fn migrations_apply_and_reopen_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("a/b/state");
    let store = SqliteStore::open(&state).await.unwrap();
    assert!(state.join(DB_FILE_NAME).exists());
    store.ping().await.unwrap();
    store.upsert_user(&user("u1", "alice", &["staff"])).await.unwrap();
    store.close().await;
    assert!(matches!(store.ping().await, Err(StoreError::Unavailable(_))));

    let reopened = SqliteStore::open(&state).await.unwrap();
    let alice = reopened.user_by_id("u1").await.unwrap().unwrap();
    assert_eq!(alice.groups, vec!["staff"]);
}

async fn store_is_usable_as_trait_object(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    let shared: Arc<dyn Store> = store;
    shared.ping().await.unwrap();
    let expected = match backend {
        Backend::Sqlite => "SqliteStore",
        Backend::Postgres => "PgStore",
    };
    assert!(format!("{shared:?}").contains(expected));
}

async fn users_upsert_and_lookup_with_groups(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    let mut alice = user("u1", "alice", &["vpn", "staff", "vpn"]);
    alice.password_hash = Some("$argon2id$v=19$stub".to_owned());
    store.upsert_user(&alice).await.unwrap();

    let found = store.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(found.groups, vec!["staff", "vpn"]);
    assert_eq!(found.password_hash, alice.password_hash);
    assert!(found.enabled);
    assert_eq!(store.user_by_id("u1").await.unwrap(), Some(found));
    // Exact match only: other case or spaces do not find the user.
    assert_eq!(store.user_by_username("Alice").await.unwrap(), None);
    assert_eq!(store.user_by_username(" alice").await.unwrap(), None);
    assert_eq!(store.user_by_id("u2").await.unwrap(), None);

    // Update replaces fields and groups but keeps created_at.
    let mut changed = user("u1", "alice.b", &["admins"]);
    changed.enabled = false;
    changed.created_at = NOW + 99;
    store.upsert_user(&changed).await.unwrap();
    let found = store.user_by_id("u1").await.unwrap().unwrap();
    assert_eq!(found.username, "alice.b");
    assert_eq!(found.groups, vec!["admins"]);
    assert!(!found.enabled);
    assert_eq!(found.created_at, NOW);
    assert_eq!(found.password_hash, None);
    assert_eq!(store.user_by_username("alice").await.unwrap(), None);

    // No groups at all.
    store.upsert_user(&user("u1", "alice.b", &[])).await.unwrap();
    assert!(store.user_by_id("u1").await.unwrap().unwrap().groups.is_empty());

    // A username held by another id is a conflict.
    let err = store.upsert_user(&user("u2", "alice.b", &[])).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

async fn tokens_insert_live_lookup_and_one_live_per_user(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    let token = user_with_token(&*store, "u1", "t1").await;
    assert_eq!(store.live_token_for_user("u1").await.unwrap(), Some(token.clone()));
    assert_eq!(store.live_token_for_user("nobody").await.unwrap(), None);

    let second = common::token("t2", "u1", key_ring().seal("t2", SEED).unwrap());
    let err = store.insert_token(&second).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    let orphan = common::token("t3", "ghost", key_ring().seal("t3", SEED).unwrap());
    assert!(matches!(store.insert_token(&orphan).await, Err(StoreError::NotFound)));

    // Once the first is revoked a replacement may be issued.
    store.set_token_state("t1", TokenState::Revoked, NOW + 1).await.unwrap();
    assert_eq!(store.live_token_for_user("u1").await.unwrap(), None);
    store.insert_token(&second).await.unwrap();
    assert_eq!(store.live_token_for_user("u1").await.unwrap().unwrap().id, "t2");
}

async fn token_state_changes_follow_the_life_cycle(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    user_with_token(&*store, "u1", "t1").await;
    assert!(matches!(
        store.set_token_state("missing", TokenState::Revoked, NOW).await,
        Err(StoreError::NotFound)
    ));
    store.set_token_state("t1", TokenState::Active, NOW + 5).await.unwrap();
    let live = store.live_token_for_user("u1").await.unwrap().unwrap();
    assert_eq!((live.state, live.activated_at), (TokenState::Active, Some(NOW + 5)));
    assert!(matches!(
        store.set_token_state("t1", TokenState::Pending, NOW).await,
        Err(StoreError::Conflict(_))
    ));
    store.set_token_state("t1", TokenState::Lost, NOW + 6).await.unwrap();
    for revived in [TokenState::Active, TokenState::Pending] {
        assert!(matches!(
            store.set_token_state("t1", revived, NOW + 7).await,
            Err(StoreError::Conflict(_))
        ));
    }
    store.set_token_state("t1", TokenState::Revoked, NOW + 8).await.unwrap();
}

async fn accept_step_rejects_replays(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    user_with_token(&*store, "u1", "t1").await;
    let accept = |step| store.accept_step("t1", step, 5, NOW);

    assert_eq!(accept(100).await.unwrap(), StepOutcome::Accepted { activated: true });
    assert_eq!(accept(100).await.unwrap(), StepOutcome::Replayed);
    assert_eq!(accept(99).await.unwrap(), StepOutcome::Replayed);
    assert_eq!(accept(101).await.unwrap(), StepOutcome::Accepted { activated: false });
    assert_eq!(accept(101).await.unwrap(), StepOutcome::Replayed);

    let live = store.live_token_for_user("u1").await.unwrap().unwrap();
    assert_eq!(live.state, TokenState::Active);
    assert_eq!(live.last_step, Some(101));
    assert_eq!((live.activated_at, live.last_used_at), (Some(NOW), Some(NOW)));
}

async fn operator_activated_token_is_not_reported_as_activated_by_a_code(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    user_with_token(&*store, "u1", "t1").await;
    store.set_token_state("t1", TokenState::Active, NOW).await.unwrap();
    assert_eq!(
        store.accept_step("t1", 7, 5, NOW).await.unwrap(),
        StepOutcome::Accepted { activated: false }
    );
}

async fn failures_lock_and_success_resets(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    user_with_token(&*store, "u1", "t1").await;
    assert_eq!(store.record_failure("t1", NOW).await.unwrap(), 1);
    assert_eq!(store.record_failure("t1", NOW).await.unwrap(), 2);
    assert_eq!(
        store.accept_step("t1", 10, 3, NOW).await.unwrap(),
        StepOutcome::Accepted { activated: true }
    );
    assert_eq!(store.live_token_for_user("u1").await.unwrap().unwrap().failures, 0);

    for expected in 1..=3 {
        assert_eq!(store.record_failure("t1", NOW).await.unwrap(), expected);
    }
    assert_eq!(store.accept_step("t1", 11, 3, NOW).await.unwrap(), StepOutcome::Locked);
    // Locked takes precedence over replay.
    assert_eq!(store.accept_step("t1", 10, 3, NOW).await.unwrap(), StepOutcome::Locked);
    assert_eq!(store.live_token_for_user("u1").await.unwrap().unwrap().failures, 3);
    assert!(matches!(
        store.record_failure("missing", NOW).await,
        Err(StoreError::NotFound)
    ));
}

async fn tokens_that_are_not_live_accept_nothing(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    user_with_token(&*store, "u1", "t1").await;
    store.set_token_state("t1", TokenState::Revoked, NOW).await.unwrap();
    assert_eq!(store.accept_step("t1", 1, 5, NOW).await.unwrap(), StepOutcome::NotLive);
    assert_eq!(
        store.accept_step("missing", 1, 5, NOW).await.unwrap(),
        StepOutcome::NotLive
    );
    assert!(matches!(
        store.accept_step("t1", u64::MAX, 5, NOW).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn sessions_create_lookup_end(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    let session = session("s1", &[0xAA; 32]);
    store.create_session(&session).await.unwrap();
    assert_eq!(
        store.session_by_ticket_hash(&[0xAA; 32]).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(store.session_by_ticket_hash(&[0xBB; 32]).await.unwrap(), None);

    let duplicate = common::session("s2", &[0xAA; 32]);
    assert!(matches!(
        store.create_session(&duplicate).await,
        Err(StoreError::Conflict(_))
    ));

    store.end_session("s1", "logout", NOW + 10).await.unwrap();
    store.end_session("s1", "admin-kill", NOW + 20).await.unwrap();
    let ended = store.session_by_ticket_hash(&[0xAA; 32]).await.unwrap().unwrap();
    assert_eq!(ended.ended_at, Some(NOW + 10));
    assert_eq!(ended.end_reason.as_deref(), Some("logout"));
    assert!(matches!(
        store.end_session("s9", "logout", NOW).await,
        Err(StoreError::NotFound)
    ));
}

async fn sessions_per_user_end_with_their_token_and_feed_the_ended_list(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    user_with_token(&*store, "u1", "t1").await;
    let mut first = session("s1", &[0x01; 32]);
    first.token_id = Some("t1".to_owned());
    let mut second = session("s2", &[0x02; 32]);
    second.created_at = NOW + 5;
    second.token_id = Some("t1".to_owned());
    let mut by_temp_code = session("s3", &[0x03; 32]);
    by_temp_code.created_at = NOW + 6;
    let mut expired = session("s4", &[0x04; 32]);
    expired.expires_at = NOW + 1;
    for s in [&second, &first, &by_temp_code, &expired] {
        store.create_session(s).await.unwrap();
    }
    let live: Vec<String> = store
        .live_sessions_for_user("u1", NOW + 2)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(live, ["s1", "s2", "s3"], "oldest first, expired left out");
    let everyone: Vec<String> = store
        .live_sessions(NOW + 2, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(everyone, ["s1", "s2"], "oldest first, limited");
    assert!(store.live_sessions_for_user("u2", NOW).await.unwrap().is_empty());

    store.touch_session("s1", NOW + 30).await.unwrap();
    store.touch_session("s1", NOW + 20).await.unwrap();
    let touched = store.session_by_ticket_hash(&[0x01; 32]).await.unwrap().unwrap();
    assert_eq!(touched.last_seen_at, Some(NOW + 30), "never moves backwards");

    // Revoking the token ends every session of its owner in the same change: those it opened,
    // the one opened with a temporary code (which used to outlive the revocation) and the
    // expired one not yet ended; another person's session stays.
    let mut someone_else = session("s9", &[0x09; 32]);
    someone_else.user_id = "u2".to_owned();
    user_with_token(&*store, "u2", "t2").await;
    store.create_session(&someone_else).await.unwrap();
    let start = store.session_end_seq().await.unwrap();
    store
        .end_token("t1", TokenState::Revoked, "helpdesk", "left the bank", NOW + 40)
        .await
        .unwrap();
    let ended = store.sessions_ended_after(start).await.unwrap();
    assert_eq!(
        feed(&ended),
        [
            ("s1", "token_revoked"),
            ("s2", "token_revoked"),
            ("s3", "token_revoked"),
            ("s4", "token_revoked")
        ],
        "{ended:?}"
    );
    assert!(
        ended.iter().all(|e| e.seq == ended[0].seq),
        "ended together, at one position"
    );
    let cursor = ended[0].seq;
    assert_eq!(store.session_end_seq().await.unwrap(), cursor);
    assert!(store.sessions_ended_after(cursor).await.unwrap().is_empty());

    let mut later = session("s5", &[0x05; 32]);
    later.created_at = NOW + 45;
    let mut later_expired = session("s6", &[0x06; 32]);
    later_expired.created_at = NOW + 46;
    later_expired.expires_at = NOW + 47;
    for s in [&later, &later_expired] {
        store.create_session(s).await.unwrap();
    }
    let ids = store.end_user_sessions("u1", "admin_kill", NOW + 50).await.unwrap();
    assert_eq!(ids, ["s5", "s6"], "every session not yet ended, expired or not");
    assert!(
        store
            .end_user_sessions("u1", "admin_kill", NOW + 60)
            .await
            .unwrap()
            .is_empty()
    );
    let s5 = store.session_by_ticket_hash(&[0x05; 32]).await.unwrap().unwrap();
    assert_eq!(s5.end_reason.as_deref(), Some("admin_kill"));
    let ended = store.sessions_ended_after(cursor).await.unwrap();
    assert_eq!(feed(&ended), [("s5", "admin_kill"), ("s6", "admin_kill")]);
    assert!(ended[0].seq > cursor);
    // Ending an ended session again keeps its place in the feed: it is not fed twice.
    store.end_session("s5", "logout", NOW + 70).await.unwrap();
    assert!(store.sessions_ended_after(ended[1].seq).await.unwrap().is_empty());
    let other = store.session_by_ticket_hash(&[0x09; 32]).await.unwrap().unwrap();
    assert_eq!(other.ended_at, None, "another person's session is not touched");
}

/// (id, reason) of each entry of the feed of session ends.
fn feed(ended: &[EndedSession]) -> Vec<(&str, &str)> {
    ended.iter().map(|e| (e.id.as_str(), e.reason.as_str())).collect()
}

async fn a_session_end_committed_late_is_fed_once_whatever_its_end_time(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Two gateways on one store file: `poller` follows the feed, `writer` ends sessions.
    let poller = db.open().await;
    let writer = db.open().await;
    for (id, hash) in [("s1", 1), ("s2", 2), ("s3", 3)] {
        poller.create_session(&session(id, &[hash; 32])).await.unwrap();
    }
    let mut cursor = poller.session_end_seq().await.unwrap();

    writer.end_session("s1", "logout", NOW + 100).await.unwrap();
    let ended = poller.sessions_ended_after(cursor).await.unwrap();
    assert_eq!(feed(&ended), [("s1", "logout")]);
    cursor = ended[0].seq;

    // The poller has moved past NOW + 100. Now a writer commits an end whose `now` is far in the
    // past: it read its clock, then waited for the write lock (or its host's clock is behind).
    // Polling by end time from the cursor's time, with any overlap, would never return it.
    writer.end_session("s2", "admin_kill", NOW - 3600).await.unwrap();
    let ended = poller.sessions_ended_after(cursor).await.unwrap();
    assert_eq!(feed(&ended), [("s2", "admin_kill")], "the late end is fed");
    assert_eq!(
        poller.session_by_ticket_hash(&[2; 32]).await.unwrap().unwrap().ended_at,
        Some(NOW - 3600),
        "the end keeps the time its writer gave"
    );
    cursor = ended[0].seq;
    assert!(
        poller.sessions_ended_after(cursor).await.unwrap().is_empty(),
        "and fed only once"
    );

    // Later ends, in any order of their times, follow in commit order.
    writer.end_session("s3", "idle", NOW + 50).await.unwrap();
    writer.end_session("s1", "again", NOW + 200).await.unwrap();
    let ended = poller.sessions_ended_after(cursor).await.unwrap();
    assert_eq!(feed(&ended), [("s3", "idle")], "an ended session is not fed again");
    // An unknown id ends nothing and adds nothing to the feed.
    assert!(matches!(
        writer.end_session("s9", "logout", NOW).await,
        Err(StoreError::NotFound)
    ));
    assert!(poller.sessions_ended_after(ended[0].seq).await.unwrap().is_empty());
}

#[tokio::test]
async fn sealed_seed_round_trips_and_cannot_move_between_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let ring = key_ring();
    user_with_token(&store, "u1", "t1").await;
    user_with_token(&store, "u2", "t2").await;

    let t1 = store.live_token_for_user("u1").await.unwrap().unwrap();
    assert_eq!(&**ring.open("t1", &t1.sealed).unwrap(), SEED);

    // An attacker with write access to the database copies t1's sealed seed into t2's row.
    let raw = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join(DB_FILE_NAME)),
    )
    .await
    .unwrap();
    sqlx::query(
        "UPDATE tokens SET sealed_seed = (SELECT sealed_seed FROM tokens WHERE id = 't1'), \
         key_id = (SELECT key_id FROM tokens WHERE id = 't1') WHERE id = 't2'",
    )
    .execute(&raw)
    .await
    .unwrap();
    raw.close().await;

    let t2 = store.live_token_for_user("u2").await.unwrap().unwrap();
    assert_eq!(t2.sealed, t1.sealed);
    assert_eq!(ring.open("t2", &t2.sealed), Err(SealError::Corrupt));
    assert!(!format!("{t2:?}").contains(&format!("{:?}", t2.sealed.blob)));
}

#[tokio::test]
async fn corrupt_rows_are_reported_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    user_with_token(&store, "u1", "t1").await;
    store.create_session(&session("s1", &[1; 32])).await.unwrap();
    let raw = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join(DB_FILE_NAME)),
    )
    .await
    .unwrap();
    sqlx::query("UPDATE tokens SET digits = 300")
        .execute(&raw)
        .await
        .unwrap();
    sqlx::query("UPDATE sessions SET group_names = 'not json'")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    assert!(matches!(
        store.live_token_for_user("u1").await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store.session_by_ticket_hash(&[1; 32]).await,
        Err(StoreError::Corrupt(_))
    ));
}

async fn concurrent_logins_on_two_gateways_keep_the_per_person_limit(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (a, b) = (db.open().await, db.open().await);
    a.upsert_user(&user("u1", "alice", &[])).await.unwrap();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let mut record = session(&format!("s{i:02}"), format!("ticket-{i}").as_bytes());
                record.gateway_id = Some(if i % 2 == 0 { "gw-a" } else { "gw-b" }.to_owned());
                store
                    .create_session_within(&record, 3, "session_limit", NOW)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ended = Vec::new();
    for task in tasks {
        ended.extend(task.await.unwrap());
    }
    let live = a.live_sessions_for_user("u1", NOW).await.unwrap();
    assert_eq!(live.len(), 3, "exactly the limit is live: {live:?}");
    ended.sort();
    ended.dedup();
    assert_eq!(ended.len(), 9, "every other session was ended exactly once: {ended:?}");
    assert!(live.iter().all(|s| !ended.contains(&s.id)));
    // The ends are on the feed every gateway follows, with the reason.
    let fed = a.sessions_ended_after(0).await.unwrap();
    assert_eq!(fed.len(), 9);
    assert!(fed.iter().all(|e| e.reason == "session_limit"));
    // Where each live session is, and a resume moving one.
    let moved = &live[0].id;
    b.move_session(moved, "gw-c").await.unwrap();
    let again = a.live_sessions_for_user("u1", NOW).await.unwrap();
    assert_eq!(again[0].gateway_id.as_deref(), Some("gw-c"));
    assert!(
        again[1..]
            .iter()
            .all(|s| matches!(s.gateway_id.as_deref(), Some("gw-a" | "gw-b")))
    );
}

async fn gateways_register_beat_and_stop(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    let mut node = rampart_store::GatewayNode {
        id: "gw1:4433".to_owned(),
        address: "192.0.2.1:4433".to_owned(),
        admin_url: Some("https://192.0.2.1:9443".to_owned()),
        version: "0.1.0".to_owned(),
        started_at: NOW,
        last_seen_at: NOW,
        sessions: 0,
        flows: 0,
        stopped_at: None,
    };
    store.register_gateway(&node).await.unwrap();
    store.gateway_heartbeat("gw1:4433", NOW + 5, 12, 30).await.unwrap();
    assert!(matches!(
        store.gateway_heartbeat("nobody", NOW + 5, 0, 0).await,
        Err(StoreError::NotFound)
    ));
    let listed = store.gateway_nodes().await.unwrap();
    assert_eq!(
        (listed[0].last_seen_at, listed[0].sessions, listed[0].flows),
        (NOW + 5, 12, 30)
    );
    store.gateway_stopped("gw1:4433", NOW + 9).await.unwrap();
    assert_eq!(store.gateway_nodes().await.unwrap()[0].stopped_at, Some(NOW + 9));
    // A restart registers again and clears the stop.
    node.started_at = NOW + 20;
    node.last_seen_at = NOW + 20;
    store.register_gateway(&node).await.unwrap();
    let listed = store.gateway_nodes().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].started_at, listed[0].stopped_at), (NOW + 20, None));
}

both_backends!(
    concurrent_logins_on_two_gateways_keep_the_per_person_limit,
    gateways_register_beat_and_stop,
    store_is_usable_as_trait_object,
    users_upsert_and_lookup_with_groups,
    tokens_insert_live_lookup_and_one_live_per_user,
    token_state_changes_follow_the_life_cycle,
    accept_step_rejects_replays,
    operator_activated_token_is_not_reported_as_activated_by_a_code,
    failures_lock_and_success_resets,
    tokens_that_are_not_live_accept_nothing,
    sessions_create_lookup_end,
    sessions_per_user_end_with_their_token_and_feed_the_ended_list,
    a_session_end_committed_late_is_fed_once_whatever_its_end_time,
);
