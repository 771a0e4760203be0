//! Operator changes to one token (end, unlock, resync): each is one conditional
//! update of a live token plus its history event, committed together. A token that is not
//! live is refused with [`StoreError::Conflict`], an unknown id with [`StoreError::NotFound`];
//! so is a resync to a step that is not after the token's last accepted step.

use super::dialect::{Args, Conn, Db, Pool};
use sqlx::Row;
use sqlx::query::Query;

use super::history::{append, event};
use super::{begin_write, commit, encode_u64};
use crate::{StoreError, TokenState, sql};

/// Moves a live token to the terminal `state` and records an event named after the state.
pub(super) async fn end(
    pool: &Pool,
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
        resync_step: None,
    };
    change_live(pool, token_id, update, change).await
}

/// Resets a live token's failure counter and records `unlocked`.
pub(super) async fn unlock(pool: &Pool, token_id: &str, actor: &str, now: i64) -> Result<(), StoreError> {
    let update = sqlx::query(sql::UNLOCK_TOKEN).bind(token_id).bind(now);
    let change = Change {
        actor,
        action: "unlocked",
        detail: String::new(),
        now,
        end_sessions: false,
        resync_step: None,
    };
    change_live(pool, token_id, update, change).await
}

/// Sets a live token's last accepted step to `step`, resets failures, activates it if pending
/// and records `resynced`. The replay mark never moves back: a `step` at or before the last
/// accepted step is [`StoreError::Conflict`] and changes nothing, checked in the same
/// statement as the update so a login accepted meanwhile is taken into account.
pub(super) async fn resync(
    pool: &Pool,
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
        resync_step: Some(step),
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
    /// For a resync, the step it records, which must be after the last accepted step.
    resync_step: Option<u64>,
}

/// Runs `update` (a conditional update of a live token returning its `user_id`) and appends
/// the event in one transaction, or explains why the token was not changed.
async fn change_live<'q>(
    pool: &Pool,
    token_id: &str,
    update: Query<'q, Db, Args<'q>>,
    change: Change<'_>,
) -> Result<(), StoreError> {
    let mut tx = begin_write(pool).await?;
    let row = update.fetch_optional(&mut *tx).await.map_err(StoreError::from_sqlx)?;
    let Some(row) = row else {
        return Err(refusal(&mut tx, token_id, change.resync_step).await);
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

/// Why a conditional update of a live token changed nothing: the token is unknown or not live,
/// or (for a resync to `resync_step`) it already accepted that step or a later one.
async fn refusal(conn: &mut Conn, token_id: &str, resync_step: Option<u64>) -> StoreError {
    let current = sqlx::query(sql::TOKEN_GATE_STATE)
        .bind(token_id)
        .fetch_optional(conn)
        .await;
    let row = match current {
        Err(err) => return StoreError::from_sqlx(err),
        Ok(None) => return StoreError::NotFound,
        Ok(Some(row)) => row,
    };
    let state = match row.try_get::<String, _>("state") {
        Ok(state) => state,
        Err(err) => return StoreError::from_sqlx(err),
    };
    if !matches!(state.as_str(), "pending" | "active") {
        return StoreError::Conflict(format!("token {token_id} is {state}"));
    }
    let last_step = match row.try_get::<Option<i64>, _>("last_step") {
        Ok(last_step) => last_step,
        Err(err) => return StoreError::from_sqlx(err),
    };
    match (resync_step, last_step) {
        (Some(step), Some(last)) => StoreError::Conflict(format!(
            "token {token_id} already accepted step {last}: a resync to step {step} is not newer and could make used codes \
             valid again"
        )),
        // The update refused a live token for no reason this function knows of.
        _ => StoreError::Conflict(format!("token {token_id} was changed concurrently; try again")),
    }
}
