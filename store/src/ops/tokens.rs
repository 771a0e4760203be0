//! Tokens: insert, lookups, life-cycle changes, and the replay and lockout gate.
//! `accept_step` and `record_failure` are single conditional statements, so their effect is
//! atomic across tasks and across processes sharing the database.

use super::dialect::{Args, Conn, Db, DbRow, Pool};
use rampart_core::totp::{TotpAlgorithm, TotpParams};
use sqlx::Row;
use sqlx::query::Query;

use super::{decode_int, encode_u64};
use crate::{SealedSeed, StepOutcome, StoreError, TokenRecord, TokenState, sql};

/// How often `accept_step` re-runs the gate when the row changed between the update and the
/// classifying read. Each retry needs a concurrent writer to undo the blocking condition, so
/// this is reached only under pathological contention.
const GATE_ATTEMPTS: usize = 3;

/// Inserts a new token. A second live token for the user or a duplicate id is
/// [`StoreError::Conflict`]; an unknown user is [`StoreError::NotFound`].
pub(super) async fn insert(pool: &Pool, token: &TokenRecord) -> Result<(), StoreError> {
    bind_token(sqlx::query(sql::INSERT_TOKEN), token)?
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
}

/// Inserts a token issued by the provisioner on `conn` (inside the issuing transaction), with
/// when its seed was delivered (`None`: not yet) and who issued it.
pub(super) async fn insert_issued(
    conn: &mut Conn,
    token: &TokenRecord,
    delivered_at: Option<i64>,
    issued_by: &str,
) -> Result<(), StoreError> {
    bind_token(sqlx::query(sql::ISSUE_TOKEN), token)?
        .bind(delivered_at)
        .bind(issued_by)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
}

/// Binds `$1`..`$15` of [`sql::INSERT_TOKEN`] and [`sql::ISSUE_TOKEN`].
fn bind_token<'q>(
    query: Query<'q, Db, Args<'q>>,
    token: &'q TokenRecord,
) -> Result<Query<'q, Db, Args<'q>>, StoreError> {
    let last_step = token.last_step.map(|step| encode_u64(step, "last_step")).transpose()?;
    Ok(query
        .bind(&token.id)
        .bind(&token.user_id)
        .bind(token.state.as_str())
        .bind(token.params.algorithm.as_str())
        .bind(i64::from(token.params.digits))
        .bind(encode_u64(token.params.period, "period")?)
        .bind(i64::from(token.params.window))
        .bind(i64::from(token.sealed.key_id))
        .bind(&token.sealed.blob)
        .bind(last_step)
        .bind(i64::from(token.failures))
        .bind(token.created_at)
        .bind(token.activated_at)
        .bind(token.last_used_at)
        .bind(token.drift_steps))
}

/// The token with id `token_id`, in any state.
pub(super) async fn by_id(pool: &Pool, token_id: &str) -> Result<Option<TokenRecord>, StoreError> {
    let row = sqlx::query(sql::TOKEN_BY_ID)
        .bind(token_id)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    row.as_ref().map(decode_token).transpose()
}

/// The user's pending or active token, if any.
pub(super) async fn live_for_user(pool: &Pool, user_id: &str) -> Result<Option<TokenRecord>, StoreError> {
    let row = sqlx::query(sql::LIVE_TOKEN_FOR_USER)
        .bind(user_id)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    row.as_ref().map(decode_token).transpose()
}

/// Moves a token to `state` if its life-cycle allows (see [`sql::SET_TOKEN_STATE`]).
pub(super) async fn set_state(pool: &Pool, token_id: &str, state: TokenState, now: i64) -> Result<(), StoreError> {
    let done = sqlx::query(sql::SET_TOKEN_STATE)
        .bind(token_id)
        .bind(state.as_str())
        .bind(now)
        .bind(!state.is_live())
        .execute(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    if done.rows_affected() > 0 {
        return Ok(());
    }
    let current = sqlx::query(sql::TOKEN_STATE)
        .bind(token_id)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    match current {
        None => Err(StoreError::NotFound),
        Some(row) => {
            let current: String = row.try_get("state").map_err(StoreError::from_sqlx)?;
            Err(StoreError::Conflict(format!(
                "token {token_id} is {current}, cannot become {state}"
            )))
        }
    }
}

/// Records `step` for the token if it is live, newer than the last accepted step and below
/// the failure limit; otherwise says which of those failed.
pub(super) async fn accept_step(
    pool: &Pool,
    token_id: &str,
    step: u64,
    max_failures: u32,
    now: i64,
) -> Result<StepOutcome, StoreError> {
    let step = encode_u64(step, "step")?;
    for _ in 0..GATE_ATTEMPTS {
        let accepted = sqlx::query(sql::ACCEPT_STEP)
            .bind(token_id)
            .bind(step)
            .bind(i64::from(max_failures))
            .bind(now)
            .fetch_optional(pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        if let Some(row) = accepted {
            let activated_step: Option<i64> = row.try_get("activated_step").map_err(StoreError::from_sqlx)?;
            return Ok(StepOutcome::Accepted {
                activated: activated_step == Some(step),
            });
        }
        if let Some(outcome) = classify_rejection(pool, token_id, step, max_failures).await? {
            return Ok(outcome);
        }
    }
    Err(StoreError::Conflict(format!(
        "token {token_id} kept changing during accept_step"
    )))
}

/// Why the gate refused `step`, read after the fact; `None` if nothing blocks it any more
/// (a concurrent writer changed the row), in which case the caller retries the gate.
async fn classify_rejection(
    pool: &Pool,
    token_id: &str,
    step: i64,
    max_failures: u32,
) -> Result<Option<StepOutcome>, StoreError> {
    let Some(row) = sqlx::query(sql::TOKEN_GATE_STATE)
        .bind(token_id)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::from_sqlx)?
    else {
        return Ok(Some(StepOutcome::NotLive));
    };
    let get = StoreError::from_sqlx;
    let state = decode_state(&row.try_get::<String, _>("state").map_err(get)?)?;
    let last_step: Option<i64> = row.try_get("last_step").map_err(get)?;
    let failures: i64 = row.try_get("failures").map_err(get)?;
    Ok(if !state.is_live() {
        Some(StepOutcome::NotLive)
    } else if failures >= i64::from(max_failures) {
        Some(StepOutcome::Locked)
    } else if last_step.is_some_and(|last| step <= last) {
        Some(StepOutcome::Replayed)
    } else {
        None
    })
}

/// Adds one failure and returns the new count.
pub(super) async fn record_failure(pool: &Pool, token_id: &str, now: i64) -> Result<u32, StoreError> {
    let row = sqlx::query(sql::RECORD_FAILURE)
        .bind(token_id)
        .bind(now)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::from_sqlx)?
        .ok_or(StoreError::NotFound)?;
    let failures: i64 = row.try_get("failures").map_err(StoreError::from_sqlx)?;
    decode_int(failures, "tokens.failures")
}

pub(super) fn decode_state(name: &str) -> Result<TokenState, StoreError> {
    TokenState::parse(name).ok_or_else(|| StoreError::corrupt("tokens.state is not a known state"))
}

/// A token from a row holding the columns of `select_token!`.
pub(super) fn decode_token(row: &DbRow) -> Result<TokenRecord, StoreError> {
    let get = StoreError::from_sqlx;
    let algorithm: String = row.try_get("algorithm").map_err(get)?;
    let params = TotpParams {
        algorithm: TotpAlgorithm::parse(&algorithm)
            .ok_or_else(|| StoreError::corrupt("tokens.algorithm is not a known algorithm"))?,
        digits: decode_int(row.try_get("digits").map_err(get)?, "tokens.digits")?,
        period: decode_int(row.try_get("period").map_err(get)?, "tokens.period")?,
        window: decode_int(row.try_get("time_window").map_err(get)?, "tokens.time_window")?,
    };
    let last_step: Option<i64> = row.try_get("last_step").map_err(get)?;
    Ok(TokenRecord {
        id: row.try_get("id").map_err(get)?,
        user_id: row.try_get("user_id").map_err(get)?,
        state: decode_state(&row.try_get::<String, _>("state").map_err(get)?)?,
        params,
        sealed: SealedSeed {
            key_id: decode_int(row.try_get("key_id").map_err(get)?, "tokens.key_id")?,
            blob: row.try_get("sealed_seed").map_err(get)?,
        },
        last_step: last_step.map(|step| decode_int(step, "tokens.last_step")).transpose()?,
        failures: decode_int(row.try_get("failures").map_err(get)?, "tokens.failures")?,
        created_at: row.try_get("created_at").map_err(get)?,
        activated_at: row.try_get("activated_at").map_err(get)?,
        last_used_at: row.try_get("last_used_at").map_err(get)?,
        drift_steps: row.try_get("drift_steps").map_err(get)?,
    })
}
