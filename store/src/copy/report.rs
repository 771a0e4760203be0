//! What a copy reports: each table's rows read from SQLite and counted in PostgreSQL.

use serde::Serialize;

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
