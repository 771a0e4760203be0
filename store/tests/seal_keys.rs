//! Seed-sealing keys kept in the store, on both backends: concurrent rotations from two nodes
//! leave one current key and every seed still opens; a node with the wrong key-encryption key
//! is refused, naming both fingerprints; a one-host installation's `master.key` moves into the
//! store without re-sealing anything.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use rampart_store::seal::{KeyEncryptionKey, LocalKek};
use rampart_store::{KeyRing, SealError};

fn kek(byte: &str) -> Arc<dyn KeyEncryptionKey> {
    Arc::new(LocalKek::from_hex(&byte.repeat(32)).unwrap())
}

async fn two_nodes_rotating_at_once_leave_one_current_key(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (node_a, node_b) = (db.open().await, db.open().await);
    let ring_a = KeyRing::from_store(node_a.clone(), kek("11"), "init", NOW)
        .await
        .unwrap();
    let ring_b = KeyRing::from_store(node_b.clone(), kek("11"), "init", NOW)
        .await
        .unwrap();
    assert_eq!(ring_a.key_ids(), vec![1]);
    assert_eq!(ring_b.key_ids(), vec![1], "the second node uses the key the first made");
    let token = user_with_token(node_a.as_ref(), "u1", "t1").await;
    let sealed = ring_a.seal(&token.id, SEED).unwrap();
    assert!(node_a.reseal(&token.id, &token.sealed, &sealed).await.unwrap());

    let (a, b) = tokio::join!(ring_a.rotate("desk-a", NOW), ring_b.rotate("desk-b", NOW));
    let mut won: Vec<u32> = [&a, &b].iter().filter_map(|r| r.as_ref().ok().copied()).collect();
    won.sort_unstable();
    // Both read key 1 as current: one adds key 2, the other is told it exists. Or one ran
    // wholly before the other (a loaded machine): they add keys 2 and 3, one after the other.
    // Never the same key twice.
    assert!(
        won == vec![2] || won == vec![2, 3],
        "one key per rotation that won: {a:?} {b:?}"
    );
    if let Some(Err(lost)) = [a, b].into_iter().find(Result::is_err) {
        assert!(matches!(lost, SealError::KeyExists(2)), "{lost}");
    }
    let current = *won.last().unwrap();
    ring_a.refresh().await.unwrap();
    ring_b.refresh().await.unwrap();
    assert_eq!((ring_a.current_key_id(), ring_b.current_key_id()), (current, current));
    assert_eq!(node_a.seal_keys().await.unwrap().len(), 1 + won.len());
    // The seed sealed under key 1 still opens on both nodes, and a new seal uses the newest key.
    for ring in [&ring_a, &ring_b] {
        assert_eq!(&**ring.open_fresh(&token.id, &sealed).await.unwrap(), SEED);
    }
    let resealed = ring_b.seal(&token.id, SEED).unwrap();
    assert_eq!(resealed.key_id, current);
    // A third node that has never seen that key learns it when it first meets a seed under it.
    let ring_c = KeyRing::from_store(db.open().await, kek("11"), "init", NOW)
        .await
        .unwrap();
    assert_eq!(&**ring_c.open_fresh(&token.id, &resealed).await.unwrap(), SEED);
    // Key 1 seals a token: it cannot be retired until the token is re-sealed.
    let refused = ring_a.retire(1).await.unwrap_err();
    assert!(refused.to_string().contains("still seals 1 token"), "{refused}");
    assert!(node_a.reseal(&token.id, &sealed, &resealed).await.unwrap());
    ring_a.retire(1).await.unwrap();
    assert_eq!(ring_a.key_ids(), won);
}

async fn a_node_with_the_wrong_key_encryption_key_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    KeyRing::from_store(db.open().await, kek("11"), "init", NOW)
        .await
        .unwrap();
    let err = KeyRing::from_store(db.open().await, kek("22"), "init", NOW)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, SealError::Store(_)), "{err:?}");
    assert!(message.contains("does not open seal key 1"), "{message}");
    assert!(
        message.contains(kek("11").id()) && message.contains(kek("22").id()),
        "{message}"
    );
}

async fn a_store_with_tokens_but_no_keys_waits_for_the_key_file(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    // A one-host installation: seeds sealed under its master.key, then moved to this store.
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("master.key");
    let file_ring = KeyRing::load_or_create(&key_file).unwrap();
    file_ring.rotate("desk", NOW).await.unwrap();
    let token = user_with_token(store.as_ref(), "u1", "t1").await;
    let sealed = file_ring.seal(&token.id, SEED).unwrap();
    assert!(store.reseal(&token.id, &token.sealed, &sealed).await.unwrap());

    let refused = KeyRing::from_store(store.clone(), kek("11"), "init", NOW)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("import"), "{refused}");
    assert!(
        store.seal_keys().await.unwrap().is_empty(),
        "no fresh key 1 may shadow the file's key 1"
    );

    let added = KeyRing::import_file(store.as_ref(), kek("11").as_ref(), &key_file, "import", NOW)
        .await
        .unwrap();
    assert_eq!(added, vec![1, 2]);
    let again = KeyRing::import_file(store.as_ref(), kek("11").as_ref(), &key_file, "import", NOW)
        .await
        .unwrap();
    assert!(again.is_empty(), "importing twice adds nothing");
    let ring = KeyRing::from_store(store.clone(), kek("11"), "init", NOW)
        .await
        .unwrap();
    assert_eq!(ring.current_key_id(), 2);
    assert_eq!(&**ring.open_fresh(&token.id, &sealed).await.unwrap(), SEED);
    // Nothing in the store reveals a key: the wrapped form differs from the file's bytes.
    let file_text = std::fs::read_to_string(&key_file).unwrap();
    for key in store.seal_keys().await.unwrap() {
        let hex: String = key.wrapped.iter().map(|b| format!("{b:02x}")).collect();
        assert!(file_text.lines().all(|line| !line.ends_with(&hex[..64.min(hex.len())])));
    }
}

both_backends!(
    two_nodes_rotating_at_once_leave_one_current_key,
    a_node_with_the_wrong_key_encryption_key_is_refused,
    a_store_with_tokens_but_no_keys_waits_for_the_key_file,
);
