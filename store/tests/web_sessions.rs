//! Web console sessions on both backends: a stored session is found by its cookie's hash from
//! any host and each find marks it seen; it stops working when idle too long, at its absolute
//! expiry, or once ended (alone or with all of its person's sessions, never anyone else's);
//! purging deletes only sessions that ended or expired before the given time. A copy of a
//! SQLite store into PostgreSQL leaves web sessions behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use rampart_store::copy::copy_sqlite_to_postgres;
use rampart_store::prelude::*;
use rampart_store::web_sessions::{WebSession, web_session_hash};
use rampart_store::{PgSettings, PgStore, SqliteStore, StoreError, parse_hosts};

/// Idle limit used by most tests: 15 minutes.
const IDLE: i64 = 900;
/// Absolute lifetime used by most tests: 8 hours.
const LIFETIME: i64 = 8 * 3600;

fn web(cookie: &str, user_id: &str, username: &str, created_at: i64) -> WebSession {
    WebSession {
        id_hash: web_session_hash(cookie),
        user_id: user_id.to_owned(),
        username: username.to_owned(),
        roles: "employee,helpdesk".to_owned(),
        csrf_token: format!("csrf-{cookie}"),
        source: "192.0.2.7".to_owned(),
        created_at,
        last_seen_at: created_at,
        expires_at: created_at + LIFETIME,
    }
}

/// A store with the people alice (u1) and bob (u2).
async fn store_with_people(backend: Backend) -> (TestDb, std::sync::Arc<dyn Store>) {
    let (db, store) = fresh_store(backend).await;
    store.upsert_user(&user("u1", "alice", &[])).await.unwrap();
    store.upsert_user(&user("u2", "bob", &[])).await.unwrap();
    (db, store)
}

async fn a_session_is_found_from_any_host_and_each_find_marks_it_seen(backend: Backend) {
    let (db, store) = store_with_people(backend).await;
    let started = web("cookie-a", "u1", "alice", NOW);
    store.start_web_session(&started).await.unwrap();

    // Another provisioner host on the same database finds it, marked seen now.
    let other_host = db.open().await;
    let found = other_host
        .web_session(&web_session_hash("cookie-a"), NOW + 600, IDLE)
        .await
        .unwrap();
    let expected = WebSession {
        last_seen_at: NOW + 600,
        ..started.clone()
    };
    assert_eq!(found, Some(expected));

    // The mark was stored: at NOW + 1200 the session is 1200 s old but only 600 s idle.
    let again = store
        .web_session(&web_session_hash("cookie-a"), NOW + 1200, IDLE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.last_seen_at, NOW + 1200);
    assert_eq!(again.csrf_token, "csrf-cookie-a");
    assert_eq!(again.roles, "employee,helpdesk");

    // A host whose clock is a little behind does not move the mark back.
    let behind = other_host
        .web_session(&web_session_hash("cookie-a"), NOW + 1190, IDLE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(behind.last_seen_at, NOW + 1200);
}

async fn an_unknown_cookie_finds_nothing_and_a_session_needs_a_known_person(backend: Backend) {
    let (_db, store) = store_with_people(backend).await;
    store
        .start_web_session(&web("cookie-a", "u1", "alice", NOW))
        .await
        .unwrap();
    let unknown = store
        .web_session(&web_session_hash("cookie-b"), NOW + 1, IDLE)
        .await
        .unwrap();
    assert_eq!(unknown, None);
    // The stored value is the cookie's hash: the cookie itself as a key finds nothing.
    let raw = store.web_session(b"cookie-a", NOW + 1, IDLE).await.unwrap();
    assert_eq!(raw, None);

    let stranger = store.start_web_session(&web("cookie-c", "nobody", "nobody", NOW)).await;
    assert!(matches!(stranger, Err(StoreError::NotFound)), "{stranger:?}");
    let twice = store.start_web_session(&web("cookie-a", "u2", "bob", NOW)).await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    // The refused second start changed nothing: the session is still alice's.
    let kept = store
        .web_session(&web_session_hash("cookie-a"), NOW + 2, IDLE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.user_id, "u1");
}

async fn a_session_idle_too_long_stops_working(backend: Backend) {
    let (_db, store) = store_with_people(backend).await;
    store
        .start_web_session(&web("cookie-a", "u1", "alice", NOW))
        .await
        .unwrap();
    store
        .start_web_session(&web("cookie-b", "u1", "alice", NOW))
        .await
        .unwrap();
    let a = web_session_hash("cookie-a");
    let b = web_session_hash("cookie-b");

    // One second short of the idle limit still works (and is marked seen).
    assert!(store.web_session(&a, NOW + IDLE - 1, IDLE).await.unwrap().is_some());
    // Exactly the idle limit after the last request: gone.
    assert_eq!(store.web_session(&b, NOW + IDLE, IDLE).await.unwrap(), None);
    assert_eq!(store.web_session(&b, NOW + IDLE + 5, IDLE).await.unwrap(), None);
    // The refused find did not mark it seen: under a longer idle limit it was last seen at sign-in.
    let longer = store.web_session(&b, NOW + IDLE + 5, 2 * IDLE).await.unwrap().unwrap();
    assert_eq!(longer.last_seen_at, NOW + IDLE + 5);
    // The first one counts from its last request, not from sign-in.
    assert!(store.web_session(&a, NOW + 2 * IDLE - 2, IDLE).await.unwrap().is_some());
}

async fn a_busy_session_still_expires(backend: Backend) {
    let (_db, store) = store_with_people(backend).await;
    store
        .start_web_session(&web("cookie-a", "u1", "alice", NOW))
        .await
        .unwrap();
    let a = web_session_hash("cookie-a");
    // Used every ten minutes all day long.
    let mut at = NOW + 600;
    while at < NOW + LIFETIME {
        assert!(store.web_session(&a, at, IDLE).await.unwrap().is_some(), "at {at}");
        at += 600;
    }
    // Its lifetime is over however recently it was used.
    assert_eq!(store.web_session(&a, NOW + LIFETIME, IDLE).await.unwrap(), None);
    assert_eq!(
        store.web_session(&a, NOW + LIFETIME + 1, 10 * LIFETIME).await.unwrap(),
        None
    );
    // An expired session is not ended again by sign-out.
    assert!(!store.end_web_session(&a, NOW + LIFETIME + 2).await.unwrap());
}

async fn an_ended_session_stops_working_everywhere(backend: Backend) {
    let (db, store) = store_with_people(backend).await;
    store
        .start_web_session(&web("cookie-a", "u1", "alice", NOW))
        .await
        .unwrap();
    store
        .start_web_session(&web("cookie-b", "u1", "alice", NOW))
        .await
        .unwrap();
    let a = web_session_hash("cookie-a");

    assert!(store.end_web_session(&a, NOW + 10).await.unwrap());
    let other_host = db.open().await;
    assert_eq!(other_host.web_session(&a, NOW + 11, IDLE).await.unwrap(), None);
    // Ending it again, or ending an unknown session, ends nothing.
    assert!(!other_host.end_web_session(&a, NOW + 12).await.unwrap());
    assert!(
        !store
            .end_web_session(&web_session_hash("cookie-x"), NOW + 12)
            .await
            .unwrap()
    );
    // Alice's other browser is still signed in.
    assert!(
        store
            .web_session(&web_session_hash("cookie-b"), NOW + 13, IDLE)
            .await
            .unwrap()
            .is_some()
    );
}

async fn ending_a_persons_sessions_ends_theirs_only(backend: Backend) {
    let (_db, store) = store_with_people(backend).await;
    store
        .start_web_session(&web("alice-1", "u1", "alice", NOW))
        .await
        .unwrap();
    store
        .start_web_session(&web("alice-2", "u1", "alice", NOW + 5))
        .await
        .unwrap();
    store.start_web_session(&web("bob-1", "u2", "bob", NOW)).await.unwrap();
    // One of alice's sessions already ended: it is not counted again.
    store
        .start_web_session(&web("alice-3", "u1", "alice", NOW))
        .await
        .unwrap();
    assert!(
        store
            .end_web_session(&web_session_hash("alice-3"), NOW + 6)
            .await
            .unwrap()
    );

    assert_eq!(store.end_web_sessions_for_user("u1", NOW + 10).await.unwrap(), 2);
    for cookie in ["alice-1", "alice-2", "alice-3"] {
        let found = store
            .web_session(&web_session_hash(cookie), NOW + 11, IDLE)
            .await
            .unwrap();
        assert_eq!(found, None, "{cookie}");
    }
    let bob = store
        .web_session(&web_session_hash("bob-1"), NOW + 11, IDLE)
        .await
        .unwrap();
    assert_eq!(bob.map(|s| s.username), Some("bob".to_owned()));
    assert_eq!(store.end_web_sessions_for_user("u1", NOW + 12).await.unwrap(), 0);
    assert_eq!(store.end_web_sessions_for_user("nobody", NOW + 12).await.unwrap(), 0);
}

async fn purging_deletes_only_sessions_over_before_the_cut(backend: Backend) {
    let (_db, store) = store_with_people(backend).await;
    let ended_early = web("ended-early", "u1", "alice", NOW);
    let expired = WebSession {
        expires_at: NOW + 100,
        ..web("expired", "u1", "alice", NOW)
    };
    let ended_late = web("ended-late", "u2", "bob", NOW);
    let live = web("live", "u2", "bob", NOW);
    for session in [&ended_early, &expired, &ended_late, &live] {
        store.start_web_session(session).await.unwrap();
    }
    assert!(store.end_web_session(&ended_early.id_hash, NOW + 10).await.unwrap());
    assert!(store.end_web_session(&ended_late.id_hash, NOW + 500).await.unwrap());

    assert_eq!(store.purge_web_sessions(NOW + 200).await.unwrap(), 2);
    assert_eq!(store.purge_web_sessions(NOW + 200).await.unwrap(), 0);
    // A purged session's hash is free again; a kept one's is not.
    store
        .start_web_session(&web("ended-early", "u1", "alice", NOW + 300))
        .await
        .unwrap();
    store
        .start_web_session(&web("expired", "u1", "alice", NOW + 300))
        .await
        .unwrap();
    let kept = store
        .start_web_session(&web("ended-late", "u2", "bob", NOW + 300))
        .await;
    assert!(matches!(kept, Err(StoreError::Conflict(_))), "{kept:?}");
    // The live session survived the purge and still works.
    assert!(
        store
            .web_session(&live.id_hash, NOW + 600, IDLE)
            .await
            .unwrap()
            .is_some()
    );

    // Later, the session ended at NOW + 500 goes too; the live one (and the two new ones) stay.
    assert_eq!(store.purge_web_sessions(NOW + 600).await.unwrap(), 1);
    assert!(
        store
            .web_session(&live.id_hash, NOW + 700, IDLE)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .web_session(&web_session_hash("expired"), NOW + 700, IDLE)
            .await
            .unwrap()
            .is_some()
    );
}

both_backends!(
    a_session_is_found_from_any_host_and_each_find_marks_it_seen,
    an_unknown_cookie_finds_nothing_and_a_session_needs_a_known_person,
    a_session_idle_too_long_stops_working,
    a_busy_session_still_expires,
    an_ended_session_stops_working_everywhere,
    ending_a_persons_sessions_ends_theirs_only,
    purging_deletes_only_sessions_over_before_the_cut,
);

/// Moving to PostgreSQL copies people but not their web sessions: they sign in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_copy_leaves_web_sessions_behind() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let source = SqliteStore::open(&state).await.unwrap();
    source.upsert_user(&user("u1", "alice", &[])).await.unwrap();
    source
        .start_web_session(&web("cookie-a", "u1", "alice", NOW))
        .await
        .unwrap();
    source.close().await;

    let url = tokio::task::spawn_blocking(|| rampart_pgtest::shared().unwrap().fresh_database().unwrap())
        .await
        .unwrap();
    let (migrated, _, _) = PgStore::migrate(parse_hosts(&url, None).unwrap(), PgSettings::default())
        .await
        .unwrap();
    migrated.close().await;

    let report = copy_sqlite_to_postgres(
        &state.join(rampart_store::DB_FILE_NAME),
        &parse_hosts(&url, None).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(report.source_rows("users"), Some(1), "{report:?}");
    assert_eq!(report.source_rows("web_sessions"), None, "{report:?}");

    let target = PgStore::connect(parse_hosts(&url, None).unwrap(), PgSettings::default())
        .await
        .unwrap();
    assert_eq!(
        target.user_by_id("u1").await.unwrap().map(|u| u.username),
        Some("alice".to_owned())
    );
    assert_eq!(
        target
            .web_session(&web_session_hash("cookie-a"), NOW + 1, IDLE)
            .await
            .unwrap(),
        None
    );
}
