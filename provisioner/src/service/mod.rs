//! The provisioner's operations, independent of HTTP: resolve people through the directory,
//! issue and manage tokens, enrol in bulk, report, manage operators and sealing keys. Every
//! change is recorded in the store with the operator who made it.

mod approvals;
mod audit_view;
mod connectivity;
mod console;
mod enrol;
mod hooks;
mod keys;
mod operators;
mod profile;
mod readiness;
mod registration;

pub mod reports;
mod sessions;
mod tokens;
mod vm_hooks;
mod vms;

use crate::api::{TokenEventInfo, TokenInfo};
use crate::config::{ConsoleConfig, DualControl, ProvisionerSettings};
use rampart_audit::AuditLog;
use rampart_core::audit::{Activity, Actor, AuditEvent, Class, Status, User};
use rampart_core::clock::Clock;
use rampart_core::username::normalize_username;
use rampart_directory::{Directory, DirectoryError, DirectoryUser};
use rampart_store::clock::{ClockCheck, Reading};
use rampart_store::{KeyRing, OperatorRecord, Store, StoreError, TokenEvent, TokenView, UserRecord};
use std::sync::Arc;
use tokio::sync::Semaphore;

pub use audit_view::{AuditMatches, ResourceFlows, flows_by_resource};
pub use connectivity::{GatewayHealth, PolicyView};
pub use console::{ConsoleSession, OpenedSession, SignInRefusal};
pub use enrol::MAX_BATCH;
pub use operators::new_operator;
pub use readiness::readiness_csv;
pub use registration::EnrolmentRefusal;
pub use sessions::{SESSION_PAGE, Standing};
pub use vm_hooks::InterruptedHooks;

/// Why an operation failed. Messages are for operators: they name people and tokens, never
/// seeds or codes.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No or unknown API key.
    #[error("a valid API key is required")]
    Unauthorized,
    /// The key's role does not allow this.
    #[error("the {role} role cannot do this: it needs {needs}")]
    Forbidden {
        /// The operator's role.
        role: String,
        /// The roles that may, in words.
        needs: &'static str,
    },
    /// This operator may not do this whatever their role, e.g. approve their own request.
    #[error("{0}")]
    NotPermitted(String),
    /// The person, token or operator does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// An unlock of a token that is not locked: nothing was changed or recorded (409,
    /// `not_locked`).
    #[error("{0}")]
    NotLocked(String),
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The store, directory or random generator failed; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// Too many requests from one address: retry after this many seconds (429).
    #[error("too many requests from your address: wait {0} seconds and try again")]
    TooMany(u64),
}

impl ServiceError {
    /// Stable machine code for API answers.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden { .. } | Self::NotPermitted(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::NotLocked(_) => "not_locked",
            Self::Invalid(_) => "invalid",
            Self::Unavailable(_) => "unavailable",
            Self::TooMany(_) => "rate_limited",
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound("no such record".into()),
            StoreError::Conflict(msg) => Self::Conflict(msg),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<DirectoryError> for ServiceError {
    fn from(err: DirectoryError) -> Self {
        match err {
            DirectoryError::Unavailable(msg) => Self::Unavailable(format!("directory unavailable: {msg}")),
            other => Self::Invalid(other.to_string()),
        }
    }
}

/// Everything the operations need; cheap to clone.
#[derive(Debug, Clone)]
pub struct Provisioner {
    store: Arc<dyn Store>,
    keys: Arc<KeyRing>,
    directory: Arc<dyn Directory>,
    settings: ProvisionerSettings,
    audit: AuditLog,
    /// Slots for pool hooks (provision, reset, destroy), shared by every request.
    hook_slots: Arc<Semaphore>,
    /// This provisioner's clock against the database's: while it is off, what depends on the
    /// time is refused.
    clock_check: Arc<ClockCheck>,
    /// The one clock this provisioner reads.
    clock: Clock,
    /// Which token resets wait for a second operator's approval.
    dual_control: DualControl,
    /// People whose self-service enrolment is being started here right now (one at a time).
    enrolments_in_flight: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// The web console's sign-in rules and operator groups.
    console: ConsoleConfig,
    /// Console sign-in attempts per address.
    sign_in_limiter: Arc<console::SignInLimiter>,
    /// Self-service enrolment starts per address (the key-less routes).
    enrolment_limiter: Arc<console::SignInLimiter>,
    /// When each signed-in person was last found enabled, with the same role, in the directory.
    console_checks: Arc<std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>>,
}

impl Provisioner {
    /// A provisioner over a store, its key ring and a directory, reading the time from `clock`
    /// (the one clock; `settings.clock_offset_secs` is what a drill's clock is built from, and a
    /// clock that disagrees with it is named in the log).
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<KeyRing>,
        directory: Arc<dyn Directory>,
        settings: ProvisionerSettings,
        clock: Clock,
    ) -> Self {
        if settings.clock_offset_secs != clock.drill_offset_secs() {
            tracing::warn!(
                target: rampart_store::clock::TARGET, setting = settings.clock_offset_secs,
                clock_offset_secs = clock.drill_offset_secs(),
                "settings.clock_offset_secs differs from the clock this provisioner was given; the clock counts"
            );
        }
        Self {
            clock,
            store,
            keys,
            directory,
            audit: AuditLog::disabled(),
            hook_slots: Arc::new(Semaphore::new(vm_hooks::HOOKS_IN_FLIGHT)),
            clock_check: Arc::new(ClockCheck::new(
                settings.max_clock_skew_ms,
                settings.clock_check_secs,
                CLOCK_AFFECTED,
            )),
            dual_control: DualControl::default(),
            enrolments_in_flight: Arc::default(),
            console: ConsoleConfig::default(),
            sign_in_limiter: Arc::default(),
            enrolment_limiter: Arc::default(),
            console_checks: Arc::default(),
            settings,
        }
    }

    /// Records every change in `audit` too.
    #[must_use]
    pub fn with_audit(mut self, audit: AuditLog) -> Self {
        self.audit = audit;
        self
    }

    /// Makes token resets wait for a second operator's approval as `dual_control` says.
    #[must_use]
    pub fn with_dual_control(mut self, dual_control: DualControl) -> Self {
        self.dual_control = dual_control;
        self
    }

    /// Serves the console as `console` says (sign-in rules, operator groups).
    #[must_use]
    pub fn with_console(mut self, console: ConsoleConfig) -> Self {
        self.console = console;
        self
    }

    /// The dual-control rule in force.
    pub fn dual_control(&self) -> DualControl {
        self.dual_control
    }

    /// The audit trail.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The settings in force.
    pub fn settings(&self) -> &ProvisionerSettings {
        &self.settings
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Unix seconds now on this provisioner's clock (the one it was given: the system clock,
    /// shifted in drills, or a test's).
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Unix milliseconds now on this provisioner's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// This provisioner's clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The clock check: the latest comparison with the database's clock.
    pub fn clock_check(&self) -> &ClockCheck {
        &self.clock_check
    }

    /// Compares this provisioner's clock with the database's once, keeps the reading and logs
    /// a change (`rampart::clock`); `None` when the database could not be asked.
    pub async fn check_clock(&self) -> Option<Reading> {
        self.clock_check.check(|| self.now_ms(), self.store.as_ref()).await
    }

    /// Refuses to `what` (an operation whose result depends on the time, e.g. "issue a token")
    /// while the latest check found this provisioner's clock off from the database's. An unknown
    /// clock (no reading yet) holds nothing back.
    fn require_clock(&self, what: &str) -> Result<(), ServiceError> {
        match self.clock_check.off() {
            None => Ok(()),
            Some(reading) => Err(ServiceError::Unavailable(format!(
                "cannot {what} while the provisioner's clock is off from the database's by {:+} ms (bound ±{} ms): \
                 the result depends on the time. Fix the time synchronisation (NTP, chrony) of the provisioner's \
                 host; this works again within {} s of the clocks agreeing",
                reading.offset_ms,
                self.clock_check.bound_ms(),
                self.settings.clock_check_secs
            ))),
        }
    }

    /// The operator holding `api_key`, if the key is known and not revoked.
    pub async fn authenticate(&self, api_key: &str) -> Result<OperatorRecord, ServiceError> {
        let found = self.store.operator_by_key_hash(&crate::auth::key_hash(api_key)).await?;
        found
            .filter(|op| op.revoked_at.is_none())
            .ok_or(ServiceError::Unauthorized)
    }

    /// Looks `typed` up in the directory.
    async fn directory_person(&self, typed: &str) -> Result<DirectoryUser, ServiceError> {
        let username = normalize(typed)?;
        self.directory
            .lookup(&username)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no enabled person named {username:?} in the directory")))
    }

    /// The store's record for a person the provisioner has seen before.
    async fn known_person(&self, typed: &str) -> Result<UserRecord, ServiceError> {
        let username = normalize(typed)?;
        match self.store.user_by_username(&username).await? {
            Some(user) => Ok(user),
            None => Err(ServiceError::NotFound(format!(
                "{username:?} has never been issued a token"
            ))),
        }
    }

    /// The record to write for a directory person, keeping what the store already knows
    /// (local password hash, creation time).
    async fn user_record(&self, person: &DirectoryUser, now: i64) -> Result<UserRecord, ServiceError> {
        let existing = self.store.user_by_id(&person.stable_id).await?;
        Ok(UserRecord {
            id: person.stable_id.clone(),
            username: person.username.clone(),
            display_name: person.display_name.clone(),
            password_hash: existing.as_ref().and_then(|u| u.password_hash.clone()),
            enabled: true,
            groups: person.groups.clone(),
            created_at: existing.map_or(now, |u| u.created_at),
        })
    }

    fn token_info(&self, view: &TokenView) -> TokenInfo {
        token_info(view, self.settings.max_token_failures)
    }

    async fn history(&self, user: &UserRecord, limit: u32) -> Result<Vec<TokenEventInfo>, ServiceError> {
        let events = self.store.token_events(Some(&user.id), limit).await?;
        Ok(events.into_iter().map(|e| event_info(e, &user.username)).collect())
    }
}

/// Records an Account Change: `actor` did `action` to `username`'s token.
pub(crate) fn token_change(
    audit: &AuditLog,
    actor: &str,
    activity: Activity,
    action: &str,
    user: (&str, &str),
    token_id: Option<&str>,
    detail: &str,
) {
    let (username, user_id) = user;
    let mut event = AuditEvent::new(
        Class::AccountChange,
        activity,
        audit.now_ms(),
        Status::Success,
        &format!("token {action}"),
    )
    .actor(Actor::operator(actor))
    .user(User::with_uid(username, user_id))
    .resource("token", token_id, Some(action));
    if !detail.is_empty() {
        event = event.detail(detail);
    }
    audit.record(event);
}

fn normalize(typed: &str) -> Result<String, ServiceError> {
    normalize_username(typed).map_err(|e| ServiceError::Invalid(format!("username: {e}")))
}

/// Operator view of a token.
pub(crate) fn token_info(view: &TokenView, max_failures: u32) -> TokenInfo {
    let token = &view.token;
    TokenInfo {
        token_id: token.id.clone(),
        username: view.username.clone(),
        display_name: view.display_name.clone(),
        groups: view.groups.clone(),
        state: token.state.as_str().into(),
        locked: token.state.is_live() && token.failures >= max_failures,
        failures: token.failures,
        issued_at: token.created_at,
        issued_by: view.issued_by.clone(),
        activated_at: token.activated_at,
        last_used_at: token.last_used_at,
        delivered: view.delivered_at.is_some(),
    }
}

fn event_info(event: TokenEvent, username: &str) -> TokenEventInfo {
    TokenEventInfo {
        at: event.at,
        actor: event.actor,
        action: event.action,
        username: username.to_owned(),
        token_id: event.token_id,
        detail: event.detail,
    }
}

/// What the provisioner refuses while its clock is off, for the clock check's log.
const CLOCK_AFFECTED: &str = "token issue, enrolment, resync and temporary codes";

/// `n` random bytes as lowercase hex.
pub(crate) fn random_hex(n: usize) -> Result<String, ServiceError> {
    let mut buf = vec![0u8; n];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)
        .map_err(|_| ServiceError::Unavailable("the system random generator failed".into()))?;
    Ok(hex::encode(buf))
}
