//! Operators: created once with a hashed API key, found by that hash, listed by
//! name, and revoked once.

use super::dialect::{DbRow, Pool};
use sqlx::Row;

use crate::{OperatorRecord, OperatorRole, StoreError, sql};

/// Stores a new operator; a duplicate id, name or key hash is [`StoreError::Conflict`].
pub(super) async fn insert(pool: &Pool, operator: &OperatorRecord) -> Result<(), StoreError> {
    sqlx::query(sql::INSERT_OPERATOR)
        .bind(&operator.id)
        .bind(&operator.name)
        .bind(operator.role.as_str())
        .bind(&operator.key_hash)
        .bind(operator.created_at)
        .bind(&operator.created_by)
        .bind(operator.revoked_at)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
}

/// The operator whose key hashes to `key_hash`, revoked or not.
pub(super) async fn by_key_hash(pool: &Pool, key_hash: &[u8]) -> Result<Option<OperatorRecord>, StoreError> {
    let row = sqlx::query(sql::OPERATOR_BY_KEY_HASH)
        .bind(key_hash)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    row.as_ref().map(decode_operator).transpose()
}

/// Every operator, sorted by name.
pub(super) async fn list(pool: &Pool) -> Result<Vec<OperatorRecord>, StoreError> {
    let rows = sqlx::query(sql::LIST_OPERATORS)
        .fetch_all(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    let mut operators = rows.iter().map(decode_operator).collect::<Result<Vec<_>, _>>()?;
    // Sorted here rather than in SQL: collation order differs between backends.
    operators.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(operators)
}

/// Withdraws the key of operator `name`; unknown or already revoked is
/// [`StoreError::NotFound`].
pub(super) async fn revoke(pool: &Pool, name: &str, now: i64) -> Result<(), StoreError> {
    let done = sqlx::query(sql::REVOKE_OPERATOR)
        .bind(name)
        .bind(now)
        .execute(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

fn decode_operator(row: &DbRow) -> Result<OperatorRecord, StoreError> {
    let get = StoreError::from_sqlx;
    let role: String = row.try_get("role").map_err(get)?;
    Ok(OperatorRecord {
        id: row.try_get("id").map_err(get)?,
        name: row.try_get("name").map_err(get)?,
        role: OperatorRole::parse(&role).ok_or_else(|| StoreError::corrupt("operators.role is not a known role"))?,
        key_hash: row.try_get("key_hash").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        created_by: row.try_get("created_by").map_err(get)?,
        revoked_at: row.try_get("revoked_at").map_err(get)?,
    })
}
