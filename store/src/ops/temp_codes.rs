//! Temporary one-time codes: issuing one withdraws the person's earlier unused
//! codes, and using one is a single conditional update, so a code works at most once even
//! when submitted concurrently by several tasks or processes.

use super::dialect::{Db, Pool};
use sqlx::Transaction;

use super::history::{append, event};
use super::{begin_write, commit};
use crate::temp_code::MAX_TEMP_CODE_FAILURES;
use crate::{StoreError, TempCodeRecord, sql};

/// Who uses a temporary code: the person, at a gateway login.
const USED_BY: &str = "gateway";

/// Withdraws the person's unused codes (as of `code.created_at`), stores `code` and records
/// `temp_code_issued`, in one transaction. An unknown person is [`StoreError::NotFound`].
pub(super) async fn insert(pool: &Pool, code: &TempCodeRecord) -> Result<(), StoreError> {
    let mut tx = begin_write(pool).await?;
    insert_in(&mut tx, code).await?;
    commit(tx).await
}

/// [`insert`] inside the caller's write transaction; the caller commits.
pub(super) async fn insert_in(tx: &mut Transaction<'static, Db>, code: &TempCodeRecord) -> Result<(), StoreError> {
    // Two desks issuing at once must not leave two live codes.
    super::dialect::serialize(tx, &format!("person-temp-codes:{}", code.user_id)).await?;
    sqlx::query(sql::WITHDRAW_TEMP_CODES)
        .bind(&code.user_id)
        .bind(code.created_at)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    sqlx::query(sql::INSERT_TEMP_CODE)
        .bind(&code.id)
        .bind(&code.user_id)
        .bind(&code.code_hash)
        .bind(code.created_at)
        .bind(code.expires_at)
        .bind(&code.created_by)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    let detail = format!("expires at {}", rampart_core::text::utc_minute(code.expires_at));
    let issued = event(
        code.created_at,
        &code.created_by,
        "temp_code_issued",
        &code.user_id,
        None,
        detail,
    );
    append(tx, &issued).await
}

/// Uses the person's unused, unexpired code hashing to `code_hash` and records
/// `temp_code_used` (actor `gateway`) in the same transaction; false if there is none, and
/// then the wrong try counts against the person's live codes ([`MAX_TEMP_CODE_FAILURES`]
/// spends them, recorded as `temp_code_spent`).
pub(super) async fn consume(pool: &Pool, user_id: &str, code_hash: &[u8], now: i64) -> Result<bool, StoreError> {
    let mut tx = begin_write(pool).await?;
    let used: Vec<String> = sqlx::query_scalar(sql::CONSUME_TEMP_CODE)
        .bind(user_id)
        .bind(code_hash)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    if used.is_empty() {
        // A wrong code: counted against the person's live codes, which are spent at the limit.
        let counted: Vec<(String, bool)> = sqlx::query_as(sql::FAIL_TEMP_CODES)
            .bind(user_id)
            .bind(now)
            .bind(i64::from(MAX_TEMP_CODE_FAILURES))
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        for (code_id, _) in counted.iter().filter(|(_, spent)| *spent) {
            let detail = format!("code {code_id}: {MAX_TEMP_CODE_FAILURES} wrong tries");
            let spent = event(now, USED_BY, "temp_code_spent", user_id, None, detail);
            append(&mut tx, &spent).await?;
        }
        commit(tx).await?;
        return Ok(false);
    }
    for code_id in &used {
        let used = event(now, USED_BY, "temp_code_used", user_id, None, format!("code {code_id}"));
        append(&mut tx, &used).await?;
    }
    commit(tx).await?;
    Ok(true)
}
