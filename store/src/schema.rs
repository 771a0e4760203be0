//! Schema versions: applying the embedded migrations, and refusing to run against a database
//! whose schema is older (say which command upgrades it) or newer (this build is too old) than
//! the one this build was made for.
//!
//! The migrations of both backends carry the same numbers, so "schema version N" means the same
//! tables on SQLite and PostgreSQL. An embedded SQLite store upgrades itself when opened (one
//! box, one owner). A PostgreSQL store is shared by many nodes and is only upgraded by an explicit
//! `rampart-provisioner migrate`; sqlx holds a PostgreSQL advisory lock while it migrates, so
//! nodes started together never apply a migration twice.

use std::path::Path;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;

use crate::StoreError;

/// The command that brings a shared database's schema up to date.
pub const MIGRATE_COMMAND: &str = "rampart-provisioner migrate --config provisioner.toml";

/// The newest schema version a migrator knows.
pub(crate) fn latest(migrator: &Migrator) -> i64 {
    migrator.iter().map(|migration| migration.version).max().unwrap_or(0)
}

/// Checks a PostgreSQL database's schema against this build's migrations.
pub(crate) async fn check_postgres(pool: &sqlx::PgPool, migrator: &Migrator) -> Result<(), StoreError> {
    compare(current_postgres(pool).await?, latest(migrator))
}

/// Applies a PostgreSQL database's pending migrations under sqlx's advisory lock; returns the
/// versions before and after.
pub(crate) async fn migrate_postgres(pool: &sqlx::PgPool, migrator: &Migrator) -> Result<(i64, i64), StoreError> {
    let before = current_postgres(pool).await?;
    if before > latest(migrator) {
        return compare(before, latest(migrator)).map(|()| (before, before));
    }
    migrator
        .run(pool)
        .await
        .map_err(|err| StoreError::Schema(format!("cannot migrate the database: {err}")))?;
    Ok((before, current_postgres(pool).await?))
}

async fn current_postgres(pool: &sqlx::PgPool) -> Result<i64, StoreError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    if !exists {
        return Ok(0);
    }
    sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .map_err(StoreError::from_sqlx)
}

/// Applies an embedded SQLite store's migrations, after refusing a newer schema. SQLite has no
/// advisory lock, so two processes opening a fresh file together can race; the loser's
/// migration fails on an existing table, and a second run then sees the winner's as applied.
pub(crate) async fn migrate_sqlite(pool: &SqlitePool, migrator: &Migrator, path: &Path) -> Result<(), StoreError> {
    let exists: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)?;
    if exists.is_some() {
        let version: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        if version > latest(migrator) {
            return compare(version, latest(migrator))
                .map_err(|err| StoreError::Schema(format!("{}: {err}", path.display())));
        }
    }
    let result = match migrator.run(pool).await {
        Ok(()) => return Ok(()),
        Err(_) => migrator.run(pool).await,
    };
    result.map_err(|err| StoreError::Schema(format!("cannot migrate {}: {err}", path.display())))
}

/// Whether a database at `version` may be used by a build that knows up to `latest`.
fn compare(version: i64, latest: i64) -> Result<(), StoreError> {
    use std::cmp::Ordering;
    match version.cmp(&latest) {
        Ordering::Equal => Ok(()),
        Ordering::Less if version == 0 => Err(StoreError::Schema(format!(
            "the database has no Rampart schema yet (this build needs version {latest}): run `{MIGRATE_COMMAND}`"
        ))),
        Ordering::Less => Err(StoreError::Schema(format!(
            "the database schema is at version {version}, this build needs version {latest}: run `{MIGRATE_COMMAND}`"
        ))),
        Ordering::Greater => Err(StoreError::Schema(format!(
            "the database schema is at version {version}, newer than this build knows ({latest}): upgrade Rampart on \
             this node to the version the other nodes run"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::compare;

    #[test]
    fn older_and_newer_schemas_name_what_to_do() {
        assert!(compare(7, 7).is_ok());
        let older = compare(5, 7).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            older.contains("version 5") && older.contains("rampart-provisioner migrate"),
            "{older}"
        );
        let empty = compare(0, 7).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(empty.contains("no Rampart schema"), "{empty}");
        let newer = compare(8, 7).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(newer.contains("newer than this build"), "{newer}");
    }
}
