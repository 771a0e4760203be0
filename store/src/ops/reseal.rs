//! Re-sealing: every token's sealed seed for a rotation, and a compare-and-swap that
//! replaces one seed only if nobody changed it since it was read.

use super::dialect::Pool;
use sqlx::Row;

use super::decode_int;
use crate::{SealedSeed, StoreError, sql};

/// Every token's id and sealed seed, by id.
pub(super) async fn sealed_seeds(pool: &Pool) -> Result<Vec<(String, SealedSeed)>, StoreError> {
    let rows = sqlx::query(sql::SEALED_SEEDS)
        .fetch_all(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    let get = StoreError::from_sqlx;
    rows.iter()
        .map(|row| {
            let sealed = SealedSeed {
                key_id: decode_int(row.try_get("key_id").map_err(get)?, "tokens.key_id")?,
                blob: row.try_get("sealed_seed").map_err(get)?,
            };
            Ok((row.try_get("id").map_err(get)?, sealed))
        })
        .collect()
}

/// Replaces the token's sealed seed with `new` if it still equals `old`; true if it did.
pub(super) async fn reseal(
    pool: &Pool,
    token_id: &str,
    old: &SealedSeed,
    new: &SealedSeed,
) -> Result<bool, StoreError> {
    let done = sqlx::query(sql::RESEAL)
        .bind(token_id)
        .bind(i64::from(old.key_id))
        .bind(&old.blob)
        .bind(i64::from(new.key_id))
        .bind(&new.blob)
        .execute(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    Ok(done.rows_affected() == 1)
}
