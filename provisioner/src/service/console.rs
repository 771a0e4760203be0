//! Signing in to the web console. A person proves themselves as at a gateway: directory
//! password, then a code from their token, counted against the same failure limit and lockout
//! and refused when already used. They get a console session in the store (shared by every
//! provisioner), bound to a random cookie whose hash alone is kept, with the operator role
//! their directory groups grant (`[console]`), re-read at every sign-in.

use super::{Provisioner, ServiceError, random_hex};
use crate::config::ConsoleConfig;
use rampart_core::audit::{Activity, Actor, AuditEvent, Class, Status, User};
use rampart_core::code_check::{AfterFailure, CodeVerdict, device_time, verdict};
use rampart_core::secret::Sensitive;
use rampart_core::totp::verify_totp;
use rampart_store::web_sessions::{WebSession, web_session_hash};
use rampart_store::{OperatorRole, StepOutcome, TokenEvent};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Bytes of randomness in a console session cookie and in a form token.
const COOKIE_BYTES: usize = 32;

/// Someone signed in to the console, as every page sees them.
#[derive(Clone)]
pub struct ConsoleSession {
    /// Their stable directory id.
    pub user_id: String,
    /// Their username.
    pub username: String,
    /// What they may do for others; `None`: only their own things.
    pub role: Option<OperatorRole>,
    /// The token every form of this session carries (compared in constant time).
    pub csrf_token: String,
    /// When the session ends whatever happens (Unix seconds).
    pub expires_at: i64,
    id_hash: Vec<u8>,
}

impl std::fmt::Debug for ConsoleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSession")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl ConsoleSession {
    /// The operator name recorded as the actor of what they do in the console.
    pub fn actor(&self) -> &str {
        &self.username
    }
}

/// A new console session: the cookie value to hand to the browser, once.
pub struct OpenedSession {
    /// The cookie value.
    pub cookie: Zeroizing<String>,
    /// The session it opens.
    pub session: ConsoleSession,
}

impl std::fmt::Debug for OpenedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedSession")
            .field("username", &self.session.username)
            .finish_non_exhaustive()
    }
}

/// Why a sign-in was refused. The person hears whether to retry, never which of the
/// password and the code was wrong.
#[derive(Debug, thiserror::Error)]
pub enum SignInRefusal {
    /// Unknown person, wrong password, wrong code, or no token (answered after the same delay).
    #[error("the username, password or code is not right")]
    NotAccepted,
    /// The code was right but has been used already: the next one will do.
    #[error("that code has been used already: wait for the next code and sign in with it")]
    CodeUsed,
    /// The password and code were right but the token is locked by too many wrong codes.
    #[error("your token is locked after too many wrong codes: call the service desk to unlock it")]
    Locked,
    /// Too many sign-ins from this address: wait `secs` seconds.
    #[error("too many sign-in attempts from your address: wait {secs} seconds and try again")]
    Wait {
        /// Seconds until the next attempt is taken.
        secs: u64,
    },
    /// The store or directory failed; nothing was changed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// Attempts per address in the current minute (console sign-ins; self-service enrolment starts) (a fixed window: cheap, and a burst
/// beyond the limit waits at most a minute).
#[derive(Debug, Default)]
pub struct SignInLimiter {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl SignInLimiter {
    /// Counts an attempt from `ip`; `Err(seconds to wait)` beyond `per_minute`.
    pub(super) fn admit(&self, ip: IpAddr, per_minute: u32, now: Instant) -> Result<(), u64> {
        const WINDOW: Duration = Duration::from_secs(60);
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        // One IPv6 network (/64) is one address here: a host has a whole /64 to pick from.
        let ip = match ip {
            IpAddr::V6(v6) => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::from(segments)
            }
            v4 => v4,
        };
        let entry = windows.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= per_minute {
            return Err(WINDOW.saturating_sub(now.duration_since(entry.0)).as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

impl Provisioner {
    /// The console's settings.
    pub fn console(&self) -> &ConsoleConfig {
        &self.console
    }

    /// Signs `username` in with their directory password and a code from their token, and opens
    /// a console session. A refusal other than [`SignInRefusal::Wait`] comes after
    /// `console.sign_in_failure_delay_ms` from the start, whatever was wrong.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &Sensitive<String>,
        code: &Sensitive<String>,
        source: Option<SocketAddr>,
    ) -> Result<OpenedSession, SignInRefusal> {
        let started = Instant::now();
        if let Some(addr) = source
            && let Err(secs) = self
                .sign_in_limiter
                .admit(addr.ip(), self.console.sign_ins_per_minute, started)
        {
            tracing::warn!(target: "rampart::console", source = %addr, "sign-in attempts beyond the limit");
            return Err(SignInRefusal::Wait { secs });
        }
        let result = self.try_sign_in(username, password, code, source).await;
        let (status, reason) = match &result {
            Ok(_) => (Status::Success, "signed in"),
            Err(SignInRefusal::NotAccepted) => (Status::Failure, "not accepted"),
            Err(SignInRefusal::CodeUsed) => (Status::Failure, "code already used"),
            Err(SignInRefusal::Locked) => (Status::Failure, "token locked"),
            Err(SignInRefusal::Wait { .. }) => (Status::Failure, "rate limited"),
            Err(SignInRefusal::Service(_)) => (Status::Failure, "unavailable"),
        };
        let mut event = AuditEvent::new(
            Class::Authentication,
            Activity::LOGON,
            self.now_ms(),
            status,
            "console sign-in",
        )
        .actor(Actor::system("console"))
        .user(User::named(&self.known_name(username).await))
        .detail(reason);
        if let Some(addr) = source {
            event = event.source(addr);
        }
        self.audit.record(event);
        match result {
            Err(SignInRefusal::NotAccepted) => {
                let delay = Duration::from_millis(self.console.sign_in_failure_delay_ms);
                tokio::time::sleep(delay.saturating_sub(started.elapsed())).await;
                Err(SignInRefusal::NotAccepted)
            }
            other => other,
        }
    }

    async fn try_sign_in(
        &self,
        username: &str,
        password: &Sensitive<String>,
        code: &Sensitive<String>,
        source: Option<SocketAddr>,
    ) -> Result<OpenedSession, SignInRefusal> {
        let Ok(username) = super::normalize(username) else {
            return Err(SignInRefusal::NotAccepted);
        };
        let person = match self.directory.authenticate(&username, password).await {
            Ok(person) => person,
            Err(rampart_directory::DirectoryError::Unavailable(e)) => {
                return Err(ServiceError::Unavailable(format!("directory unavailable: {e}")).into());
            }
            Err(_) => return Err(SignInRefusal::NotAccepted),
        };
        let Some(token) = self
            .store
            .live_token_for_user(&person.stable_id)
            .await
            .map_err(ServiceError::from)?
        else {
            return Err(SignInRefusal::NotAccepted);
        };
        let seed = self
            .keys
            .open_fresh(&token.id, &token.sealed)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        let params = token.params;
        let device_now = device_time(self.now(), token.drift_steps, &params);
        let verified = verify_totp(&seed, code.expose().trim(), &params, device_now, token.last_step);
        drop(seed);
        let max_failures = self.settings.max_token_failures;
        // Counted exactly as a gateway login counts a code (`rampart_core::code_check`).
        let step = match verdict(&verified, token.failures, max_failures) {
            CodeVerdict::Spend { step } => step,
            CodeVerdict::Locked { code_was_right: true } => return Err(SignInRefusal::Locked),
            CodeVerdict::Locked { code_was_right: false } => return Err(SignInRefusal::NotAccepted),
            CodeVerdict::Replayed => return Err(SignInRefusal::CodeUsed),
            CodeVerdict::BadParams => {
                return Err(ServiceError::Unavailable("the token's parameters are invalid".into()).into());
            }
            CodeVerdict::CountFailure => {
                let failures = self
                    .store
                    .record_failure(&token.id, self.now())
                    .await
                    .map_err(ServiceError::from)?;
                if AfterFailure::of(failures, max_failures) == AfterFailure::LockedNow {
                    self.record_locked(&person.username, &token.user_id, &token.id, failures)
                        .await;
                }
                return Err(SignInRefusal::NotAccepted);
            }
        };
        match self
            .store
            .accept_step(&token.id, step, max_failures, self.now())
            .await
            .map_err(ServiceError::from)?
        {
            StepOutcome::Accepted { .. } => {}
            StepOutcome::Replayed => return Err(SignInRefusal::CodeUsed),
            StepOutcome::Locked => return Err(SignInRefusal::Locked),
            StepOutcome::NotLive => return Err(SignInRefusal::NotAccepted),
        }
        let role = self.console.role_of(&person.groups);
        Ok(self
            .open_session(&person.stable_id, &person.username, role, source)
            .await?)
    }

    async fn record_locked(&self, username: &str, user_id: &str, token_id: &str, failures: u32) {
        let detail = format!("{failures} wrong codes at console sign-in");
        super::token_change(
            &self.audit,
            "console",
            Activity::OTHER,
            "locked",
            (username, user_id),
            Some(token_id),
            &detail,
        );
        let event = TokenEvent {
            seq: 0,
            at: self.now(),
            actor: "console".into(),
            action: "locked".into(),
            user_id: user_id.to_owned(),
            token_id: Some(token_id.to_owned()),
            detail,
        };
        if let Err(err) = self.store.record_token_event(&event).await {
            tracing::error!(target: "rampart::console", token = token_id, error = %err, "cannot record token event");
        }
    }

    async fn open_session(
        &self,
        user_id: &str,
        username: &str,
        role: Option<OperatorRole>,
        source: Option<SocketAddr>,
    ) -> Result<OpenedSession, ServiceError> {
        let cookie = Zeroizing::new(random_hex(COOKIE_BYTES)?);
        let now = self.now();
        let record = WebSession {
            id_hash: web_session_hash(&cookie),
            user_id: user_id.to_owned(),
            username: username.to_owned(),
            roles: role.map_or("", OperatorRole::as_str).to_owned(),
            csrf_token: random_hex(COOKIE_BYTES)?,
            source: source.map(|a| a.to_string()).unwrap_or_default(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + i64::from(self.console.session_hours) * 3600,
        };
        self.store.start_web_session(&record).await?;
        Ok(OpenedSession {
            cookie,
            session: session_of(record),
        })
    }

    /// The live console session whose cookie is `cookie`, its idle time restarted; `None` when
    /// unknown, ended, idle too long or past its end — or when what granted it is gone: the
    /// person's token is no longer live (revoked, lost), or the directory no longer has them
    /// enabled with the same role (checked every `recheck_secs`). Such a session is ended.
    pub async fn console_session(&self, cookie: &str) -> Result<Option<ConsoleSession>, ServiceError> {
        let idle = i64::from(self.console.idle_minutes) * 60;
        let found = self
            .store
            .web_session(&web_session_hash(cookie), self.now(), idle)
            .await?;
        let Some(session) = found.map(session_of) else {
            return Ok(None);
        };
        if let Some(why) = self.no_longer_entitled(&session).await? {
            tracing::warn!(target: "rampart::console", user = %session.username, why, "console session ended");
            self.store.end_web_session(&session.id_hash, self.now()).await?;
            let event = AuditEvent::new(
                Class::Authentication,
                Activity::LOGOFF,
                self.now_ms(),
                Status::Success,
                "console session ended",
            )
            .actor(Actor::system("console"))
            .user(User::with_uid(&session.username, &session.user_id))
            .detail(why);
            self.audit.record(event);
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// Why `session` may no longer be used, if so.
    async fn no_longer_entitled(&self, session: &ConsoleSession) -> Result<Option<&'static str>, ServiceError> {
        if self.store.live_token_for_user(&session.user_id).await?.is_none() {
            return Ok(Some("token no longer live"));
        }
        let recheck = Duration::from_secs(self.console.recheck_secs);
        let fresh = {
            let checked = self
                .console_checks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            checked.get(&session.user_id).is_some_and(|at| at.elapsed() < recheck)
        };
        if fresh {
            return Ok(None);
        }
        let why = match self.directory.lookup(&session.username).await {
            Ok(Some(person)) if person.stable_id != session.user_id => Some("the name belongs to someone else"),
            Ok(Some(person)) if self.console.role_of(&person.groups) != session.role => Some("role changed"),
            Ok(Some(_)) => None,
            Ok(None) => Some("disabled or gone in the directory"),
            // Operators' sessions hold only while the directory can vouch for them.
            Err(_) if session.role.is_some() => Some("directory unavailable"),
            Err(_) => return Ok(None),
        };
        let mut checked = self
            .console_checks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if why.is_none() {
            if checked.len() > 100_000 {
                checked.retain(|_, at| at.elapsed() < recheck);
            }
            checked.insert(session.user_id.clone(), Instant::now());
        } else {
            checked.remove(&session.user_id);
        }
        Ok(why)
    }

    /// Ends the console session whose cookie is `cookie`, if it is live (a new sign-in in the
    /// same browser replaces it).
    pub async fn end_console_session(&self, cookie: &str) {
        if let Err(err) = self.store.end_web_session(&web_session_hash(cookie), self.now()).await {
            tracing::warn!(target: "rampart::console", error = %err, "cannot end an earlier console session");
        }
    }

    /// Ends a console session (sign out), recording it.
    pub async fn sign_out(&self, session: &ConsoleSession, source: Option<SocketAddr>) -> Result<(), ServiceError> {
        self.store.end_web_session(&session.id_hash, self.now()).await?;
        let mut event = AuditEvent::new(
            Class::Authentication,
            Activity::LOGOFF,
            self.now_ms(),
            Status::Success,
            "console sign-out",
        )
        .actor(Actor::system("console"))
        .user(User::with_uid(&session.username, &session.user_id));
        if let Some(addr) = source {
            event = event.source(addr);
        }
        self.audit.record(event);
        Ok(())
    }

    /// Removes console sessions that have ended or expired (their rows serve nothing once over).
    pub async fn sweep_expired(&self) {
        match self.store.purge_web_sessions(self.now()).await {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(target: "rampart::console", removed, "ended console sessions removed"),
            Err(err) => {
                tracing::warn!(target: "rampart::console", error = %err, "cannot remove ended console sessions")
            }
        }
    }

    /// A new random form token for pages shown before sign-in (kept in a cookie of its own).
    pub fn new_form_token() -> Result<String, ServiceError> {
        random_hex(COOKIE_BYTES)
    }
}

fn session_of(record: WebSession) -> ConsoleSession {
    ConsoleSession {
        role: OperatorRole::parse(&record.roles),
        user_id: record.user_id,
        username: record.username,
        csrf_token: record.csrf_token,
        expires_at: record.expires_at,
        id_hash: record.id_hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_held_back_beyond_its_attempts_per_minute() {
        let limiter = SignInLimiter::default();
        let start = Instant::now();
        let ip: IpAddr = [192, 0, 2, 1].into();
        let other: IpAddr = [192, 0, 2, 2].into();
        for _ in 0..3 {
            assert_eq!(limiter.admit(ip, 3, start), Ok(()));
        }
        let wait = limiter.admit(ip, 3, start + Duration::from_secs(20));
        assert_eq!(wait, Err(40));
        assert_eq!(
            limiter.admit(other, 3, start),
            Ok(()),
            "another address is not held back"
        );
        assert_eq!(
            limiter.admit(ip, 3, start + Duration::from_secs(61)),
            Ok(()),
            "a new minute"
        );
        let v6 = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]);
        for last in 1..=3 {
            assert_eq!(limiter.admit(v6(last), 3, start), Ok(()));
        }
        assert!(
            limiter.admit(v6(4), 3, start).is_err(),
            "another address of the same /64 is held back"
        );
        assert_eq!(
            limiter.admit(IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]), 3, start),
            Ok(())
        );
    }
}
