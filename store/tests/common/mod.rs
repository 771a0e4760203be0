//! Fixtures shared by the store's integration tests: a store in a fresh temporary directory,
//! sample users, tokens and sessions.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use rampart_core::totp::TotpParams;
use rampart_store::{KeyRing, SealedSeed, SessionRecord, SqliteStore, TokenRecord, UserRecord};

pub const NOW: i64 = 1_700_000_000;
pub const SEED: &[u8; 20] = b"12345678901234567890";

pub async fn fresh_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state")).await.unwrap();
    (dir, store)
}

pub fn key_ring() -> KeyRing {
    KeyRing::from_keys([(1, &[0x42u8; 32])]).unwrap()
}

pub fn user(id: &str, username: &str, groups: &[&str]) -> UserRecord {
    UserRecord {
        id: id.to_owned(),
        username: username.to_owned(),
        display_name: format!("User {username}"),
        password_hash: None,
        enabled: true,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        created_at: NOW,
    }
}

pub fn token(id: &str, user_id: &str, sealed: SealedSeed) -> TokenRecord {
    TokenRecord::pending(id.to_owned(), user_id.to_owned(), TotpParams::default(), sealed, NOW)
}

/// A pending token for a new user `user_id`, stored and returned.
pub async fn user_with_token(store: &SqliteStore, user_id: &str, token_id: &str) -> TokenRecord {
    use rampart_store::Store;
    store.upsert_user(&user(user_id, user_id, &[])).await.unwrap();
    let sealed = key_ring().seal(token_id, SEED).unwrap();
    let token = token(token_id, user_id, sealed);
    store.insert_token(&token).await.unwrap();
    token
}

pub fn session(id: &str, ticket_hash: &[u8]) -> SessionRecord {
    SessionRecord {
        id: id.to_owned(),
        ticket_hash: ticket_hash.to_vec(),
        user_id: "u1".to_owned(),
        username: "alice".to_owned(),
        groups: vec!["staff".to_owned(), "vpn \"users\"".to_owned()],
        source: "192.0.2.7:50000".to_owned(),
        created_at: NOW,
        expires_at: NOW + 3600,
        ended_at: None,
        end_reason: None,
        token_id: None,
        last_seen_at: None,
    }
}
