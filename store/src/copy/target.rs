//! The PostgreSQL target: connecting to the host that accepts writes, its schema version, the
//! check that a table is known and empty, identity sequences and row counts.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use super::errors::{db_message, pg_err};
use super::tables::{Table, Write, same_columns};
use crate::StoreError;

/// How long connecting to one PostgreSQL host may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Who the copy is, in `pg_stat_activity`.
const APPLICATION_NAME: &str = "rampart-store-copy";

/// A connection to the first host that accepts writes, and its name for reports.
pub(super) async fn connect_primary(hosts: &[PgConnectOptions]) -> Result<(PgConnection, String), StoreError> {
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

/// The PostgreSQL database's schema version (0 if it was never migrated).
pub(super) async fn postgres_version(conn: &mut PgConnection) -> Result<i64, StoreError> {
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

/// The target table has the known columns and holds no rows (the feed of session ends: its
/// one row, at zero).
pub(super) async fn check_target_table(conn: &mut PgConnection, table: &Table) -> Result<(), StoreError> {
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

/// Moves the identity sequence of `table.column` so its next value is above `floor`. A fresh
/// target's sequence has handed out nothing, so with nothing copied it stays where it is.
pub(super) async fn move_sequence(
    write: &mut PgConnection,
    table: &str,
    column: &str,
    floor: i64,
) -> Result<(), StoreError> {
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

/// Rows in `table` of the target.
pub(super) async fn count_postgres(write: &mut PgConnection, table: &str) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut *write)
        .await
        .map_err(pg_err(table))?;
    u64::try_from(count).map_err(|_| StoreError::Corrupt(format!("{table}: a negative row count")))
}
