//! Issuing tokens: the person, the fate of their live token, the new token and the
//! history events commit together in one transaction, and delivery is confirmed afterwards.

use super::dialect::{Conn, Pool};
use sqlx::{Acquire, Row};

use super::history::{append, event};
use super::{begin_write, commit, tokens, users};
use crate::{IssueMode, IssueOutcome, StoreError, TokenIssue, sql};

/// Upserts the person, applies `issue.mode` to their live token, inserts the new token and
/// records `replaced` (for a revoked predecessor) and `issued`. A skip writes nothing, not
/// even the person. The token must belong to `issue.user` and be live, otherwise
/// [`StoreError::Conflict`].
pub(super) async fn issue(pool: &Pool, issue: &TokenIssue, now: i64) -> Result<IssueOutcome, StoreError> {
    let mut outcomes = issue_many(pool, std::slice::from_ref(issue), now).await?;
    outcomes.pop().unwrap_or(Err(StoreError::NotFound))
}

/// Issues each request as [`issue`] does, all in one transaction (one disk sync for the
/// batch), each inside its own savepoint so a refused request changes nothing and does not
/// disturb the others. Returns one outcome per request, in order.
pub(super) async fn issue_many(
    pool: &Pool,
    issues: &[TokenIssue],
    now: i64,
) -> Result<Vec<Result<IssueOutcome, StoreError>>, StoreError> {
    let mut tx = begin_write(pool).await?;
    let mut outcomes = Vec::with_capacity(issues.len());
    for issue in issues {
        let mut savepoint = (&mut *tx).begin().await.map_err(StoreError::from_sqlx)?;
        let outcome = issue_in(&mut savepoint, issue, now).await;
        match &outcome {
            Ok(IssueOutcome::Issued { .. }) => savepoint.commit().await.map_err(StoreError::from_sqlx)?,
            // Nothing is written for a skip, not even the person's directory data.
            Ok(IssueOutcome::Skipped { .. }) | Err(_) => {
                savepoint.rollback().await.map_err(StoreError::from_sqlx)?;
            }
        }
        outcomes.push(outcome);
    }
    commit(tx).await?;
    Ok(outcomes)
}

/// One issue on `tx`; the caller commits or rolls back.
pub(super) async fn issue_in(tx: &mut Conn, issue: &TokenIssue, now: i64) -> Result<IssueOutcome, StoreError> {
    let token = &issue.token;
    let user_id = issue.user.id.as_str();
    if token.user_id != user_id {
        return Err(StoreError::Conflict(format!(
            "token {} belongs to {}, not to {user_id}",
            token.id, token.user_id
        )));
    }
    if !token.state.is_live() {
        return Err(StoreError::Conflict(format!(
            "token {} cannot be issued {}",
            token.id, token.state
        )));
    }
    users::upsert(&mut *tx, &issue.user).await?;
    let live = sqlx::query(sql::LIVE_TOKEN_DELIVERY)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    let mut replaced = None;
    if let Some(row) = live {
        let existing: String = row.try_get("id").map_err(StoreError::from_sqlx)?;
        let delivered_at: Option<i64> = row.try_get("delivered_at").map_err(StoreError::from_sqlx)?;
        let replace = match issue.mode {
            IssueMode::New => false,
            IssueMode::ReplaceUndelivered => delivered_at.is_none(),
            IssueMode::Replace => true,
        };
        if !replace {
            return Ok(IssueOutcome::Skipped { existing });
        }
        sqlx::query(sql::REPLACE_TOKEN)
            .bind(&existing)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        let detail = format!("replaced by {}", token.id);
        append(
            &mut *tx,
            &event(now, &issue.actor, "replaced", user_id, Some(&existing), detail),
        )
        .await?;
        let ended_by = crate::EndedBy::Operator(issue.actor.clone());
        super::sessions::end_for_token(&mut *tx, &existing, "token_replaced", Some(&ended_by), now).await?;
        replaced = Some(existing);
    }
    let delivered_at = issue.delivered.then_some(now);
    tokens::insert_issued(&mut *tx, token, delivered_at, &issue.actor).await?;
    let mut detail = String::from(if issue.delivered {
        "delivered"
    } else {
        "awaiting delivery"
    });
    if let Some(old) = &replaced {
        detail.push_str(&format!("; replaces {old}"));
    }
    append(
        &mut *tx,
        &event(now, &issue.actor, "issued", user_id, Some(&token.id), detail),
    )
    .await?;
    Ok(IssueOutcome::Issued { replaced })
}

/// Marks the undelivered tokens among `token_ids` delivered, with a `delivered` event each,
/// in one transaction; returns how many changed. Unknown and already delivered ids (and
/// repeats) are ignored.
pub(super) async fn confirm_delivery(
    pool: &Pool,
    token_ids: &[String],
    actor: &str,
    now: i64,
) -> Result<u64, StoreError> {
    if token_ids.is_empty() {
        return Ok(0);
    }
    let mut tx = begin_write(pool).await?;
    let mut changed = 0;
    for token_id in token_ids {
        let row = sqlx::query(sql::CONFIRM_DELIVERY)
            .bind(token_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        let Some(row) = row else {
            continue;
        };
        let user_id: String = row.try_get("user_id").map_err(StoreError::from_sqlx)?;
        append(
            &mut tx,
            &event(now, actor, "delivered", &user_id, Some(token_id), String::new()),
        )
        .await?;
        changed += 1;
    }
    commit(tx).await?;
    Ok(changed)
}
