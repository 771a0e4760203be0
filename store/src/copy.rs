//! Moving a one-host installation to PostgreSQL: every table of a SQLite store copied into an
//! empty, migrated PostgreSQL database in one transaction, with rows counted on both sides.
//!
//! - The source is opened read-only and read in one transaction (one snapshot); it is never
//!   changed. Stop the services using it first, so nothing happens after the snapshot.
//! - Both databases must be at this build's schema version, and every table and column of the
//!   SQLite store must be one this module knows ([`TABLES`], or left behind on purpose:
//!   [`NOT_COPIED`]), so no data is left behind silently by a build that is older or newer
//!   than the store.
//! - The target must hold no rows in any copied table (and its feed of session ends must be at
//!   zero): a copy never merges into a database a node already used, for example one where a
//!   gateway made a seal key of its own that would shadow `master.key`'s.
//! - One PostgreSQL transaction copies everything (all or nothing), with the copied tables
//!   locked against writers; rows go in batches. Values keep their types: integers as
//!   `BIGINT`, `users.enabled` (0/1 in SQLite) as `BOOLEAN`, text as `TEXT`, blobs as `BYTEA`,
//!   NULLs as NULLs. SQLite's `sessions.rowid` (insertion order, used to order sessions created
//!   in the same second) goes into PostgreSQL's identity column `sessions.rowid`; the identity
//!   sequences of `sessions`, `token_events` and `vm_events` are then moved past the copied
//!   numbers, so new rows never collide with copied ones.
//! - Before the commit, every table's row count in PostgreSQL must equal the rows read from
//!   SQLite, or nothing is committed; after it, the counts are read again for the report.
//!
//! Sealed seeds are copied as they are: they open only with the installation's seed-sealing
//! keys, which live in its `master.key` and must be imported into the database
//! (`rampart-provisioner keys import`, or `rampart store copy --kek-file`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection, Postgres, QueryBuilder, Row};

use crate::{DB_FILE_NAME, MASTER_KEY_FILE, PgStore, StoreError};

/// Rows per `INSERT` statement.
const BATCH_ROWS: usize = 500;
/// How long connecting to one PostgreSQL host may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the copy waits for another session's lock on a target table before giving up.
const LOCK_TIMEOUT: &str = "10s";
/// Longest one statement of the copy may run.
const STATEMENT_TIMEOUT: &str = "10min";
/// Who the copy is, in `pg_stat_activity`.
const APPLICATION_NAME: &str = "rampart-store-copy";

/// How a column's values are read from SQLite and written to PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// SQLite INTEGER, PostgreSQL BIGINT.
    Int,
    /// SQLite 0 or 1, PostgreSQL BOOLEAN.
    Bool,
    /// TEXT on both.
    Text,
    /// SQLite BLOB, PostgreSQL BYTEA.
    Blob,
}

/// How a table's rows reach PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// Inserted.
    Insert,
    /// The one row the migration created, updated in place (`session_end_feed`).
    UpdateSingleRow,
}

/// One copied table: its columns (the same names in both databases) and how it is copied.
#[derive(Debug)]
struct Table {
    name: &'static str,
    /// Every column of the table in both databases, in copy order.
    columns: &'static [(&'static str, Kind)],
    /// SQLite's hidden `rowid` is copied into this PostgreSQL column (an identity column
    /// `GENERATED ALWAYS`, so inserts say `OVERRIDING SYSTEM VALUE`).
    rowid_into: Option<&'static str>,
    /// The PostgreSQL identity column whose sequence must move past the copied values.
    identity: Option<&'static str>,
    write: Write,
}

use Kind::{Blob, Bool, Int, Text};

/// Every table of the schema this build was made for, parents before children (foreign keys:
/// `user_groups`, `tokens`, `temp_codes`, `registration_codes`, `enrolments`, `reset_requests`,
/// `rehearsals` and `vms.holder_id` name `users`; `enrolments.registration_code` names `registration_codes`; `vms.pool`
/// names `vm_pools`). The column lists are those of `migrations/sqlite` and `migrations/postgres`
/// (a migration that adds a table or a column must add it here); the copy checks them against
/// both databases before it writes anything, so a list that falls behind stops the copy
/// instead of leaving data behind.
const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            ("id", Text),
            ("username", Text),
            ("display_name", Text),
            ("password_hash", Text),
            ("enabled", Bool),
            ("created_at", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "user_groups",
        columns: &[("user_id", Text), ("group_name", Text)],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "tokens",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("state", Text),
            ("algorithm", Text),
            ("digits", Int),
            ("period", Int),
            ("time_window", Int),
            ("key_id", Int),
            ("sealed_seed", Blob),
            ("last_step", Int),
            ("activated_step", Int),
            ("failures", Int),
            ("created_at", Int),
            ("activated_at", Int),
            ("last_used_at", Int),
            ("updated_at", Int),
            ("delivered_at", Int),
            ("issued_by", Text),
            ("drift_steps", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "operators",
        columns: &[
            ("id", Text),
            ("name", Text),
            ("role", Text),
            ("key_hash", Blob),
            ("created_at", Int),
            ("created_by", Text),
            ("revoked_at", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "token_events",
        columns: &[
            ("seq", Int),
            ("at", Int),
            ("actor", Text),
            ("action", Text),
            ("user_id", Text),
            ("token_id", Text),
            ("detail", Text),
        ],
        rowid_into: None,
        identity: Some("seq"),
        write: Write::Insert,
    },
    Table {
        name: "temp_codes",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("code_hash", Blob),
            ("created_at", Int),
            ("expires_at", Int),
            ("used_at", Int),
            ("created_by", Text),
            ("failures", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "registration_codes",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("code_hash", Blob),
            ("created_at", Int),
            ("expires_at", Int),
            ("created_by", Text),
            ("delivery", Text),
            ("failures", Int),
            ("used_at", Int),
            ("withdrawn_at", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "enrolments",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("registration_code", Text),
            ("token_id", Text),
            ("algorithm", Text),
            ("digits", Int),
            ("period", Int),
            ("time_window", Int),
            ("key_id", Int),
            ("sealed_seed", Blob),
            ("created_at", Int),
            ("expires_at", Int),
            ("failures", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "reset_requests",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("action", Text),
            ("token_id", Text),
            ("reason", Text),
            ("requested_by", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("status", Text),
            ("decided_by", Text),
            ("decided_at", Int),
            ("decision_reason", Text),
            ("completed_at", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "sessions",
        columns: &[
            ("id", Text),
            ("ticket_hash", Blob),
            ("user_id", Text),
            ("username", Text),
            ("group_names", Text),
            ("source", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("ended_at", Int),
            ("end_reason", Text),
            ("token_id", Text),
            ("last_seen_at", Int),
            ("end_seq", Int),
            ("gateway_id", Text),
            ("client_key", Blob),
            ("ended_by", Text),
        ],
        rowid_into: Some("rowid"),
        identity: Some("rowid"),
        write: Write::Insert,
    },
    Table {
        name: "replaced_tickets",
        columns: &[("hash", Blob), ("session_id", Text), ("replaced_at", Int)],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "session_end_feed",
        columns: &[("id", Int), ("last_seq", Int)],
        rowid_into: None,
        identity: None,
        write: Write::UpdateSingleRow,
    },
    Table {
        name: "vm_pools",
        columns: &[
            ("name", Text),
            ("description", Text),
            ("ports", Text),
            ("capacity", Int),
            ("provision_hook", Text),
            ("reset_hook", Text),
            ("destroy_hook", Text),
            ("hook_timeout_secs", Int),
            ("created_at", Int),
            ("created_by", Text),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "vms",
        columns: &[
            ("id", Text),
            ("pool", Text),
            ("address", Text),
            ("state", Text),
            ("holder_id", Text),
            ("holder_name", Text),
            ("allocated_at", Int),
            ("last_flow_at", Int),
            ("error", Text),
            ("hook_output", Text),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "vm_events",
        columns: &[
            ("seq", Int),
            ("at", Int),
            ("vm_id", Text),
            ("pool", Text),
            ("actor", Text),
            ("action", Text),
            ("user_name", Text),
            ("detail", Text),
        ],
        rowid_into: None,
        identity: Some("seq"),
        write: Write::Insert,
    },
    Table {
        name: "seal_keys",
        columns: &[
            ("id", Int),
            ("wrapped", Blob),
            ("kek_id", Text),
            ("created_at", Int),
            ("created_by", Text),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "gateway_nodes",
        columns: &[
            ("id", Text),
            ("address", Text),
            ("admin_url", Text),
            ("version", Text),
            ("started_at", Int),
            ("last_seen_at", Int),
            ("sessions", Int),
            ("flows", Int),
            ("stopped_at", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "audit_streams",
        columns: &[
            ("key_id", Text),
            ("stream", Text),
            ("service", Text),
            ("first_seen_at", Int),
            ("last_opened_at", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "audit_anchors",
        columns: &[
            ("key_id", Text),
            ("stream", Text),
            ("seq", Int),
            ("hash", Text),
            ("file", Text),
            ("recorded_at", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
    Table {
        name: "rehearsals",
        columns: &[
            ("id", Text),
            ("user_id", Text),
            ("session_id", Text),
            ("at", Int),
            ("passed", Bool),
            ("resources", Int),
            ("failed", Int),
            ("detail", Text),
            ("source", Text),
            ("seq", Int),
        ],
        rowid_into: None,
        identity: None,
        write: Write::Insert,
    },
];

/// Tables of the schema the copy leaves behind on purpose. `web_sessions`: web console
/// sign-ins are ephemeral (minutes to hours), and a copy happens with the services stopped, so
/// people simply sign in again on the new database rather than carry cookies across.
const NOT_COPIED: &[&str] = &["web_sessions"];

/// What a copy did: where from, where to, and each table's rows on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    /// `sqlite PATH` of the database file read.
    pub source: String,
    /// `postgresql HOST:PORT/DATABASE` written to (never a password).
    pub target: String,
    /// The schema version of both databases.
    pub schema_version: i64,
    /// Every table, in copy order.
    pub tables: Vec<TableCount>,
}

impl CopyReport {
    /// Rows copied in all tables.
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|table| table.source_rows).sum()
    }

    /// Rows of `table` read from SQLite.
    pub fn source_rows(&self, table: &str) -> Option<u64> {
        self.tables
            .iter()
            .find(|count| count.table == table)
            .map(|count| count.source_rows)
    }
}

/// One table's rows: read from SQLite, and counted in PostgreSQL after the commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableCount {
    /// The table.
    pub table: String,
    /// Rows read from SQLite.
    pub source_rows: u64,
    /// Rows in PostgreSQL after the commit.
    pub target_rows: u64,
}

/// The SQLite database file a `--from` value names: `sqlite:PATH` or `PATH`, where PATH is a
/// state directory (its `rampart.db`) or a database file. It must exist.
pub fn sqlite_file(from: &str) -> Result<PathBuf, StoreError> {
    let path = Path::new(from.strip_prefix("sqlite:").unwrap_or(from));
    if path.as_os_str().is_empty() {
        return Err(StoreError::Config("no SQLite store given".to_owned()));
    }
    if path.is_dir() {
        let file = path.join(DB_FILE_NAME);
        if !file.is_file() {
            return Err(StoreError::Config(format!(
                "{} holds no {DB_FILE_NAME}: name the state directory of a one-host installation or its database file",
                path.display()
            )));
        }
        return Ok(file);
    }
    if !path.is_file() {
        return Err(StoreError::Config(format!(
            "the SQLite store {} does not exist",
            path.display()
        )));
    }
    Ok(path.to_owned())
}

/// The `master.key` beside a SQLite database file (in the same state directory).
pub fn master_key_beside(db_file: &Path) -> PathBuf {
    db_file.parent().unwrap_or_else(|| Path::new(".")).join(MASTER_KEY_FILE)
}

/// Copies every table of the SQLite database `db_file` into the empty, migrated PostgreSQL
/// database at `hosts` (the first host that is not in recovery), in one transaction. See the
/// module documentation for the rules; the report's counts are equal on both sides when this
/// returns `Ok`.
pub async fn copy_sqlite_to_postgres(db_file: &Path, hosts: &[PgConnectOptions]) -> Result<CopyReport, StoreError> {
    let mut source = open_source(db_file).await?;
    let (mut target, target_name) = connect_primary(hosts).await?;
    let result = copy(&mut source, &mut target, db_file, target_name).await;
    let _ = source.close().await;
    let _ = target.close().await;
    result
}

async fn copy(
    source: &mut SqliteConnection,
    target: &mut PgConnection,
    db_file: &Path,
    target_name: String,
) -> Result<CopyReport, StoreError> {
    let source_name = format!("sqlite {}", db_file.display());
    let wanted = PgStore::schema_version();
    // One read transaction: every table comes from the same snapshot.
    let mut read = source.begin().await.map_err(sqlite_err("cannot begin a read"))?;
    let source_version = sqlite_version(&mut read).await?;
    if source_version != wanted {
        return Err(StoreError::Schema(format!(
            "{source_name} is at schema version {source_version}, this build copies version {wanted}: {}",
            if source_version < wanted {
                "start this version's gateway or provisioner on it once (it migrates itself), stop it, then copy"
            } else {
                "use the Rampart version that wrote it"
            }
        )));
    }
    check_source_tables(&mut read).await?;
    let target_version = postgres_version(target).await?;
    if target_version != wanted {
        return Err(StoreError::Schema(format!(
            "{target_name} is at schema version {target_version}, this build copies version {wanted}: run `{}` with \
             this version first",
            crate::schema::MIGRATE_COMMAND
        )));
    }

    let mut write = target.begin().await.map_err(pg_err("cannot begin a transaction"))?;
    for setting in [
        format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"),
        format!("SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'"),
    ] {
        sqlx::query(&setting)
            .execute(&mut *write)
            .await
            .map_err(pg_err("cannot set the copy's timeouts"))?;
    }
    let names: Vec<&str> = TABLES.iter().map(|table| table.name).collect();
    sqlx::query(&format!("LOCK TABLE {} IN EXCLUSIVE MODE", names.join(", ")))
        .execute(&mut *write)
        .await
        .map_err(pg_err(
            "cannot lock the target's tables (is a gateway or provisioner using the target database?)",
        ))?;
    for table in TABLES {
        check_target_table(&mut write, table).await?;
    }

    let mut counts = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let copied = copy_table(&mut read, &mut write, table).await?;
        let in_source = count_sqlite(&mut read, table.name).await?;
        if copied.rows != in_source {
            return Err(StoreError::Corrupt(format!(
                "{}: read {} rows but the table counts {in_source}",
                table.name, copied.rows
            )));
        }
        if let Some(column) = table.identity {
            let floor = copied.max_identity.max(sqlite_sequence(&mut read, table.name).await?);
            move_sequence(&mut write, table.name, column, floor).await?;
        }
        let in_target = count_postgres(&mut write, table.name).await?;
        if in_target != copied.rows {
            return Err(StoreError::Conflict(format!(
                "{}: {} rows read from SQLite but {in_target} in PostgreSQL before the commit; nothing was copied",
                table.name, copied.rows
            )));
        }
        tracing::info!(target: "rampart::store", table = table.name, rows = copied.rows, "table copied");
        counts.push((table.name, copied.rows));
    }
    write.commit().await.map_err(pg_err(
        "the commit failed: nothing was copied, unless the connection broke during the commit (then the \
             target's tables show it)",
    ))?;
    read.rollback().await.map_err(sqlite_err("cannot end the read"))?;

    let mut tables = Vec::with_capacity(counts.len());
    for (name, source_rows) in counts {
        let target_rows = count_postgres(&mut *target, name).await?;
        if target_rows != source_rows {
            return Err(StoreError::Conflict(format!(
                "{name}: {source_rows} rows copied, but {target_rows} in PostgreSQL after the commit: another process \
                 has written to the target since the commit"
            )));
        }
        tables.push(TableCount {
            table: name.to_owned(),
            source_rows,
            target_rows,
        });
    }
    Ok(CopyReport {
        source: source_name,
        target: target_name,
        schema_version: wanted,
        tables,
    })
}

/// The source, read-only: nothing the copy does can change it.
async fn open_source(db_file: &Path) -> Result<SqliteConnection, StoreError> {
    SqliteConnectOptions::new()
        .filename(db_file)
        .read_only(true)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(5))
        .log_statements(tracing::log::LevelFilter::Trace)
        .connect()
        .await
        .map_err(|err| StoreError::Unavailable(format!("cannot open {} read-only: {err}", db_file.display())))
}

/// A connection to the first host that accepts writes, and its name for reports.
async fn connect_primary(hosts: &[PgConnectOptions]) -> Result<(PgConnection, String), StoreError> {
    if hosts.is_empty() {
        return Err(StoreError::Config("no PostgreSQL host given".to_owned()));
    }
    let mut problems = Vec::new();
    for host in hosts {
        let name = describe(host);
        let options = host
            .clone()
            .application_name(APPLICATION_NAME)
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Debug, Duration::from_secs(5));
        let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(err)) => {
                problems.push(format!("{name}: {}", db_message(&err)));
                continue;
            }
            Err(_) => {
                problems.push(format!("{name}: no answer within {} s", CONNECT_TIMEOUT.as_secs()));
                continue;
            }
        };
        match sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()")
            .fetch_one(&mut conn)
            .await
        {
            Ok(false) => return Ok((conn, format!("postgresql {name}"))),
            Ok(true) => problems.push(format!("{name} is a standby")),
            Err(err) => problems.push(format!("{name}: {}", db_message(&err))),
        }
        let _ = conn.close().await;
    }
    Err(StoreError::Unavailable(format!(
        "no PostgreSQL host accepts writes ({})",
        problems.join("; ")
    )))
}

/// `HOST:PORT/DATABASE` (never the password).
fn describe(host: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        host.get_host(),
        host.get_port(),
        host.get_database().unwrap_or_default()
    )
}

async fn sqlite_version(conn: &mut SqliteConnection) -> Result<i64, StoreError> {
    let migrated: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(sqlite_err("cannot read the schema"))?;
    if migrated.is_none() {
        return Err(StoreError::Schema(
            "the SQLite file is not a Rampart store (it has no schema version)".to_owned(),
        ));
    }
    sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut *conn)
        .await
        .map_err(sqlite_err("cannot read the schema version"))
}

async fn postgres_version(conn: &mut PgConnection) -> Result<i64, StoreError> {
    let migrated: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .map_err(pg_err("cannot read the schema"))?;
    if !migrated {
        return Ok(0);
    }
    sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut *conn)
        .await
        .map_err(pg_err("cannot read the schema version"))
}

/// Every table of the source is one this copy knows, with exactly the known columns.
async fn check_source_tables(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let present: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master \
         WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(sqlite_err("cannot list the tables"))?;
    for name in &present {
        if !TABLES.iter().any(|table| table.name == name) && !NOT_COPIED.contains(&name.as_str()) {
            return Err(StoreError::Schema(format!(
                "the SQLite store has a table {name} this build does not copy; nothing was copied"
            )));
        }
    }
    for table in TABLES {
        if !present.iter().any(|name| name == table.name) {
            return Err(StoreError::Schema(format!(
                "the SQLite store has no table {}; nothing was copied",
                table.name
            )));
        }
        let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
            .bind(table.name)
            .fetch_all(&mut *conn)
            .await
            .map_err(sqlite_err(table.name))?;
        same_columns("the SQLite store", table, columns, false)?;
    }
    Ok(())
}

/// The target table has the known columns and holds no rows (the feed of session ends: its
/// one row, at zero).
async fn check_target_table(conn: &mut PgConnection, table: &Table) -> Result<(), StoreError> {
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND \
         table_name = $1",
    )
    .bind(table.name)
    .fetch_all(&mut *conn)
    .await
    .map_err(pg_err(table.name))?;
    same_columns("the PostgreSQL database", table, columns, true)?;
    let used = match table.write {
        Write::Insert => sqlx::query_scalar::<_, bool>(&format!("SELECT EXISTS (SELECT 1 FROM {})", table.name))
            .fetch_one(&mut *conn)
            .await
            .map_err(pg_err(table.name))?,
        Write::UpdateSingleRow => {
            sqlx::query_scalar::<_, bool>(&format!("SELECT COALESCE(MAX(last_seq), 0) <> 0 FROM {}", table.name))
                .fetch_one(&mut *conn)
                .await
                .map_err(pg_err(table.name))?
        }
    };
    if used {
        let hint = if table.name == "seal_keys" {
            " (a node started on it made a seal key of its own, which would shadow master.key's)"
        } else {
            ""
        };
        return Err(StoreError::Conflict(format!(
            "the target database is not empty: table {} already holds rows{hint}. Copy only into a database that \
             `rampart-provisioner migrate` has just created and no service has used (drop it, create it, migrate, \
             copy again); nothing was copied",
            table.name
        )));
    }
    Ok(())
}

fn same_columns(place: &str, table: &Table, found: Vec<String>, with_rowid: bool) -> Result<(), StoreError> {
    let found: BTreeSet<String> = found.into_iter().collect();
    let mut known: BTreeSet<String> = table.columns.iter().map(|(name, _)| (*name).to_owned()).collect();
    if with_rowid && let Some(column) = table.rowid_into {
        known.insert(column.to_owned());
    }
    if found == known {
        return Ok(());
    }
    let missing: Vec<&String> = known.difference(&found).collect();
    let unknown: Vec<&String> = found.difference(&known).collect();
    Err(StoreError::Schema(format!(
        "{place}: table {} has columns this build does not expect (missing {missing:?}, unknown {unknown:?}); \
         nothing was copied",
        table.name
    )))
}

/// One value on its way from SQLite to PostgreSQL.
#[derive(Clone)]
enum Value {
    Int(Option<i64>),
    Bool(Option<bool>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

/// What copying one table found.
struct Copied {
    rows: u64,
    /// The largest value of the table's identity column (0 for none).
    max_identity: i64,
}

async fn copy_table(
    read: &mut SqliteConnection,
    write: &mut PgConnection,
    table: &Table,
) -> Result<Copied, StoreError> {
    // Every copied table is a rowid table: pages are taken by rowid (insertion order), which
    // needs no cursor held open across the writes.
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    let select = format!(
        "SELECT rowid, {} FROM {} WHERE rowid > $1 ORDER BY rowid LIMIT {BATCH_ROWS}",
        names.join(", "),
        table.name
    );
    let mut columns: Vec<(&str, Kind)> = Vec::with_capacity(table.columns.len() + 1);
    if let Some(column) = table.rowid_into {
        columns.push((column, Int));
    }
    columns.extend(table.columns.iter().copied());
    let identity_at = table
        .identity
        .and_then(|identity| columns.iter().position(|(name, _)| *name == identity));
    let mut copied = Copied {
        rows: 0,
        max_identity: 0,
    };
    let mut after = i64::MIN;
    loop {
        let page = sqlx::query(&select)
            .bind(after)
            .fetch_all(&mut *read)
            .await
            .map_err(sqlite_err(table.name))?;
        let full = page.len() == BATCH_ROWS;
        if page.is_empty() {
            break;
        }
        let mut batch: Vec<Vec<Value>> = Vec::with_capacity(page.len());
        for row in &page {
            let rowid: i64 = row
                .try_get(0)
                .map_err(|err| StoreError::Corrupt(format!("{}.rowid: {}", table.name, decode_message(&err))))?;
            after = rowid;
            let mut values = Vec::with_capacity(columns.len());
            if table.rowid_into.is_some() {
                values.push(Value::Int(Some(rowid)));
            }
            for (index, (name, kind)) in table.columns.iter().enumerate() {
                values.push(read_value(row, index + 1, table.name, name, *kind)?);
            }
            if let Some(Value::Int(Some(value))) = identity_at.and_then(|at| values.get(at)) {
                copied.max_identity = copied.max_identity.max(*value);
            }
            batch.push(values);
        }
        copied.rows += u64::try_from(batch.len()).unwrap_or(u64::MAX);
        write_rows(write, table, &columns, batch).await?;
        if !full {
            break;
        }
    }
    if table.write == Write::UpdateSingleRow && copied.rows != 1 {
        return Err(StoreError::Corrupt(format!(
            "{} holds {} rows, not one",
            table.name, copied.rows
        )));
    }
    Ok(copied)
}

fn read_value(
    row: &sqlx::sqlite::SqliteRow,
    index: usize,
    table: &str,
    column: &str,
    kind: Kind,
) -> Result<Value, StoreError> {
    let bad = |err: sqlx::Error| StoreError::Corrupt(format!("{table}.{column}: {}", decode_message(&err)));
    Ok(match kind {
        Int => Value::Int(row.try_get(index).map_err(bad)?),
        Text => Value::Text(row.try_get(index).map_err(bad)?),
        Blob => Value::Blob(row.try_get(index).map_err(bad)?),
        Bool => {
            let raw: Option<i64> = row.try_get(index).map_err(bad)?;
            Value::Bool(match raw {
                None => None,
                Some(0) => Some(false),
                Some(1) => Some(true),
                Some(_) => {
                    return Err(StoreError::Corrupt(format!(
                        "{table}.{column} holds a value that is neither 0 nor 1"
                    )));
                }
            })
        }
    })
}

async fn write_rows(
    write: &mut PgConnection,
    table: &Table,
    columns: &[(&str, Kind)],
    rows: Vec<Vec<Value>>,
) -> Result<(), StoreError> {
    if table.write == Write::UpdateSingleRow {
        return update_single_row(write, table, rows).await;
    }
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let overriding = if table.rowid_into.is_some() {
        " OVERRIDING SYSTEM VALUE"
    } else {
        ""
    };
    let mut insert: QueryBuilder<'_, Postgres> = QueryBuilder::new(format!(
        "INSERT INTO {} ({}){overriding} ",
        table.name,
        names.join(", ")
    ));
    insert.push_values(rows, |mut tuple, row| {
        for value in row {
            match value {
                Value::Int(value) => tuple.push_bind(value),
                Value::Bool(value) => tuple.push_bind(value),
                Value::Text(value) => tuple.push_bind(value),
                Value::Blob(value) => tuple.push_bind(value),
            };
        }
    });
    insert
        .build()
        .execute(&mut *write)
        .await
        .map(|_| ())
        .map_err(pg_err(table.name))
}

/// `session_end_feed`: the migration made its one row; the copy sets its position.
async fn update_single_row(write: &mut PgConnection, table: &Table, rows: Vec<Vec<Value>>) -> Result<(), StoreError> {
    let [row] = rows.as_slice() else {
        return Err(StoreError::Corrupt(format!(
            "{} holds {} rows, not one",
            table.name,
            rows.len()
        )));
    };
    let (Some(Value::Int(Some(1))), Some(Value::Int(Some(last_seq)))) = (row.first(), row.get(1)) else {
        return Err(StoreError::Corrupt(format!(
            "{}: its row is not id 1 with a position",
            table.name
        )));
    };
    let updated = sqlx::query(&format!("UPDATE {} SET last_seq = $1 WHERE id = 1", table.name))
        .bind(*last_seq)
        .execute(&mut *write)
        .await
        .map_err(pg_err(table.name))?;
    if updated.rows_affected() != 1 {
        return Err(StoreError::Schema(format!(
            "the PostgreSQL database has no row in {} (it was not migrated by Rampart)",
            table.name
        )));
    }
    Ok(())
}

/// What SQLite's `AUTOINCREMENT` last handed out for `table` (0 if it never did), so numbers
/// of deleted rows are not handed out again either.
async fn sqlite_sequence(read: &mut SqliteConnection, table: &str) -> Result<i64, StoreError> {
    let exists: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'")
            .fetch_optional(&mut *read)
            .await
            .map_err(sqlite_err("sqlite_sequence"))?;
    if exists.is_none() {
        return Ok(0);
    }
    let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = $1")
        .bind(table)
        .fetch_optional(&mut *read)
        .await
        .map_err(sqlite_err("sqlite_sequence"))?;
    Ok(seq.unwrap_or(0))
}

/// Moves the identity sequence of `table.column` so its next value is above `floor`. A fresh
/// target's sequence has handed out nothing, so with nothing copied it stays where it is.
async fn move_sequence(write: &mut PgConnection, table: &str, column: &str, floor: i64) -> Result<(), StoreError> {
    if floor <= 0 {
        return Ok(());
    }
    sqlx::query("SELECT setval(pg_get_serial_sequence($1, $2), $3, true)")
        .bind(table)
        .bind(column)
        .bind(floor)
        .execute(&mut *write)
        .await
        .map(|_| ())
        .map_err(pg_err(&format!("{table}.{column}: cannot move its identity sequence")))
}

async fn count_sqlite(read: &mut SqliteConnection, table: &str) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut *read)
        .await
        .map_err(sqlite_err(table))?;
    u64::try_from(count).map_err(|_| StoreError::Corrupt(format!("{table}: a negative row count")))
}

async fn count_postgres(write: &mut PgConnection, table: &str) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut *write)
        .await
        .map_err(pg_err(table))?;
    u64::try_from(count).map_err(|_| StoreError::Corrupt(format!("{table}: a negative row count")))
}

/// A SQLite failure while reading `what`.
fn sqlite_err(what: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |err| StoreError::Unavailable(format!("reading the SQLite store ({what}): {}", db_message(&err)))
}

/// A PostgreSQL failure while doing `what`. Conflicts keep the database's primary message only
/// (it names the constraint, never the values).
fn pg_err(what: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |err| {
        use sqlx::error::ErrorKind;
        let message = format!("writing the PostgreSQL database ({what}): {}", db_message(&err));
        match &err {
            sqlx::Error::Database(db)
                if matches!(
                    db.kind(),
                    ErrorKind::UniqueViolation | ErrorKind::ForeignKeyViolation | ErrorKind::CheckViolation
                ) =>
            {
                StoreError::Conflict(message)
            }
            _ => StoreError::Unavailable(message),
        }
    }
}

/// A database error's own words: for errors the server sent, only the primary message (its
/// detail may quote values such as a key's hash).
fn db_message(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}

/// Why a value did not decode, without the value.
fn decode_message(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::ColumnDecode { source, .. } => format!("cannot decode: {source}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::{NOT_COPIED, TABLES, master_key_beside, sqlite_file};
    use std::path::Path;

    #[test]
    fn every_table_is_listed_once_with_parents_first() {
        let names: Vec<&str> = TABLES.iter().map(|table| table.name).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        let at = |name: &str| names.iter().position(|n| *n == name).unwrap_or(usize::MAX);
        for (child, parent) in [
            ("user_groups", "users"),
            ("tokens", "users"),
            ("temp_codes", "users"),
            ("registration_codes", "users"),
            ("enrolments", "registration_codes"),
            ("reset_requests", "users"),
            ("rehearsals", "users"),
            ("vms", "users"),
            ("vms", "vm_pools"),
            ("audit_anchors", "audit_streams"),
        ] {
            assert!(at(parent) < at(child), "{parent} must come before {child}");
        }
    }

    #[test]
    fn a_table_left_behind_is_not_also_copied() {
        for name in NOT_COPIED {
            assert!(
                TABLES.iter().all(|table| table.name != *name),
                "{name} is both copied and left behind"
            );
        }
    }

    #[test]
    fn a_source_is_a_state_directory_or_a_database_file_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        let empty = sqlite_file(&format!("sqlite:{}", dir.path().display()))
            .err()
            .map(|err| err.to_string())
            .unwrap_or_default();
        assert!(empty.contains("holds no rampart.db"), "{empty}");
        let file = dir.path().join("rampart.db");
        std::fs::write(&file, b"").unwrap();
        for from in [
            format!("sqlite:{}", dir.path().display()),
            dir.path().display().to_string(),
            format!("sqlite:{}", file.display()),
        ] {
            assert_eq!(sqlite_file(&from).ok().as_deref(), Some(file.as_path()), "{from}");
        }
        let missing = sqlite_file("sqlite:/nonexistent/rampart.db")
            .err()
            .map(|err| err.to_string())
            .unwrap_or_default();
        assert!(missing.contains("does not exist"), "{missing}");
        assert_eq!(master_key_beside(&file), dir.path().join("master.key"));
        assert_eq!(master_key_beside(Path::new("rampart.db")), Path::new("master.key"));
    }
}
