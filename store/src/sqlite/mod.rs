//! `SqliteStore`: the embedded default backend, one SQLite file in WAL mode with
//! `synchronous=FULL`, so every acknowledged write (an accepted step, a failure) is on disk
//! before the caller answers a login. Several processes may open the same file; SQLite's write
//! lock serialises their conditional updates.

// The shared statements' code, compiled here with this backend's `dialect` (see `ops/mod.rs`).
#[allow(clippy::duplicate_mod, reason = "one source for both backends is the point")]
#[path = "../ops/mod.rs"]
mod ops;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::StoreError;
use crate::schema;

/// What SQLite does differently from PostgreSQL, for the shared statements' code in `ops/`.
mod dialect {
    use sqlx::Transaction;

    use crate::StoreError;

    pub(crate) type Db = sqlx::Sqlite;
    pub(crate) type Pool = sqlx::SqlitePool;
    pub(crate) type Conn = sqlx::SqliteConnection;
    pub(crate) type DbRow = sqlx::sqlite::SqliteRow;
    pub(crate) type Args<'q> = <Db as sqlx::Database>::Arguments<'q>;

    /// Takes SQLite's write lock at the first statement. A deferred transaction that reads
    /// before it writes could instead fail at once with `SQLITE_BUSY` when another process
    /// commits in between; with the lock held from the start, `busy_timeout` applies.
    pub(crate) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
    /// A read transaction: SQLite reads from one snapshot until it ends.
    pub(crate) const BEGIN_READ: &str = "BEGIN";
    /// Appended to a read of a row a transaction will change. SQLite has no row locks and
    /// needs none: a write transaction holds the whole database.
    pub(crate) const LOCK_ROW: &str = "";
    /// Keeps other writers off `tokens` until commit. A SQLite write transaction already does.
    pub(crate) const LOCK_TOKENS_AGAINST_WRITES: &str = "";
    /// Appended to a pick among candidate rows that concurrent writers may also pick.
    pub(crate) const LOCK_ROW_SKIP_LOCKED: &str = "";
    /// The database's clock in unix milliseconds. SQLite runs in this process, on this
    /// host's clock.
    pub(crate) const DATABASE_TIME_MS: &str = "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

    /// Serialises write transactions that check before they change (for example "holds no
    /// VM in this pool yet") on `key`. A SQLite write transaction already excludes every other
    /// writer, so there is nothing to add.
    pub(crate) async fn serialize(_tx: &mut Transaction<'static, Db>, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The backend the shared statements' code in `ops/` implements the store's traits for.
type Backend = SqliteStore;

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
        schema::migrate_sqlite(&pool, &MIGRATOR, path).await?;
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

    fn describe_backend(&self) -> String {
        format!("sqlite {}", self.path.display())
    }

    /// The connection pool the shared statements run on.
    fn pool(&self) -> SqlitePool {
        self.pool.clone()
    }

    /// SQLite runs in this process: a statement cannot hang on a lost network, and
    /// `busy_timeout` bounds the wait for another process's lock.
    async fn bounded<T>(&self, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        call.await
    }

    /// One writer at a time inside this process (see the `writes` field).
    async fn write_gate(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        Some(self.writes.lock().await)
    }
}
