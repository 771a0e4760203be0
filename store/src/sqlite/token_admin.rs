//! Operator changes to one token in SQLite (end, unlock, resync): each is one conditional
//! update of a live token plus its history event, committed together. A token that is not
//! live is refused with [`StoreError::Conflict`], an unknown id with [`StoreError::NotFound`].

use sqlx::Row;
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteConnection, SqlitePool};

use super::history::{append, event};
use super::{begin_write, commit, encode_u64};
use crate::{StoreError, TokenState, sql};

/// Moves a live token to the terminal `state` and records an event named after the state.
pub(super) async fn end(
    pool: &SqlitePool,
    token_id: &str,
    state: TokenState,
    actor: &str,
    detail: &str,
    now: i64,
) -> Result<(), StoreError> {
    if state.is_live() {
        return Err(StoreError::Conflict(format!(
            "{state} is not a terminal state; token {token_id} unchanged"
        )));
    }
    let update = sqlx::query(sql::END_LIVE_TOKEN)
        .bind(token_id)
        .bind(state.as_str())
        .bind(now);
    let change = Change {
        actor,
        action: state.as_str(),
        detail: detail.to_owned(),
        now,
        end_sessions: true,
    };
    change_live(pool, token_id, update, change).await
}

/// Resets a live token's failure counter and records `unlocked`.
pub(super) async fn unlock(pool: &SqlitePool, token_id: &str, actor: &str, now: i64) -> Result<(), StoreError> {
    let update = sqlx::query(sql::UNLOCK_TOKEN).bind(token_id).bind(now);
    let change = Change {
        actor,
        action: "unlocked",
        detail: String::new(),
        now,
        end_sessions: false,
    };
    change_live(pool, token_id, update, change).await
}

/// Sets a live token's last accepted step to `step`, resets failures, activates it if pending
/// and records `resynced`.
pub(super) async fn resync(
    pool: &SqlitePool,
    token_id: &str,
    step: u64,
    drift_steps: i64,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    let encoded = encode_u64(step, "step")?;
    let update = sqlx::query(sql::RESYNC_TOKEN)
        .bind(token_id)
        .bind(encoded)
        .bind(now)
        .bind(drift_steps);
    let change = Change {
        actor,
        action: "resynced",
        detail: format!("last step {step}, device drift {drift_steps} step(s)"),
        now,
        end_sessions: false,
    };
    change_live(pool, token_id, update, change).await
}

/// The history event of a change.
struct Change<'a> {
    actor: &'a str,
    action: &'a str,
    detail: String,
    now: i64,
    /// Whether the change ends the sessions the token opened (reason `token_<action>`).
    end_sessions: bool,
}

/// Runs `update` (a conditional update of a live token returning its `user_id`) and appends
/// the event in one transaction, or explains why the token was not changed.
async fn change_live<'q>(
    pool: &SqlitePool,
    token_id: &str,
    update: Query<'q, Sqlite, SqliteArguments<'q>>,
    change: Change<'_>,
) -> Result<(), StoreError> {
    let mut tx = begin_write(pool).await?;
    let row = update.fetch_optional(&mut *tx).await.map_err(StoreError::from_sqlx)?;
    let Some(row) = row else {
        return Err(refusal(&mut tx, token_id).await);
    };
    let user_id: String = row.try_get("user_id").map_err(StoreError::from_sqlx)?;
    let event = event(
        change.now,
        change.actor,
        change.action,
        &user_id,
        Some(token_id),
        change.detail,
    );
    append(&mut tx, &event).await?;
    if change.end_sessions {
        let reason = format!("token_{}", change.action);
        super::sessions::end_for_token(&mut tx, token_id, &reason, change.now).await?;
    }
    commit(tx).await
}

/// Why a conditional update of a live token changed nothing: the token is unknown or not live.
async fn refusal(conn: &mut SqliteConnection, token_id: &str) -> StoreError {
    let current = sqlx::query(sql::TOKEN_STATE).bind(token_id).fetch_optional(conn).await;
    match current {
        Err(err) => StoreError::from_sqlx(err),
        Ok(None) => StoreError::NotFound,
        Ok(Some(row)) => match row.try_get::<String, _>("state") {
            Ok(state) => StoreError::Conflict(format!("token {token_id} is {state}")),
            Err(err) => StoreError::from_sqlx(err),
        },
    }
}
