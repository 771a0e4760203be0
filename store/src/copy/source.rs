//! Reading the SQLite source: opening it read-only, its schema version, the check of its tables
//! against the catalogue, its `AUTOINCREMENT` positions and row counts.

use std::path::Path;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use super::errors::sqlite_err;
use super::tables::{NOT_COPIED, TABLES, same_columns};
use crate::StoreError;

/// The source, read-only: nothing the copy does can change it.
pub(super) async fn open_source(db_file: &Path) -> Result<SqliteConnection, StoreError> {
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

/// The SQLite store's schema version; an error if the file is not a Rampart store.
pub(super) async fn sqlite_version(conn: &mut SqliteConnection) -> Result<i64, StoreError> {
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

/// Every table of the source is one this copy knows, with exactly the known columns.
pub(super) async fn check_source_tables(conn: &mut SqliteConnection) -> Result<(), StoreError> {
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

/// What SQLite's `AUTOINCREMENT` last handed out for `table` (0 if it never did), so numbers
/// of deleted rows are not handed out again either.
pub(super) async fn sqlite_sequence(read: &mut SqliteConnection, table: &str) -> Result<i64, StoreError> {
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

/// Rows in `table` of the source.
pub(super) async fn count_sqlite(read: &mut SqliteConnection, table: &str) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut *read)
        .await
        .map_err(sqlite_err(table))?;
    u64::try_from(count).map_err(|_| StoreError::Corrupt(format!("{table}: a negative row count")))
}
