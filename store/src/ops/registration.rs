//! Registration codes and the enrolments they open. Issuing a code withdraws the person's
//! earlier ones; a wrong try is counted in the same statement that looks for the code, and the
//! limit spends it; confirming an enrolment deletes it, redeems its code and issues the token
//! in one transaction, each step conditional, so an enrolment becomes a token at most once.

use super::dialect::{Db, DbRow, Pool};
use sqlx::{Row, Transaction};

use super::history::{append, event};
use super::issue::issue_in;
use super::{begin_write, commit, decode_int, encode_u64};
use crate::registration::{
    CodeCheck, CodeState, Confirmation, Confirmed, Delivery, Enrolment, MAX_ENROLMENT_FAILURES,
    MAX_REGISTRATION_FAILURES, RegistrationCode, RegistrationCodeView,
};
use crate::{IssueOutcome, SealedSeed, StoreError, TokenIssue, TokenRecord, TokenState, UserRecord};
use rampart_core::totp::{TotpAlgorithm, TotpParams};

/// Who acts when a person enrols themselves, in the token history.
const SELF_SERVICE: &str = "self-service";

const WITHDRAW_CODES: &str = "UPDATE registration_codes SET withdrawn_at = $2 \
    WHERE user_id = $1 AND used_at IS NULL AND withdrawn_at IS NULL";
const INSERT_CODE: &str = "INSERT INTO registration_codes \
    (id, user_id, code_hash, created_at, expires_at, created_by, delivery) VALUES ($1, $2, $3, $4, $5, $6, $7)";
/// The person's live code with this hash.
const FIND_CODE: &str = "SELECT id FROM registration_codes WHERE user_id = $1 AND code_hash = $2 \
    AND used_at IS NULL AND withdrawn_at IS NULL AND expires_at > $3";
/// Counts a wrong try against the person's live codes, spending them at the limit ($3).
const FAIL_CODES: &str = "UPDATE registration_codes SET failures = failures + 1, \
    withdrawn_at = CASE WHEN failures + 1 >= $3 THEN $2 ELSE withdrawn_at END \
    WHERE user_id = $1 AND used_at IS NULL AND withdrawn_at IS NULL AND expires_at > $2 \
    RETURNING id, failures";
/// The failures of the person's live code, if there is one.
const LIVE_FAILURES: &str = "SELECT failures FROM registration_codes WHERE user_id = $1 \
    AND used_at IS NULL AND withdrawn_at IS NULL AND expires_at > $2 ORDER BY created_at DESC LIMIT 1";
const CODES_OF: &str = "SELECT id, created_at, expires_at, created_by, delivery, failures, used_at, withdrawn_at \
    FROM registration_codes WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2";
const REDEEM_CODE: &str = "UPDATE registration_codes SET used_at = $2 \
    WHERE id = $1 AND used_at IS NULL AND withdrawn_at IS NULL AND expires_at > $2";
const DROP_ENROLMENT_OF: &str = "DELETE FROM enrolments WHERE user_id = $1";
const INSERT_ENROLMENT: &str = "INSERT INTO enrolments (id, user_id, registration_code, token_id, algorithm, \
    digits, period, time_window, key_id, sealed_seed, created_at, expires_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
const ENROLMENT: &str = "SELECT id, user_id, registration_code, token_id, algorithm, digits, period, time_window, \
    key_id, sealed_seed, created_at, expires_at, failures FROM enrolments WHERE id = $1";
const FAIL_ENROLMENT: &str = "UPDATE enrolments SET failures = failures + 1 WHERE id = $1 AND expires_at > $2 \
    RETURNING user_id, failures";
const DROP_ENROLMENT: &str = "DELETE FROM enrolments WHERE id = $1";
const PURGE_ENROLMENTS: &str = "DELETE FROM enrolments WHERE expires_at < $1";
/// Takes the enrolment if it can still be confirmed.
const TAKE_ENROLMENT: &str = "DELETE FROM enrolments WHERE id = $1 AND expires_at > $2 \
    RETURNING id, user_id, registration_code, token_id, algorithm, digits, period, time_window, key_id, \
    sealed_seed, created_at, expires_at, failures";

/// Withdraws the person's earlier codes, stores `code` and records `registration_code_issued`.
pub(super) async fn issue(pool: &Pool, code: &RegistrationCode) -> Result<(), StoreError> {
    let mut tx = begin_write(pool).await?;
    // Two desks issuing at once must not leave two live codes.
    super::dialect::serialize(&mut tx, &format!("person-registration:{}", code.user_id)).await?;
    sqlx::query(WITHDRAW_CODES)
        .bind(&code.user_id)
        .bind(code.created_at)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    sqlx::query(INSERT_CODE)
        .bind(&code.id)
        .bind(&code.user_id)
        .bind(&code.code_hash)
        .bind(code.created_at)
        .bind(code.expires_at)
        .bind(&code.created_by)
        .bind(code.delivery.as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| match StoreError::from_sqlx(e) {
            // The person must be known (a foreign key); the caller upserts them first.
            StoreError::Conflict(_) => StoreError::NotFound,
            other => other,
        })?;
    let detail = format!(
        "code {} by {}; expires at {}",
        code.id,
        code.delivery,
        rampart_core::text::utc_minute(code.expires_at)
    );
    let issued = event(
        code.created_at,
        &code.created_by,
        "registration_code_issued",
        &code.user_id,
        None,
        detail,
    );
    append(&mut tx, &issued).await?;
    commit(tx).await
}

/// Withdraws the person's live registration codes and drops their unconfirmed enrolment, in
/// the caller's transaction (a token revoked or lost); records `registration_codes_withdrawn`
/// when there was anything to withdraw.
pub(super) async fn withdraw_all(
    tx: &mut Transaction<'static, Db>,
    user_id: &str,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    let codes = sqlx::query(WITHDRAW_CODES)
        .bind(user_id)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from_sqlx)?
        .rows_affected();
    let enrolments = sqlx::query(DROP_ENROLMENT_OF)
        .bind(user_id)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::from_sqlx)?
        .rows_affected();
    if codes + enrolments > 0 {
        let detail = format!("{codes} code(s), {enrolments} unconfirmed enrolment(s)");
        append(
            tx,
            &event(now, actor, "registration_codes_withdrawn", user_id, None, detail),
        )
        .await?;
    }
    Ok(())
}

/// Whether `code_hash` is the person's live code. A miss is not counted: 80 random bits leave
/// nothing to guess, and counting misses would let anyone who knows a username spend that
/// person's code. What is counted is the right code with a wrong password ([`fail`]).
pub(super) async fn check(pool: &Pool, user_id: &str, code_hash: &[u8], now: i64) -> Result<CodeCheck, StoreError> {
    let found: Option<String> = sqlx::query_scalar(FIND_CODE)
        .bind(user_id)
        .bind(code_hash)
        .bind(now)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    if let Some(code_id) = found {
        return Ok(CodeCheck::Valid { code_id });
    }
    let failures: Option<i64> = sqlx::query_scalar(LIVE_FAILURES)
        .bind(user_id)
        .bind(now)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    Ok(match failures {
        None => CodeCheck::NoLiveCode,
        Some(failures) => CodeCheck::Wrong {
            tries_left: decode_int(
                i64::from(MAX_REGISTRATION_FAILURES).saturating_sub(failures).max(0),
                "registration_codes.failures",
            )?,
        },
    })
}

/// Counts a wrong try against the person's live code: the right code with a wrong password.
pub(super) async fn fail(pool: &Pool, user_id: &str, now: i64) -> Result<CodeCheck, StoreError> {
    let mut tx = begin_write(pool).await?;
    super::dialect::serialize(&mut tx, &format!("person-registration:{user_id}")).await?;
    let counted = count_failure(&mut tx, user_id, now).await?;
    commit(tx).await?;
    Ok(counted)
}

async fn count_failure(tx: &mut Transaction<'static, Db>, user_id: &str, now: i64) -> Result<CodeCheck, StoreError> {
    let counted: Vec<(String, i64)> = sqlx::query_as(FAIL_CODES)
        .bind(user_id)
        .bind(now)
        .bind(i64::from(MAX_REGISTRATION_FAILURES))
        .fetch_all(&mut **tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    let Some(failures) = counted.iter().map(|(_, failures)| *failures).max() else {
        return Ok(CodeCheck::NoLiveCode);
    };
    let max = i64::from(MAX_REGISTRATION_FAILURES);
    for (code_id, _) in counted.iter().filter(|(_, failures)| *failures >= max) {
        let detail = format!("code {code_id}: {MAX_REGISTRATION_FAILURES} wrong tries");
        let spent = event(now, SELF_SERVICE, "registration_code_spent", user_id, None, detail);
        append(tx, &spent).await?;
    }
    Ok(CodeCheck::Wrong {
        tries_left: decode_int(max.saturating_sub(failures).max(0), "registration_codes.failures")?,
    })
}

/// The person's newest codes, newest first, with where each stands at `now`.
pub(super) async fn codes_of(
    pool: &Pool,
    user_id: &str,
    limit: u32,
    now: i64,
) -> Result<Vec<RegistrationCodeView>, StoreError> {
    let rows = sqlx::query(CODES_OF)
        .bind(user_id)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    rows.iter()
        .map(|row| {
            let get = StoreError::from_sqlx;
            let expires_at: i64 = row.try_get("expires_at").map_err(get)?;
            let used_at: Option<i64> = row.try_get("used_at").map_err(get)?;
            let withdrawn_at: Option<i64> = row.try_get("withdrawn_at").map_err(get)?;
            let state = match (used_at, withdrawn_at) {
                (Some(_), _) => CodeState::Used,
                (None, Some(_)) => CodeState::Withdrawn,
                (None, None) if expires_at <= now => CodeState::Expired,
                (None, None) => CodeState::Live,
            };
            let delivery: String = row.try_get("delivery").map_err(get)?;
            Ok(RegistrationCodeView {
                id: row.try_get("id").map_err(get)?,
                created_at: row.try_get("created_at").map_err(get)?,
                expires_at,
                created_by: row.try_get("created_by").map_err(get)?,
                delivery: Delivery::parse(&delivery)
                    .ok_or_else(|| StoreError::corrupt("registration_codes.delivery is not a known delivery"))?,
                failures: decode_int(row.try_get("failures").map_err(get)?, "registration_codes.failures")?,
                state,
            })
        })
        .collect()
}

/// Stores `enrolment` in place of the person's earlier one, recording `enrolment_started`.
pub(super) async fn start(pool: &Pool, enrolment: &Enrolment) -> Result<(), StoreError> {
    let mut tx = begin_write(pool).await?;
    // Two starts for one person at once (from two provisioners) must not meet at the unique
    // index: the second replaces the first.
    super::dialect::serialize(&mut tx, &format!("person-registration:{}", enrolment.user_id)).await?;
    sqlx::query(DROP_ENROLMENT_OF)
        .bind(&enrolment.user_id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    sqlx::query(INSERT_ENROLMENT)
        .bind(&enrolment.id)
        .bind(&enrolment.user_id)
        .bind(&enrolment.registration_code)
        .bind(&enrolment.token_id)
        .bind(enrolment.params.algorithm.as_str())
        .bind(i64::from(enrolment.params.digits))
        .bind(encode_u64(enrolment.params.period, "period")?)
        .bind(i64::from(enrolment.params.window))
        .bind(i64::from(enrolment.sealed.key_id))
        .bind(&enrolment.sealed.blob)
        .bind(enrolment.created_at)
        .bind(enrolment.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    let detail = format!(
        "with code {}; confirm before {}",
        enrolment.registration_code,
        rampart_core::text::utc_minute(enrolment.expires_at)
    );
    let started = event(
        enrolment.created_at,
        SELF_SERVICE,
        "enrolment_started",
        &enrolment.user_id,
        Some(&enrolment.token_id),
        detail,
    );
    append(&mut tx, &started).await?;
    commit(tx).await
}

/// The enrolment with this id, whether or not it has expired.
pub(super) async fn by_id(pool: &Pool, id: &str) -> Result<Option<Enrolment>, StoreError> {
    let row = sqlx::query(ENROLMENT)
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    row.as_ref().map(decode_enrolment).transpose()
}

/// Deletes the enrolments that expired before `before`; how many.
pub(super) async fn purge(pool: &Pool, before: i64) -> Result<u64, StoreError> {
    let done = sqlx::query(PURGE_ENROLMENTS)
        .bind(before)
        .execute(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    Ok(done.rows_affected())
}

/// Counts a wrong first code; the limit drops the enrolment (`enrolment_spent`). The tries
/// left, or `None` when the enrolment is unknown or expired.
pub(super) async fn fail_enrolment(pool: &Pool, id: &str, now: i64) -> Result<Option<u32>, StoreError> {
    let mut tx = begin_write(pool).await?;
    let row: Option<(String, i64)> = sqlx::query_as(FAIL_ENROLMENT)
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    let Some((user_id, failures)) = row else {
        return Ok(None);
    };
    let max = i64::from(MAX_ENROLMENT_FAILURES);
    if failures >= max {
        sqlx::query(DROP_ENROLMENT)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        let detail = format!("{MAX_ENROLMENT_FAILURES} wrong first codes");
        append(
            &mut tx,
            &event(now, SELF_SERVICE, "enrolment_spent", &user_id, None, detail),
        )
        .await?;
    }
    commit(tx).await?;
    Ok(Some(decode_int(
        max.saturating_sub(failures).max(0),
        "enrolments.failures",
    )?))
}

/// Takes the enrolment, redeems its registration code and issues its token, active since the
/// confirming code's `step` (so that code is not accepted again), in place of the person's live
/// token: all or nothing.
pub(super) async fn confirm(
    pool: &Pool,
    id: &str,
    user: &UserRecord,
    confirmed: &Confirmed,
    now: i64,
) -> Result<Confirmation, StoreError> {
    let mut tx = begin_write(pool).await?;
    let row = sqlx::query(TAKE_ENROLMENT)
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    let Some(enrolment) = row.as_ref().map(decode_enrolment).transpose()? else {
        return Ok(Confirmation::Gone);
    };
    if enrolment.user_id != user.id {
        return Err(StoreError::Conflict(format!(
            "enrolment {id} belongs to another person"
        )));
    }
    let redeemed = sqlx::query(REDEEM_CODE)
        .bind(&enrolment.registration_code)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?
        .rows_affected();
    if redeemed != 1 {
        // Replaced by a newer code, used by another enrolment, or expired: the deletion above
        // is rolled back with the rest, and the enrolment expires on its own.
        return Ok(Confirmation::Gone);
    }
    let mut token = TokenRecord::pending(
        enrolment.token_id.clone(),
        user.id.clone(),
        enrolment.params,
        confirmed.sealed.clone(),
        now,
    );
    token.state = TokenState::Active;
    token.last_step = Some(confirmed.step);
    token.activated_at = Some(now);
    token.last_used_at = Some(now);
    let issue = TokenIssue {
        user: user.clone(),
        token,
        delivered: true,
        mode: confirmed.mode,
        actor: SELF_SERVICE.to_owned(),
    };
    let replaced = match issue_in(&mut tx, &issue, now).await? {
        IssueOutcome::Issued { replaced } => replaced,
        IssueOutcome::Skipped { .. } => return Ok(Confirmation::Gone),
    };
    let detail = format!("with code {}", enrolment.registration_code);
    append(
        &mut tx,
        &event(
            now,
            SELF_SERVICE,
            "enrolled",
            &user.id,
            Some(&enrolment.token_id),
            detail,
        ),
    )
    .await?;
    commit(tx).await?;
    Ok(Confirmation::Confirmed { replaced })
}

fn decode_enrolment(row: &DbRow) -> Result<Enrolment, StoreError> {
    let get = StoreError::from_sqlx;
    let algorithm: String = row.try_get("algorithm").map_err(get)?;
    Ok(Enrolment {
        id: row.try_get("id").map_err(get)?,
        user_id: row.try_get("user_id").map_err(get)?,
        registration_code: row.try_get("registration_code").map_err(get)?,
        token_id: row.try_get("token_id").map_err(get)?,
        params: TotpParams {
            algorithm: TotpAlgorithm::parse(&algorithm)
                .ok_or_else(|| StoreError::corrupt("enrolments.algorithm is not a known algorithm"))?,
            digits: decode_int(row.try_get("digits").map_err(get)?, "enrolments.digits")?,
            period: decode_int(row.try_get("period").map_err(get)?, "enrolments.period")?,
            window: decode_int(row.try_get("time_window").map_err(get)?, "enrolments.time_window")?,
        },
        sealed: SealedSeed {
            key_id: decode_int(row.try_get("key_id").map_err(get)?, "enrolments.key_id")?,
            blob: row.try_get("sealed_seed").map_err(get)?,
        },
        created_at: row.try_get("created_at").map_err(get)?,
        expires_at: row.try_get("expires_at").map_err(get)?,
        failures: decode_int(row.try_get("failures").map_err(get)?, "enrolments.failures")?,
    })
}
