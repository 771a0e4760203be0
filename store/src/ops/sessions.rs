//! Sessions: created once, looked up by the hash of their resume ticket, the ticket replaced
//! at each resume by one compare-and-swap, ended once (alone, per user, or with their token),
//! and polled by gateways for endings. The store never sees a ticket, only its SHA-256.
//! Every hash a resume replaced is kept (`replaced_tickets`), so a reuse is recognised.
//!
//! Every transaction that ends sessions first takes the next position of the feed of session
//! ends ([`sql::NEXT_SESSION_END_SEQ`]) and stamps it on the sessions it ends, so gateways follow
//! ends in commit order whatever `now` the writer passed (see migration 5).

use super::dialect::{Conn, DbRow, Pool};
use sqlx::Row;

use super::{begin_write, commit, decode_int};
use crate::{EndedBy, EndedSession, Rotation, SessionRecord, StoreError, TicketMatch, sql};

/// Inserts a new session. A duplicate id or ticket hash is [`StoreError::Conflict`].
pub(super) async fn insert(pool: &Pool, session: &SessionRecord) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(StoreError::from_sqlx)?;
    insert_on(&mut conn, session).await
}

/// [`insert`] on a connection (or inside a transaction).
async fn insert_on(conn: &mut Conn, session: &SessionRecord) -> Result<(), StoreError> {
    let groups = serde_json::to_string(&session.groups)
        .map_err(|err| StoreError::Conflict(format!("groups not encodable: {err}")))?;
    sqlx::query(sql::INSERT_SESSION)
        .bind(&session.id)
        .bind(&session.ticket_hash)
        .bind(&session.user_id)
        .bind(&session.username)
        .bind(groups)
        .bind(&session.source)
        .bind(session.created_at)
        .bind(session.expires_at)
        .bind(session.ended_at)
        .bind(&session.end_reason)
        .bind(&session.token_id)
        .bind(session.last_seen_at)
        .bind(&session.gateway_id)
        .bind(&session.client_key)
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
}

/// The session whose ticket hashes to `ticket_hash`, ended or expired ones included: the
/// caller checks `ended_at` and `expires_at` against its clock.
pub(super) async fn by_ticket_hash(pool: &Pool, ticket_hash: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
    let row = sqlx::query(sql::SESSION_BY_TICKET_HASH)
        .bind(ticket_hash)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    row.as_ref().map(decode_session).transpose()
}

/// The session whose current or replaced ticket hashes to `ticket_hash`.
pub(super) async fn for_ticket(pool: &Pool, ticket_hash: &[u8]) -> Result<Option<TicketMatch>, StoreError> {
    if let Some(current) = by_ticket_hash(pool, ticket_hash).await? {
        return Ok(Some(TicketMatch::Current(current)));
    }
    let row = sqlx::query(sql::SESSION_BY_REPLACED_TICKET_HASH)
        .bind(ticket_hash)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    Ok(row.as_ref().map(decode_session).transpose()?.map(TicketMatch::Replaced))
}

/// Swaps a live session's ticket hash `current` for `next` in one conditional update, and
/// keeps `current` among the replaced tickets in the same transaction.
pub(super) async fn rotate_ticket(
    pool: &Pool,
    session_id: &str,
    current: &[u8],
    next: &[u8],
    gateway_id: &str,
    now: i64,
) -> Result<Rotation, StoreError> {
    let mut tx = begin_write(pool).await?;
    let done = sqlx::query(sql::ROTATE_TICKET)
        .bind(session_id)
        .bind(current)
        .bind(next)
        .bind(gateway_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    if done.rows_affected() != 1 {
        tx.rollback().await.map_err(StoreError::from_sqlx)?;
        return Ok(Rotation::NotCurrent);
    }
    sqlx::query(sql::INSERT_REPLACED_TICKET)
        .bind(current)
        .bind(session_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    commit(tx).await?;
    Ok(Rotation::Rotated)
}

/// Marks a session ended, with the next feed position and who ended it. Ending an already
/// ended session keeps the first time, reason, position and actor; an unknown id is
/// [`StoreError::NotFound`].
pub(super) async fn end(
    pool: &Pool,
    session_id: &str,
    reason: &str,
    ended_by: Option<&EndedBy>,
    now: i64,
) -> Result<(), StoreError> {
    let mut tx = begin_write(pool).await?;
    let seq = next_end_seq(&mut tx).await?;
    let done = sqlx::query(sql::END_SESSION)
        .bind(session_id)
        .bind(now)
        .bind(reason)
        .bind(seq)
        .bind(ended_by.map(EndedBy::to_stored))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    if done.rows_affected() > 0 {
        return commit(tx).await;
    }
    let exists = sqlx::query(sql::SESSION_EXISTS)
        .bind(session_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    // Nothing ended: give the feed position back.
    tx.rollback().await.map_err(StoreError::from_sqlx)?;
    match exists {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound),
    }
}

/// Live (not ended, not expired) sessions of a user, oldest first.
pub(super) async fn live_for_user(pool: &Pool, user_id: &str, now: i64) -> Result<Vec<SessionRecord>, StoreError> {
    let rows = sqlx::query(sql::LIVE_SESSIONS_FOR_USER)
        .bind(user_id)
        .bind(now)
        .fetch_all(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    rows.iter().map(decode_session).collect()
}

/// Live sessions of everyone, oldest first, at most `limit`.
pub(super) async fn live(pool: &Pool, now: i64, limit: u32) -> Result<Vec<SessionRecord>, StoreError> {
    let rows = sqlx::query(sql::LIVE_SESSIONS)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    rows.iter().map(decode_session).collect()
}

/// Ends every not yet ended session of a user, all at one feed position; returns their ids.
pub(super) async fn end_for_user(
    pool: &Pool,
    user_id: &str,
    reason: &str,
    ended_by: Option<&EndedBy>,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let mut tx = begin_write(pool).await?;
    let seq = next_end_seq(&mut tx).await?;
    let rows = sqlx::query(sql::END_USER_SESSIONS)
        .bind(user_id)
        .bind(now)
        .bind(reason)
        .bind(seq)
        .bind(ended_by.map(EndedBy::to_stored))
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    if rows.is_empty() {
        // Nothing ended: give the feed position back.
        tx.rollback().await.map_err(StoreError::from_sqlx)?;
        return Ok(Vec::new());
    }
    commit(tx).await?;
    let mut ids = rows
        .iter()
        .map(|row| row.try_get("id").map_err(StoreError::from_sqlx))
        .collect::<Result<Vec<String>, _>>()?;
    ids.sort();
    Ok(ids)
}

/// Ends every live session of `token_id`'s owner (including those opened with a temporary
/// code), at one feed position, inside the caller's write transaction (which may leave a gap
/// in the feed when there was none to end). `ended_by` is who changed the token.
pub(super) async fn end_for_token(
    conn: &mut Conn,
    token_id: &str,
    reason: &str,
    ended_by: Option<&EndedBy>,
    now: i64,
) -> Result<(), StoreError> {
    let seq = next_end_seq(conn).await?;
    sqlx::query(sql::END_TOKEN_SESSIONS)
        .bind(token_id)
        .bind(now)
        .bind(reason)
        .bind(seq)
        .bind(ended_by.map(EndedBy::to_stored))
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
}

/// The latest position handed out in the feed of session ends.
pub(super) async fn end_seq(pool: &Pool) -> Result<u64, StoreError> {
    let row = sqlx::query(sql::SESSION_END_SEQ)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::from_sqlx)?
        .ok_or_else(|| StoreError::corrupt("session_end_feed has no row"))?;
    let seq: i64 = row.try_get("last_seq").map_err(StoreError::from_sqlx)?;
    decode_int(seq, "session_end_feed.last_seq")
}

/// Sessions whose end has a feed position after `after`, in feed order. One statement, so one
/// snapshot: positions commit in order, so it holds every end up to its last position.
pub(super) async fn ended_after(pool: &Pool, after: u64) -> Result<Vec<EndedSession>, StoreError> {
    // Positions are BIGINT; a cursor beyond them has nothing after it.
    let Ok(after) = i64::try_from(after) else {
        return Ok(Vec::new());
    };
    let rows = sqlx::query(sql::SESSIONS_ENDED_AFTER)
        .bind(after)
        .fetch_all(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    rows.iter()
        .map(|row| {
            let seq: i64 = row.try_get("end_seq").map_err(StoreError::from_sqlx)?;
            let reason: Option<String> = row.try_get("end_reason").map_err(StoreError::from_sqlx)?;
            let ended_by: Option<String> = row.try_get("ended_by").map_err(StoreError::from_sqlx)?;
            Ok(EndedSession {
                seq: decode_int(seq, "sessions.end_seq")?,
                id: row.try_get("id").map_err(StoreError::from_sqlx)?,
                reason: reason.unwrap_or_default(),
                ended_by: ended_by.as_deref().and_then(EndedBy::from_stored),
            })
        })
        .collect()
}

/// Takes the next feed position inside the caller's write transaction; it stays reserved
/// (and later positions wait) until that transaction ends.
async fn next_end_seq(conn: &mut Conn) -> Result<i64, StoreError> {
    let row = sqlx::query(sql::NEXT_SESSION_END_SEQ)
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::from_sqlx)?
        .ok_or_else(|| StoreError::corrupt("session_end_feed has no row"))?;
    row.try_get("last_seq").map_err(StoreError::from_sqlx)
}

/// Records that a session was in use at `now` (never moves backwards).
pub(super) async fn touch(pool: &Pool, session_id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query(sql::TOUCH_SESSION)
        .bind(session_id)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
}

fn decode_session(row: &DbRow) -> Result<SessionRecord, StoreError> {
    let get = StoreError::from_sqlx;
    let groups: String = row.try_get("group_names").map_err(get)?;
    let groups: Vec<String> = serde_json::from_str(&groups)
        .map_err(|_| StoreError::corrupt("sessions.group_names is not a JSON string array"))?;
    Ok(SessionRecord {
        id: row.try_get("id").map_err(get)?,
        ticket_hash: row.try_get("ticket_hash").map_err(get)?,
        user_id: row.try_get("user_id").map_err(get)?,
        username: row.try_get("username").map_err(get)?,
        groups,
        source: row.try_get("source").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        expires_at: row.try_get("expires_at").map_err(get)?,
        ended_at: row.try_get("ended_at").map_err(get)?,
        end_reason: row.try_get("end_reason").map_err(get)?,
        token_id: row.try_get("token_id").map_err(get)?,
        last_seen_at: row.try_get("last_seen_at").map_err(get)?,
        gateway_id: row.try_get("gateway_id").map_err(get)?,
        client_key: row.try_get("client_key").map_err(get)?,
    })
}

/// Stores a new session and, in the same transaction (serialised per person), ends the
/// person's oldest live sessions beyond `max_live`; returns the ids it ended.
pub(super) async fn insert_within(
    pool: &Pool,
    session: &SessionRecord,
    max_live: u32,
    reason: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let mut tx = begin_write(pool).await?;
    super::dialect::serialize(&mut tx, &format!("person-sessions:{}", session.user_id)).await?;
    insert_on(&mut tx, session).await?;
    let live: Vec<String> = sqlx::query_scalar(sql::LIVE_SESSION_IDS_FOR_USER)
        .bind(&session.user_id)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    let max = usize::try_from(max_live).unwrap_or(usize::MAX);
    let excess = live.len().saturating_sub(max);
    let ended: Vec<String> = live.into_iter().filter(|id| *id != session.id).take(excess).collect();
    if !ended.is_empty() {
        let seq = next_end_seq(&mut tx).await?;
        let ended_by = EndedBy::Rule(reason.to_owned()).to_stored();
        for id in &ended {
            sqlx::query(sql::END_SESSION)
                .bind(id)
                .bind(now)
                .bind(reason)
                .bind(seq)
                .bind(&ended_by)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?;
        }
    }
    commit(tx).await?;
    Ok(ended)
}

/// Records the gateway a session now lives on.
pub(super) async fn move_to(pool: &Pool, session_id: &str, gateway_id: &str) -> Result<(), StoreError> {
    sqlx::query(sql::MOVE_SESSION)
        .bind(session_id)
        .bind(gateway_id)
        .execute(pool)
        .await
        .map(|_| ())
        .map_err(StoreError::from_sqlx)
}
