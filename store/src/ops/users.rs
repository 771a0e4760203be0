//! Users and their groups. An upsert replaces the groups in the caller's transaction,
//! and a lookup reads users and groups in one statement, so readers never see a half-written
//! group list.

use std::collections::HashMap;

use super::dialect::{Conn, DbRow, Pool};
use sqlx::Row;

use crate::{StoreError, UserRecord, sql};

/// Inserts or updates `user` by id and replaces its groups. Runs on `conn`, which must be in a
/// transaction: the caller commits (alone, or together with a token being issued).
pub(super) async fn upsert(conn: &mut Conn, user: &UserRecord) -> Result<(), StoreError> {
    sqlx::query(sql::UPSERT_USER)
        .bind(&user.id)
        .bind(&user.username)
        .bind(&user.display_name)
        .bind(&user.password_hash)
        .bind(user.enabled)
        .bind(user.created_at)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::from_sqlx)?;
    sqlx::query(sql::DELETE_USER_GROUPS)
        .bind(&user.id)
        .execute(&mut *conn)
        .await
        .map_err(StoreError::from_sqlx)?;
    for group in &user.groups {
        sqlx::query(sql::INSERT_USER_GROUP)
            .bind(&user.id)
            .bind(group)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from_sqlx)?;
    }
    Ok(())
}

/// Runs one of the user lookups (`USER_BY_USERNAME`, `USER_BY_ID`) with `key`.
pub(super) async fn fetch(pool: &Pool, query: &'static str, key: &str) -> Result<Option<UserRecord>, StoreError> {
    let rows = sqlx::query(query)
        .bind(key)
        .fetch_all(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    Ok(collect_users(&rows)?.into_iter().next())
}

/// Every user in `group` with all of their groups, sorted by username.
pub(super) async fn in_group(pool: &Pool, group: &str) -> Result<Vec<UserRecord>, StoreError> {
    let rows = sqlx::query(sql::USERS_IN_GROUP)
        .bind(group)
        .fetch_all(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    let mut users = collect_users(&rows)?;
    // Sorted here rather than in SQL: collation order differs between backends.
    users.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(users)
}

/// Folds user rows joined with their groups (one row per group, a NULL group for none) into
/// users in the order they first appear, each with sorted, deduplicated groups.
fn collect_users(rows: &[DbRow]) -> Result<Vec<UserRecord>, StoreError> {
    let mut users: Vec<UserRecord> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let id: String = row.try_get("id").map_err(StoreError::from_sqlx)?;
        let at = match index.get(&id) {
            Some(&at) => at,
            None => {
                index.insert(id, users.len());
                users.push(decode_user(row)?);
                users.len() - 1
            }
        };
        let group: Option<String> = row.try_get("group_name").map_err(StoreError::from_sqlx)?;
        if let Some(user) = users.get_mut(at) {
            user.groups.extend(group);
        }
    }
    for user in &mut users {
        // Sorted here rather than in SQL: collation order differs between backends.
        user.groups.sort();
        user.groups.dedup();
    }
    Ok(users)
}

fn decode_user(row: &DbRow) -> Result<UserRecord, StoreError> {
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
