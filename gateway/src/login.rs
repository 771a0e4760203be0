//! Login: directory password, then the person's TOTP code accepted by one atomic store update
//! (or a service desk's temporary one-time code, used up atomically), then a new session.
//! Every failure gives the client one answer after the same growing delay, kept per person
//! the directory resolved (`refusal`); the audit record and the log keep the real reason and
//! whom it reached. While this
//! gateway's clock is off from the database's (`clock_check`), logins are refused with "try
//! later" before anything is checked. A wrong code from someone with the right password is
//! placed in time (`code_offset_steps`, nothing accepted or spent): the offset goes on the
//! record and the `rampart::clock` log, and when many people's codes agree on one, the log
//! and `/metrics` say this gateway's clock is probably off by that much.

use crate::refusal::{Refusal, Subject};
use crate::registry::SessionInfo;
use crate::session::{new_id_and_ticket, ticket_hash};
use crate::state::{EndReason, Shared};
use rampart_core::audit::{Activity, Actor, AuditEvent, Class, Status, User};
use rampart_core::code_check::{AfterFailure, CodeVerdict, device_time, verdict};
use rampart_core::protocol::{ErrorCode, SessionGrant};
use rampart_core::resume_proof::ClientPublicKey;
use rampart_core::secret::Sensitive;
use rampart_core::temp_code::{parse_temp_code, temp_code_hash};
use rampart_core::totp::{DRIFT_REACH, TotpError, code_offset_steps, verify_totp};
use rampart_directory::{DirectoryError, DirectoryUser, ReachedPerson};
use rampart_store::{SessionRecord, StepOutcome, TokenEvent, TokenRecord};
use std::net::SocketAddr;
use std::time::Instant;

/// Why a login failed, for the log. The client sees only [`LoginFailure::code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoginFailure {
    Rejected(Refusal),
    Unavailable(String),
    /// This gateway's clock is more than the bound off from the database's.
    ClockSkew {
        offset_ms: i64,
        bound_ms: u64,
    },
}

impl LoginFailure {
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Self::Rejected(refusal) => refusal.code(),
            Self::Unavailable(_) | Self::ClockSkew { .. } => ErrorCode::TryLater,
        }
    }

    /// The reason label for metrics.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Rejected(refusal) => refusal.label(),
            Self::Unavailable(_) => "service_unavailable",
            Self::ClockSkew { .. } => "clock_skew",
        }
    }
}

/// What an attempt learnt on its way, for the record, whatever its outcome.
#[derive(Debug, Default)]
struct Findings {
    /// The person the directory resolved the typed name to.
    reached: Option<ReachedPerson>,
    /// A wrong code that matches another step: the phone's clock minus this gateway's (as
    /// learnt for the token), in seconds, and the token's step length.
    code_offset: Option<CodeOffset>,
}

#[derive(Debug, Clone, Copy)]
struct CodeOffset {
    phone_minus_gateway_secs: i64,
    step_secs: i64,
}

/// A refused login as the connection answers it: the failure, and when to answer.
#[derive(Debug)]
pub(crate) struct Refused {
    failure: LoginFailure,
    answer_at: Option<Instant>,
}

impl Refused {
    /// What the client hears.
    pub(crate) fn code(&self) -> ErrorCode {
        self.failure.code()
    }

    /// The reason label for metrics.
    pub(crate) fn reason(&self) -> &'static str {
        self.failure.reason()
    }

    /// When a rejection is answered (its person's growing delay after the check began); `None`
    /// for "try later", answered at once.
    pub(crate) fn answer_at(&self) -> Option<Instant> {
        self.answer_at
    }
}

fn unavailable(e: impl std::fmt::Display) -> LoginFailure {
    LoginFailure::Unavailable(e.to_string())
}

/// Refuses while the latest clock check found this gateway's clock out of bounds: a code
/// checked against a wrong clock could be one from the future, and accepting it would mark a
/// step that has not come yet as used. Nothing is checked, spent or counted.
fn refuse_if_clock_off(shared: &Shared) -> Result<(), LoginFailure> {
    match shared.clock_check.off() {
        Some(reading) => Err(LoginFailure::ClockSkew {
            offset_ms: reading.offset_ms,
            bound_ms: shared.clock_check.bound_ms(),
        }),
        None => Ok(()),
    }
}

/// Runs one login attempt, records and logs its outcome, and counts a rejection against the
/// person reached (or the name, when it reached nobody).
pub(crate) async fn login(
    shared: &Shared,
    source: SocketAddr,
    typed_username: &str,
    password: &Sensitive<String>,
    otp: &Sensitive<String>,
    client_key: Option<&ClientPublicKey>,
) -> Result<(SessionInfo, SessionGrant), Refused> {
    let checked = Instant::now();
    let mut findings = Findings::default();
    let result = attempt(shared, source, typed_username, password, otp, client_key, &mut findings).await;
    let subject = Subject::of(typed_username, findings.reached.take());
    let code_offset = findings.code_offset;
    let event = match &result {
        Ok((session, _)) => AuditEvent::new(
            Class::Authentication,
            Activity::LOGON,
            shared.clock.now_ms(),
            Status::Success,
            "login",
        )
        .user(User::with_uid(&session.username, &session.user_id).groups(&session.groups))
        .session(&session.id),
        // The person reached (directory name and stable id), whatever the spelling; else the
        // normalised name, or the name exactly as typed: the record is data, whatever it holds.
        Err(failure) => {
            let detail = match (failure, code_offset) {
                // The phone's clock minus this gateway's, as far as the code tells.
                (LoginFailure::Rejected(refusal), Some(offset)) => {
                    format!("{refusal}; code_offset_secs={:+}", offset.phone_minus_gateway_secs)
                }
                (LoginFailure::Rejected(refusal), None) => refusal.to_string(),
                (other, _) => other.reason().to_owned(),
            };
            AuditEvent::new(
                Class::Authentication,
                Activity::LOGON,
                shared.clock.now_ms(),
                Status::Failure,
                "login refused",
            )
            .user(subject.audit_user())
            .detail(&detail)
        }
    };
    // On file before the client hears the answer; a login that cannot be on file is refused.
    let audited = shared.audit.try_record_flushed(event.source(source)).await;
    let result = match (result, audited) {
        (Ok((session, _)), Err(e)) => {
            tracing::error!(target: "rampart::audit", user = %session.username, session = %session.id, error = %e, "login refused: its audit record could not be written");
            shared.end_session(&session.id, EndReason::AuditUnavailable).await;
            Err(unavailable(format!("audit trail: {e}")))
        }
        (result, _) => result,
    };
    let shown_user = subject.shown_name();
    let user_id = subject.stable_id().unwrap_or_default();
    match &result {
        Ok((session, _)) => tracing::info!(
            target: "rampart::auth", user = %session.username, user_id = %session.user_id,
            source = %source, session = %session.id, outcome = "success", "login"
        ),
        Err(LoginFailure::Rejected(refusal)) => tracing::warn!(
            target: "rampart::auth", user = %shown_user, user_id, source = %source, outcome = "failure",
            reason = refusal.label(), detail = %refusal, "login refused"
        ),
        Err(LoginFailure::Unavailable(detail)) => tracing::error!(
            target: "rampart::auth", user = %shown_user, source = %source, outcome = "error",
            reason = "service_unavailable", detail = %detail, "login could not be checked"
        ),
        Err(LoginFailure::ClockSkew { offset_ms, bound_ms }) => tracing::error!(
            target: "rampart::auth", user = %shown_user, source = %source, outcome = "error",
            reason = "clock_skew", offset_ms, bound_ms, "login refused: this gateway's clock is off from the database's"
        ),
    }
    if let (Some(offset), Err(LoginFailure::Rejected(_))) = (code_offset, &result) {
        tell_code_offset(shared, &subject, offset);
    }
    // Every rejection adds to its person's growing delay, whatever was wrong, so timing tells a
    // guesser neither a right password nor a known user; a success starts them afresh.
    let key = subject.backoff_key();
    match result {
        Ok(done) => {
            shared.login_backoff.succeeded(&key);
            Ok(done)
        }
        Err(failure) => {
            let answer_at =
                (failure.code() != ErrorCode::TryLater).then(|| checked + shared.login_backoff.rejected(&key, checked));
            Err(Refused { failure, answer_at })
        }
    }
}

async fn attempt(
    shared: &Shared,
    source: SocketAddr,
    typed_username: &str,
    password: &Sensitive<String>,
    otp: &Sensitive<String>,
    client_key: Option<&ClientPublicKey>,
    findings: &mut Findings,
) -> Result<(SessionInfo, SessionGrant), LoginFailure> {
    refuse_if_clock_off(shared)?;
    let username = rampart_core::username::normalize_username(typed_username)
        .map_err(|why| LoginFailure::Rejected(Refusal::BadUsername(why)))?;
    let person = match shared.directory.authenticate(&username, password).await {
        Ok(person) => person,
        Err(DirectoryError::Rejected(rejection)) => {
            findings.reached = rejection.person;
            return Err(LoginFailure::Rejected(Refusal::Directory(rejection.reason)));
        }
        Err(DirectoryError::Unavailable(detail)) => return Err(LoginFailure::Unavailable(detail)),
        // Only group listings report unknown groups; a login never should.
        Err(other @ DirectoryError::UnknownGroup(_)) => return Err(LoginFailure::Unavailable(other.to_string())),
    };
    findings.reached = Some(ReachedPerson {
        stable_id: person.stable_id.clone(),
        username: person.username.clone(),
    });
    // Again, in case a check found the clock off while the directory answered.
    refuse_if_clock_off(shared)?;
    if let Some(code) = parse_temp_code(otp.expose()) {
        check_temp_code(shared, &person, &code).await?;
        return start_session(shared, source, person, None, client_key).await;
    }
    let token = shared
        .store
        .live_token_for_user(&person.stable_id)
        .await
        .map_err(unavailable)?
        .ok_or(LoginFailure::Rejected(Refusal::NoToken))?;
    check_code(shared, &token, &person.username, otp, &mut findings.code_offset).await?;
    start_session(shared, source, person, Some(token.id), client_key).await
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
        Err(LoginFailure::Rejected(Refusal::WrongTemporaryCode))
    }
}

/// What a login did to a token, for its history.
#[derive(Debug, Clone, Copy)]
enum TokenChange {
    /// The first code was used: a pending token is active.
    Activated,
    /// Wrong codes reached the limit.
    Locked,
}

impl TokenChange {
    fn action(self) -> &'static str {
        match self {
            Self::Activated => "activated",
            Self::Locked => "locked",
        }
    }

    fn activity(self) -> Activity {
        match self {
            Self::Activated => Activity::OTHER,
            Self::Locked => Activity::LOCK,
        }
    }
}

/// Adds a token-history event written by the gateway, and its audit record; a failure to
/// record in the store is logged, not fatal.
async fn record_event(shared: &Shared, token: &TokenRecord, username: &str, change: TokenChange, detail: &str) {
    let (action, activity) = (change.action(), change.activity());
    shared.audit.record(
        AuditEvent::new(
            Class::AccountChange,
            activity,
            shared.clock.now_ms(),
            Status::Success,
            &format!("token {action}"),
        )
        .actor(Actor::system("gateway"))
        .user(User::with_uid(username, &token.user_id))
        .resource("token", Some(&token.id), Some(action))
        .detail(detail),
    );
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

async fn check_code(
    shared: &Shared,
    token: &TokenRecord,
    username: &str,
    otp: &Sensitive<String>,
    code_offset: &mut Option<CodeOffset>,
) -> Result<(), LoginFailure> {
    let max_failures = shared.settings.max_token_failures;
    let seed = shared
        .keys
        .open_fresh(&token.id, &token.sealed)
        .await
        .map_err(unavailable)?;
    let mut params = token.params;
    params.window = shared.settings.totp_window;
    // Checked on the owner's device clock, as learnt by the last resync.
    let device_now = device_time(shared.clock.now(), token.drift_steps, &params);
    let verified = verify_totp(&seed, otp.expose().trim(), &params, device_now, token.last_step);
    if verified == Err(TotpError::Mismatch) {
        // Where in time the code lies, for the record only: nothing is accepted or spent.
        let period = i64::try_from(params.period).unwrap_or(i64::MAX);
        *code_offset = code_offset_steps(&seed, otp.expose().trim(), &params, device_now, DRIFT_REACH)
            .ok()
            .flatten()
            .map(|steps| CodeOffset {
                phone_minus_gateway_secs: steps.saturating_mul(period),
                step_secs: period,
            });
    }
    drop(seed);
    let step = match verdict(&verified, token.failures, max_failures) {
        CodeVerdict::Spend { step } => step,
        // Locked. Only someone with the password and the device learns it: a password guesser
        // gets the same answer as for a wrong password. The code is not used up.
        CodeVerdict::Locked { code_was_right: true } => return Err(LoginFailure::Rejected(Refusal::TokenLocked)),
        CodeVerdict::Locked { code_was_right: false } => {
            return Err(LoginFailure::Rejected(Refusal::LockedWrongCode));
        }
        CodeVerdict::Replayed => return Err(LoginFailure::Rejected(Refusal::CodeReplayed)),
        CodeVerdict::BadParams => return Err(unavailable("token parameters are invalid")),
        CodeVerdict::CountFailure => {
            let failures = shared
                .store
                .record_failure(&token.id, shared.clock.now())
                .await
                .map_err(unavailable)?;
            let after = AfterFailure::of(failures, max_failures);
            if after == AfterFailure::LockedNow {
                record_event(
                    shared,
                    token,
                    username,
                    TokenChange::Locked,
                    &format!("{failures} wrong codes"),
                )
                .await;
            }
            // A wrong code that locks the token is still only a wrong code to the client.
            return Err(LoginFailure::Rejected(if after.is_locked() {
                Refusal::LockedWrongCode
            } else {
                Refusal::WrongCode
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
                record_event(shared, token, username, TokenChange::Activated, "first code used").await;
            }
            Ok(())
        }
        StepOutcome::Replayed => Err(LoginFailure::Rejected(Refusal::CodeReplayed)),
        StepOutcome::Locked => Err(LoginFailure::Rejected(Refusal::TokenLocked)),
        StepOutcome::NotLive => Err(LoginFailure::Rejected(Refusal::TokenNotLive)),
    }
}

/// Logs a rejected code that matches another time (`rampart::clock`, never the code), counts
/// it, and once many people's codes agree, warns that this gateway's clock is off.
fn tell_code_offset(shared: &Shared, subject: &Subject, offset: CodeOffset) {
    let phone_minus_gateway = offset.phone_minus_gateway_secs;
    tracing::info!(
        target: "rampart::clock", user = %subject.shown_name(), user_id = subject.stable_id().unwrap_or_default(),
        offset_secs = phone_minus_gateway,
        "a rejected code is one for another time: the phone's clock or this gateway's is off by that much"
    );
    let Some(person) = subject.stable_id() else {
        return;
    };
    if let Some(common) = shared
        .metrics
        .code_offset(person, phone_minus_gateway, offset.step_secs)
    {
        tracing::warn!(
            target: "rampart::clock", gateway_ahead_secs = common.gateway_ahead_secs, people = common.people,
            within_secs = crate::metrics::DRIFT_PERIOD_SECS,
            "the rejected codes of many people agree: this gateway's clock is probably off by gateway_ahead_secs \
             (positive: ahead of their phones); check its time synchronisation"
        );
    }
}

async fn start_session(
    shared: &Shared,
    source: SocketAddr,
    person: DirectoryUser,
    token_id: Option<String>,
    client_key: Option<&ClientPublicKey>,
) -> Result<(SessionInfo, SessionGrant), LoginFailure> {
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
        token_id: token_id.clone(),
        last_seen_at: None,
        gateway_id: Some(shared.node.id.clone()),
        client_key: client_key.map(|key| key.as_bytes().to_vec()),
    };
    // The new session and the end of the person's oldest beyond the limit commit together:
    // logins at the same moment on other gateways can neither exceed the limit nor end this one.
    let max = shared.settings.max_sessions_per_user;
    let ended = shared
        .store
        .create_session_within(&record, max, EndReason::SessionLimit.as_str(), now)
        .await
        .map_err(unavailable)?;
    for old in &ended {
        tracing::info!(target: "rampart::auth", user = %person.username, session = %old, limit = max, "session limit reached: ending the oldest session");
        shared.end_session(old, EndReason::SessionLimit).await;
    }
    let info = SessionInfo {
        id,
        user_id: person.stable_id,
        username: person.username,
        groups: person.groups,
        source: source.to_string(),
        created_at: now,
        expires_at,
    };
    // Without a key to prove, the session lives only as long as this connection.
    let grant = shared.grant(&info, client_key.map(|_| ticket));
    Ok((info, grant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_off_is_try_later_for_the_client_and_clock_skew_on_record() {
        let failure = LoginFailure::ClockSkew {
            offset_ms: 120_000,
            bound_ms: 3_000,
        };
        assert_eq!(failure.code(), ErrorCode::TryLater, "the client is told to retry");
        assert_eq!(failure.reason(), "clock_skew");
        assert_eq!(
            LoginFailure::Rejected(Refusal::WrongCode).code(),
            ErrorCode::InvalidCredentials
        );
    }
}
