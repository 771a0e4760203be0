//! Token resets under dual control on both backends: a request stays pending until a second
//! operator approves it, self-approval and expired requests are refused, an approval is
//! carried out once even when two operators (on two connections, as from two hosts) approve
//! at the same moment, and only the requester collects the result, once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use rampart_store::approvals::{
    ApprovalRefusal, ApprovalState, ApprovalStatus, CollectedReset, ResetAction, ResetGrant,
};
use rampart_store::{IssueMode, IssueOutcome, ResetRequest, Store, StoreError, TempCodeRecord, TokenIssue};

const TTL: i64 = 900;

fn request(id: &str, user_id: &str, action: ResetAction, token_id: Option<&str>, by: &str) -> ResetRequest {
    ResetRequest {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        username: String::new(),
        action,
        token_id: token_id.map(str::to_owned),
        reason: "ticket 7".to_owned(),
        requested_by: by.to_owned(),
        created_at: NOW,
        expires_at: NOW + TTL,
        status: ApprovalStatus::Pending,
        decided_by: None,
        decided_at: None,
        decision_reason: String::new(),
        completed_at: None,
    }
}

fn temp_code(id: &str, user_id: &str, by: &str, now: i64) -> TempCodeRecord {
    TempCodeRecord {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        code_hash: vec![0xC0; 32],
        created_at: now,
        expires_at: now + 600,
        created_by: by.to_owned(),
    }
}

/// `(actor, action)` of each of the person's history events.
async fn history(store: &dyn Store, user_id: &str) -> Vec<(String, String)> {
    let events = store.token_events(Some(user_id), 50).await.unwrap();
    events.into_iter().map(|e| (e.actor, e.action)).collect()
}

fn pair(actor: &str, action: &str) -> (String, String) {
    (actor.to_owned(), action.to_owned())
}

async fn a_request_stays_pending_and_listed_until_it_expires(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    user_with_token(store.as_ref(), "u1", "t1").await;
    store
        .request_reset(&request("r1", "u1", ResetAction::TemporaryCode, None, "ann"))
        .await
        .unwrap();

    let stored = store.reset_request("r1").await.unwrap().unwrap();
    assert_eq!(stored.username, "u1");
    assert_eq!(stored.state_at(NOW + 1), ApprovalState::Pending);
    assert_eq!(stored.state_at(NOW + TTL), ApprovalState::Expired);
    let open = store.reset_requests(Some(NOW + 1), 10).await.unwrap();
    assert_eq!(open.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r1"]);
    assert!(store.reset_requests(Some(NOW + TTL), 10).await.unwrap().is_empty());
    assert_eq!(
        store.reset_requests(None, 10).await.unwrap().len(),
        1,
        "kept after expiry"
    );
    assert!(store.reset_request("nope").await.unwrap().is_none());

    // Nothing was carried out: no temporary code, the token untouched.
    assert!(!store.consume_temp_code("u1", &[0xC0; 32], NOW + 2).await.unwrap());
    assert_eq!(history(store.as_ref(), "u1").await, [pair("ann", "reset_requested")]);

    // Requests for unknown people are refused; ids are unique.
    let unknown = store
        .request_reset(&request("r2", "nobody", ResetAction::TemporaryCode, None, "ann"))
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
    let twice = store
        .request_reset(&request("r1", "u1", ResetAction::TemporaryCode, None, "ann"))
        .await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
}

async fn self_approval_is_refused_and_a_request_is_approved_once(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    user_with_token(store.as_ref(), "u1", "t1").await;
    store
        .request_reset(&request("r1", "u1", ResetAction::TemporaryCode, None, "ann"))
        .await
        .unwrap();

    let own = store.approve_reset("r1", "ann", NOW + 5, NOW + 905).await.unwrap();
    assert_eq!(
        own,
        Err(ApprovalRefusal::SelfApproval {
            requested_by: "ann".into()
        })
    );
    let still = store.reset_request("r1").await.unwrap().unwrap();
    assert_eq!((still.status, still.decided_by), (ApprovalStatus::Pending, None));

    let approved = store
        .approve_reset("r1", "bob", NOW + 10, NOW + 910)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(approved.status, ApprovalStatus::Approved);
    assert_eq!(approved.decided_by.as_deref(), Some("bob"));
    assert_eq!((approved.decided_at, approved.expires_at), (Some(NOW + 10), NOW + 910));

    let again = store.approve_reset("r1", "carl", NOW + 11, NOW + 911).await.unwrap();
    assert_eq!(
        again,
        Err(ApprovalRefusal::Decided {
            status: ApprovalState::Approved,
            by: Some("bob".into())
        })
    );
    assert_eq!(
        history(store.as_ref(), "u1").await,
        [pair("ann", "reset_requested"), pair("bob", "reset_approved")]
    );
    let detail = &store.token_events(Some("u1"), 50).await.unwrap()[1].detail;
    assert!(
        detail.contains("asked by ann") && detail.contains("approved by bob"),
        "{detail}"
    );
}

async fn an_expired_request_cannot_be_approved(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    user_with_token(store.as_ref(), "u1", "t1").await;
    store
        .request_reset(&request("r1", "u1", ResetAction::Unlock, Some("t1"), "ann"))
        .await
        .unwrap();
    let late = store
        .approve_reset("r1", "bob", NOW + TTL, NOW + 2 * TTL)
        .await
        .unwrap();
    assert_eq!(late, Err(ApprovalRefusal::Expired { expires_at: NOW + TTL }));
    let stored = store.reset_request("r1").await.unwrap().unwrap();
    assert_eq!(stored.state_at(NOW + TTL), ApprovalState::Expired);
    assert_eq!(history(store.as_ref(), "u1").await, [pair("ann", "reset_requested")]);
    assert_eq!(
        store.approve_reset("nope", "bob", NOW, NOW).await.unwrap(),
        Err(ApprovalRefusal::NotFound)
    );
}

async fn approving_an_unlock_unlocks_the_token_in_the_same_transaction(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    user_with_token(store.as_ref(), "u1", "t1").await;
    for _ in 0..3 {
        store.record_failure("t1", NOW).await.unwrap();
    }
    store
        .request_reset(&request("r1", "u1", ResetAction::Unlock, Some("t1"), "ann"))
        .await
        .unwrap();
    assert_eq!(
        store.token_by_id("t1").await.unwrap().unwrap().failures,
        3,
        "not before approval"
    );

    let done = store
        .approve_reset("r1", "bob", NOW + 10, NOW + 910)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((done.status, done.completed_at), (ApprovalStatus::Done, Some(NOW + 10)));
    assert_eq!(store.token_by_id("t1").await.unwrap().unwrap().failures, 0);
    assert_eq!(
        history(store.as_ref(), "u1").await,
        [
            pair("ann", "reset_requested"),
            pair("bob", "reset_approved"),
            pair("bob", "unlocked")
        ]
    );

    // An unlock for a token that ended meanwhile is refused and leaves the request pending.
    store
        .request_reset(&request("r2", "u1", ResetAction::Unlock, Some("t1"), "ann"))
        .await
        .unwrap();
    store
        .end_token("t1", rampart_store::TokenState::Revoked, "ann", "", NOW + 20)
        .await
        .unwrap();
    let refused = store.approve_reset("r2", "bob", NOW + 30, NOW + 930).await.unwrap();
    assert_eq!(refused, Err(ApprovalRefusal::TokenNotLive { token_id: "t1".into() }));
    let r2 = store.reset_request("r2").await.unwrap().unwrap();
    assert_eq!((r2.status, r2.decided_by), (ApprovalStatus::Pending, None));
}

async fn only_the_requester_collects_an_approved_request_once(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    user_with_token(store.as_ref(), "u1", "t1").await;
    store
        .request_reset(&request(
            "r1",
            "u1",
            ResetAction::TemporaryCodeAndReplacement,
            None,
            "ann",
        ))
        .await
        .unwrap();
    let grant = ResetGrant {
        temporary_code: Some(temp_code("c1", "u1", "ann", NOW + 20)),
        replacement: Some(TokenIssue {
            user: user("u1", "u1", &[]),
            token: token("t2", "u1", key_ring().seal("t2", SEED).unwrap()),
            delivered: true,
            mode: IssueMode::Replace,
            actor: "ann".into(),
        }),
    };

    let early = store.collect_reset("r1", "ann", &grant, NOW + 5).await.unwrap();
    assert_eq!(early.err(), Some(ApprovalRefusal::NotApproved));
    store
        .approve_reset("r1", "bob", NOW + 10, NOW + 100)
        .await
        .unwrap()
        .unwrap();
    let stranger = store.collect_reset("r1", "bob", &grant, NOW + 20).await.unwrap();
    assert_eq!(
        stranger.err(),
        Some(ApprovalRefusal::NotRequester {
            requested_by: "ann".into()
        })
    );
    let CollectedReset {
        request: collected,
        replacement,
    } = store
        .collect_reset("r1", "ann", &grant, NOW + 20)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (collected.status, collected.completed_at),
        (ApprovalStatus::Done, Some(NOW + 20))
    );
    assert_eq!(
        replacement,
        Some(IssueOutcome::Issued {
            replaced: Some("t1".into())
        })
    );
    let twice = store.collect_reset("r1", "ann", &grant, NOW + 21).await.unwrap();
    assert_eq!(
        twice.err(),
        Some(ApprovalRefusal::Decided {
            status: ApprovalState::Done,
            by: Some("bob".into())
        })
    );
    // What was granted works: the code once, the replacement is the live token.
    assert!(store.consume_temp_code("u1", &[0xC0; 32], NOW + 30).await.unwrap());
    assert_eq!(store.live_token_for_user("u1").await.unwrap().unwrap().id, "t2");
    let actions = history(store.as_ref(), "u1").await;
    for wanted in [
        pair("ann", "reset_requested"),
        pair("bob", "reset_approved"),
        pair("ann", "temp_code_issued"),
        pair("ann", "replaced"),
        pair("ann", "issued"),
        pair("ann", "reset_collected"),
    ] {
        assert!(actions.contains(&wanted), "{wanted:?} missing from {actions:?}");
    }

    // A grant that does not match the request changes nothing.
    store
        .request_reset(&request("r2", "u1", ResetAction::TemporaryCode, None, "ann"))
        .await
        .unwrap();
    store
        .approve_reset("r2", "bob", NOW + 40, NOW + 100)
        .await
        .unwrap()
        .unwrap();
    let wrong = store.collect_reset("r2", "ann", &ResetGrant::default(), NOW + 41).await;
    assert!(matches!(wrong, Err(StoreError::Conflict(_))), "{wrong:?}");
    let r2 = store.reset_request("r2").await.unwrap().unwrap();
    assert_eq!(r2.status, ApprovalStatus::Approved);
    // Collection ends with the approval's window.
    let code = ResetGrant {
        temporary_code: Some(temp_code("c2", "u1", "ann", NOW + 100)),
        replacement: None,
    };
    let late = store.collect_reset("r2", "ann", &code, NOW + 100).await.unwrap();
    assert_eq!(late.err(), Some(ApprovalRefusal::Expired { expires_at: NOW + 100 }));
}

async fn a_denied_request_cannot_be_approved_or_collected(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    user_with_token(store.as_ref(), "u1", "t1").await;
    store
        .request_reset(&request("r1", "u1", ResetAction::TemporaryCode, None, "ann"))
        .await
        .unwrap();
    let denied = store
        .deny_reset("r1", "bob", "caller failed the call-back", NOW + 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(denied.status, ApprovalStatus::Denied);
    assert_eq!(denied.decision_reason, "caller failed the call-back");
    let refused = store.approve_reset("r1", "carl", NOW + 6, NOW + 906).await.unwrap();
    assert_eq!(
        refused,
        Err(ApprovalRefusal::Decided {
            status: ApprovalState::Denied,
            by: Some("bob".into())
        })
    );
    let grant = ResetGrant {
        temporary_code: Some(temp_code("c1", "u1", "ann", NOW + 7)),
        replacement: None,
    };
    let collected = store.collect_reset("r1", "ann", &grant, NOW + 7).await.unwrap();
    assert!(
        matches!(collected, Err(ApprovalRefusal::Decided { .. })),
        "{collected:?}"
    );
    let again = store.deny_reset("r1", "carl", "", NOW + 8).await.unwrap();
    assert!(matches!(again, Err(ApprovalRefusal::Decided { .. })), "{again:?}");

    // The requester may withdraw their own request.
    store
        .request_reset(&request("r2", "u1", ResetAction::TemporaryCode, None, "ann"))
        .await
        .unwrap();
    store.deny_reset("r2", "ann", "", NOW + 9).await.unwrap().unwrap();
    let events = store.token_events(Some("u1"), 50).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!((last.actor.as_str(), last.action.as_str()), ("ann", "reset_denied"));
    assert!(last.detail.contains("withdrawn by ann"), "{}", last.detail);
}

async fn two_approvers_at_once_carry_an_unlock_out_once(backend: Backend) {
    let (db, first) = fresh_store(backend).await;
    // A second handle on the same database, as a provisioner on another host would have.
    let second = db.open().await;
    const ROUNDS: usize = 12;
    for round in 0..ROUNDS {
        let user_id = format!("u{round}");
        let token_id = format!("t{round}");
        user_with_token(first.as_ref(), &user_id, &token_id).await;
        first.record_failure(&token_id, NOW).await.unwrap();
        first
            .request_reset(&request(
                &format!("r{round}"),
                &user_id,
                ResetAction::Unlock,
                Some(&token_id),
                "ann",
            ))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for round in 0..ROUNDS {
        for (store, approver) in [(first.clone(), "bob"), (second.clone(), "carl")] {
            let store: Arc<dyn Store> = store;
            let id = format!("r{round}");
            tasks.push(tokio::spawn(async move {
                store.approve_reset(&id, approver, NOW + 10, NOW + 910).await.unwrap()
            }));
        }
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(request) => {
                assert_eq!(request.status, ApprovalStatus::Done);
                wins += 1;
            }
            Err(ApprovalRefusal::Decided {
                status: ApprovalState::Done,
                ..
            }) => {}
            Err(other) => panic!("unexpected refusal: {other:?}"),
        }
    }
    assert_eq!(wins, ROUNDS, "each request approved exactly once");
    for round in 0..ROUNDS {
        let actions = history(first.as_ref(), &format!("u{round}")).await;
        let approvals = actions.iter().filter(|(_, a)| a == "reset_approved").count();
        let unlocks = actions.iter().filter(|(_, a)| a == "unlocked").count();
        assert_eq!((approvals, unlocks), (1, 1), "{actions:?}");
    }
}

/// Below the code, the schema itself refuses a request approved by the operator who made it.
#[tokio::test]
async fn the_database_refuses_a_self_approved_row() {
    let (db, store) = fresh_store(Backend::Sqlite).await;
    user_with_token(store.as_ref(), "u1", "t1").await;
    store
        .request_reset(&request("r1", "u1", ResetAction::TemporaryCode, None, "ann"))
        .await
        .unwrap();
    let TestDb::Sqlite(dir) = &db else { unreachable!() };
    let options =
        sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("state").join(rampart_store::DB_FILE_NAME));
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let forged =
        sqlx::query("UPDATE reset_requests SET status = 'approved', decided_by = requested_by WHERE id = 'r1'")
            .execute(&pool)
            .await;
    assert!(forged.is_err(), "a self-approved row was stored");
    let unapproved = sqlx::query("UPDATE reset_requests SET status = 'done' WHERE id = 'r1'")
        .execute(&pool)
        .await;
    assert!(
        unapproved.is_err(),
        "a request carried out without an approver was stored"
    );
}

both_backends!(
    a_request_stays_pending_and_listed_until_it_expires,
    self_approval_is_refused_and_a_request_is_approved_once,
    an_expired_request_cannot_be_approved,
    approving_an_unlock_unlocks_the_token_in_the_same_transaction,
    only_the_requester_collects_an_approved_request_once,
    a_denied_request_cannot_be_approved_or_collected,
    two_approvers_at_once_carry_an_unlock_out_once,
);
