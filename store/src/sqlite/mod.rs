//! `SqliteStore`: the embedded default backend, one SQLite file in WAL mode with
//! `synchronous=FULL`, so every acknowledged write (an accepted step, a failure) is on disk
//! before the caller answers a login. Several processes may open the same file; SQLite's write
//! lock serialises their conditional updates.

mod history;
mod issue;
mod operators;
mod reseal;
mod sessions;
mod temp_codes;
mod token_admin;
mod token_views;
mod tokens;
mod users;
mod vms;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::Transaction;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::{
    AllocationRequest, EndedSession, IssueOutcome, OperatorRecord, PoolCounts, PoolRecord, SealedSeed, SessionRecord,
    StepOutcome, Store, StoreError, TempCodeRecord, TokenEvent, TokenIssue, TokenQuery, TokenRecord, TokenState,
    TokenView, UserRecord, VmChange, VmEvent, VmRecord, VmState, sql,
};

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
        let mut tx = begin_write(&self.pool).await?;
        users::upsert(&mut tx, user).await?;
        commit(tx).await
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

    async fn live_sessions_for_user(&self, user_id: &str, now: i64) -> Result<Vec<SessionRecord>, StoreError> {
        sessions::live_for_user(&self.pool, user_id, now).await
    }

    async fn live_sessions(&self, now: i64, limit: u32) -> Result<Vec<SessionRecord>, StoreError> {
        sessions::live(&self.pool, now, limit).await
    }

    async fn end_user_sessions(&self, user_id: &str, reason: &str, now: i64) -> Result<Vec<String>, StoreError> {
        let _writer = self.writes.lock().await;
        sessions::end_for_user(&self.pool, user_id, reason, now).await
    }

    async fn session_end_seq(&self) -> Result<u64, StoreError> {
        sessions::end_seq(&self.pool).await
    }

    async fn sessions_ended_after(&self, after: u64) -> Result<Vec<EndedSession>, StoreError> {
        sessions::ended_after(&self.pool, after).await
    }

    async fn touch_session(&self, session_id: &str, now: i64) -> Result<(), StoreError> {
        let _writer = self.writes.lock().await;
        sessions::touch(&self.pool, session_id, now).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(sql::PING)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(StoreError::from_sqlx)
    }

    // ----- provisioning -----

    async fn users_in_group(&self, group: &str) -> Result<Vec<UserRecord>, StoreError> {
        users::in_group(&self.pool, group).await
    }

    async fn issue_token(&self, issue: &TokenIssue, now: i64) -> Result<IssueOutcome, StoreError> {
        let _writer = self.writes.lock().await;
        issue::issue(&self.pool, issue, now).await
    }

    async fn issue_tokens(
        &self,
        issues: &[TokenIssue],
        now: i64,
    ) -> Result<Vec<Result<IssueOutcome, StoreError>>, StoreError> {
        let _writer = self.writes.lock().await;
        issue::issue_many(&self.pool, issues, now).await
    }

    async fn confirm_delivery(&self, token_ids: &[String], actor: &str, now: i64) -> Result<u64, StoreError> {
        let _writer = self.writes.lock().await;
        issue::confirm_delivery(&self.pool, token_ids, actor, now).await
    }

    async fn token_by_id(&self, token_id: &str) -> Result<Option<TokenRecord>, StoreError> {
        tokens::by_id(&self.pool, token_id).await
    }

    async fn list_tokens(&self, query: &TokenQuery) -> Result<Vec<TokenView>, StoreError> {
        token_views::list(&self.pool, query).await
    }

    async fn end_token(
        &self,
        token_id: &str,
        state: TokenState,
        actor: &str,
        detail: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let _writer = self.writes.lock().await;
        token_admin::end(&self.pool, token_id, state, actor, detail, now).await
    }

    async fn unlock_token(&self, token_id: &str, actor: &str, now: i64) -> Result<(), StoreError> {
        let _writer = self.writes.lock().await;
        token_admin::unlock(&self.pool, token_id, actor, now).await
    }

    async fn resync_token(
        &self,
        token_id: &str,
        step: u64,
        drift_steps: i64,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let _writer = self.writes.lock().await;
        token_admin::resync(&self.pool, token_id, step, drift_steps, actor, now).await
    }

    async fn record_token_event(&self, event: &TokenEvent) -> Result<(), StoreError> {
        let _writer = self.writes.lock().await;
        let mut conn = self.pool.acquire().await.map_err(StoreError::from_sqlx)?;
        history::append(&mut conn, event).await
    }

    async fn token_events(&self, user_id: Option<&str>, limit: u32) -> Result<Vec<TokenEvent>, StoreError> {
        history::recent(&self.pool, user_id, limit).await
    }

    async fn sealed_seeds(&self) -> Result<Vec<(String, SealedSeed)>, StoreError> {
        reseal::sealed_seeds(&self.pool).await
    }

    async fn reseal(&self, token_id: &str, old: &SealedSeed, new: &SealedSeed) -> Result<bool, StoreError> {
        let _writer = self.writes.lock().await;
        reseal::reseal(&self.pool, token_id, old, new).await
    }

    async fn insert_temp_code(&self, code: &TempCodeRecord) -> Result<(), StoreError> {
        let _writer = self.writes.lock().await;
        temp_codes::insert(&self.pool, code).await
    }

    async fn consume_temp_code(&self, user_id: &str, code_hash: &[u8], now: i64) -> Result<bool, StoreError> {
        let _writer = self.writes.lock().await;
        temp_codes::consume(&self.pool, user_id, code_hash, now).await
    }

    async fn insert_operator(&self, operator: &OperatorRecord) -> Result<(), StoreError> {
        let _writer = self.writes.lock().await;
        operators::insert(&self.pool, operator).await
    }

    async fn operator_by_key_hash(&self, key_hash: &[u8]) -> Result<Option<OperatorRecord>, StoreError> {
        operators::by_key_hash(&self.pool, key_hash).await
    }

    async fn list_operators(&self) -> Result<Vec<OperatorRecord>, StoreError> {
        operators::list(&self.pool).await
    }

    async fn revoke_operator(&self, name: &str, now: i64) -> Result<(), StoreError> {
        let _writer = self.writes.lock().await;
        operators::revoke(&self.pool, name, now).await
    }

    async fn create_pool(&self, pool: &PoolRecord) -> Result<(), StoreError> {
        let _writer = self.writes.lock().await;
        let mut tx = begin_write(&self.pool).await?;
        vms::create_pool(&mut tx, pool).await?;
        commit(tx).await
    }

    async fn pools(&self, name: Option<&str>) -> Result<Vec<PoolRecord>, StoreError> {
        vms::pools(&self.pool, name).await
    }

    async fn add_vms(&self, list: &[VmRecord], actor: &str, now: i64) -> Result<(), StoreError> {
        let _writer = self.writes.lock().await;
        let mut tx = begin_write(&self.pool).await?;
        vms::add_vms(&mut tx, list, actor, now).await?;
        commit(tx).await
    }

    async fn vms(
        &self,
        pool: Option<&str>,
        state: Option<VmState>,
        holder: Option<&str>,
    ) -> Result<Vec<VmRecord>, StoreError> {
        vms::vms(&self.pool, pool, state, holder).await
    }

    async fn vm(&self, id: &str) -> Result<Option<VmRecord>, StoreError> {
        vms::vm(&self.pool, id).await
    }

    async fn allocate_vm(&self, request: &AllocationRequest, now: i64) -> Result<VmRecord, StoreError> {
        let _writer = self.writes.lock().await;
        let mut tx = begin_write(&self.pool).await?;
        let vm = vms::allocate(&mut tx, request, now).await?;
        commit(tx).await?;
        Ok(vm)
    }

    async fn change_vm(&self, change: &VmChange, now: i64) -> Result<VmRecord, StoreError> {
        let _writer = self.writes.lock().await;
        let mut tx = begin_write(&self.pool).await?;
        let vm = vms::change(&mut tx, change, now).await?;
        commit(tx).await?;
        Ok(vm)
    }

    async fn reassign_vm(
        &self,
        vm_id: &str,
        user_id: &str,
        username: &str,
        actor: &str,
        now: i64,
    ) -> Result<VmRecord, StoreError> {
        let _writer = self.writes.lock().await;
        let mut tx = begin_write(&self.pool).await?;
        let vm = vms::reassign(&mut tx, vm_id, user_id, username, actor, now).await?;
        commit(tx).await?;
        Ok(vm)
    }

    async fn vm_held(&self, user_id: &str, pool: &str) -> Result<Option<VmRecord>, StoreError> {
        vms::held(&self.pool, user_id, pool).await
    }

    async fn touch_vm_flow(&self, vm_id: &str, now: i64) -> Result<(), StoreError> {
        let _writer = self.writes.lock().await;
        let mut tx = begin_write(&self.pool).await?;
        vms::touch_flow(&mut tx, vm_id, now).await?;
        commit(tx).await
    }

    async fn pool_counts(&self) -> Result<Vec<PoolCounts>, StoreError> {
        vms::counts(&self.pool).await
    }

    async fn vm_events(&self, pool: Option<&str>, since: i64) -> Result<Vec<VmEvent>, StoreError> {
        vms::events(&self.pool, pool, since).await
    }
}

/// Starts a write transaction holding SQLite's write lock from its first statement
/// (`BEGIN IMMEDIATE`), waiting up to the busy timeout for another process's writer. A
/// deferred transaction that reads before it writes could instead fail at once with
/// `SQLITE_BUSY` when another process commits in between. Callers hold the in-process write
/// gate; dropping the transaction without [`commit`] rolls everything back.
async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, StoreError> {
    pool.begin_with("BEGIN IMMEDIATE").await.map_err(StoreError::from_sqlx)
}

/// Commits a transaction from [`begin_write`]; the change is on disk when this returns.
async fn commit(tx: Transaction<'static, Sqlite>) -> Result<(), StoreError> {
    tx.commit().await.map_err(StoreError::from_sqlx)
}

/// A number from a row that must fit `T`; otherwise the row is corrupt.
fn decode_int<T: TryFrom<i64>>(value: i64, column: &str) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} out of range")))
}

/// A caller's number that must fit a BIGINT column.
fn encode_u64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Conflict(format!("{what} out of range")))
}
