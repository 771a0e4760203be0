//! Fixtures shared by the store's integration tests: a store in a fresh temporary directory,
//! sample users, tokens and sessions.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use rampart_core::totp::TotpParams;
use rampart_store::{
    KeyRing, PgSettings, PgStore, SealedSeed, SessionRecord, SqliteStore, Store, TokenRecord, UserRecord, parse_hosts,
};

pub const NOW: i64 = 1_700_000_000;
pub const SEED: &[u8; 20] = b"12345678901234567890";

/// Which backend a test runs on. Every test written against [`TestDb`] runs on both, through
/// [`both_backends!`](crate::both_backends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database of one backend: a SQLite file in a temporary folder, or a new
/// database in the PostgreSQL cluster this test binary started for itself.
pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::Sqlite(tempfile::tempdir().unwrap()),
            Backend::Postgres => {
                let url = tokio::task::spawn_blocking(|| rampart_pgtest::shared().unwrap().fresh_database().unwrap())
                    .await
                    .unwrap();
                // The shared database is upgraded by an explicit migration; nodes only check.
                PgStore::migrate(parse_hosts(&url, None).unwrap(), settings())
                    .await
                    .unwrap();
                Self::Postgres(url)
            }
        }
    }

    /// A store on this database, as another gateway or provisioner process would open it.
    pub async fn open(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(dir) => Arc::new(SqliteStore::open(&dir.path().join("state")).await.unwrap()),
            Self::Postgres(url) => Arc::new(
                PgStore::connect(parse_hosts(url, None).unwrap(), settings())
                    .await
                    .unwrap(),
            ),
        }
    }
}

fn settings() -> PgSettings {
    PgSettings {
        pool_size: 8,
        ..PgSettings::default()
    }
}

/// A store on a fresh database of `backend`; keep the [`TestDb`] alive as long as the store.
pub async fn fresh_store(backend: Backend) -> (TestDb, Arc<dyn Store>) {
    let db = TestDb::new(backend).await;
    let store = db.open().await;
    (db, store)
}

/// Runs each named `async fn NAME(backend: Backend)` once on SQLite and once on PostgreSQL, as
/// the tests `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
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
pub async fn user_with_token(store: &dyn Store, user_id: &str, token_id: &str) -> TokenRecord {
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
        gateway_id: None,
        client_key: Some(vec![0x07; 32]),
    }
}
