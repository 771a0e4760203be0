//! `PgStore`: the scale-out backend. Several gateways and provisioners on several hosts share
//! one PostgreSQL database; replication and failover are PostgreSQL's own.
//!
//! A store is given one or more hosts (`postgres://user@db1:5432,db2:5432/rampart`, as libpq
//! writes them). It works on the one that accepts writes: at start it asks each host in turn
//! whether it is in recovery, and a watcher repeats the question every
//! [`PgSettings::health_interval`]. When the primary stops answering or turns out to be a
//! standby (after a failover), the watcher finds the host that now accepts writes and moves the
//! pool there, with no restart. In between, calls fail with [`StoreError::Unavailable`], which
//! callers answer with "try again" — never with a login let through.

mod hosts;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::{StoreError, schema};

pub use hosts::parse_hosts;

// The shared statements' code, compiled here with this backend's `dialect` (see `ops/mod.rs`).
#[allow(clippy::duplicate_mod, reason = "one source for both backends is the point")]
#[path = "../ops/mod.rs"]
mod ops;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// What PostgreSQL does differently from SQLite, for the shared statements' code in `ops/`.
mod dialect {
    use sqlx::Transaction;

    use crate::StoreError;

    pub(crate) type Db = sqlx::Postgres;
    pub(crate) type Pool = sqlx::PgPool;
    pub(crate) type Conn = sqlx::PgConnection;
    pub(crate) type DbRow = sqlx::postgres::PgRow;
    pub(crate) type Args<'q> = <Db as sqlx::Database>::Arguments<'q>;

    /// READ COMMITTED: every rule that must hold across hosts is either one conditional
    /// statement (re-checked by PostgreSQL on the locked row) or runs under [`serialize`] or
    /// [`LOCK_ROW`].
    pub(crate) const BEGIN_WRITE: &str = "BEGIN";
    /// A read transaction whose statements all see one snapshot (READ COMMITTED would give
    /// each statement its own).
    pub(crate) const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    /// Appended to a read of a row a transaction will change: other writers wait until commit.
    pub(crate) const LOCK_ROW: &str = " FOR UPDATE";
    /// Keeps other writers off `tokens` until commit (readers go on).
    pub(crate) const LOCK_TOKENS_AGAINST_WRITES: &str = "LOCK TABLE tokens IN SHARE MODE";
    /// Appended to a pick among candidate rows: concurrent pickers take different rows
    /// instead of queueing for the same one and then finding it taken.
    pub(crate) const LOCK_ROW_SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";
    /// The database's clock in unix milliseconds (the primary's clock, which every node
    /// compares its own with).
    pub(crate) const DATABASE_TIME_MS: &str =
        "SELECT CAST(FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT)";

    /// Serialises write transactions that check before they change on `key`, with a
    /// transaction-scoped advisory lock, released at commit or rollback.
    pub(crate) async fn serialize(tx: &mut Transaction<'static, Db>, key: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut **tx)
            .await
            .map(|_| ())
            .map_err(StoreError::from_sqlx)
    }
}

/// The backend the shared statements' code in `ops/` implements the store's traits for.
type Backend = PgStore;

/// How a [`PgStore`] connects.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// Connections per process to the primary.
    pub pool_size: u32,
    /// How long connecting (and waiting for a pooled connection) may take.
    pub connect_timeout: Duration,
    /// Longest a statement may run before PostgreSQL cancels it.
    pub statement_timeout: Duration,
    /// How often the watcher checks that the store still works on the primary.
    pub health_interval: Duration,
}

impl Default for PgSettings {
    fn default() -> Self {
        Self {
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            health_interval: Duration::from_secs(1),
        }
    }
}

/// The PostgreSQL-backed store.
#[derive(Debug, Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Every host the store may use, in the order given.
    hosts: Vec<PgConnectOptions>,
    settings: PgSettings,
    /// The pool on the host that accepted writes when last checked, and that host's index.
    current: RwLock<(PgPool, usize)>,
    /// Set by [`PgStore::close`]: the watcher stops and swaps in nothing more.
    closed: AtomicBool,
}

impl std::fmt::Debug for Inner {
    /// Hosts as `host:port` only: connect options hold the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("hosts", &self.hosts.iter().map(describe).collect::<Vec<_>>())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to the host of `hosts` that accepts writes and checks that the database's
    /// schema is the one this build needs ([`StoreError::Schema`] says which command to run
    /// otherwise). Starts the watcher that follows a failover.
    pub async fn connect(hosts: Vec<PgConnectOptions>, settings: PgSettings) -> Result<Self, StoreError> {
        let store = Self::connect_unchecked(hosts, settings).await?;
        schema::check_postgres(&store.pool(), &MIGRATOR).await?;
        store.watch();
        Ok(store)
    }

    /// Connects and applies the pending migrations (under PostgreSQL's advisory lock, so nodes
    /// doing this together apply each migration once). Returns the store and the schema
    /// versions before and after.
    pub async fn migrate(hosts: Vec<PgConnectOptions>, settings: PgSettings) -> Result<(Self, i64, i64), StoreError> {
        let store = Self::connect_unchecked(hosts, settings).await?;
        let (before, after) = schema::migrate_postgres(&store.pool(), &MIGRATOR).await?;
        store.watch();
        Ok((store, before, after))
    }

    /// The newest schema version this build knows.
    pub fn schema_version() -> i64 {
        schema::latest(&MIGRATOR)
    }

    async fn connect_unchecked(hosts: Vec<PgConnectOptions>, settings: PgSettings) -> Result<Self, StoreError> {
        if hosts.is_empty() {
            return Err(StoreError::Config("no PostgreSQL host given".to_owned()));
        }
        let hosts: Vec<PgConnectOptions> = hosts
            .into_iter()
            .map(|host| {
                let timeout = format!("{}ms", settings.statement_timeout.as_millis());
                host.options([("statement_timeout", timeout.as_str())])
                    .application_name("rampart")
                    .log_statements(tracing::log::LevelFilter::Trace)
            })
            .collect();
        let (pool, index) = find_primary(&hosts, &settings).await?;
        tracing::info!(target: "rampart::store", host = %describe(&hosts[index]), "postgresql store open on the primary");
        Ok(Self {
            inner: Arc::new(Inner {
                hosts,
                settings,
                current: RwLock::new((pool, index)),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// The host the store works on now, as `host:port`.
    pub fn primary(&self) -> String {
        let index = self.inner.current.read().map(|current| current.1).unwrap_or(0);
        self.inner.hosts.get(index).map(describe).unwrap_or_default()
    }

    /// Closes every pooled connection. Later calls fail with [`StoreError::Unavailable`] and
    /// the watcher stops.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.pool().close().await;
    }

    fn describe_backend(&self) -> String {
        format!("postgresql {}", self.primary())
    }

    /// The pool on the current primary.
    fn pool(&self) -> PgPool {
        match self.inner.current.read() {
            Ok(current) => current.0.clone(),
            Err(poisoned) => poisoned.into_inner().0.clone(),
        }
    }

    /// Bounds a call by the statement timeout plus the connect timeout on this side: the
    /// server's `statement_timeout` does nothing once the server is gone, and without keep-
    /// alives a statement sent to a host that lost power would wait for the kernel to give
    /// up (minutes). A call cut short fails closed as [`StoreError::Unavailable`].
    async fn bounded<T>(&self, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let limit = self.inner.settings.statement_timeout + self.inner.settings.connect_timeout;
        tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "the database did not answer within {} ms",
                limit.as_millis()
            )))
        })
    }

    /// PostgreSQL needs no gate: its row locks and conditional statements serialise writers.
    async fn write_gate(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        None
    }

    /// Starts the watcher. It holds only a weak reference, so it ends with the last clone of
    /// the store, or when the store is closed.
    fn watch(&self) {
        let weak = Arc::downgrade(&self.inner);
        let interval = self.inner.settings.health_interval;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if !check_once(&weak).await {
                    return;
                }
            }
        });
    }
}

/// One round of the watcher; false once the store is gone or closed.
async fn check_once(weak: &Weak<Inner>) -> bool {
    let Some(inner) = weak.upgrade() else {
        return false;
    };
    if inner.closed.load(Ordering::Acquire) {
        return false;
    }
    let (pool, index) = match inner.current.read() {
        Ok(current) => current.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    if !pool.is_closed() {
        let asked = sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()").fetch_one(&pool);
        if let Ok(Ok(false)) = tokio::time::timeout(inner.settings.connect_timeout, asked).await {
            return true;
        }
        // The pool may only be busy (a login storm): ask the host on a connection of its own
        // before deciding it is gone.
        if let Some(host) = inner.hosts.get(index)
            && let Ok(false) = probe(host, inner.settings.connect_timeout).await
        {
            return true;
        }
    }
    tracing::warn!(target: "rampart::store", host = %inner.hosts.get(index).map(describe).unwrap_or_default(), "the database host does not accept writes: looking for the primary");
    match find_primary(&inner.hosts, &inner.settings).await {
        Ok((new_pool, found)) if found == index && !pool.is_closed() => {
            // The same host answers again: keep the pool, which reconnects by itself.
            new_pool.close().await;
        }
        Ok((new_pool, found)) => {
            if inner.closed.load(Ordering::Acquire) {
                new_pool.close().await;
                return false;
            }
            tracing::warn!(target: "rampart::store", host = %describe(&inner.hosts[found]), "store moved to the primary");
            let old = match inner.current.write() {
                Ok(mut current) => std::mem::replace(&mut *current, (new_pool, found)),
                Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), (new_pool, found)),
            };
            // Connections to the old host go; statements still running on them finish or fail.
            tokio::spawn(async move { old.0.close().await });
        }
        Err(err) => {
            // No writable host: stop serving from this one (it may be a standby now, whose
            // reads could be stale), so every call fails closed until a primary is found.
            tracing::warn!(target: "rampart::store", error = %err, "no database host accepts writes: refusing until one does");
            tokio::spawn(async move { pool.close().await });
        }
    }
    true
}

/// Asks every host whether it accepts writes and opens a pool on the one that does. Two
/// writable hosts (an old primary back without fencing after a promotion) are refused: writing
/// to either could accept a code the other already accepted.
async fn find_primary(hosts: &[PgConnectOptions], settings: &PgSettings) -> Result<(PgPool, usize), StoreError> {
    // Every host at once, so a dead host costs one connect timeout, not one per host.
    let asked: Vec<_> = hosts
        .iter()
        .map(|host| {
            let (host, timeout) = (host.clone(), settings.connect_timeout);
            tokio::spawn(async move { probe(&host, timeout).await })
        })
        .collect();
    let mut answers = Vec::with_capacity(asked.len());
    for answer in asked {
        answers.push(answer.await.unwrap_or_else(|_| Err("the probe failed".to_owned())));
    }
    let mut problems = Vec::new();
    let mut writable = Vec::new();
    for (index, (host, answer)) in hosts.iter().zip(answers).enumerate() {
        match answer {
            Ok(false) => writable.push(index),
            Ok(true) => problems.push(format!("{} is a standby", describe(host))),
            Err(err) => problems.push(format!("{}: {err}", describe(host))),
        }
    }
    match writable.as_slice() {
        [index] => {
            let pool = PgPoolOptions::new()
                .max_connections(settings.pool_size)
                .acquire_timeout(settings.connect_timeout)
                .test_before_acquire(false)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // A host that turned standby since it was chosen serves no connection.
                        let in_recovery: bool =
                            sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(conn).await?;
                        if in_recovery {
                            return Err(sqlx::Error::Configuration("the database host is a standby now".into()));
                        }
                        Ok(())
                    })
                })
                .connect_lazy_with(hosts[*index].clone());
            Ok((pool, *index))
        }
        [] => Err(StoreError::Unavailable(format!(
            "no PostgreSQL host accepts writes ({})",
            problems.join("; ")
        ))),
        several => {
            let names: Vec<String> = several.iter().map(|i| describe(&hosts[*i])).collect();
            tracing::error!(target: "rampart::store", hosts = ?names, "more than one database host accepts writes: fence the old primary");
            Err(StoreError::Unavailable(format!(
                "more than one PostgreSQL host accepts writes ({}): fence the old primary",
                names.join(", ")
            )))
        }
    }
}

/// Whether `host` is in recovery (a standby), on a connection of its own.
async fn probe(host: &PgConnectOptions, timeout: Duration) -> Result<bool, String> {
    let attempt = async {
        let mut conn = host.connect().await.map_err(|err| err.to_string())?;
        let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
            .fetch_one(&mut conn)
            .await
            .map_err(|err| err.to_string())?;
        let _ = conn.close().await;
        Ok(in_recovery)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} ms", timeout.as_millis())))
}

/// `host:port` of a host, for logs and errors (never the password).
fn describe(host: &PgConnectOptions) -> String {
    format!("{}:{}", host.get_host(), host.get_port())
}
