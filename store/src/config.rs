//! The `[store]` table both services read, and opening the store it describes: SQLite in the
//! state directory when the table or its `url` is absent, PostgreSQL when `url` names one or
//! more hosts. The URL and the password can come from the environment (`RAMPART_STORE_URL`,
//! `RAMPART_STORE_PASSWORD`), so secrets need not sit in a config file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::postgres::{PgSettings, PgStore, parse_hosts};
use crate::seal::kek::KEK_ENV;
use crate::seal::{KeyEncryptionKey, LocalKek};
use crate::{KeyRing, SqliteStore, Store, StoreError};

/// The seed-sealing key file of a one-host installation, in its state directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// Environment variable that overrides `[store] url`.
pub const URL_ENV: &str = "RAMPART_STORE_URL";
/// Environment variable that overrides `[store] password_file` (the password itself).
pub const PASSWORD_ENV: &str = "RAMPART_STORE_PASSWORD";

/// The `[store]` table. Its `Debug` hides the URL's password.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://USER@HOST:PORT[,HOST:PORT…]/DATABASE`: several hosts for a primary and its
    /// standbys, in the order to try. Absent: SQLite in the state directory.
    #[serde(default)]
    pub url: Option<String>,
    /// A file holding the database password (its first line), relative to the config file.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A file holding the key-encryption key (64 hex digits, mode 0600) that wraps the seed-
    /// sealing keys kept in the database; or `RAMPART_KEK`. Required with PostgreSQL; absent
    /// with SQLite, the seal keys stay in `STATE_DIR/master.key`.
    #[serde(default)]
    pub kek_file: Option<PathBuf>,
    /// Connections per process.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// How long connecting to a host may take.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Longest a statement may run.
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout_secs: u64,
    /// How often a node checks that its database host still accepts writes (a failover is
    /// followed within about this long plus `connect_timeout_secs`).
    #[serde(default = "default_health_interval")]
    pub health_interval_ms: u64,
}

fn default_pool_size() -> u32 {
    16
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_statement_timeout() -> u64 {
    10
}
fn default_health_interval() -> u64 {
    1000
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: None,
            password_file: None,
            kek_file: None,
            pool_size: default_pool_size(),
            connect_timeout_secs: default_connect_timeout(),
            statement_timeout_secs: default_statement_timeout(),
            health_interval_ms: default_health_interval(),
        }
    }
}

/// Which database a [`StoreConfig`] resolves to, with the environment applied. Its `Debug`
/// hides passwords.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreTarget {
    /// The embedded SQLite file in the state directory.
    Sqlite(PathBuf),
    /// A PostgreSQL database (the URL as configured; it may hold a password, so never log it).
    Postgres {
        /// The URL with one or more hosts.
        url: String,
        /// The password from `password_file` or the environment, if any.
        password: Option<String>,
    },
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url.as_deref().map(without_password))
            .field("password_file", &self.password_file)
            .field("kek_file", &self.kek_file)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("statement_timeout_secs", &self.statement_timeout_secs)
            .field("health_interval_ms", &self.health_interval_ms)
            .finish()
    }
}

impl std::fmt::Debug for StoreTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres { url, password } => f
                .debug_struct("Postgres")
                .field("url", &without_password(url))
                .field("password", &password.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

/// `url` with the password of its user part (`user:password@`) replaced, for display.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let hidden = if userinfo.contains(':') { ":<redacted>" } else { "" };
            format!("{scheme}://{user}{hidden}@{hosts}{tail}")
        }
        None => url.to_owned(),
    }
}

impl StoreConfig {
    /// Resolves relative paths against `base` (the config file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        for file in [&mut self.password_file, &mut self.kek_file].into_iter().flatten() {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
    }

    /// The key-encryption key from `RAMPART_KEK` or `kek_file`, if either is set.
    pub fn kek(&self) -> Result<Option<Arc<dyn KeyEncryptionKey>>, StoreError> {
        let kek = match LocalKek::from_env() {
            Some(kek) => kek?,
            None => match &self.kek_file {
                Some(file) => LocalKek::from_file(file)?,
                None => return Ok(None),
            },
        };
        Ok(Some(Arc::new(kek)))
    }

    /// The seed-sealing keys for `store`: from the store, unwrapped with the key-encryption
    /// key, when one is configured; otherwise from `STATE_DIR/master.key` (created when
    /// `create_file` and missing). A PostgreSQL store without a key-encryption key is refused:
    /// no key file may be shared between hosts.
    pub async fn key_ring(
        &self,
        store: Arc<dyn Store>,
        state_dir: &Path,
        create_file: bool,
        now: i64,
    ) -> Result<KeyRing, StoreError> {
        if let Some(kek) = self.kek()? {
            return Ok(KeyRing::from_store(store, kek, "startup", now).await?);
        }
        if matches!(self.target(state_dir)?, StoreTarget::Postgres { .. }) {
            return Err(StoreError::Config(format!(
                "a shared PostgreSQL store keeps the seed-sealing keys in the database: give every node the same \
                 key-encryption key with [store] kek_file or {KEK_ENV} (make one with `rampart-provisioner keys new-kek`)"
            )));
        }
        let path = state_dir.join(MASTER_KEY_FILE);
        Ok(if create_file {
            KeyRing::load_or_create(&path)?
        } else {
            KeyRing::load(&path)?
        })
    }

    /// Every problem with the settings themselves, for `check-config`.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1..=1000).contains(&self.pool_size) {
            problems.push("store.pool_size must be 1 to 1000".to_owned());
        }
        if !(1..=300).contains(&self.connect_timeout_secs) {
            problems.push("store.connect_timeout_secs must be 1 to 300".to_owned());
        }
        if !(1..=3600).contains(&self.statement_timeout_secs) {
            problems.push("store.statement_timeout_secs must be 1 to 3600".to_owned());
        }
        if !(100..=60_000).contains(&self.health_interval_ms) {
            problems.push("store.health_interval_ms must be 100 to 60000".to_owned());
        }
        match self.target(Path::new(".")) {
            Ok(StoreTarget::Postgres { url, password }) => {
                if let Err(err) = parse_hosts(&url, password.as_deref()) {
                    problems.push(err.to_string());
                }
            }
            Ok(StoreTarget::Sqlite(_)) => {}
            Err(err) => problems.push(err.to_string()),
        }
        problems
    }

    /// Every problem with the files the settings name, for `check-config` and before a
    /// service starts: the key-encryption key readable (a shared PostgreSQL store needs one),
    /// and for a store without one, the state directory usable and, unless the service makes it
    /// (`creates_key_file`), `master.key` present in it. Each names its setting, never a key.
    pub fn file_problems(&self, state_dir: &Path, creates_key_file: bool) -> Vec<String> {
        let mut problems = Vec::new();
        let kek = match self.kek() {
            Ok(kek) => kek.is_some(),
            Err(err) => {
                let setting = if std::env::var_os(KEK_ENV).is_some() {
                    KEK_ENV
                } else {
                    "store.kek_file"
                };
                problems.push(format!("{setting}: {err}"));
                true
            }
        };
        let Ok(target) = self.target(state_dir) else {
            return problems; // `problems()` names it.
        };
        match target {
            StoreTarget::Postgres { .. } if !kek => problems.push(format!(
                "store.kek_file: a shared PostgreSQL store needs the key-encryption key (kek_file or {KEK_ENV}); \
                 make one with `rampart-provisioner keys new-kek`"
            )),
            StoreTarget::Postgres { .. } => {}
            StoreTarget::Sqlite(dir) => {
                if !dir.exists() {
                    // A mistyped folder would otherwise start a new, empty store in which no one
                    // has a token: every login refused, and nothing saying why.
                    problems.push(format!(
                        "state_dir: {} does not exist: give the folder `rampart-provisioner init` made (a gateway on \
                         the same host shares it), or create it for a store of its own",
                        dir.display()
                    ));
                } else if !dir.is_dir() {
                    problems.push(format!("state_dir: {} is not a directory", dir.display()));
                } else if !kek && !creates_key_file && !dir.join(MASTER_KEY_FILE).is_file() {
                    problems.push(format!(
                        "state_dir: {} holds no {MASTER_KEY_FILE}: run `rampart-provisioner init` first, or give the \
                         key-encryption key (store.kek_file) of a store that keeps its keys",
                        dir.display()
                    ));
                }
            }
        }
        problems
    }

    /// The database these settings name, with `RAMPART_STORE_URL` and
    /// `RAMPART_STORE_PASSWORD` applied.
    pub fn target(&self, state_dir: &Path) -> Result<StoreTarget, StoreError> {
        let url = std::env::var(URL_ENV)
            .ok()
            .filter(|url| !url.trim().is_empty())
            .or_else(|| self.url.clone());
        let Some(url) = url else {
            return Ok(StoreTarget::Sqlite(state_dir.to_owned()));
        };
        if let Some(path) = url.strip_prefix("sqlite:") {
            return Ok(StoreTarget::Sqlite(PathBuf::from(path)));
        }
        let password = match std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()) {
            Some(password) => Some(password),
            None => match &self.password_file {
                Some(file) => Some(read_password(file)?),
                None => None,
            },
        };
        Ok(StoreTarget::Postgres { url, password })
    }

    /// Connection settings for PostgreSQL.
    pub fn pg_settings(&self) -> PgSettings {
        PgSettings {
            pool_size: self.pool_size,
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
            statement_timeout: Duration::from_secs(self.statement_timeout_secs),
            health_interval: Duration::from_millis(self.health_interval_ms),
        }
    }

    /// Opens the store: SQLite (migrated on open) or PostgreSQL (its schema checked).
    pub async fn open(&self, state_dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self.target(state_dir)? {
            StoreTarget::Sqlite(dir) => Arc::new(open_sqlite(&dir).await?),
            StoreTarget::Postgres { url, password } => {
                Arc::new(PgStore::connect(parse_hosts(&url, password.as_deref())?, self.pg_settings()).await?)
            }
        })
    }
}

/// What `migrate` did: schema versions before and after, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The backend and host or file (never a password).
    pub database: String,
    /// Schema version found (0: an empty database).
    pub before: i64,
    /// Schema version now.
    pub after: i64,
}

impl StoreConfig {
    /// Brings the database's schema up to this build's version. On PostgreSQL this runs under
    /// an advisory lock, so several nodes doing it at once apply each migration once.
    pub async fn migrate(&self, state_dir: &Path) -> Result<MigrationReport, StoreError> {
        match self.target(state_dir)? {
            StoreTarget::Sqlite(dir) => {
                let store = open_sqlite(&dir).await?;
                let version = PgStore::schema_version();
                let database = format!("sqlite {}", store.path().display());
                store.close().await;
                Ok(MigrationReport {
                    database,
                    before: version,
                    after: version,
                })
            }
            StoreTarget::Postgres { url, password } => {
                let (store, before, after) =
                    PgStore::migrate(parse_hosts(&url, password.as_deref())?, self.pg_settings()).await?;
                let database = format!("postgresql {}", store.primary());
                store.close().await;
                Ok(MigrationReport {
                    database,
                    before,
                    after,
                })
            }
        }
    }
}

/// A SQLite target is a state folder or, when it names a `.db` file, that file.
async fn open_sqlite(path: &Path) -> Result<SqliteStore, StoreError> {
    if path.extension().is_some_and(|ext| ext == "db") {
        SqliteStore::open_file(path).await
    } else {
        SqliteStore::open(path).await
    }
}

fn read_password(file: &Path) -> Result<String, StoreError> {
    let text = std::fs::read_to_string(file)
        .map_err(|err| StoreError::Config(format!("store.password_file {}: {err}", file.display())))?;
    let password = text.lines().next().unwrap_or_default().trim_end().to_owned();
    if password.is_empty() {
        return Err(StoreError::Config(format!(
            "store.password_file {} is empty",
            file.display()
        )));
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_database_password() {
        let config = StoreConfig {
            url: Some("postgres://rampart:hunter2@db1:5432,db2:5432/rampart".to_owned()),
            ..StoreConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("rampart:<redacted>@db1:5432,db2:5432/rampart"),
            "{shown}"
        );
        let target = StoreTarget::Postgres {
            url: "postgres://u@db1/x".to_owned(),
            password: Some("hunter2".to_owned()),
        };
        assert!(!format!("{target:?}").contains("hunter2"));
        assert_eq!(without_password("postgres://u@db1/x"), "postgres://u@db1/x");
    }
}
