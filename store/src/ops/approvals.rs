//! Token resets under dual control: a request is stored pending; approving, denying and
//! collecting are each one conditional update in one transaction with what they carry out
//! and their history events, so two operators racing on one request (from any host) carry it
//! out once, and a refused step changes nothing.

use super::dialect::{Conn, DbRow, Pool};
use sqlx::Row;

use super::history::{append, event};
use super::{begin_write, commit, issue, temp_codes};
use crate::approvals::{ApprovalRefusal, ApprovalState, ApprovalStatus, CollectedReset, ResetAction, ResetGrant};
use crate::{IssueMode, ResetRequest, StoreError, sql};

/// What an approval, denial or collection returns: the refusal is not an error of the store.
pub(super) type Decided<T> = Result<Result<T, ApprovalRefusal>, StoreError>;

/// Stores a pending request and records `reset_requested` by its requester.
pub(super) async fn insert(pool: &Pool, request: &ResetRequest) -> Result<(), StoreError> {
    let mut tx = begin_write(pool).await?;
    sqlx::query(sql::INSERT_RESET_REQUEST)
        .bind(&request.id)
        .bind(&request.user_id)
        .bind(request.action.as_str())
        .bind(&request.token_id)
        .bind(&request.reason)
        .bind(&request.requested_by)
        .bind(request.created_at)
        .bind(request.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    let mut detail = format!("request {}: {}", request.id, request.action.describe());
    if !request.reason.is_empty() {
        detail.push_str(&format!("; {}", request.reason));
    }
    let requested = event(
        request.created_at,
        &request.requested_by,
        "reset_requested",
        &request.user_id,
        request.token_id.as_deref(),
        detail,
    );
    append(&mut tx, &requested).await?;
    commit(tx).await
}

/// The request with id `id`.
pub(super) async fn by_id(pool: &Pool, id: &str) -> Result<Option<ResetRequest>, StoreError> {
    let row = sqlx::query(sql::RESET_REQUEST_BY_ID)
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(StoreError::from_sqlx)?;
    row.as_ref().map(decode).transpose()
}

/// Requests open at `open_at` (every request when `None`), newest first.
pub(super) async fn list(pool: &Pool, open_at: Option<i64>, limit: u32) -> Result<Vec<ResetRequest>, StoreError> {
    let limit = i64::from(limit);
    let query = match open_at {
        Some(now) => sqlx::query(sql::OPEN_RESET_REQUESTS).bind(now).bind(limit),
        None => sqlx::query(sql::ALL_RESET_REQUESTS).bind(limit),
    };
    let rows = query.fetch_all(pool).await.map_err(StoreError::from_sqlx)?;
    rows.iter().map(decode).collect()
}

/// Approves a pending request of another operator before it expires and records
/// `reset_approved`. An unlock is carried out in the same transaction (the request is then
/// done); a request whose result holds a secret waits for its requester to collect it until
/// `collect_by`.
pub(super) async fn approve(pool: &Pool, id: &str, approver: &str, now: i64, collect_by: i64) -> Decided<ResetRequest> {
    let mut tx = begin_write(pool).await?;
    let claimed = sqlx::query(sql::APPROVE_RESET_REQUEST)
        .bind(id)
        .bind(approver)
        .bind(now)
        .bind(collect_by)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    let Some(row) = claimed else {
        return Ok(Err(refusal(&mut tx, id, Step::Approve { approver }, now).await?));
    };
    let claim = Claim::decode(&row)?;
    let detail = format!(
        "request {id}: {} asked by {}, approved by {approver}",
        claim.action.describe(),
        claim.requested_by
    );
    let approved = event(
        now,
        approver,
        "reset_approved",
        &claim.user_id,
        claim.token_id.as_deref(),
        detail.clone(),
    );
    append(&mut tx, &approved).await?;
    if !claim.action.yields_secret() {
        let token_id = claim.token_id.unwrap_or_default();
        let unlocked = sqlx::query(sql::UNLOCK_TOKEN)
            .bind(&token_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        if unlocked.is_none() {
            // Dropping the transaction undoes the approval: the request stays pending.
            return Ok(Err(ApprovalRefusal::TokenNotLive { token_id }));
        }
        let unlock = event(now, approver, "unlocked", &claim.user_id, Some(&token_id), detail);
        append(&mut tx, &unlock).await?;
        sqlx::query(sql::COMPLETE_APPROVED_RESET)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
    }
    let request = read_back(&mut tx, id).await?;
    commit(tx).await?;
    Ok(Ok(request))
}

/// Denies (or, by its requester, withdraws) a request not yet carried out, and records
/// `reset_denied`.
pub(super) async fn deny(pool: &Pool, id: &str, by: &str, reason: &str, now: i64) -> Decided<ResetRequest> {
    let mut tx = begin_write(pool).await?;
    let claimed = sqlx::query(sql::DENY_RESET_REQUEST)
        .bind(id)
        .bind(by)
        .bind(now)
        .bind(reason)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    let Some(row) = claimed else {
        return Ok(Err(refusal(&mut tx, id, Step::Deny, now).await?));
    };
    let claim = Claim::decode(&row)?;
    let verb = if by == claim.requested_by {
        "withdrawn"
    } else {
        "denied"
    };
    let mut detail = format!(
        "request {id}: {} asked by {}, {verb} by {by}",
        claim.action.describe(),
        claim.requested_by
    );
    if !reason.is_empty() {
        detail.push_str(&format!("; {reason}"));
    }
    let denied = event(
        now,
        by,
        "reset_denied",
        &claim.user_id,
        claim.token_id.as_deref(),
        detail,
    );
    append(&mut tx, &denied).await?;
    let request = read_back(&mut tx, id).await?;
    commit(tx).await?;
    Ok(Ok(request))
}

/// Collects an approved request for its requester, once and before it expires: marks it done,
/// stores what `grant` holds (the temporary code, the replacement token) and records
/// `reset_collected`, all in one transaction. A grant that does not match the request's
/// action or person is [`StoreError::Conflict`] and changes nothing.
pub(super) async fn collect(
    pool: &Pool,
    id: &str,
    requester: &str,
    grant: &ResetGrant,
    now: i64,
) -> Decided<CollectedReset> {
    let mut tx = begin_write(pool).await?;
    let claimed = sqlx::query(sql::COLLECT_RESET_REQUEST)
        .bind(id)
        .bind(requester)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    let Some(row) = claimed else {
        return Ok(Err(refusal(&mut tx, id, Step::Collect { requester }, now).await?));
    };
    let get = StoreError::from_sqlx;
    let user_id: String = row.try_get("user_id").map_err(get)?;
    let action = decode_action(&row)?;
    let approver: Option<String> = row.try_get("decided_by").map_err(get)?;
    let matches_person = grant.temporary_code.as_ref().is_none_or(|c| c.user_id == user_id)
        && grant.replacement.as_ref().is_none_or(|r| r.user.id == user_id);
    if grant.temporary_code.is_some() != action.temporary_code()
        || grant.replacement.is_some() != action.replacement()
        || !matches_person
    {
        return Err(StoreError::Conflict(format!(
            "what was collected does not match request {id} ({action} for {user_id})"
        )));
    }
    if let Some(code) = &grant.temporary_code {
        temp_codes::insert_in(&mut tx, code).await?;
    }
    let mut replacement = None;
    if let Some(issue) = &grant.replacement {
        if issue.mode != IssueMode::Replace {
            return Err(StoreError::Conflict("a replacement must replace the live token".into()));
        }
        replacement = Some(issue::issue_in(&mut tx, issue, now).await?);
    }
    let detail = format!(
        "request {id}: {} asked by {requester}, approved by {}",
        action.describe(),
        approver.as_deref().unwrap_or("?")
    );
    let collected = event(now, requester, "reset_collected", &user_id, None, detail);
    append(&mut tx, &collected).await?;
    let request = read_back(&mut tx, id).await?;
    commit(tx).await?;
    Ok(Ok(CollectedReset { request, replacement }))
}

/// Which step was refused, and by whom.
enum Step<'a> {
    Approve { approver: &'a str },
    Deny,
    Collect { requester: &'a str },
}

/// Why a conditional update of request `id` changed nothing, read in the same transaction.
async fn refusal(conn: &mut Conn, id: &str, step: Step<'_>, now: i64) -> Result<ApprovalRefusal, StoreError> {
    let Some(request) = fetch(conn, id).await? else {
        return Ok(ApprovalRefusal::NotFound);
    };
    let state = request.state_at(now);
    let decided = || ApprovalRefusal::Decided {
        status: state,
        by: request.decided_by.clone(),
    };
    Ok(match step {
        Step::Approve { approver } => match state {
            ApprovalState::Pending | ApprovalState::Expired
                if request.status == ApprovalStatus::Pending && request.requested_by == approver =>
            {
                ApprovalRefusal::SelfApproval {
                    requested_by: request.requested_by.clone(),
                }
            }
            ApprovalState::Expired if request.status == ApprovalStatus::Pending => ApprovalRefusal::Expired {
                expires_at: request.expires_at,
            },
            _ => decided(),
        },
        Step::Deny => decided(),
        Step::Collect { requester } => {
            if request.requested_by != requester {
                ApprovalRefusal::NotRequester {
                    requested_by: request.requested_by.clone(),
                }
            } else {
                match state {
                    ApprovalState::Pending => ApprovalRefusal::NotApproved,
                    ApprovalState::Expired => ApprovalRefusal::Expired {
                        expires_at: request.expires_at,
                    },
                    _ => decided(),
                }
            }
        }
    })
}

/// The request as it now stands, inside the caller's transaction.
async fn read_back(conn: &mut Conn, id: &str) -> Result<ResetRequest, StoreError> {
    fetch(conn, id).await?.ok_or(StoreError::NotFound)
}

async fn fetch(conn: &mut Conn, id: &str) -> Result<Option<ResetRequest>, StoreError> {
    let row = sqlx::query(sql::RESET_REQUEST_BY_ID)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(StoreError::from_sqlx)?;
    row.as_ref().map(decode).transpose()
}

/// What an approval or denial claimed.
struct Claim {
    user_id: String,
    action: ResetAction,
    token_id: Option<String>,
    requested_by: String,
}

impl Claim {
    fn decode(row: &DbRow) -> Result<Self, StoreError> {
        let get = StoreError::from_sqlx;
        Ok(Self {
            user_id: row.try_get("user_id").map_err(get)?,
            action: decode_action(row)?,
            token_id: row.try_get("token_id").map_err(get)?,
            requested_by: row.try_get("requested_by").map_err(get)?,
        })
    }
}

fn decode_action(row: &DbRow) -> Result<ResetAction, StoreError> {
    let action: String = row.try_get("action").map_err(StoreError::from_sqlx)?;
    ResetAction::parse(&action).ok_or_else(|| StoreError::corrupt("reset_requests.action is not a known action"))
}

fn decode(row: &DbRow) -> Result<ResetRequest, StoreError> {
    let get = StoreError::from_sqlx;
    let status: String = row.try_get("status").map_err(get)?;
    Ok(ResetRequest {
        id: row.try_get("id").map_err(get)?,
        user_id: row.try_get("user_id").map_err(get)?,
        username: row.try_get("username").map_err(get)?,
        action: decode_action(row)?,
        token_id: row.try_get("token_id").map_err(get)?,
        reason: row.try_get("reason").map_err(get)?,
        requested_by: row.try_get("requested_by").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        expires_at: row.try_get("expires_at").map_err(get)?,
        status: ApprovalStatus::parse(&status)
            .ok_or_else(|| StoreError::corrupt("reset_requests.status is not a known status"))?,
        decided_by: row.try_get("decided_by").map_err(get)?,
        decided_at: row.try_get("decided_at").map_err(get)?,
        decision_reason: row.try_get("decision_reason").map_err(get)?,
        completed_at: row.try_get("completed_at").map_err(get)?,
    })
}
