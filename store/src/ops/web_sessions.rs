//! Web console sessions: stored at sign-in, found and touched in one conditional update (so a
//! session ended, expired or idle on one provisioner host is gone on every other at once),
//! ended one by one or all of a person's together, and purged once over.

use sqlx::Row;

use super::dialect::{DbRow, Pool};
use crate::StoreError;
use crate::web_sessions::WebSession;

const INSERT: &str = "INSERT INTO web_sessions \
    (id_hash, user_id, username, roles, csrf_token, source, created_at, last_seen_at, expires_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
/// Touches the session ($1) if it is live at $2 and was seen less than $3 seconds before; the
/// last-seen time never moves back (hosts' clocks differ a little).
const TOUCH: &str = "UPDATE web_sessions \
    SET last_seen_at = CASE WHEN last_seen_at > $2 THEN last_seen_at ELSE $2 END \
    WHERE id_hash = $1 AND ended_at IS NULL AND expires_at > $2 AND last_seen_at + $3 > $2 \
    RETURNING id_hash, user_id, username, roles, csrf_token, source, created_at, last_seen_at, expires_at";
const END: &str = "UPDATE web_sessions SET ended_at = $2 WHERE id_hash = $1 AND ended_at IS NULL AND expires_at > $2";
const END_FOR_USER: &str =
    "UPDATE web_sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2";
const PURGE: &str = "DELETE FROM web_sessions WHERE ended_at < $1 OR expires_at < $1";

/// Stores a new session: a hash already stored is [`StoreError::Conflict`], an unknown person
/// [`StoreError::NotFound`].
pub(super) async fn start(pool: &Pool, session: &WebSession) -> Result<(), StoreError> {
    sqlx::query(INSERT)
        .bind(&session.id_hash)
        .bind(&session.user_id)
        .bind(&session.username)
        .bind(&session.roles)
        .bind(&session.csrf_token)
        .bind(&session.source)
        .bind(session.created_at)
        .bind(session.last_seen_at)
        .bind(session.expires_at)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(|err| match StoreError::from_sqlx(err) {
            // Never the database's message: it could quote the hash.
            StoreError::Conflict(_) => StoreError::Conflict("web session already stored".to_owned()),
            other => other,
        })
}

/// The live session hashing to `id_hash`, touched at `now`.
pub(super) async fn find(
    pool: &Pool,
    id_hash: &[u8],
    now: i64,
    idle_secs: i64,
) -> Result<Option<WebSession>, StoreError> {
    let row = sqlx::query(TOUCH)
        .bind(id_hash)
        .bind(now)
        .bind(idle_secs)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    row.as_ref().map(decode).transpose()
}

/// Ends the session if it is live; whether it was.
pub(super) async fn end(pool: &Pool, id_hash: &[u8], now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(END)
        .bind(id_hash)
        .bind(now)
        .execute(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    Ok(done.rows_affected() > 0)
}

/// Ends every live session of one person; how many.
pub(super) async fn end_for_user(pool: &Pool, user_id: &str, now: i64) -> Result<u64, StoreError> {
    let done = sqlx::query(END_FOR_USER)
        .bind(user_id)
        .bind(now)
        .execute(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    Ok(done.rows_affected())
}

/// Deletes the sessions ended or expired before `before`; how many.
pub(super) async fn purge(pool: &Pool, before: i64) -> Result<u64, StoreError> {
    let done = sqlx::query(PURGE)
        .bind(before)
        .execute(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    Ok(done.rows_affected())
}

fn decode(row: &DbRow) -> Result<WebSession, StoreError> {
    let get = StoreError::from_sqlx;
    Ok(WebSession {
        id_hash: row.try_get("id_hash").map_err(get)?,
        user_id: row.try_get("user_id").map_err(get)?,
        username: row.try_get("username").map_err(get)?,
        roles: row.try_get("roles").map_err(get)?,
        csrf_token: row.try_get("csrf_token").map_err(get)?,
        source: row.try_get("source").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        last_seen_at: row.try_get("last_seen_at").map_err(get)?,
        expires_at: row.try_get("expires_at").map_err(get)?,
    })
}
