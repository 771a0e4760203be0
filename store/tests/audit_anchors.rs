//! The audit trail's anchors on both backends: a writer's stream is registered with its newest
//! head, heads are recorded once (the same head again is harmless, another hash under a
//! recorded number is refused), same-named streams of two signing keys stay apart, and
//! writers opening one stream at once from two nodes both register it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use rampart_store::{AuditAnchor, StoreError};

fn anchor(key_id: &str, seq: u64, hash: &str) -> AuditAnchor {
    AuditAnchor {
        key_id: key_id.to_owned(),
        stream: "gateway".to_owned(),
        seq,
        hash: hash.repeat(64),
        file: "gateway-0000000000000000.jsonl".to_owned(),
        recorded_at: NOW,
    }
}

async fn a_stream_keeps_every_head_and_returns_the_newest(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    assert_eq!(
        store.open_audit_stream("k1", "gateway", "gateway", NOW).await.unwrap(),
        None
    );
    for (seq, hash) in [(5, "a"), (41, "b"), (17, "c")] {
        store.anchor_audit_head(&anchor("k1", seq, hash)).await.unwrap();
    }
    // Recorded again after a retry: nothing changes.
    store.anchor_audit_head(&anchor("k1", 41, "b")).await.unwrap();
    let head = store
        .open_audit_stream("k1", "gateway", "gateway", NOW + 60)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((head.seq, head.hash.as_str()), (41, "b".repeat(64).as_str()));
    let seqs: Vec<u64> = store
        .audit_anchors("k1", "gateway")
        .await
        .unwrap()
        .iter()
        .map(|a| a.seq)
        .collect();
    assert_eq!(seqs, [5, 17, 41]);

    // Another record under a number already anchored is refused, and the first one stays.
    let forged = store.anchor_audit_head(&anchor("k1", 41, "d")).await;
    assert!(matches!(forged, Err(StoreError::Conflict(_))), "{forged:?}");
    let anchors = store.audit_anchors("k1", "gateway").await.unwrap();
    assert_eq!(anchors[2].hash, "b".repeat(64));

    // Another node's stream of the same name, signed by its own key, is a stream of its own.
    assert_eq!(
        store.open_audit_stream("k2", "gateway", "gateway", NOW).await.unwrap(),
        None
    );
    store.anchor_audit_head(&anchor("k2", 3, "e")).await.unwrap();
    let streams = store.audit_streams().await.unwrap();
    let listed: Vec<(&str, &str, Option<u64>)> = streams
        .iter()
        .map(|s| (s.key_id.as_str(), s.stream.as_str(), s.head.as_ref().map(|h| h.seq)))
        .collect();
    assert_eq!(listed, [("k1", "gateway", Some(41)), ("k2", "gateway", Some(3))]);
    assert_eq!(streams[0].first_seen_at, NOW);
    assert_eq!(streams[0].last_opened_at, NOW + 60);
    assert_eq!(streams[0].service, "gateway");
}

async fn a_head_for_a_stream_never_opened_registers_it(backend: Backend) {
    let (_db, store) = fresh_store(backend).await;
    store.anchor_audit_head(&anchor("k1", 9, "a")).await.unwrap();
    let streams = store.audit_streams().await.unwrap();
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].head.as_ref().map(|h| h.seq), Some(9));
    // Two writers registering at once (a restart racing an old process) both succeed.
    let (a, b) = tokio::join!(
        store.open_audit_stream("k1", "provisioner", "provisioner", NOW),
        store.open_audit_stream("k1", "provisioner", "provisioner", NOW + 1)
    );
    assert_eq!((a.unwrap(), b.unwrap()), (None, None));
    assert_eq!(store.audit_streams().await.unwrap().len(), 2);
}

both_backends!(
    a_stream_keeps_every_head_and_returns_the_newest,
    a_head_for_a_stream_never_opened_registers_it,
);
