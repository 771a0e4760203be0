//! The provisioner's side of `SqliteStore` against real SQLite files: issuing and delivery,
//! token lists, operator changes with their history, temporary codes, operators, re-sealing,
//! and migration 2 over a database written by migration 1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use rampart_store::prelude::*;
use rampart_store::{
    DB_FILE_NAME, IssueMode, IssueOutcome, OperatorRecord, OperatorRole, SealedSeed, SqliteStore, StepOutcome, Store,
    StoreError, TempCodeRecord, TokenEvent, TokenIssue, TokenQuery, TokenRecord, TokenState,
};

fn sealed(token_id: &str) -> SealedSeed {
    key_ring().seal(token_id, SEED).unwrap()
}

fn issue(user_id: &str, groups: &[&str], token_id: &str, delivered: bool, mode: IssueMode) -> TokenIssue {
    TokenIssue {
        user: user(user_id, user_id, groups),
        token: token(token_id, user_id, sealed(token_id)),
        delivered,
        mode,
        actor: "alice-helpdesk".to_owned(),
    }
}

/// Issues a token that must be stored.
async fn issued(store: &dyn Store, request: TokenIssue, now: i64) {
    let outcome = store.issue_token(&request, now).await.unwrap();
    assert!(matches!(outcome, IssueOutcome::Issued { .. }), "{outcome:?}");
}

/// `(action, token id, detail)` of each event, for compact assertions.
fn summary(events: &[TokenEvent]) -> Vec<(String, Option<String>, String)> {
    events
        .iter()
        .map(|e| (e.action.clone(), e.token_id.clone(), e.detail.clone()))
        .collect()
}

fn ev(action: &str, token_id: Option<&str>, detail: &str) -> (String, Option<String>, String) {
    (action.to_owned(), token_id.map(str::to_owned), detail.to_owned())
}

async fn state_of(store: &dyn Store, token_id: &str) -> TokenState {
    store.token_by_id(token_id).await.unwrap().unwrap().state
}

fn temp_code(id: &str, user_id: &str, code_hash: &[u8], created_at: i64, expires_at: i64) -> TempCodeRecord {
    TempCodeRecord {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        code_hash: code_hash.to_vec(),
        created_at,
        expires_at,
        created_by: "alice-helpdesk".to_owned(),
    }
}

fn operator(id: &str, name: &str, role: OperatorRole, key_hash: &[u8]) -> OperatorRecord {
    OperatorRecord {
        id: id.to_owned(),
        name: name.to_owned(),
        role,
        key_hash: key_hash.to_vec(),
        created_at: NOW,
        created_by: "init".to_owned(),
        revoked_at: None,
    }
}

fn raw_pool_options(dir: &std::path::Path) -> sqlx::sqlite::SqliteConnectOptions {
    sqlx::sqlite::SqliteConnectOptions::new().filename(dir.join(DB_FILE_NAME))
}

// ----- users -----

async fn users_in_group_come_sorted_with_all_their_groups(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    store
        .upsert_user(&user("u3", "carol", &["vpn", "staff"]))
        .await
        .unwrap();
    store.upsert_user(&user("u1", "bob", &["staff"])).await.unwrap();
    store
        .upsert_user(&user("u2", "alice", &["vpn", "admins", "staff"]))
        .await
        .unwrap();
    store.upsert_user(&user("u4", "dave", &["admins"])).await.unwrap();
    store.upsert_user(&user("u5", "erin", &[])).await.unwrap();

    let staff = store.users_in_group("staff").await.unwrap();
    let names: Vec<_> = staff.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    assert_eq!(staff[0].groups, ["admins", "staff", "vpn"]);
    assert_eq!(staff[2].groups, ["staff", "vpn"]);
    assert_eq!(staff[0], store.user_by_id("u2").await.unwrap().unwrap());

    assert!(store.users_in_group("nobody").await.unwrap().is_empty());
    // Exact group names only.
    assert!(store.users_in_group("Staff").await.unwrap().is_empty());
}

// ----- issuing -----

async fn issue_new_stores_user_token_and_event_then_skips(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    let request = issue("u1", &["vpn"], "t1", true, IssueMode::New);
    assert_eq!(
        store.issue_token(&request, NOW + 5).await.unwrap(),
        IssueOutcome::Issued { replaced: None }
    );
    assert_eq!(store.user_by_id("u1").await.unwrap().unwrap().groups, ["vpn"]);
    assert_eq!(
        store.live_token_for_user("u1").await.unwrap(),
        Some(request.token.clone())
    );
    let view = &store.list_tokens(&TokenQuery::default()).await.unwrap()[0];
    assert_eq!(view.delivered_at, Some(NOW + 5));
    assert_eq!(view.issued_by, "alice-helpdesk");

    let events = store.token_events(Some("u1"), 10).await.unwrap();
    assert_eq!(summary(&events), [ev("issued", Some("t1"), "delivered")]);
    assert_eq!((events[0].actor.as_str(), events[0].at), ("alice-helpdesk", NOW + 5));

    // A second New issue skips and writes nothing, not even the person's new groups.
    let again = issue("u1", &["staff"], "t2", true, IssueMode::New);
    assert_eq!(
        store.issue_token(&again, NOW + 6).await.unwrap(),
        IssueOutcome::Skipped {
            existing: "t1".to_owned()
        }
    );
    assert_eq!(store.user_by_id("u1").await.unwrap().unwrap().groups, ["vpn"]);
    assert_eq!(store.token_by_id("t2").await.unwrap(), None);
    assert_eq!(store.token_events(None, 10).await.unwrap().len(), 1);
}

async fn replace_undelivered_replaces_only_undelivered_tokens(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    // A bulk run issued t1 but stopped before writing the QR code.
    issued(&*store, issue("u1", &[], "t1", false, IssueMode::New), NOW).await;
    let view = &store.list_tokens(&TokenQuery::default()).await.unwrap()[0];
    assert_eq!(view.delivered_at, None);

    // The rerun replaces it.
    let rerun = issue("u1", &[], "t2", false, IssueMode::ReplaceUndelivered);
    assert_eq!(
        store.issue_token(&rerun, NOW + 10).await.unwrap(),
        IssueOutcome::Issued {
            replaced: Some("t1".to_owned())
        }
    );
    assert_eq!(state_of(&*store, "t1").await, TokenState::Revoked);
    assert_eq!(store.live_token_for_user("u1").await.unwrap().unwrap().id, "t2");
    let events = store.token_events(Some("u1"), 10).await.unwrap();
    assert_eq!(
        summary(&events),
        [
            ev("issued", Some("t1"), "awaiting delivery"),
            ev("replaced", Some("t1"), "replaced by t2"),
            ev("issued", Some("t2"), "awaiting delivery; replaces t1"),
        ]
    );
    assert!(events.iter().all(|e| e.actor == "alice-helpdesk"));
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));

    // Once delivered, a further rerun skips it.
    assert_eq!(
        store
            .confirm_delivery(&["t2".to_owned()], "bulk", NOW + 11)
            .await
            .unwrap(),
        1
    );
    let third = issue("u1", &[], "t3", false, IssueMode::ReplaceUndelivered);
    assert_eq!(
        store.issue_token(&third, NOW + 12).await.unwrap(),
        IssueOutcome::Skipped {
            existing: "t2".to_owned()
        }
    );
    assert_eq!(state_of(&*store, "t2").await, TokenState::Pending);
    assert_eq!(store.token_by_id("t3").await.unwrap(), None);
}

async fn replace_revokes_even_a_delivered_active_token(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    issued(&*store, issue("u1", &[], "t1", true, IssueMode::New), NOW).await;
    store.accept_step("t1", 5, 5, NOW).await.unwrap();
    let reissue = issue("u1", &[], "t2", true, IssueMode::Replace);
    assert_eq!(
        store.issue_token(&reissue, NOW + 1).await.unwrap(),
        IssueOutcome::Issued {
            replaced: Some("t1".to_owned())
        }
    );
    assert_eq!(state_of(&*store, "t1").await, TokenState::Revoked);
    assert_eq!(state_of(&*store, "t2").await, TokenState::Pending);
    // Replace with nothing to replace just issues.
    let fresh = issue("u2", &[], "t3", true, IssueMode::Replace);
    assert_eq!(
        store.issue_token(&fresh, NOW).await.unwrap(),
        IssueOutcome::Issued { replaced: None }
    );
}

async fn failed_issue_leaves_no_half_change(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    issued(&*store, issue("u1", &["vpn"], "t1", false, IssueMode::New), NOW).await;
    issued(&*store, issue("u2", &[], "t2", true, IssueMode::New), NOW).await;

    // Replacing u1's token with a token id that already exists fails at the insert: the
    // revocation of t1, the group change and both events roll back.
    let clash = issue("u1", &["staff"], "t2", true, IssueMode::Replace);
    assert!(matches!(
        store.issue_token(&clash, NOW + 1).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(state_of(&*store, "t1").await, TokenState::Pending);
    assert_eq!(store.user_by_id("u1").await.unwrap().unwrap().groups, ["vpn"]);
    assert_eq!(store.token_events(None, 10).await.unwrap().len(), 2);

    // A token for someone else, or a terminal one, is refused before anything is written.
    let mut mismatched = issue("u3", &[], "t3", true, IssueMode::New);
    mismatched.token.user_id = "u1".to_owned();
    assert!(matches!(
        store.issue_token(&mismatched, NOW).await,
        Err(StoreError::Conflict(_))
    ));
    let mut revoked = issue("u3", &[], "t3", true, IssueMode::New);
    revoked.token.state = TokenState::Revoked;
    assert!(matches!(
        store.issue_token(&revoked, NOW).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.user_by_id("u3").await.unwrap(), None);

    // A username held by another id is a conflict as in upsert_user.
    let mut taken = issue("u4", &[], "t4", true, IssueMode::New);
    taken.user.username = "u1".to_owned();
    assert!(matches!(
        store.issue_token(&taken, NOW).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.token_by_id("t4").await.unwrap(), None);
}

async fn confirm_delivery_marks_each_undelivered_token_once(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    issued(&*store, issue("u1", &[], "t1", false, IssueMode::New), NOW).await;
    issued(&*store, issue("u2", &[], "t2", false, IssueMode::New), NOW).await;
    issued(&*store, issue("u3", &[], "t3", true, IssueMode::New), NOW).await;
    let ids: Vec<String> = ["t1", "t2", "t3", "t1", "missing"].map(str::to_owned).to_vec();
    assert_eq!(store.confirm_delivery(&ids, "bulk-run", NOW + 7).await.unwrap(), 2);
    assert_eq!(store.confirm_delivery(&ids, "bulk-run", NOW + 8).await.unwrap(), 0);
    assert_eq!(store.confirm_delivery(&[], "bulk-run", NOW + 8).await.unwrap(), 0);

    let views = store.list_tokens(&TokenQuery::default()).await.unwrap();
    for view in &views {
        let expected = if view.token.id == "t3" { NOW } else { NOW + 7 };
        assert_eq!(view.delivered_at, Some(expected), "{}", view.token.id);
    }
    let delivered: Vec<_> = store
        .token_events(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "delivered")
        .collect();
    assert_eq!(delivered.len(), 2);
    assert!(delivered.iter().all(|e| e.actor == "bulk-run" && e.at == NOW + 7));
    assert_eq!(delivered[0].user_id, "u1");
    assert_eq!(delivered[1].token_id.as_deref(), Some("t2"));
}

async fn insert_token_counts_as_delivered(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    user_with_token(&*store, "u1", "t1").await;
    let view = &store.list_tokens(&TokenQuery::default()).await.unwrap()[0];
    assert_eq!((view.delivered_at, view.issued_by.as_str()), (Some(NOW), ""));
    let rerun = issue("u1", &[], "t2", false, IssueMode::ReplaceUndelivered);
    assert!(matches!(
        store.issue_token(&rerun, NOW).await.unwrap(),
        IssueOutcome::Skipped { .. }
    ));
}

// ----- reading tokens -----

async fn token_by_id_finds_any_state(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    let token = user_with_token(&*store, "u1", "t1").await;
    assert_eq!(store.token_by_id("t1").await.unwrap(), Some(token));
    store.set_token_state("t1", TokenState::Lost, NOW).await.unwrap();
    assert_eq!(state_of(&*store, "t1").await, TokenState::Lost);
    assert_eq!(store.token_by_id("t9").await.unwrap(), None);
}

async fn list_tokens_filters_and_orders_newest_first(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    issued(&*store, issue("u1", &["vpn", "staff"], "t1", true, IssueMode::New), NOW).await;
    issued(&*store, issue("u2", &["staff"], "t2", false, IssueMode::New), NOW).await;
    let mut later = issue("u3", &["admins"], "t3", true, IssueMode::New);
    later.token.created_at = NOW + 10;
    issued(&*store, later, NOW + 10).await;
    let mut reissue = issue("u1", &["staff", "vpn", "staff"], "t4", true, IssueMode::Replace);
    reissue.token.created_at = NOW + 20;
    issued(&*store, reissue, NOW + 20).await;
    store.accept_step("t3", 1, 5, NOW + 11).await.unwrap();

    let ids = |views: Vec<rampart_store::TokenView>| views.into_iter().map(|v| v.token.id).collect::<Vec<_>>();
    let list = |query: TokenQuery| {
        let store = store.clone();
        async move { store.list_tokens(&query).await.unwrap() }
    };

    let all = list(TokenQuery::default()).await;
    // Newest first, ties by id.
    assert_eq!(ids(all.clone()), ["t4", "t3", "t1", "t2"]);
    let t4 = &all[0];
    assert_eq!((t4.username.as_str(), t4.display_name.as_str()), ("u1", "User u1"));
    assert_eq!(t4.groups, ["staff", "vpn"]);
    assert_eq!(t4.token.state, TokenState::Pending);
    assert_eq!(all[1].groups, ["admins"]);
    assert_eq!(all[1].token.state, TokenState::Active);
    assert_eq!(all[2].token.state, TokenState::Revoked);
    assert_eq!(all[3].delivered_at, None);

    let by_state = list(TokenQuery {
        state: Some(TokenState::Revoked),
        ..TokenQuery::default()
    })
    .await;
    assert_eq!(ids(by_state), ["t1"]);
    let by_group = list(TokenQuery {
        group: Some("staff".to_owned()),
        ..TokenQuery::default()
    })
    .await;
    assert_eq!(ids(by_group), ["t4", "t1", "t2"]);
    let by_user = list(TokenQuery {
        user_id: Some("u1".to_owned()),
        ..TokenQuery::default()
    })
    .await;
    assert_eq!(ids(by_user), ["t4", "t1"]);
    let live = list(TokenQuery {
        live_only: true,
        ..TokenQuery::default()
    })
    .await;
    assert_eq!(ids(live), ["t4", "t3", "t2"]);
    let combined = list(TokenQuery {
        user_id: Some("u1".to_owned()),
        group: Some("vpn".to_owned()),
        live_only: true,
        state: None,
    })
    .await;
    assert_eq!(ids(combined), ["t4"]);
    let contradictory = list(TokenQuery {
        state: Some(TokenState::Revoked),
        live_only: true,
        ..TokenQuery::default()
    })
    .await;
    assert!(contradictory.is_empty());
    let nobody = list(TokenQuery {
        group: Some("nobody".to_owned()),
        ..TokenQuery::default()
    })
    .await;
    assert!(nobody.is_empty());
}

// ----- operator changes to one token -----

async fn end_token_moves_live_tokens_to_terminal_states_once(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    user_with_token(&*store, "u1", "t1").await;
    assert!(matches!(
        store.end_token("t1", TokenState::Active, "bob", "no", NOW).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.end_token("t1", TokenState::Pending, "bob", "no", NOW).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.end_token("t9", TokenState::Revoked, "bob", "no", NOW).await,
        Err(StoreError::NotFound)
    ));
    store
        .end_token("t1", TokenState::Lost, "bob", "phone stolen", NOW + 3)
        .await
        .unwrap();
    assert_eq!(state_of(&*store, "t1").await, TokenState::Lost);
    for target in [TokenState::Revoked, TokenState::Lost, TokenState::Expired] {
        match store.end_token("t1", target, "bob", "again", NOW + 4).await {
            Err(StoreError::Conflict(message)) => assert!(message.contains("token t1 is lost"), "{message}"),
            other => panic!("{target}: {other:?}"),
        }
    }
    let events = store.token_events(Some("u1"), 10).await.unwrap();
    assert_eq!(summary(&events), [ev("lost", Some("t1"), "phone stolen")]);
    assert_eq!((events[0].actor.as_str(), events[0].at), ("bob", NOW + 3));

    user_with_token(&*store, "u2", "t2").await;
    store
        .end_token("t2", TokenState::Expired, "system", "past validity", NOW)
        .await
        .unwrap();
    assert_eq!(state_of(&*store, "t2").await, TokenState::Expired);
}

async fn unlock_resets_failures_of_live_tokens_only(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    user_with_token(&*store, "u1", "t1").await;
    for _ in 0..3 {
        store.record_failure("t1", NOW).await.unwrap();
    }
    assert_eq!(store.accept_step("t1", 10, 3, NOW).await.unwrap(), StepOutcome::Locked);
    // Counted against a limit of four, three wrong codes do not lock it: nothing to unlock.
    assert!(!store.unlock_token("t1", 4, "bob", NOW + 1).await.unwrap());
    assert_eq!(store.token_by_id("t1").await.unwrap().unwrap().failures, 3);
    assert!(store.token_events(Some("u1"), 10).await.unwrap().is_empty());
    assert!(store.unlock_token("t1", 3, "bob", NOW + 1).await.unwrap());
    assert_eq!(store.token_by_id("t1").await.unwrap().unwrap().failures, 0);
    assert_eq!(
        store.accept_step("t1", 10, 3, NOW + 2).await.unwrap(),
        StepOutcome::Accepted { activated: true }
    );
    let events = store.token_events(Some("u1"), 10).await.unwrap();
    assert_eq!(summary(&events), [ev("unlocked", Some("t1"), "")]);
    assert_eq!(events[0].actor, "bob");

    assert!(matches!(
        store.unlock_token("t9", 3, "bob", NOW).await,
        Err(StoreError::NotFound)
    ));
    store.set_token_state("t1", TokenState::Revoked, NOW + 3).await.unwrap();
    assert!(matches!(
        store.unlock_token("t1", 3, "bob", NOW + 4).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.token_events(Some("u1"), 10).await.unwrap().len(), 1);
}

async fn resync_sets_the_step_and_activates(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    user_with_token(&*store, "u1", "t1").await;
    store.record_failure("t1", NOW).await.unwrap();
    store.resync_token("t1", 1000, 3, "bob", NOW + 1).await.unwrap();
    let token = store.token_by_id("t1").await.unwrap().unwrap();
    assert_eq!(token.state, TokenState::Active);
    assert_eq!(token.last_step, Some(1000));
    assert_eq!(token.failures, 0);
    assert_eq!(token.activated_at, Some(NOW + 1));
    assert_eq!(token.drift_steps, 3);
    // The proven step is the new replay guard; a code from before it is a replay.
    assert_eq!(
        store.accept_step("t1", 1000, 5, NOW).await.unwrap(),
        StepOutcome::Replayed
    );
    assert_eq!(
        store.accept_step("t1", 1001, 5, NOW).await.unwrap(),
        StepOutcome::Accepted { activated: false }
    );

    // A later resync moves the mark forward; activation time stays.
    store.resync_token("t1", 1010, -2, "bob", NOW + 2).await.unwrap();
    let token = store.token_by_id("t1").await.unwrap().unwrap();
    assert_eq!((token.last_step, token.activated_at), (Some(1010), Some(NOW + 1)));
    assert_eq!(token.drift_steps, -2);

    let events = store.token_events(Some("u1"), 10).await.unwrap();
    assert_eq!(
        summary(&events),
        [
            ev("resynced", Some("t1"), "last step 1000, device drift 3 step(s)"),
            ev("resynced", Some("t1"), "last step 1010, device drift -2 step(s)"),
        ]
    );

    assert!(matches!(
        store.resync_token("t1", u64::MAX, 0, "bob", NOW).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.resync_token("t9", 1, 0, "bob", NOW).await,
        Err(StoreError::NotFound)
    ));
    store.set_token_state("t1", TokenState::Expired, NOW + 3).await.unwrap();
    assert!(matches!(
        store.resync_token("t1", 2000, 0, "bob", NOW + 4).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.token_by_id("t1").await.unwrap().unwrap().last_step, Some(1010));
}

async fn resync_never_moves_the_replay_mark_back(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    user_with_token(&*store, "u1", "t1").await;
    // A gateway accepted step 1000 and then 1005 (the person logged in twice).
    for step in [1000, 1005] {
        assert!(matches!(
            store.accept_step("t1", step, 5, NOW).await.unwrap(),
            StepOutcome::Accepted { .. }
        ));
    }
    store.record_failure("t1", NOW + 1).await.unwrap();
    let before = store.token_by_id("t1").await.unwrap().unwrap();

    // Two codes from before that (or the last one itself) prove nothing new: taking them would
    // make the codes of steps 1001..=1005 valid again. Refused, and nothing changes.
    for step in [990, 1004, 1005] {
        let refused = store.resync_token("t1", step, -1, "bob", NOW + 2).await;
        let Err(StoreError::Conflict(message)) = refused else {
            panic!("resync to step {step}: {refused:?}");
        };
        assert!(message.contains("already accepted step 1005"), "{message}");
    }
    let after = store.token_by_id("t1").await.unwrap().unwrap();
    assert_eq!(after, before, "the refused resyncs changed nothing");
    assert_eq!((after.last_step, after.failures), (Some(1005), 1));
    for step in [1001, 1005] {
        assert_eq!(
            store.accept_step("t1", step, 5, NOW + 3).await.unwrap(),
            StepOutcome::Replayed,
            "step {step} was used before the refused resync and stays used"
        );
    }
    assert!(store.token_events(Some("u1"), 10).await.unwrap().is_empty());

    // A resync past the mark still works.
    store.resync_token("t1", 1006, 1, "bob", NOW + 4).await.unwrap();
    assert_eq!(store.token_by_id("t1").await.unwrap().unwrap().last_step, Some(1006));
}

// ----- history -----

async fn token_events_returns_the_most_recent_oldest_first(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    for i in 0..5 {
        let event = TokenEvent {
            seq: 0,
            at: NOW + i,
            actor: "gateway".to_owned(),
            action: if i % 2 == 0 { "activated" } else { "locked" }.to_owned(),
            user_id: if i == 4 { "u2" } else { "u1" }.to_owned(),
            token_id: (i != 3).then(|| format!("t{i}")),
            detail: format!("event {i}"),
        };
        store.record_token_event(&event).await.unwrap();
    }
    let all = store.token_events(None, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(all[3].token_id, None);
    assert_eq!(all[4].user_id, "u2");
    assert_eq!(
        (all[0].at, all[0].actor.as_str(), all[0].action.as_str()),
        (NOW, "gateway", "activated")
    );

    let recent = store.token_events(None, 2).await.unwrap();
    assert_eq!(recent, all[3..].to_vec());
    let u1 = store.token_events(Some("u1"), 3).await.unwrap();
    let details: Vec<_> = u1.iter().map(|e| e.detail.as_str()).collect();
    assert_eq!(details, ["event 1", "event 2", "event 3"]);
    assert!(store.token_events(Some("u1"), 0).await.unwrap().is_empty());
    assert!(store.token_events(Some("nobody"), 10).await.unwrap().is_empty());
}

// ----- re-sealing -----

async fn reseal_is_a_compare_and_swap(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    user_with_token(&*store, "u1", "t1").await;
    user_with_token(&*store, "u2", "t2").await;
    store.set_token_state("t2", TokenState::Revoked, NOW).await.unwrap();

    let seeds = store.sealed_seeds().await.unwrap();
    let ids: Vec<_> = seeds.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["t1", "t2"]);
    let (_, old) = &seeds[0];

    let new_ring = rampart_store::KeyRing::from_keys([(1, &[0x42u8; 32]), (2, &[0x17u8; 32])]).unwrap();
    let seed = new_ring.open("t1", old).unwrap();
    let new = new_ring.seal("t1", &seed).unwrap();
    assert_eq!(new.key_id, 2);
    assert!(store.reseal("t1", old, &new).await.unwrap());
    let stored = store.token_by_id("t1").await.unwrap().unwrap().sealed;
    assert_eq!(stored, new);
    assert_eq!(&**new_ring.open("t1", &stored).unwrap(), SEED);

    // A second re-seal from the stale value changes nothing.
    let newer = new_ring.seal("t1", &seed).unwrap();
    assert!(!store.reseal("t1", old, &newer).await.unwrap());
    assert_eq!(store.token_by_id("t1").await.unwrap().unwrap().sealed, new);
    // Same key id but another blob is stale too; an unknown token is just false.
    let same_key_other_blob = SealedSeed {
        key_id: new.key_id,
        blob: newer.blob.clone(),
    };
    assert!(!store.reseal("t1", &same_key_other_blob, &newer).await.unwrap());
    assert!(!store.reseal("t9", &new, &newer).await.unwrap());
    // Terminal tokens are re-sealed like any other.
    let (_, old_t2) = &seeds[1];
    let new_t2 = new_ring.seal("t2", &new_ring.open("t2", old_t2).unwrap()).unwrap();
    assert!(store.reseal("t2", old_t2, &new_t2).await.unwrap());
}

// ----- temporary codes -----

async fn temp_code_works_once_for_its_owner_before_expiry(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    store.upsert_user(&user("u1", "alice", &[])).await.unwrap();
    store.upsert_user(&user("u2", "bob", &[])).await.unwrap();
    let hash = [0xC0; 32];
    store
        .insert_temp_code(&temp_code("c1", "u1", &hash, NOW, NOW + 600))
        .await
        .unwrap();

    assert!(!store.consume_temp_code("u1", &[0xC1; 32], NOW + 1).await.unwrap());
    assert!(!store.consume_temp_code("u2", &hash, NOW + 1).await.unwrap());
    assert!(store.consume_temp_code("u1", &hash, NOW + 2).await.unwrap());
    assert!(!store.consume_temp_code("u1", &hash, NOW + 3).await.unwrap());

    let events = store.token_events(Some("u1"), 10).await.unwrap();
    assert_eq!(
        summary(&events),
        [
            ev(
                "temp_code_issued",
                None,
                &format!("expires at {}", rampart_core::text::utc_minute(NOW + 600))
            ),
            ev("temp_code_used", None, "code c1"),
        ]
    );
    assert_eq!((events[0].actor.as_str(), events[0].at), ("alice-helpdesk", NOW));
    assert_eq!((events[1].actor.as_str(), events[1].at), ("gateway", NOW + 2));
    assert!(store.token_events(Some("u2"), 10).await.unwrap().is_empty());
}

async fn wrong_temporary_codes_spend_the_persons_code_at_the_limit(backend: Backend) {
    use rampart_core::temp_code::MAX_TEMP_CODE_FAILURES;
    let (_dir, store) = fresh_store(backend).await;
    store.upsert_user(&user("u1", "alice", &[])).await.unwrap();
    store.upsert_user(&user("u2", "bob", &[])).await.unwrap();
    let wrong = [0xEE; 32];
    let tries = |from: i64, count: u32| {
        let store = &store;
        async move {
            for i in 0..count {
                assert!(
                    !store
                        .consume_temp_code("u1", &wrong, from + i64::from(i))
                        .await
                        .unwrap()
                );
            }
        }
    };
    // One try short of the limit, the right code still works.
    store
        .insert_temp_code(&temp_code("c1", "u1", &[0xA1; 32], NOW, NOW + 600))
        .await
        .unwrap();
    tries(NOW + 1, MAX_TEMP_CODE_FAILURES - 1).await;
    assert!(store.consume_temp_code("u1", &[0xA1; 32], NOW + 10).await.unwrap());

    // At the limit the person's live code is spent; another person's is not touched.
    store
        .insert_temp_code(&temp_code("c2", "u1", &[0xA2; 32], NOW + 20, NOW + 600))
        .await
        .unwrap();
    store
        .insert_temp_code(&temp_code("c3", "u2", &[0xB0; 32], NOW + 20, NOW + 600))
        .await
        .unwrap();
    tries(NOW + 21, MAX_TEMP_CODE_FAILURES).await;
    assert!(
        !store.consume_temp_code("u1", &[0xA2; 32], NOW + 30).await.unwrap(),
        "after {MAX_TEMP_CODE_FAILURES} wrong tries the code is spent"
    );
    assert!(store.consume_temp_code("u2", &[0xB0; 32], NOW + 31).await.unwrap());
    let events = store.token_events(Some("u1"), 10).await.unwrap();
    assert_eq!(
        summary(&events).last().unwrap(),
        &ev(
            "temp_code_spent",
            None,
            &format!("code c2: {MAX_TEMP_CODE_FAILURES} wrong tries")
        )
    );
}

async fn expired_and_withdrawn_temp_codes_are_refused(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    store.upsert_user(&user("u1", "alice", &[])).await.unwrap();
    store
        .insert_temp_code(&temp_code("c1", "u1", &[1; 32], NOW, NOW + 600))
        .await
        .unwrap();
    // Expired at its expiry second.
    assert!(!store.consume_temp_code("u1", &[1; 32], NOW + 600).await.unwrap());
    assert!(!store.consume_temp_code("u1", &[1; 32], NOW + 601).await.unwrap());

    // A newer code withdraws the older, unexpired one.
    store
        .insert_temp_code(&temp_code("c2", "u1", &[2; 32], NOW + 10, NOW + 1000))
        .await
        .unwrap();
    store
        .insert_temp_code(&temp_code("c3", "u1", &[3; 32], NOW + 20, NOW + 1000))
        .await
        .unwrap();
    assert!(!store.consume_temp_code("u1", &[2; 32], NOW + 30).await.unwrap());
    assert!(store.consume_temp_code("u1", &[3; 32], NOW + 30).await.unwrap());

    // An unknown person cannot get a code; nothing is recorded.
    let before = store.token_events(None, 100).await.unwrap().len();
    assert!(matches!(
        store
            .insert_temp_code(&temp_code("c4", "ghost", &[4; 32], NOW, NOW + 600))
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.token_events(None, 100).await.unwrap().len(), before);
    // A duplicate id is a conflict and does not withdraw anything.
    store
        .insert_temp_code(&temp_code("c5", "u1", &[5; 32], NOW + 40, NOW + 1000))
        .await
        .unwrap();
    assert!(matches!(
        store
            .insert_temp_code(&temp_code("c5", "u1", &[6; 32], NOW + 41, NOW + 1000))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.consume_temp_code("u1", &[5; 32], NOW + 42).await.unwrap());
}

async fn concurrent_temp_code_use_has_exactly_one_winner(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store_a = db.open().await;
    let store_b = db.open().await;
    store_a.upsert_user(&user("u1", "alice", &[])).await.unwrap();
    let stores: Vec<Arc<dyn Store>> = vec![store_a, store_b];

    for (round, hash) in [[7u8; 32], [8u8; 32]].into_iter().enumerate() {
        let offset = i64::try_from(round).unwrap();
        let code = temp_code(&format!("c{round}"), "u1", &hash, NOW + offset, NOW + 600);
        stores[0].insert_temp_code(&code).await.unwrap();
        // Round 0: twenty tasks on one store; round 1: spread over two stores on one file.
        let spread = round + 1;
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = Arc::clone(&stores[i % spread]);
                tokio::spawn(async move { store.consume_temp_code("u1", &hash, NOW + 1 + offset).await })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            winners += usize::from(task.await.unwrap().unwrap());
        }
        assert_eq!(winners, 1, "round {round}");
    }
    let used = stores[1]
        .token_events(Some("u1"), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "temp_code_used")
        .count();
    assert_eq!(used, 2);
}

// ----- operators -----

async fn operators_are_unique_found_by_key_hash_and_revoked_once(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    let admin = operator("o1", "root", OperatorRole::Admin, &[1; 32]);
    let helpdesk = operator("o2", "alice-helpdesk", OperatorRole::Helpdesk, &[2; 32]);
    let auditor = operator("o3", "audit-script", OperatorRole::Auditor, &[3; 32]);
    for op in [&admin, &helpdesk, &auditor] {
        store.insert_operator(op).await.unwrap();
    }
    for duplicate in [
        operator("o4", "root", OperatorRole::Auditor, &[4; 32]),
        operator("o4", "other", OperatorRole::Auditor, &[2; 32]),
        operator("o1", "other", OperatorRole::Auditor, &[4; 32]),
    ] {
        assert!(matches!(
            store.insert_operator(&duplicate).await,
            Err(StoreError::Conflict(_))
        ));
    }

    assert_eq!(
        store.operator_by_key_hash(&[2; 32]).await.unwrap(),
        Some(helpdesk.clone())
    );
    assert_eq!(store.operator_by_key_hash(&[9; 32]).await.unwrap(), None);
    let names: Vec<_> = store
        .list_operators()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["alice-helpdesk", "audit-script", "root"]);

    store.revoke_operator("alice-helpdesk", NOW + 5).await.unwrap();
    let revoked = store.operator_by_key_hash(&[2; 32]).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(NOW + 5));
    assert!(matches!(
        store.revoke_operator("alice-helpdesk", NOW + 6).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.revoke_operator("nobody", NOW).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.operator_by_key_hash(&[2; 32]).await.unwrap().unwrap().revoked_at,
        Some(NOW + 5)
    );
    assert!(!format!("{revoked:?}").contains("[2, 2"));
}

#[tokio::test]
async fn corrupt_operator_role_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    store
        .insert_operator(&operator("o1", "root", OperatorRole::Admin, &[1; 32]))
        .await
        .unwrap();
    let raw = sqlx::SqlitePool::connect_with(raw_pool_options(dir.path()).pragma("ignore_check_constraints", "ON"))
        .await
        .unwrap();
    sqlx::query("UPDATE operators SET role = 'superuser'")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    assert!(matches!(
        store.operator_by_key_hash(&[1; 32]).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(store.list_operators().await, Err(StoreError::Corrupt(_))));
}

// ----- migration -----

#[tokio::test]
async fn migration_2_applies_over_a_version_1_database() {
    let dir = tempfile::tempdir().unwrap();
    // A database as the previous release left it: only migration 1, with a user and tokens.
    let v1 = tempfile::tempdir().unwrap();
    let init = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite/0001_init.sql");
    std::fs::copy(init, v1.path().join("0001_init.sql")).unwrap();
    let raw = sqlx::SqlitePool::connect_with(raw_pool_options(dir.path()).create_if_missing(true))
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(v1.path())
        .await
        .unwrap()
        .run(&raw)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO users (id, username, display_name, password_hash, enabled, created_at) \
         VALUES ('u1', 'alice', 'Alice', NULL, TRUE, 1)",
    )
    .execute(&raw)
    .await
    .unwrap();
    sqlx::query("INSERT INTO user_groups (user_id, group_name) VALUES ('u1', 'vpn')")
        .execute(&raw)
        .await
        .unwrap();
    for (id, state, created_at) in [("t1", "revoked", 100), ("t2", "active", 200)] {
        let seal = sealed(id);
        sqlx::query(
            "INSERT INTO tokens (id, user_id, state, algorithm, digits, period, time_window, key_id, \
             sealed_seed, last_step, failures, created_at, activated_at, last_used_at, updated_at) \
             VALUES ($1, 'u1', $2, 'SHA1', 6, 30, 1, $3, $4, 7, 0, $5, $5, $5, $5)",
        )
        .bind(id)
        .bind(state)
        .bind(i64::from(seal.key_id))
        .bind(seal.blob)
        .bind(created_at)
        .execute(&raw)
        .await
        .unwrap();
    }
    raw.close().await;

    let store = SqliteStore::open(dir.path()).await.unwrap();
    let views = store.list_tokens(&TokenQuery::default()).await.unwrap();
    let delivered: Vec<_> = views
        .iter()
        .map(|v| (v.token.id.as_str(), v.delivered_at, v.issued_by.as_str()))
        .collect();
    assert_eq!(delivered, [("t2", Some(200), ""), ("t1", Some(100), "")]);
    assert_eq!(views[0].groups, ["vpn"]);
    let live: TokenRecord = store.live_token_for_user("u1").await.unwrap().unwrap();
    assert_eq!((live.id.as_str(), live.last_step), ("t2", Some(7)));
    assert_eq!(&**key_ring().open("t2", &live.sealed).unwrap(), SEED);
    // Pre-existing tokens count as delivered: a bulk rerun leaves them alone.
    let rerun = issue("u1", &["vpn"], "t3", false, IssueMode::ReplaceUndelivered);
    assert_eq!(
        store.issue_token(&rerun, NOW).await.unwrap(),
        IssueOutcome::Skipped {
            existing: "t2".to_owned()
        }
    );
    assert_eq!(store.users_in_group("vpn").await.unwrap().len(), 1);
    assert!(store.token_events(None, 10).await.unwrap().is_empty());
    store.close().await;
    // Reopening runs nothing new.
    SqliteStore::open(dir.path()).await.unwrap().ping().await.unwrap();
}

async fn a_batch_commits_every_good_request_and_nothing_of_a_refused_one(backend: Backend) {
    let (_dir, store) = fresh_store(backend).await;
    issued(&*store, issue("u2", &[], "t-old", true, IssueMode::New), NOW).await;
    // The third request reuses u1's username for another id: refused, alone.
    let mut clash = issue("u3", &["x"], "t3", false, IssueMode::ReplaceUndelivered);
    clash.user.username = "u1".into();
    let batch = [
        issue("u1", &["staff"], "t1", false, IssueMode::ReplaceUndelivered),
        issue("u2", &["staff"], "t2", false, IssueMode::ReplaceUndelivered),
        clash,
        issue("u4", &["staff"], "t4", false, IssueMode::ReplaceUndelivered),
    ];
    let outcomes = store.issue_tokens(&batch, NOW + 1).await.unwrap();
    assert_eq!(outcomes.len(), 4);
    assert!(matches!(outcomes[0], Ok(IssueOutcome::Issued { replaced: None })));
    assert!(
        matches!(&outcomes[1], Ok(IssueOutcome::Skipped { existing }) if existing == "t-old"),
        "a delivered token is kept: {:?}",
        outcomes[1]
    );
    assert!(matches!(outcomes[2], Err(StoreError::Conflict(_))), "{:?}", outcomes[2]);
    assert!(matches!(outcomes[3], Ok(IssueOutcome::Issued { .. })));
    assert_eq!(state_of(&*store, "t1").await, TokenState::Pending);
    assert_eq!(state_of(&*store, "t4").await, TokenState::Pending);
    assert!(store.token_by_id("t3").await.unwrap().is_none());
    assert!(
        store.user_by_id("u3").await.unwrap().is_none(),
        "the refused person was not written"
    );
    assert_eq!(
        store.user_by_id("u2").await.unwrap().unwrap().groups,
        Vec::<String>::new(),
        "a skip writes nothing"
    );
    let events = store.token_events(None, 100).await.unwrap();
    assert_eq!(
        events.iter().filter(|e| e.action == "issued").count(),
        3,
        "t-old, t1, t4"
    );
}

both_backends!(
    users_in_group_come_sorted_with_all_their_groups,
    issue_new_stores_user_token_and_event_then_skips,
    replace_undelivered_replaces_only_undelivered_tokens,
    replace_revokes_even_a_delivered_active_token,
    failed_issue_leaves_no_half_change,
    confirm_delivery_marks_each_undelivered_token_once,
    insert_token_counts_as_delivered,
    token_by_id_finds_any_state,
    list_tokens_filters_and_orders_newest_first,
    end_token_moves_live_tokens_to_terminal_states_once,
    unlock_resets_failures_of_live_tokens_only,
    resync_sets_the_step_and_activates,
    resync_never_moves_the_replay_mark_back,
    token_events_returns_the_most_recent_oldest_first,
    reseal_is_a_compare_and_swap,
    temp_code_works_once_for_its_owner_before_expiry,
    wrong_temporary_codes_spend_the_persons_code_at_the_limit,
    expired_and_withdrawn_temp_codes_are_refused,
    concurrent_temp_code_use_has_exactly_one_winner,
    operators_are_unique_found_by_key_hash_and_revoked_once,
    a_batch_commits_every_good_request_and_nothing_of_a_refused_one,
);
