//! Token operations for one person: issue (the only time a seed is shown), show, list,
//! revoke, lost (with a temporary code or a replacement), unlock, resync, temporary codes.

use super::{Provisioner, ServiceError, random_hex, token_change};
use crate::api::{
    Gated, IssuedToken, LostRequest, LostResponse, PersonInfo, QrFormat, TemporaryCode, TokenInfo, TokenListQuery,
};
use base64::Engine;
use rampart_audit::AuditLog;
use rampart_core::audit::Activity;
use rampart_core::temp_code::{TEMP_CODE_DIGITS, display_temp_code, temp_code_hash};
use rampart_core::totp::{SEED_LEN, TotpParams, generate_totp, otpauth_uri};
use rampart_store::approvals::ResetAction;
use rampart_store::{
    IssueMode, IssueOutcome, TempCodeRecord, TokenQuery, TokenRecord, TokenState, TokenView, UserRecord,
};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// How many history events a person view shows.
const HISTORY_LIMIT: u32 = 200;

impl Provisioner {
    /// Issues a token as [`Provisioner::issue`] does, except that with dual control on a
    /// replacement waits for a second operator's approval: a reissue for a person who has a
    /// live token, and a new token for a person whose earlier token ended (lost, revoked).
    pub async fn issue_token(
        &self,
        actor: &str,
        username: &str,
        reissue: bool,
        qr: Option<QrFormat>,
    ) -> Result<Gated<IssuedToken>, ServiceError> {
        if self.resets_need_approval() {
            self.require_clock("issue a token")?;
            let person = self.directory_person(username).await?;
            if let Some(user) = self.store.user_by_id(&person.stable_id).await? {
                let live = self.store.live_token_for_user(&user.id).await?.is_some();
                let reason = if live {
                    reissue.then_some("reissue")
                } else if self.replaces_an_earlier_token(&user.id).await? {
                    Some("new token after an earlier one ended")
                } else {
                    None
                };
                if let Some(reason) = reason {
                    let request = self
                        .request_reset(actor, &user, ResetAction::Replacement, None, reason)
                        .await?;
                    return Ok(Gated::AwaitingApproval(Box::new(request)));
                }
            }
        }
        Ok(Gated::Done(self.issue(actor, username, reissue, qr).await?))
    }

    /// Issues a token to the person named `username` in the directory. With `reissue` an
    /// existing token is revoked and replaced; without, an existing token is a conflict.
    /// Refused while the clock is off from the database's (its times start the token's life).
    /// Not held back by dual control: the API calls [`Provisioner::issue_token`].
    pub async fn issue(
        &self,
        actor: &str,
        username: &str,
        reissue: bool,
        qr: Option<QrFormat>,
    ) -> Result<IssuedToken, ServiceError> {
        self.require_clock("issue a token")?;
        let person = self.directory_person(username).await?;
        let now = self.now();
        let user = self.user_record(&person, now).await?;
        let mode = if reissue { IssueMode::Replace } else { IssueMode::New };
        match self.mint(user, actor, mode, true, qr, now).await? {
            Minted::Issued(token) => Ok(*token),
            Minted::Skipped { existing } => Err(ServiceError::Conflict(format!(
                "{} already has a token ({existing}); to replace it, reissue (`rampart token issue --reissue`)",
                person.username
            ))),
        }
    }

    /// Makes a seed, seals it, stores the token per `mode` and returns what to show once.
    pub(super) async fn mint(
        &self,
        user: UserRecord,
        actor: &str,
        mode: IssueMode,
        delivered: bool,
        qr: Option<QrFormat>,
        now: i64,
    ) -> Result<Minted, ServiceError> {
        self.fresh_keys().await?;
        let prepared = self.prepare(user, actor, mode, delivered, now)?;
        let outcome = self.store.issue_token(&prepared.issue, now).await?;
        prepared.finish(outcome, qr, &self.audit)
    }

    /// A fresh seed sealed into a pending token for `user`, and its otpauth URI; the
    /// plaintext seed is wiped before this returns.
    pub(super) fn prepare(
        &self,
        user: UserRecord,
        actor: &str,
        mode: IssueMode,
        delivered: bool,
        now: i64,
    ) -> Result<Prepared, ServiceError> {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        SystemRandom::new()
            .fill(&mut *seed)
            .map_err(|_| ServiceError::Unavailable("the system random generator failed".into()))?;
        let token_id = random_hex(16)?;
        let params = TotpParams::default();
        let sealed = self
            .keys
            .seal(&token_id, &*seed)
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        let uri = otpauth_uri(&*seed, &params, &self.settings.issuer, &user.username)
            .map_err(|e| ServiceError::Unavailable(format!("cannot build the otpauth URI: {e}")))?;
        drop(seed);
        let token = TokenRecord::pending(token_id, user.id.clone(), params, sealed, now);
        Ok(Prepared {
            issue: rampart_store::TokenIssue {
                user,
                token,
                delivered,
                mode,
                actor: actor.to_owned(),
            },
            uri: Zeroizing::new(uri),
            issuer: self.settings.issuer.clone(),
            now,
        })
    }

    /// A person, their tokens and their history.
    pub async fn person(&self, username: &str) -> Result<PersonInfo, ServiceError> {
        let user = self.known_person(username).await?;
        let tokens = self
            .store
            .list_tokens(&TokenQuery {
                user_id: Some(user.id.clone()),
                ..TokenQuery::default()
            })
            .await?;
        Ok(PersonInfo {
            tokens: tokens.iter().map(|v| self.token_info(v)).collect(),
            history: self.history(&user, HISTORY_LIMIT).await?,
            username: user.username,
            display_name: user.display_name,
            user_id: user.id,
            groups: user.groups,
        })
    }

    /// Tokens matching the query, newest first.
    pub async fn list_tokens(&self, query: &TokenListQuery) -> Result<Vec<TokenInfo>, ServiceError> {
        let state = match query.state.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(name) => Some(TokenState::parse(name).ok_or_else(|| {
                ServiceError::Invalid(format!(
                    "state must be one of pending, active, revoked, lost, expired (not {name:?})"
                ))
            })?),
        };
        let user_id = match query.user.as_deref().filter(|u| !u.is_empty()) {
            None => None,
            Some(name) => Some(self.known_person(name).await?.id),
        };
        let views = self
            .store
            .list_tokens(&TokenQuery {
                user_id,
                state,
                group: query.group.clone().filter(|g| !g.is_empty()),
                live_only: query.locked,
            })
            .await?;
        Ok(views
            .iter()
            .map(|v| self.token_info(v))
            .filter(|t| !query.locked || t.locked)
            .collect())
    }

    /// The person's live token, or a clear error.
    async fn live_token(&self, username: &str) -> Result<(UserRecord, TokenView), ServiceError> {
        let user = self.known_person(username).await?;
        let views = self
            .store
            .list_tokens(&TokenQuery {
                user_id: Some(user.id.clone()),
                live_only: true,
                ..TokenQuery::default()
            })
            .await?;
        match views.into_iter().next() {
            Some(view) => Ok((user, view)),
            None => Err(ServiceError::Conflict(format!(
                "{} has no pending or active token",
                user.username
            ))),
        }
    }

    async fn view_of(&self, user: &UserRecord, token_id: &str) -> Result<TokenInfo, ServiceError> {
        let views = self
            .store
            .list_tokens(&TokenQuery {
                user_id: Some(user.id.clone()),
                ..TokenQuery::default()
            })
            .await?;
        views
            .iter()
            .find(|v| v.token.id == token_id)
            .map(|v| self.token_info(v))
            .ok_or_else(|| ServiceError::NotFound(format!("token {token_id} not found")))
    }

    /// Revokes the person's live token.
    pub async fn revoke(&self, actor: &str, username: &str, reason: &str) -> Result<TokenInfo, ServiceError> {
        let (user, view) = self.live_token(username).await?;
        self.store
            .end_token(&view.token.id, TokenState::Revoked, actor, reason, self.now())
            .await?;
        tracing::info!(target: "rampart::provisioner", operator = actor, user = %user.username, token = %view.token.id, "token revoked");
        token_change(
            &self.audit,
            actor,
            Activity::MFA_DISABLE,
            "revoked",
            (&user.username, &user.id),
            Some(&view.token.id),
            reason,
        );
        self.view_of(&user, &view.token.id).await
    }

    /// Marks the person's live token lost (if any) and optionally issues a temporary code
    /// and/or a replacement token. Asked for either while the clock is off, it changes nothing.
    pub async fn lost(&self, actor: &str, username: &str, request: &LostRequest) -> Result<LostResponse, ServiceError> {
        if request.temporary_code {
            self.require_clock("issue a temporary code")?;
        }
        if request.replacement {
            self.require_clock("issue a token")?;
        }
        let user = self.known_person(username).await?;
        let lost_token = match self.live_token(username).await {
            Ok((_, view)) => {
                self.store
                    .end_token(&view.token.id, TokenState::Lost, actor, &request.reason, self.now())
                    .await?;
                tracing::info!(target: "rampart::provisioner", operator = actor, user = %user.username, token = %view.token.id, "token reported lost");
                token_change(
                    &self.audit,
                    actor,
                    Activity::MFA_DISABLE,
                    "lost",
                    (&user.username, &user.id),
                    Some(&view.token.id),
                    &request.reason,
                );
                Some(view.token.id)
            }
            Err(ServiceError::Conflict(_)) if request.temporary_code || request.replacement => None,
            Err(err) => return Err(err),
        };
        if self.resets_need_approval()
            && let Some(action) = ResetAction::for_lost(request.temporary_code, request.replacement)
        {
            let pending = self.request_reset(actor, &user, action, None, &request.reason).await?;
            return Ok(LostResponse {
                lost_token,
                temporary_code: None,
                replacement: None,
                pending_approval: Some(pending),
            });
        }
        let temporary_code = if request.temporary_code {
            Some(self.issue_temporary_code(actor, &user.username).await?)
        } else {
            None
        };
        let replacement = if request.replacement {
            Some(self.issue(actor, &user.username, true, request.qr).await?)
        } else {
            None
        };
        Ok(LostResponse {
            lost_token,
            temporary_code,
            replacement,
            pending_approval: None,
        })
    }

    /// Issues a temporary one-time code for the person (replacing any unused earlier one); with
    /// dual control on, asks for a second operator's approval instead. Refused while the clock
    /// is off from the database's (the code's expiry would be wrong).
    pub async fn temporary_code(&self, actor: &str, username: &str) -> Result<Gated<TemporaryCode>, ServiceError> {
        self.require_clock("issue a temporary code")?;
        if self.resets_need_approval() {
            let user = self.known_person(username).await?;
            let request = self
                .request_reset(actor, &user, ResetAction::TemporaryCode, None, "")
                .await?;
            return Ok(Gated::AwaitingApproval(Box::new(request)));
        }
        Ok(Gated::Done(self.issue_temporary_code(actor, username).await?))
    }

    /// Issues a temporary one-time code for the person (replacing any unused earlier one).
    async fn issue_temporary_code(&self, actor: &str, username: &str) -> Result<TemporaryCode, ServiceError> {
        self.require_clock("issue a temporary code")?;
        let user = self.known_person(username).await?;
        let now = self.now();
        let (code, record) = self.draw_temp_code(&user, actor, now)?;
        self.store.insert_temp_code(&record).await?;
        Ok(self.temp_code_shown(actor, &user, &code, &record, ""))
    }

    /// A fresh temporary code for `user` and the record the store keeps (its hash only).
    pub(super) fn draw_temp_code(
        &self,
        user: &UserRecord,
        actor: &str,
        now: i64,
    ) -> Result<(Zeroizing<String>, TempCodeRecord), ServiceError> {
        let mut code = Zeroizing::new(String::with_capacity(TEMP_CODE_DIGITS));
        let mut bytes = Zeroizing::new([0u8; TEMP_CODE_DIGITS * 2]);
        SystemRandom::new()
            .fill(&mut *bytes)
            .map_err(|_| ServiceError::Unavailable("the system random generator failed".into()))?;
        // Two bytes per digit: the modulo bias of 65536 % 10 is negligible.
        for pair in bytes.chunks_exact(2) {
            let value = u16::from_be_bytes([pair[0], pair[1]]) % 10;
            code.push(char::from(b'0' + u8::try_from(value).unwrap_or(0)));
        }
        let lifetime = i64::try_from(self.settings.temporary_code_lifetime_secs).unwrap_or(i64::MAX);
        let record = TempCodeRecord {
            id: random_hex(16)?,
            user_id: user.id.clone(),
            code_hash: temp_code_hash(&user.id, &code),
            created_at: now,
            expires_at: now.saturating_add(lifetime),
            created_by: actor.to_owned(),
        };
        Ok((code, record))
    }

    /// Logs and records a stored temporary code (never the code itself) and returns it as
    /// shown to the operator, once.
    pub(super) fn temp_code_shown(
        &self,
        actor: &str,
        user: &UserRecord,
        code: &str,
        record: &TempCodeRecord,
        detail: &str,
    ) -> TemporaryCode {
        tracing::info!(target: "rampart::provisioner", operator = actor, user = %user.username, expires_at = record.expires_at, "temporary code issued");
        token_change(
            &self.audit,
            actor,
            Activity::OTHER,
            "temporary code issued",
            (&user.username, &user.id),
            None,
            detail,
        );
        TemporaryCode {
            code: display_temp_code(code),
            expires_at: record.expires_at,
        }
    }

    /// Clears the failure counter of the person's locked token; with dual control on, asks for
    /// a second operator's approval instead (approving unlocks this token). A token that is not
    /// locked is [`ServiceError::NotLocked`]: nothing is changed, recorded or asked for.
    pub async fn unlock(&self, actor: &str, username: &str) -> Result<Gated<TokenInfo>, ServiceError> {
        let (user, view) = self.live_token(username).await?;
        let lock_at = self.settings.max_token_failures;
        if view.token.failures < lock_at {
            return Err(not_locked(&user, &view.token.id, Some(view.token.failures), lock_at));
        }
        if self.resets_need_approval() {
            let request = self
                .request_reset(actor, &user, ResetAction::Unlock, Some(view.token.id.clone()), "")
                .await?;
            return Ok(Gated::AwaitingApproval(Box::new(request)));
        }
        if !self
            .store
            .unlock_token(&view.token.id, lock_at, actor, self.now())
            .await?
        {
            // Unlocked (or resynchronised) by someone else since it was read.
            return Err(not_locked(&user, &view.token.id, None, lock_at));
        }
        tracing::info!(target: "rampart::provisioner", operator = actor, user = %user.username, token = %view.token.id, "token unlocked");
        token_change(
            &self.audit,
            actor,
            Activity::OTHER,
            "unlocked",
            (&user.username, &user.id),
            Some(&view.token.id),
            "",
        );
        Ok(Gated::Done(self.view_of(&user, &view.token.id).await?))
    }

    /// Resynchronises the person's live token from two consecutive codes: finds the time step
    /// where the first matches and the second matches the next step, within the configured
    /// search range around now, and records it.
    ///
    /// The second code's step becomes the token's replay mark, which never moves back: codes
    /// at or before the last step a gateway accepted may have been used (or seen by someone
    /// else), and taking them as proof would make those codes valid again. Such a resync is
    /// refused with [`ServiceError::Conflict`] and changes nothing; the store checks the same
    /// in the update, so a login accepted meanwhile is taken into account too.
    ///
    /// Refused while the clock is off from the database's: the steps are searched around now.
    pub async fn resync(
        &self,
        actor: &str,
        username: &str,
        first: &str,
        second: &str,
    ) -> Result<TokenInfo, ServiceError> {
        self.require_clock("resynchronise a token")?;
        let (user, view) = self.live_token(username).await?;
        let token = &view.token;
        let seed = self
            .keys
            .open_fresh(&token.id, &token.sealed)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        let params = token.params;
        let current = params.step_at(u64::try_from(self.now()).unwrap_or(0));
        let range = u64::from(self.settings.resync_search_steps);
        let (first, second) = (first.trim(), second.trim());
        let mut found = None;
        for step in current.saturating_sub(range)..=current.saturating_add(range) {
            let at = step.saturating_mul(params.period);
            let code = generate_totp(&seed, &params, at).map_err(|e| ServiceError::Unavailable(e.to_string()))?;
            if !constant_eq(&code, first) {
                continue;
            }
            let next = generate_totp(&seed, &params, at.saturating_add(params.period))
                .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
            if constant_eq(&next, second) {
                found = Some(step + 1);
                break;
            }
        }
        drop(seed);
        let Some(step) = found else {
            tracing::warn!(target: "rampart::provisioner", operator = actor, user = %user.username, token = %token.id, "resync failed: codes do not match");
            return Err(ServiceError::Invalid(
                "the two codes are not consecutive codes of this person's token near the current time".into(),
            ));
        };
        if token.last_step.is_some_and(|last| step <= last) {
            tracing::warn!(target: "rampart::provisioner", operator = actor, user = %user.username, token = %token.id, "resync refused: the codes are not newer than the last accepted code");
            return Err(ServiceError::Conflict(
                "the two codes are not newer than the last code this token accepted, so they may already have been \
                 used; nothing was changed. Check the clock of the person's device and try two new codes, or \
                 reissue the token"
                    .into(),
            ));
        }
        let drift = i64::try_from(step).unwrap_or(i64::MAX) - i64::try_from(current).unwrap_or(0);
        self.store
            .resync_token(&token.id, step, drift, actor, self.now())
            .await?;
        tracing::info!(target: "rampart::provisioner", operator = actor, user = %user.username, token = %token.id, "token resynchronised");
        token_change(
            &self.audit,
            actor,
            Activity::OTHER,
            "resynchronised",
            (&user.username, &user.id),
            Some(&token.id),
            &format!("drift {drift} steps"),
        );
        self.view_of(&user, &token.id).await
    }
}

/// What [`Provisioner::mint`] did.
pub(super) enum Minted {
    /// A new token (boxed: it is much larger than the other variant).
    Issued(Box<IssuedToken>),
    /// The person already has this token.
    Skipped { existing: String },
}

/// A token ready to store, with the URI to show once it is stored.
pub(super) struct Prepared {
    pub(super) issue: rampart_store::TokenIssue,
    uri: Zeroizing<String>,
    issuer: String,
    now: i64,
}

impl Prepared {
    /// What to answer once the store has decided.
    pub(super) fn finish(
        self,
        outcome: IssueOutcome,
        qr: Option<QrFormat>,
        audit: &AuditLog,
    ) -> Result<Minted, ServiceError> {
        let replaced = match outcome {
            IssueOutcome::Issued { replaced } => replaced,
            IssueOutcome::Skipped { existing } => return Ok(Minted::Skipped { existing }),
        };
        let (qr_svg, qr_png_base64) = render_qr(&self.uri, qr)?;
        let issue = self.issue;
        tracing::info!(
            target: "rampart::provisioner", operator = %issue.actor, user = %issue.user.username,
            token = %issue.token.id, replaced = replaced.as_deref().unwrap_or("-"), delivered = issue.delivered,
            "token issued"
        );
        let detail = replaced
            .as_deref()
            .map(|old| format!("replaces {old}"))
            .unwrap_or_default();
        token_change(
            audit,
            &issue.actor,
            Activity::MFA_ENABLE,
            "issued",
            (&issue.user.username, &issue.user.id),
            Some(&issue.token.id),
            &detail,
        );
        Ok(Minted::Issued(Box::new(IssuedToken {
            token_id: issue.token.id,
            username: issue.user.username,
            display_name: issue.user.display_name,
            user_id: issue.user.id,
            otpauth_uri: self.uri.to_string(),
            issuer: self.issuer,
            issued_at: self.now,
            replaced,
            qr_svg,
            qr_png_base64,
        })))
    }
}

/// The answer to an unlock of a token that is not locked, with its wrong-code count if known.
fn not_locked(user: &UserRecord, token_id: &str, failures: Option<u32>, lock_at: u32) -> ServiceError {
    let count = failures.map_or_else(String::new, |n| {
        format!(
            " ({n} wrong code{} counted; it locks at {lock_at})",
            if n == 1 { "" } else { "s" }
        )
    });
    ServiceError::NotLocked(format!(
        "token {token_id} of {} is not locked{count}; nothing to unlock, nothing changed",
        user.username
    ))
}

fn constant_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn render_qr(uri: &str, format: Option<QrFormat>) -> Result<(Option<String>, Option<String>), ServiceError> {
    let failed = |e: crate::qr::QrError| ServiceError::Unavailable(format!("cannot draw the QR code: {e}"));
    Ok(match format {
        None => (None, None),
        Some(QrFormat::Svg) => (Some(crate::qr::svg(uri).map_err(failed)?), None),
        Some(QrFormat::Png) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(crate::qr::png(uri).map_err(failed)?)),
        ),
    })
}
