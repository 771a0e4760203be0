//! The provisioner's operations, independent of HTTP: resolve people through the directory,
//! issue and manage tokens, enrol in bulk, report, manage operators and sealing keys. Every
//! change is recorded in the store with the operator who made it.

mod enrol;
mod hooks;
mod keys;
mod operators;

pub mod reports;
mod tokens;
mod vm_hooks;
mod vms;

use crate::api::{TokenEventInfo, TokenInfo};
use crate::config::ProvisionerSettings;
use rampart_audit::AuditLog;
use rampart_core::audit::{Activity, Actor, AuditEvent, Class, Status, User};
use rampart_core::username::normalize_username;
use rampart_directory::{Directory, DirectoryError, DirectoryUser};
use rampart_store::{KeyRing, OperatorRecord, Store, StoreError, TokenEvent, TokenView, UserRecord};
use std::sync::Arc;
use tokio::sync::Semaphore;

pub use enrol::MAX_BATCH;
pub use operators::new_operator;
pub use vm_hooks::InterruptedHooks;

/// Why an operation failed. Messages are for operators: they name people and tokens, never
/// seeds or codes.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No or unknown API key.
    #[error("a valid API key is required")]
    Unauthorized,
    /// The key's role does not allow this.
    #[error("the {role} role cannot do this")]
    Forbidden {
        /// The operator's role.
        role: String,
    },
    /// The person, token or operator does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The store, directory or random generator failed; retry later.
    #[error("{0}")]
    Unavailable(String),
}

impl ServiceError {
    /// Stable machine code for API answers.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden { .. } => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Invalid(_) => "invalid",
            Self::Unavailable(_) => "unavailable",
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
}

impl Provisioner {
    /// A provisioner over a store, its key ring and a directory.
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<KeyRing>,
        directory: Arc<dyn Directory>,
        settings: ProvisionerSettings,
    ) -> Self {
        Self {
            store,
            keys,
            directory,
            settings,
            audit: AuditLog::disabled(),
            hook_slots: Arc::new(Semaphore::new(vm_hooks::HOOKS_IN_FLIGHT)),
        }
    }

    /// Records every change in `audit` too.
    #[must_use]
    pub fn with_audit(mut self, audit: AuditLog) -> Self {
        self.audit = audit;
        self
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
        rampart_audit::writer::now_ms(),
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

/// Unix seconds now.
pub fn unix_now() -> i64 {
    now()
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `n` random bytes as lowercase hex.
pub(crate) fn random_hex(n: usize) -> Result<String, ServiceError> {
    let mut buf = vec![0u8; n];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)
        .map_err(|_| ServiceError::Unavailable("the system random generator failed".into()))?;
    Ok(hex::encode(buf))
}
