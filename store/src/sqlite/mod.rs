//! `SqliteStore`: the embedded default backend, one SQLite file in WAL mode with
//! `synchronous=FULL`, so every acknowledged write (an accepted step, a failure) is on disk
//! before the caller answers a login. Several processes may open the same file; SQLite's write
//! lock serialises their conditional updates.

mod sessions;
mod tokens;
mod users;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::{SessionRecord, StepOutcome, Store, StoreError, TokenRecord, TokenState, UserRecord, sql};

/// File name of the database inside the state directory.
pub const DB_FILE_NAME: &str = "rampart.db";
/// Connections per process. SQLite has one writer at a time; a few readers suffice.
const MAX_CONNECTIONS: u32 = 8;
/// How long a statement waits for another connection's or process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite-backed [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
    /// One writer at a time inside this process. SQLite allows one writer per file anyway;
    /// without this gate, concurrent writers collide on the write lock and wait in SQLite's
    /// busy handler, which sleeps in coarse steps and collapses throughput under a login
    /// storm. Other processes are still serialised by SQLite's lock and `busy_timeout`.
    writes: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl SqliteStore {
    /// Opens (creating if needed) `state_dir/rampart.db`, creating `state_dir` too, and applies
    /// pending migrations.
    pub async fn open(state_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(state_dir)
            .map_err(|err| StoreError::Unavailable(format!("cannot create {}: {err}", state_dir.display())))?;
        Self::open_file(&state_dir.join(DB_FILE_NAME)).await
    }

    /// Opens (creating if needed) the database file at `path` and applies pending migrations.
    /// The parent directory must exist.
    pub async fn open_file(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|err| StoreError::Unavailable(format!("cannot open {}: {err}", path.display())))?;
        migrate(&pool, path).await?;
        tracing::info!(target: "rampart::store", path = %path.display(), "sqlite store open");
        Ok(Self {
            pool,
            path: path.to_owned(),
            writes: std::sync::Arc::default(),
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every pooled connection, waiting for running statements to finish. Later calls
    /// fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Applies embedded migrations. SQLite has no advisory lock, so two processes opening a fresh
/// file together can race; the loser's migration fails on an existing table, and a second run
/// then sees the winner's migration as applied.
async fn migrate(pool: &SqlitePool, path: &Path) -> Result<(), StoreError> {
    let first = MIGRATOR.run(pool).await;
    let result = match first {
        Ok(()) => return Ok(()),
        Err(_) => MIGRATOR.run(pool).await,
    };
    result.map_err(|err| StoreError::Unavailable(format!("cannot migrate {}: {err}", path.display())))
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn upsert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let _writer = self.writes.lock().await;
        users::upsert(&self.pool, user).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        users::fetch(&self.pool, sql::USER_BY_USERNAME, username).await
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        users::fetch(&self.pool, sql::USER_BY_ID, id).await
    }

    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let _writer = self.writes.lock().await;
        tokens::insert(&self.pool, token).await
    }

    async fn live_token_for_user(&self, user_id: &str) -> Result<Option<TokenRecord>, StoreError> {
        tokens::live_for_user(&self.pool, user_id).await
    }

    async fn set_token_state(&self, token_id: &str, state: TokenState, now: i64) -> Result<(), StoreError> {
        let _writer = self.writes.lock().await;
        tokens::set_state(&self.pool, token_id, state, now).await
    }

    async fn accept_step(
        &self,
        token_id: &str,
        step: u64,
        max_failures: u32,
        now: i64,
    ) -> Result<StepOutcome, StoreError> {
        let _writer = self.writes.lock().await;
        tokens::accept_step(&self.pool, token_id, step, max_failures, now).await
    }

    async fn record_failure(&self, token_id: &str, now: i64) -> Result<u32, StoreError> {
        let _writer = self.writes.lock().await;
        tokens::record_failure(&self.pool, token_id, now).await
    }

    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let _writer = self.writes.lock().await;
        sessions::insert(&self.pool, session).await
    }

    async fn session_by_ticket_hash(&self, ticket_hash: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
        sessions::by_ticket_hash(&self.pool, ticket_hash).await
    }

    async fn end_session(&self, session_id: &str, reason: &str, now: i64) -> Result<(), StoreError> {
        let _writer = self.writes.lock().await;
        sessions::end(&self.pool, session_id, reason, now).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(sql::PING)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(StoreError::from_sqlx)
    }
}

/// A number from a row that must fit `T`; otherwise the row is corrupt.
fn decode_int<T: TryFrom<i64>>(value: i64, column: &str) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} out of range")))
}

/// A caller's number that must fit a BIGINT column.
fn encode_u64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Conflict(format!("{what} out of range")))
}
