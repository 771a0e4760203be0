//! Operator changes to one token (end, unlock, resync): each is one conditional
//! update of a live token plus its history event, committed together. A token that is not
//! live is refused with [`StoreError::Conflict`], an unknown id with [`StoreError::NotFound`];
//! so is a resync to a step that is not after the token's last accepted step. An unlock of a
//! live token that is not locked changes and records nothing.

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
        lock_at: None,
    };
    change_live(pool, token_id, update, change).await.map(|_| ())
}

/// Resets the failure counter of a live token locked at `lock_at` wrong codes and records
/// `unlocked`; false, changing and recording nothing, when the live token is not locked.
pub(super) async fn unlock(
    pool: &Pool,
    token_id: &str,
    lock_at: u32,
    actor: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let update = sqlx::query(sql::UNLOCK_LOCKED_TOKEN)
        .bind(token_id)
        .bind(now)
        .bind(i64::from(lock_at));
    let change = Change {
        actor,
        action: "unlocked",
        detail: String::new(),
        now,
        end_sessions: false,
        resync_step: None,
        lock_at: Some(lock_at),
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
        lock_at: None,
    };
    change_live(pool, token_id, update, change).await.map(|_| ())
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
    /// For an unlock, the failure count at which the token is locked: one with fewer is left
    /// alone.
    lock_at: Option<u32>,
}

/// Runs `update` (a conditional update of a live token returning its `user_id`) and appends
/// the event in one transaction (true), or explains why the token was not changed: false for
/// an unlock of a live token that is not locked, an error otherwise.
async fn change_live<'q>(
    pool: &Pool,
    token_id: &str,
    update: Query<'q, Db, Args<'q>>,
    change: Change<'_>,
) -> Result<bool, StoreError> {
    let mut tx = begin_write(pool).await?;
    let row = update.fetch_optional(&mut *tx).await.map_err(StoreError::from_sqlx)?;
    let Some(row) = row else {
        return refusal(&mut tx, token_id, &change).await.map(|()| false);
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
        let ended_by = crate::EndedBy::Operator(change.actor.to_owned());
        super::sessions::end_for_token(&mut tx, token_id, &reason, Some(&ended_by), change.now).await?;
        // A token ended for cause must not be re-enrolled with a code issued before.
        super::registration::withdraw_all(&mut tx, &user_id, change.actor, change.now).await?;
    }
    commit(tx).await.map(|()| true)
}

/// Why a conditional update of a live token changed nothing: the token is unknown or not live,
/// or (for a resync) it already accepted that step or a later one — an error; or, for an
/// unlock, the live token is not locked — `Ok`, nothing to do.
async fn refusal(conn: &mut Conn, token_id: &str, change: &Change<'_>) -> Result<(), StoreError> {
    let row = sqlx::query(sql::TOKEN_GATE_STATE)
        .bind(token_id)
        .fetch_optional(conn)
        .await
        .map_err(StoreError::from_sqlx)?
        .ok_or(StoreError::NotFound)?;
    let get = StoreError::from_sqlx;
    let state: String = row.try_get("state").map_err(get)?;
    if !matches!(state.as_str(), "pending" | "active") {
        return Err(StoreError::Conflict(format!("token {token_id} is {state}")));
    }
    let last_step: Option<i64> = row.try_get("last_step").map_err(get)?;
    let failures: i64 = row.try_get("failures").map_err(get)?;
    Err(match (change.resync_step, last_step, change.lock_at) {
        (Some(step), Some(last), _) => StoreError::Conflict(format!(
            "token {token_id} already accepted step {last}: a resync to step {step} is not newer and could make used codes \
             valid again"
        )),
        (_, _, Some(lock_at)) if failures < i64::from(lock_at) => return Ok(()),
        // The update refused a live token for no reason this function knows of.
        _ => StoreError::Conflict(format!("token {token_id} was changed concurrently; try again")),
    })
}
