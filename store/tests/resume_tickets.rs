//! Resume tickets in the store: a resume swaps the ticket's hash by one compare-and-swap, every
//! replaced hash is still recognised (its reuse is theft), and of many resumes presenting one
//! ticket at once — through two store handles, as two gateways — exactly one wins.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use rampart_store::{Rotation, Store, TicketMatch};

const A: [u8; 32] = [0xA0; 32];
const B: [u8; 32] = [0xB0; 32];

async fn a_resume_swaps_the_ticket_and_the_replaced_one_is_recognised(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    store.create_session(&session("s1", &A)).await.unwrap();
    match store.session_for_ticket(&A).await.unwrap() {
        Some(TicketMatch::Current(record)) => assert_eq!(record.client_key, Some(vec![0x07; 32]), "the key is kept"),
        other => panic!("the login's ticket is current: {other:?}"),
    }

    let rotated = store.rotate_ticket("s1", &A, &B, "gw-2:4433", NOW + 10).await.unwrap();
    assert_eq!(rotated, Rotation::Rotated);
    match store.session_for_ticket(&B).await.unwrap() {
        Some(TicketMatch::Current(record)) => {
            assert_eq!(record.id, "s1");
            assert_eq!(record.gateway_id.as_deref(), Some("gw-2:4433"), "the resume moved it");
            assert_eq!(record.client_key, Some(vec![0x07; 32]));
        }
        other => panic!("the new ticket is current: {other:?}"),
    }
    assert!(
        matches!(store.session_for_ticket(&A).await.unwrap(), Some(TicketMatch::Replaced(r)) if r.id == "s1"),
        "the replaced ticket still names its session, so its reuse is recognised"
    );
    assert_eq!(
        store.session_by_ticket_hash(&A).await.unwrap(),
        None,
        "and resumes nothing"
    );

    // The replaced ticket cannot be swapped again: it is not current.
    let again = store
        .rotate_ticket("s1", &A, &[0xC0; 32], "gw-3:4433", NOW + 20)
        .await
        .unwrap();
    assert_eq!(again, Rotation::NotCurrent);
    assert!(matches!(
        store.session_for_ticket(&B).await.unwrap(),
        Some(TicketMatch::Current(_))
    ));
    assert_eq!(store.session_for_ticket(&[0xC0; 32]).await.unwrap(), None);
    assert_eq!(store.session_for_ticket(&[0xEE; 32]).await.unwrap(), None, "unknown");

    // Every replaced ticket is recognised, not only the last one.
    let c = [0xC0; 32];
    assert_eq!(
        store.rotate_ticket("s1", &B, &c, "gw-2:4433", NOW + 30).await.unwrap(),
        Rotation::Rotated
    );
    for old in [A, B] {
        assert!(
            matches!(store.session_for_ticket(&old).await.unwrap(), Some(TicketMatch::Replaced(r)) if r.id == "s1"),
            "a ticket replaced two resumes ago still names its session"
        );
    }
    assert!(matches!(
        store.session_for_ticket(&c).await.unwrap(),
        Some(TicketMatch::Current(_))
    ));
}

async fn an_ended_or_expired_session_keeps_its_ticket(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    store.create_session(&session("s1", &A)).await.unwrap();
    store.end_session("s1", "killed", NOW + 1).await.unwrap();
    assert_eq!(
        store.rotate_ticket("s1", &A, &B, "gw", NOW + 2).await.unwrap(),
        Rotation::NotCurrent
    );
    store.create_session(&session("s2", &B)).await.unwrap();
    assert_eq!(
        store
            .rotate_ticket("s2", &B, &[0xC0; 32], "gw", NOW + 3600)
            .await
            .unwrap(),
        Rotation::NotCurrent,
        "expired at NOW + 3600"
    );
    assert!(matches!(
        store.session_for_ticket(&B).await.unwrap(),
        Some(TicketMatch::Current(_))
    ));
}

async fn of_concurrent_resumes_with_one_ticket_exactly_one_wins(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Two handles on one database, as two gateways sharing it.
    let stores: [Arc<dyn Store>; 2] = [db.open().await, db.open().await];
    stores[0].create_session(&session("s1", &A)).await.unwrap();
    let tasks: Vec<_> = (0u8..20)
        .map(|i| {
            let store = Arc::clone(&stores[usize::from(i) % 2]);
            tokio::spawn(async move {
                let next = [i; 32];
                let outcome = store
                    .rotate_ticket("s1", &A, &next, &format!("gw-{}", i % 2), NOW)
                    .await;
                (next, outcome.unwrap())
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (next, outcome) = task.await.unwrap();
        if outcome == Rotation::Rotated {
            winners.push(next);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one resume replaced the ticket");
    match stores[1].session_for_ticket(&winners[0]).await.unwrap() {
        Some(TicketMatch::Current(record)) => assert_eq!(record.id, "s1"),
        other => panic!("the winner's ticket is current: {other:?}"),
    }
    for i in 0u8..20 {
        if [i; 32] != winners[0] {
            assert_eq!(
                stores[0].session_for_ticket(&[i; 32]).await.unwrap(),
                None,
                "a loser's ticket"
            );
        }
    }
}

both_backends!(
    a_resume_swaps_the_ticket_and_the_replaced_one_is_recognised,
    an_ended_or_expired_session_keeps_its_ticket,
    of_concurrent_resumes_with_one_ticket_exactly_one_wins,
);
