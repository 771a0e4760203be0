//! The gateway's admin listener: a separate HTTPS address for the service desk, the security
//! team and monitoring. Operator API keys (the provisioner's) authenticate every route except
//! `/healthz` and `/readyz`.

pub mod api;
mod readiness;
mod routes;
mod server;
#[cfg(test)]
mod tests;

pub use readiness::ReadyzLimits;
pub use server::AdminServer;

use api::{GatewayView, KillResult, PolicyStatus, Readiness, SessionView};
use rampart_core::policy::Explanation;
use rampart_store::OperatorRecord;

/// Why an admin operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// No such session or person (404).
    #[error("{0}")]
    NotFound(String),
    /// The request or the file it names is invalid (400 / 422).
    #[error("{0}")]
    Invalid(String),
    /// A service the gateway needs (store, directory) is down (503).
    #[error("{0}")]
    Unavailable(String),
}

/// What the admin listener asks of the running gateway.
#[async_trait::async_trait]
pub trait AdminBackend: Send + Sync + std::fmt::Debug + 'static {
    /// The operator holding `api_key`, if the key is known and not withdrawn.
    async fn operator(&self, api_key: &str) -> Result<Option<OperatorRecord>, AdminError>;
    /// Live sessions (on every gateway sharing the store; those attached here with their
    /// connections, flows and bytes), oldest first; only `user`'s when given.
    async fn sessions(&self, user: Option<&str>) -> Result<Vec<SessionView>, AdminError>;
    /// Every gateway sharing the store, as each last reported itself.
    async fn gateways(&self) -> Result<Vec<GatewayView>, AdminError>;
    /// Ends one live session everywhere and closes its connections and flows here.
    async fn kill_session(&self, id: &str, actor: &str) -> Result<KillResult, AdminError>;
    /// Ends every live session of `username` everywhere.
    async fn kill_user(&self, username: &str, actor: &str) -> Result<KillResult, AdminError>;
    /// Why `username` may or may not open `resource` at `at` (default now), with the person's
    /// groups as the directory gives them now.
    async fn explain(&self, username: &str, resource: &str, at: Option<i64>) -> Result<Explanation, AdminError>;
    /// The policy in force.
    fn policy_status(&self) -> PolicyStatus;
    /// Re-reads the policy file now; its problems when it is invalid (the old policy stays).
    async fn reload_policy(&self) -> Result<PolicyStatus, AdminError>;
    /// Store, directory, policy and clock checks, each bounded in time. The listener runs them
    /// at most once per [`ReadyzLimits::ttl`].
    async fn readiness(&self) -> Readiness;
    /// Prometheus text exposition of the gateway's metrics.
    fn metrics(&self) -> String;
}
