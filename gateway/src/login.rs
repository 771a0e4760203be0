//! Login: directory password, then the person's TOTP code accepted by one atomic store update
//! (or a service desk's temporary one-time code, used up atomically), then a new session.
//! Every failure gives the client one answer; the log keeps the real reason.

use crate::server::Shared;
use crate::session::{ActiveSession, new_id_and_ticket, ticket_hash};
use rampart_core::policy::Identity;
use rampart_core::protocol::{ErrorCode, SessionGrant};
use rampart_core::secret::Sensitive;
use rampart_core::totp::{TotpError, verify_totp};
use rampart_core::username::normalize_username;
use rampart_directory::{DirectoryError, DirectoryUser};
use rampart_store::temp_code::{parse_temp_code, temp_code_hash};
use rampart_store::{SessionRecord, StepOutcome, TokenEvent, TokenRecord};
use std::net::SocketAddr;

/// Why a login failed, for the log. The client sees only [`LoginFailure::code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoginFailure {
    Rejected(&'static str),
    Unavailable(String),
}

impl LoginFailure {
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Self::Rejected(_) => ErrorCode::InvalidCredentials,
            Self::Unavailable(_) => ErrorCode::TryLater,
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> LoginFailure {
    LoginFailure::Unavailable(e.to_string())
}

/// Runs one login attempt and logs its outcome.
pub(crate) async fn login(
    shared: &Shared,
    source: SocketAddr,
    typed_username: &str,
    password: &Sensitive<String>,
    otp: &Sensitive<String>,
) -> Result<(ActiveSession, SessionGrant), LoginFailure> {
    let result = attempt(shared, source, typed_username, password, otp).await;
    let shown_user = normalize_username(typed_username).unwrap_or_else(|_| "<invalid>".into());
    match &result {
        Ok((session, _)) => tracing::info!(
            target: "rampart::auth", user = %session.identity.username, user_id = %session.user_id,
            source = %source, session = %session.id, outcome = "success", "login"
        ),
        Err(LoginFailure::Rejected(reason)) => tracing::warn!(
            target: "rampart::auth", user = %shown_user, source = %source, outcome = "failure", reason, "login refused"
        ),
        Err(LoginFailure::Unavailable(detail)) => tracing::error!(
            target: "rampart::auth", user = %shown_user, source = %source, outcome = "error",
            reason = "service_unavailable", detail = %detail, "login could not be checked"
        ),
    }
    result
}

async fn attempt(
    shared: &Shared,
    source: SocketAddr,
    typed_username: &str,
    password: &Sensitive<String>,
    otp: &Sensitive<String>,
) -> Result<(ActiveSession, SessionGrant), LoginFailure> {
    let username = normalize_username(typed_username).map_err(|_| LoginFailure::Rejected("bad_username"))?;
    let person = match shared.directory.authenticate(&username, password).await {
        Ok(person) => person,
        Err(DirectoryError::Rejected(reason)) => return Err(LoginFailure::Rejected(reason.as_str())),
        Err(DirectoryError::Unavailable(detail)) => return Err(LoginFailure::Unavailable(detail)),
        // Only group listings report unknown groups; a login never should.
        Err(other @ DirectoryError::UnknownGroup(_)) => return Err(LoginFailure::Unavailable(other.to_string())),
    };
    if let Some(code) = parse_temp_code(otp.expose()) {
        check_temp_code(shared, &person, &code).await?;
        return start_session(shared, source, person).await;
    }
    let token = shared
        .store
        .live_token_for_user(&person.stable_id)
        .await
        .map_err(unavailable)?
        .ok_or(LoginFailure::Rejected("no_token"))?;
    check_code(shared, &token, otp).await?;
    start_session(shared, source, person).await
}

/// A temporary one-time code (issued by the service desk for a lost token): used up
/// atomically, so it works exactly once, for its person only, until it expires.
async fn check_temp_code(shared: &Shared, person: &DirectoryUser, code: &str) -> Result<(), LoginFailure> {
    let used = shared
        .store
        .consume_temp_code(
            &person.stable_id,
            &temp_code_hash(&person.stable_id, code),
            shared.clock.now(),
        )
        .await
        .map_err(unavailable)?;
    if used {
        tracing::info!(target: "rampart::auth", user = %person.username, method = "temporary_code", "temporary code used");
        Ok(())
    } else {
        Err(LoginFailure::Rejected("wrong_temporary_code"))
    }
}

/// Adds a token-history event written by the gateway; a failure to record is logged, not fatal.
async fn record_event(shared: &Shared, token: &TokenRecord, action: &str, detail: &str) {
    let event = TokenEvent {
        seq: 0,
        at: shared.clock.now(),
        actor: "gateway".into(),
        action: action.into(),
        user_id: token.user_id.clone(),
        token_id: Some(token.id.clone()),
        detail: detail.into(),
    };
    if let Err(err) = shared.store.record_token_event(&event).await {
        tracing::error!(target: "rampart::auth", token = %token.id, error = %err, "cannot record token event");
    }
}

async fn check_code(shared: &Shared, token: &TokenRecord, otp: &Sensitive<String>) -> Result<(), LoginFailure> {
    let max_failures = shared.settings.max_token_failures;
    if token.failures >= max_failures {
        return Err(LoginFailure::Rejected("token_locked"));
    }
    let seed = shared.keys.open(&token.id, &token.sealed).map_err(unavailable)?;
    let mut params = token.params;
    params.window = shared.settings.totp_window;
    // Checked on the owner's device clock, as learnt by the last resync.
    let drift = token
        .drift_steps
        .saturating_mul(i64::try_from(params.period).unwrap_or(0));
    let device_now = u64::try_from(shared.clock.now().saturating_add(drift)).unwrap_or(0);
    let verified = verify_totp(&seed, otp.expose().trim(), &params, device_now, token.last_step);
    drop(seed);
    let step = match verified {
        Ok(step) => step,
        Err(TotpError::Replayed) => return Err(LoginFailure::Rejected("code_replayed")),
        Err(TotpError::BadParams(_)) => return Err(unavailable("token parameters are invalid")),
        Err(TotpError::Malformed | TotpError::Mismatch) => {
            let failures = shared
                .store
                .record_failure(&token.id, shared.clock.now())
                .await
                .map_err(unavailable)?;
            if failures == max_failures {
                record_event(shared, token, "locked", &format!("{failures} wrong codes")).await;
            }
            return Err(LoginFailure::Rejected(if failures >= max_failures {
                "token_locked"
            } else {
                "wrong_code"
            }));
        }
    };
    match shared
        .store
        .accept_step(&token.id, step, max_failures, shared.clock.now())
        .await
        .map_err(unavailable)?
    {
        StepOutcome::Accepted { activated } => {
            if activated {
                record_event(shared, token, "activated", "first code used").await;
            }
            Ok(())
        }
        StepOutcome::Replayed => Err(LoginFailure::Rejected("code_replayed")),
        StepOutcome::Locked => Err(LoginFailure::Rejected("token_locked")),
        StepOutcome::NotLive => Err(LoginFailure::Rejected("token_not_live")),
    }
}

async fn start_session(
    shared: &Shared,
    source: SocketAddr,
    person: DirectoryUser,
) -> Result<(ActiveSession, SessionGrant), LoginFailure> {
    let (id, ticket) = new_id_and_ticket().ok_or_else(|| unavailable("system random generator failed"))?;
    let now = shared.clock.now();
    let lifetime = i64::try_from(shared.settings.session_lifetime_secs).unwrap_or(i64::MAX);
    let expires_at = now.saturating_add(lifetime);
    let record = SessionRecord {
        id: id.clone(),
        ticket_hash: ticket_hash(&ticket),
        user_id: person.stable_id.clone(),
        username: person.username.clone(),
        groups: person.groups.clone(),
        source: source.to_string(),
        created_at: now,
        expires_at,
        ended_at: None,
        end_reason: None,
        token_id: None,
        last_seen_at: None,
    };
    shared.store.create_session(&record).await.map_err(unavailable)?;
    let session = ActiveSession {
        id,
        user_id: person.stable_id,
        identity: Identity {
            username: person.username,
            groups: person.groups,
        },
        expires_at,
    };
    let grant = grant_for(shared, &session, Some(ticket));
    Ok((session, grant))
}

/// Resumes a session from its ticket.
pub(crate) async fn resume(
    shared: &Shared,
    source: SocketAddr,
    ticket: &Sensitive<String>,
) -> Result<(ActiveSession, SessionGrant), ErrorCode> {
    let found = shared
        .store
        .session_by_ticket_hash(&ticket_hash(ticket.expose()))
        .await
        .map_err(|e| {
            tracing::error!(target: "rampart::auth", source = %source, error = %e, "resume could not be checked");
            ErrorCode::TryLater
        })?;
    let now = shared.clock.now();
    let Some(record) = found.filter(|s| s.ended_at.is_none() && s.expires_at > now) else {
        tracing::warn!(target: "rampart::auth", source = %source, outcome = "failure", reason = "unknown_or_expired_ticket", "resume refused");
        return Err(ErrorCode::SessionExpired);
    };
    let session = ActiveSession {
        id: record.id,
        user_id: record.user_id,
        identity: Identity {
            username: record.username,
            groups: record.groups,
        },
        expires_at: record.expires_at,
    };
    tracing::info!(target: "rampart::auth", user = %session.identity.username, source = %source, session = %session.id, outcome = "success", "session resumed");
    let grant = grant_for(shared, &session, None);
    Ok((session, grant))
}

fn grant_for(shared: &Shared, session: &ActiveSession, ticket: Option<String>) -> SessionGrant {
    SessionGrant {
        session_id: session.id.clone(),
        ticket: ticket.map(Sensitive::new),
        user: session.identity.username.clone(),
        expires_at: session.expires_at,
        resources: shared.policy().visible_to(&session.identity),
    }
}
