//! Moving a one-host installation to PostgreSQL: every table of a SQLite store copied into an
//! empty, migrated PostgreSQL database in one transaction, with rows counted on both sides.
//!
//! - The source is opened read-only and read in one transaction (one snapshot); it is never
//!   changed. Stop the services using it first, so nothing happens after the snapshot.
//! - Both databases must be at this build's schema version, and every table and column of the
//!   SQLite store must be one this module knows ([`TABLES`](tables::TABLES), or left behind on
//!   purpose: [`NOT_COPIED`](tables::NOT_COPIED)), so no data is left behind silently by a
//!   build that is older or newer than the store.
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
mod errors;
mod report;
mod rows;
mod source;
mod tables;
mod target;

use std::path::{Path, PathBuf};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::SqliteConnection;

use errors::{pg_err, sqlite_err};
pub use report::{CopyReport, TableCount};
use rows::copy_table;
use source::{check_source_tables, count_sqlite, open_source, sqlite_sequence, sqlite_version};
use tables::TABLES;
use target::{check_target_table, connect_primary, count_postgres, move_sequence, postgres_version};

use crate::{DB_FILE_NAME, MASTER_KEY_FILE, PgStore, StoreError};

/// How long the copy waits for another session's lock on a target table before giving up.
const LOCK_TIMEOUT: &str = "10s";
/// Longest one statement of the copy may run.
const STATEMENT_TIMEOUT: &str = "10min";

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::tables::{NOT_COPIED, TABLES};
    use super::{master_key_beside, sqlite_file};
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
