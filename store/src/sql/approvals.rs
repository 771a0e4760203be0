//! SQL for token resets under dual control. Approving, denying and collecting are each one
//! conditional update, so of two operators acting on one request at once exactly one
//! succeeds, on any backend and from any host.

/// `$1` id, `$2` user id, `$3` action, `$4` token id, `$5` reason, `$6` requested by,
/// `$7` created at, `$8` expires at.
pub(crate) const INSERT_RESET_REQUEST: &str = "\
INSERT INTO reset_requests (id, user_id, action, token_id, reason, requested_by, created_at, expires_at, status) \
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')";

macro_rules! select_reset_request {
    () => {
        "SELECT r.id, r.user_id, u.username, r.action, r.token_id, r.reason, r.requested_by, r.created_at, \
         r.expires_at, r.status, r.decided_by, r.decided_at, r.decision_reason, r.completed_at \
         FROM reset_requests r JOIN users u ON u.id = r.user_id"
    };
}

/// `$1` id.
pub(crate) const RESET_REQUEST_BY_ID: &str = concat!(select_reset_request!(), " WHERE r.id = $1");

/// Requests still pending or approved and not expired at `$1`, newest first, at most `$2`.
pub(crate) const OPEN_RESET_REQUESTS: &str = concat!(
    select_reset_request!(),
    " WHERE r.status IN ('pending', 'approved') AND r.expires_at > $1 \
     ORDER BY r.created_at DESC, r.id LIMIT $2"
);

/// Every request, newest first, at most `$1`.
pub(crate) const ALL_RESET_REQUESTS: &str =
    concat!(select_reset_request!(), " ORDER BY r.created_at DESC, r.id LIMIT $1");

/// Approves a pending, unexpired request of another operator; its result may then be
/// collected until `$4`. `$1` id, `$2` approver, `$3` now. Returns what the approval carries
/// out.
pub(crate) const APPROVE_RESET_REQUEST: &str = "\
UPDATE reset_requests SET status = 'approved', decided_by = $2, decided_at = $3, expires_at = $4 \
WHERE id = $1 AND status = 'pending' AND expires_at > $3 AND requested_by <> $2 \
RETURNING user_id, action, token_id, requested_by";

/// Marks an approved request carried out. `$1` id, `$2` now.
pub(crate) const COMPLETE_APPROVED_RESET: &str = "\
UPDATE reset_requests SET status = 'done', completed_at = $2 WHERE id = $1 AND status = 'approved'";

/// Denies (or withdraws) a request not yet carried out. `$1` id, `$2` by, `$3` now,
/// `$4` reason.
pub(crate) const DENY_RESET_REQUEST: &str = "\
UPDATE reset_requests SET status = 'denied', decided_by = $2, decided_at = $3, decision_reason = $4 \
WHERE id = $1 AND status IN ('pending', 'approved') \
RETURNING user_id, action, token_id, requested_by";

/// Collects an approved, unexpired request: only its requester, once. `$1` id, `$2` requester,
/// `$3` now.
pub(crate) const COLLECT_RESET_REQUEST: &str = "\
UPDATE reset_requests SET status = 'done', completed_at = $3 \
WHERE id = $1 AND status = 'approved' AND requested_by = $2 AND expires_at > $3 \
RETURNING user_id, action, decided_by";
