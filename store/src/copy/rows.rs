//! Copying one table's rows: read from SQLite in pages by `rowid`, converted by column kind,
//! and written to PostgreSQL in batched inserts (or, for the one-row feed, an update).

use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Postgres, QueryBuilder, Row};

use super::errors::{decode_message, pg_err, sqlite_err};
use super::tables::{Blob, Bool, Int, Kind, Table, Text, Write};
use crate::StoreError;

/// Rows per `INSERT` statement.
const BATCH_ROWS: usize = 500;

/// One value on its way from SQLite to PostgreSQL.
#[derive(Clone)]
enum Value {
    Int(Option<i64>),
    Bool(Option<bool>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

/// What copying one table found.
pub(super) struct Copied {
    pub(super) rows: u64,
    /// The largest value of the table's identity column (0 for none).
    pub(super) max_identity: i64,
}

pub(super) async fn copy_table(
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
