//! Seed-sealing keys in the store, each wrapped by a key-encryption key. Adding a key with an
//! id that exists fails (so concurrent rotations from two nodes add one key), and retiring
//! checks, in its own transaction, that the key is neither current nor sealing any token.

use sqlx::{Row, Transaction};

use super::decode_int;
use super::dialect::{self, Db, Pool};
use crate::{StoreError, WrappedSealKey};

pub(super) async fn all(pool: &Pool) -> Result<Vec<WrappedSealKey>, StoreError> {
    let rows = sqlx::query("SELECT id, wrapped, kek_id, created_at, created_by FROM seal_keys ORDER BY id")
        .fetch_all(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    rows.iter()
        .map(|row| {
            let get = StoreError::from_sqlx;
            Ok(WrappedSealKey {
                id: decode_int(row.try_get("id").map_err(get)?, "seal_keys.id")?,
                wrapped: row.try_get("wrapped").map_err(get)?,
                kek_id: row.try_get("kek_id").map_err(get)?,
                created_at: row.try_get("created_at").map_err(get)?,
                created_by: row.try_get("created_by").map_err(get)?,
            })
        })
        .collect()
}

pub(super) async fn add(pool: &Pool, key: &WrappedSealKey) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO seal_keys (id, wrapped, kek_id, created_at, created_by) VALUES ($1, $2, $3, $4, $5)")
        .bind(i64::from(key.id))
        .bind(&key.wrapped)
        .bind(&key.kek_id)
        .bind(key.created_at)
        .bind(&key.created_by)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(|err| match StoreError::from_sqlx(err) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("seal key {} exists already", key.id)),
            other => other,
        })
}

pub(super) async fn retire(tx: &mut Transaction<'static, Db>, id: u32) -> Result<(), StoreError> {
    dialect::serialize(tx, "seal-keys").await?;
    // No token may be sealed under the key between the count below and the delete.
    if !dialect::LOCK_TOKENS_AGAINST_WRITES.is_empty() {
        sqlx::query(dialect::LOCK_TOKENS_AGAINST_WRITES)
            .execute(&mut **tx)
            .await
            .map_err(StoreError::from_sqlx)?;
    }
    let current: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM seal_keys")
        .fetch_one(&mut **tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    if current == Some(i64::from(id)) {
        return Err(StoreError::Conflict(format!(
            "key {id} is the current key and cannot be retired"
        )));
    }
    let sealing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE key_id = $1")
        .bind(i64::from(id))
        .fetch_one(&mut **tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    if sealing > 0 {
        return Err(StoreError::Conflict(format!(
            "key {id} still seals {sealing} token(s); run a rotation first"
        )));
    }
    let deleted = sqlx::query("DELETE FROM seal_keys WHERE id = $1")
        .bind(i64::from(id))
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    if deleted.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
