//! Users and their groups in SQLite. An upsert replaces the groups in the same transaction,
//! and a lookup reads user and groups in one statement, so readers never see a half-written
//! group list.

use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use crate::{StoreError, UserRecord, sql};

/// Inserts or updates `user` by id and replaces its groups.
pub(super) async fn upsert(pool: &SqlitePool, user: &UserRecord) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(StoreError::from_sqlx)?;
    sqlx::query(sql::UPSERT_USER)
        .bind(&user.id)
        .bind(&user.username)
        .bind(&user.display_name)
        .bind(&user.password_hash)
        .bind(user.enabled)
        .bind(user.created_at)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    sqlx::query(sql::DELETE_USER_GROUPS)
        .bind(&user.id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    for group in &user.groups {
        sqlx::query(sql::INSERT_USER_GROUP)
            .bind(&user.id)
            .bind(group)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
    }
    tx.commit().await.map_err(StoreError::from_sqlx)
}

/// Runs one of the user lookups (`USER_BY_USERNAME`, `USER_BY_ID`) with `key`.
pub(super) async fn fetch(pool: &SqlitePool, query: &'static str, key: &str) -> Result<Option<UserRecord>, StoreError> {
    let rows = sqlx::query(query)
        .bind(key)
        .fetch_all(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut user = decode_user(first)?;
    for row in &rows {
        let group: Option<String> = row.try_get("group_name").map_err(StoreError::from_sqlx)?;
        user.groups.extend(group);
    }
    // Sorted here rather than in SQL: collation order differs between backends.
    user.groups.sort();
    user.groups.dedup();
    Ok(Some(user))
}

fn decode_user(row: &SqliteRow) -> Result<UserRecord, StoreError> {
    let get = StoreError::from_sqlx;
    Ok(UserRecord {
        id: row.try_get("id").map_err(get)?,
        username: row.try_get("username").map_err(get)?,
        display_name: row.try_get("display_name").map_err(get)?,
        password_hash: row.try_get("password_hash").map_err(get)?,
        enabled: row.try_get("enabled").map_err(get)?,
        groups: Vec::new(),
        created_at: row.try_get("created_at").map_err(get)?,
    })
}
