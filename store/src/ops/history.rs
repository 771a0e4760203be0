//! The token history: events appended inside the transaction of the change they
//! describe, and read back as the most recent ones, oldest first.

use super::dialect::{Conn, DbRow, Pool};
use sqlx::Row;

use crate::{StoreError, TokenEvent, sql};

/// An event to append (`seq` is assigned by the store).
pub(super) fn event(
    at: i64,
    actor: &str,
    action: &str,
    user_id: &str,
    token_id: Option<&str>,
    detail: String,
) -> TokenEvent {
    TokenEvent {
        seq: 0,
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        user_id: user_id.to_owned(),
        token_id: token_id.map(str::to_owned),
        detail,
    }
}

/// Appends `event` on `conn` (its `seq` is ignored), inside the caller's transaction when
/// there is one.
pub(super) async fn append(conn: &mut Conn, event: &TokenEvent) -> Result<(), StoreError> {
    sqlx::query(sql::INSERT_TOKEN_EVENT)
        .bind(event.at)
        .bind(&event.actor)
        .bind(&event.action)
        .bind(&event.user_id)
        .bind(&event.token_id)
        .bind(&event.detail)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
}

/// The `limit` most recent events of `user_id` (everyone's when `None`), oldest first.
pub(super) async fn recent(pool: &Pool, user_id: Option<&str>, limit: u32) -> Result<Vec<TokenEvent>, StoreError> {
    let limit = i64::from(limit);
    let query = match user_id {
        Some(user_id) => sqlx::query(sql::TOKEN_EVENTS_FOR_USER).bind(user_id).bind(limit),
        None => sqlx::query(sql::TOKEN_EVENTS_ALL).bind(limit),
    };
    let rows = query.fetch_all(pool).await.map_err(StoreError::from_sqlx)?;
    rows.iter().map(decode_event).collect()
}

fn decode_event(row: &DbRow) -> Result<TokenEvent, StoreError> {
    let get = StoreError::from_sqlx;
    Ok(TokenEvent {
        seq: row.try_get("seq").map_err(get)?,
        at: row.try_get("at").map_err(get)?,
        actor: row.try_get("actor").map_err(get)?,
        action: row.try_get("action").map_err(get)?,
        user_id: row.try_get("user_id").map_err(get)?,
        token_id: row.try_get("token_id").map_err(get)?,
        detail: row.try_get("detail").map_err(get)?,
    })
}
