//! Dual control on token resets: with `[dual_control] token_resets` on, a temporary code, a
//! replacement token and an unlock wait as a request for a second operator's approval. The
//! approver carries out an unlock; a result that holds a secret (a code, a seed) is made when
//! the requester, who is on the phone with the person, collects it: once, for that operator
//! only, and never stored or logged.

use super::{Provisioner, ServiceError, random_hex, token_change};
use crate::api::{CollectedReset, QrFormat, ResetRequestInfo};
use rampart_core::audit::Activity;
use rampart_store::approvals::{ApprovalRefusal, ApprovalState, ApprovalStatus, ResetAction, ResetGrant};
use rampart_store::{IssueMode, ResetRequest, TokenQuery, UserRecord};

/// How many requests a list shows at most.
const LIST_LIMIT: u32 = 500;

impl Provisioner {
    /// Whether token resets wait for a second operator's approval.
    pub(super) fn resets_need_approval(&self) -> bool {
        self.dual_control.token_resets
    }

    /// Whether a new token for the person with stable id `user_id`, who has no live token,
    /// would replace an earlier one (lost, revoked, replaced or expired): with dual control on
    /// it then waits for approval like `token lost --replacement`, or marking a token lost and
    /// issuing a "first" token would hand one operator what dual control withholds.
    pub(super) async fn replaces_an_earlier_token(&self, user_id: &str) -> Result<bool, ServiceError> {
        let query = TokenQuery {
            user_id: Some(user_id.to_owned()),
            ..TokenQuery::default()
        };
        let tokens = self.store.list_tokens(&query).await?;
        Ok(tokens.iter().any(|view| !view.token.state.is_live()))
    }

    /// Whether a token for the person with stable id `user_id` would replace an earlier one
    /// they no longer hold: no live token, and an ended one. (Unknown people have none.)
    pub(super) async fn token_would_replace(&self, user_id: &str) -> Result<bool, ServiceError> {
        if self.store.live_token_for_user(user_id).await?.is_some() {
            return Ok(false);
        }
        self.replaces_an_earlier_token(user_id).await
    }

    /// Stores a request for `action` on `user`'s token by `actor`, to be approved by another
    /// operator within the approval time.
    pub(super) async fn request_reset(
        &self,
        actor: &str,
        user: &UserRecord,
        action: ResetAction,
        token_id: Option<String>,
        reason: &str,
    ) -> Result<ResetRequestInfo, ServiceError> {
        let now = self.now();
        let request = ResetRequest {
            id: random_hex(8)?,
            user_id: user.id.clone(),
            username: user.username.clone(),
            action,
            token_id,
            reason: reason.to_owned(),
            requested_by: actor.to_owned(),
            created_at: now,
            expires_at: now.saturating_add(self.approval_ttl()),
            status: ApprovalStatus::Pending,
            decided_by: None,
            decided_at: None,
            decision_reason: String::new(),
            completed_at: None,
        };
        self.store.request_reset(&request).await?;
        tracing::info!(
            target: "rampart::provisioner", operator = actor, user = %user.username, request = %request.id,
            action = %action, expires_at = request.expires_at, "token reset waits for a second operator's approval"
        );
        self.reset_audit(
            actor,
            "reset requested",
            &request,
            &format!("{} requested", action.describe()),
        );
        Ok(self.request_info(&request))
    }

    /// Reset requests: the open ones (pending, or approved and not yet collected), or all.
    pub async fn reset_requests(&self, all: bool) -> Result<Vec<ResetRequestInfo>, ServiceError> {
        let open_at = (!all).then(|| self.now());
        let requests = self.store.reset_requests(open_at, LIST_LIMIT).await?;
        Ok(requests.iter().map(|r| self.request_info(r)).collect())
    }

    /// One reset request.
    pub async fn reset_request(&self, id: &str) -> Result<ResetRequestInfo, ServiceError> {
        Ok(self.request_info(&self.find_request(id).await?))
    }

    /// Approves another operator's pending request. An unlock is carried out at once; a
    /// temporary code or replacement may then be collected by the requester within the
    /// approval time. The requester cannot approve their own request.
    pub async fn approve_reset(&self, approver: &str, id: &str) -> Result<ResetRequestInfo, ServiceError> {
        let now = self.now();
        let collect_by = now.saturating_add(self.approval_ttl());
        let decided = self.store.approve_reset(id, approver, now, collect_by).await?;
        let request = decided.map_err(|refusal| self.refused(approver, id, "approve", refusal))?;
        let detail = format!(
            "{} asked by {}, approved by {approver}",
            request.action.describe(),
            request.requested_by
        );
        tracing::info!(
            target: "rampart::provisioner", operator = approver, user = %request.username, request = %request.id,
            action = %request.action, requested_by = %request.requested_by, "token reset approved"
        );
        self.reset_audit(approver, "reset approved", &request, &detail);
        if request.status == ApprovalStatus::Done {
            token_change(
                &self.audit,
                approver,
                Activity::OTHER,
                "unlocked",
                (&request.username, &request.user_id),
                request.token_id.as_deref(),
                &format!("request {id}: {detail}"),
            );
        }
        Ok(self.request_info(&request))
    }

    /// Denies a request that was not carried out yet; its requester withdraws it this way.
    pub async fn deny_reset(&self, by: &str, id: &str, reason: &str) -> Result<ResetRequestInfo, ServiceError> {
        let decided = self.store.deny_reset(id, by, reason, self.now()).await?;
        let request = decided.map_err(|refusal| self.refused(by, id, "deny", refusal))?;
        tracing::info!(
            target: "rampart::provisioner", operator = by, user = %request.username, request = %request.id,
            action = %request.action, requested_by = %request.requested_by, "token reset denied"
        );
        let mut detail = format!(
            "{} asked by {}, denied by {by}",
            request.action.describe(),
            request.requested_by
        );
        if !reason.is_empty() {
            detail.push_str(&format!(": {reason}"));
        }
        self.reset_audit(by, "reset denied", &request, &detail);
        Ok(self.request_info(&request))
    }

    /// Carries out an approved request that yields a secret, for the operator who made it:
    /// the temporary code and/or replacement token are made now and shown in this answer only.
    /// Refused while the clock is off from the database's.
    pub async fn collect_reset(
        &self,
        requester: &str,
        id: &str,
        qr: Option<QrFormat>,
    ) -> Result<CollectedReset, ServiceError> {
        let request = self.find_request(id).await?;
        // Checked before anything secret is made; the store checks again when it commits.
        if request.requested_by != requester {
            let refusal = ApprovalRefusal::NotRequester {
                requested_by: request.requested_by,
            };
            return Err(self.refused(requester, id, "collect", refusal));
        }
        match request.state_at(self.now()) {
            ApprovalState::Approved => {}
            ApprovalState::Pending => return Err(self.refused(requester, id, "collect", ApprovalRefusal::NotApproved)),
            ApprovalState::Expired => {
                let refusal = ApprovalRefusal::Expired {
                    expires_at: request.expires_at,
                };
                return Err(self.refused(requester, id, "collect", refusal));
            }
            state @ (ApprovalState::Denied | ApprovalState::Done) => {
                let refusal = ApprovalRefusal::Decided {
                    status: state,
                    by: request.decided_by,
                };
                return Err(self.refused(requester, id, "collect", refusal));
            }
        }
        let action = request.action;
        if action.temporary_code() {
            self.require_clock("issue a temporary code")?;
        }
        if action.replacement() {
            self.require_clock("issue a token")?;
        }
        let now = self.now();
        let user = self.known_person(&request.username).await?;
        let mut grant = ResetGrant::default();
        let mut code = None;
        if action.temporary_code() {
            let (plain, record) = self.draw_temp_code(&user, requester, now)?;
            grant.temporary_code = Some(record);
            code = Some(plain);
        }
        let mut prepared = None;
        if action.replacement() {
            let person = self.directory_person(&request.username).await?;
            let record = self.user_record(&person, now).await?;
            self.fresh_keys().await?;
            let ready = self.prepare(record, requester, IssueMode::Replace, true, now)?;
            grant.replacement = Some(ready.issue.clone());
            prepared = Some(ready);
        }
        let decided = self.store.collect_reset(id, requester, &grant, now).await?;
        let collected = decided.map_err(|refusal| self.refused(requester, id, "collect", refusal))?;
        let approver = collected.request.decided_by.clone().unwrap_or_default();
        let detail = format!(
            "request {id}: {} asked by {requester}, approved by {approver}",
            action.describe()
        );
        let temporary_code = match (code, &grant.temporary_code) {
            (Some(plain), Some(record)) => Some(self.temp_code_shown(requester, &user, &plain, record, &detail)),
            _ => None,
        };
        let replacement = match (prepared, collected.replacement) {
            (Some(ready), Some(outcome)) => match ready.finish(outcome, qr, &self.audit)? {
                super::tokens::Minted::Issued(token) => Some(*token),
                super::tokens::Minted::Skipped { existing } => {
                    return Err(ServiceError::Conflict(format!(
                        "{} already has token {existing}; nothing was replaced",
                        user.username
                    )));
                }
            },
            _ => None,
        };
        tracing::info!(
            target: "rampart::provisioner", operator = requester, user = %user.username, request = %id,
            action = %action, approved_by = %approver, "approved token reset collected"
        );
        self.reset_audit(requester, "reset collected", &collected.request, &detail);
        Ok(CollectedReset {
            request: self.request_info(&collected.request),
            temporary_code,
            replacement,
        })
    }

    /// Seconds a request may wait for approval, and then for collection.
    fn approval_ttl(&self) -> i64 {
        i64::try_from(self.dual_control.approval_ttl_secs).unwrap_or(i64::MAX)
    }

    async fn find_request(&self, id: &str) -> Result<ResetRequest, ServiceError> {
        let id = id.trim();
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ServiceError::Invalid(
                "a reset request id is the hexadecimal id `rampart token requests` shows".into(),
            ));
        }
        self.store
            .reset_request(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no reset request {id}")))
    }

    /// The service error for a refusal, logged with who tried what.
    fn refused(&self, operator: &str, id: &str, step: &str, refusal: ApprovalRefusal) -> ServiceError {
        tracing::warn!(
            target: "rampart::provisioner", operator, request = %id, step, refusal = %refusal, "token reset refused"
        );
        let message = format!("reset request {id}: {refusal}");
        match refusal {
            ApprovalRefusal::NotFound => ServiceError::NotFound(message),
            ApprovalRefusal::SelfApproval { .. } | ApprovalRefusal::NotRequester { .. } => {
                ServiceError::NotPermitted(message)
            }
            ApprovalRefusal::Expired { .. }
            | ApprovalRefusal::Decided { .. }
            | ApprovalRefusal::NotApproved
            | ApprovalRefusal::TokenNotLive { .. } => ServiceError::Conflict(message),
        }
    }

    /// Records an Account Change about a reset request on the audit trail.
    fn reset_audit(&self, actor: &str, action: &str, request: &ResetRequest, detail: &str) {
        use rampart_core::audit::{Actor, AuditEvent, Class, Status, User};
        let event = AuditEvent::new(
            Class::AccountChange,
            Activity::OTHER,
            self.now_ms(),
            Status::Success,
            &format!("token {action}"),
        )
        .actor(Actor::operator(actor))
        .user(User::with_uid(&request.username, &request.user_id))
        .resource("reset_request", Some(&request.id), Some(request.action.as_str()))
        .detail(&format!(
            "request {}: {detail}; requested_by={}; approved_by={}",
            request.id,
            request.requested_by,
            approver_of(request).unwrap_or("-")
        ));
        let event = match &request.token_id {
            Some(token) => event.resource("token", Some(token), None),
            None => event,
        };
        self.audit.record(event);
    }

    fn request_info(&self, request: &ResetRequest) -> ResetRequestInfo {
        ResetRequestInfo {
            request_id: request.id.clone(),
            username: request.username.clone(),
            user_id: request.user_id.clone(),
            action: request.action.as_str().to_owned(),
            token_id: request.token_id.clone(),
            reason: request.reason.clone(),
            requested_by: request.requested_by.clone(),
            requested_at: request.created_at,
            expires_at: request.expires_at,
            state: request.state_at(self.now()).as_str().to_owned(),
            decided_by: request.decided_by.clone(),
            decided_at: request.decided_at,
            decision_reason: request.decision_reason.clone(),
            completed_at: request.completed_at,
        }
    }
}

/// The approver of an approved or carried-out request.
fn approver_of(request: &ResetRequest) -> Option<&str> {
    matches!(request.status, ApprovalStatus::Approved | ApprovalStatus::Done)
        .then_some(request.decided_by.as_deref())
        .flatten()
}
