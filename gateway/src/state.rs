//! The state every connection shares (store, keys, directory, policy, live sessions, login
//! admission, metrics, flow log, audit trail and clock), and ending a session: in the store, so
//! other gateways and resumes see it, and here, with the record of who ended it — the operator of
//! a kill, the rule of an automatic end, the person of a logout.

use crate::admission::Admission;
use crate::backoff::LoginBackoff;
use crate::config::GatewaySettings;
use crate::flowlog::FlowLog;
use crate::metrics::Metrics;
use crate::registry::{LiveSession, Registry, SessionInfo};
use crate::reload::PolicyHolder;
use rampart_audit::AuditLog;
use rampart_core::audit::{Activity, Actor, AuditEvent, Class, Status, User};
use rampart_core::clock::Clock;
use rampart_core::policy::{Identity, Policy};
use rampart_core::protocol::SessionGrant;
use rampart_core::secret::Sensitive;
use rampart_directory::Directory;
use rampart_store::clock::ClockCheck;
use rampart_store::{EndedBy, KeyRing, Store};
use std::net::SocketAddr;
use std::sync::Arc;

/// State shared by every connection.
#[derive(Debug)]
pub(crate) struct Shared {
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyRing>,
    pub directory: Arc<dyn Directory>,
    pub flows: FlowLog,
    pub audit: AuditLog,
    pub settings: GatewaySettings,
    pub clock: Clock,
    pub clock_check: ClockCheck,
    pub policy: PolicyHolder,
    pub registry: Registry,
    pub admission: Admission,
    pub metrics: Metrics,
    pub login_backoff: LoginBackoff,
    pub node: Node,
}

/// This gateway's identity in the store.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// `HOST:PORT`.
    pub id: String,
    /// The QUIC listen address.
    pub address: String,
}

impl Node {
    /// The identity of a gateway listening on `listen` on this host.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            id: format!("{}:{}", host_name(), listen.port()),
            address: listen.to_string(),
        }
    }
}

/// This host's name, for the gateway's id.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "gateway".to_owned())
}

impl Shared {
    /// The policy in force now.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.policy()
    }

    /// Ends a session in the store (so other gateways and resumes see it) and here, by the
    /// rule `reason` names (or, for a logout, by the person).
    pub async fn end_session(&self, id: &str, reason: EndReason) {
        let username = self.registry.get(id).map(|s| s.username.clone()).unwrap_or_default();
        self.end_session_by(id, reason.as_str(), &reason.ender(&username)).await;
    }

    /// Ends a session on this gateway only (another node recorded its end): its connections
    /// close and its flows are reset. The ender is the rule `reason` names, or the person for a
    /// logout.
    pub fn end_here(&self, session: &LiveSession, reason: &str) {
        let ender = EndReason::ender_of(reason, &session.username);
        self.end_here_by(session, reason, &ender);
    }

    /// Ends a session in the store with who ended it (so other gateways and resumes see both)
    /// and here.
    pub async fn end_session_by(&self, id: &str, reason: &str, ended_by: &EndedBy) {
        if let Err(e) = self
            .store
            .end_session_by(id, reason, Some(ended_by), self.clock.now())
            .await
        {
            tracing::error!(target: "rampart::gateway", session = %id, reason, error = %e, "cannot record the end of a session");
        }
        if let Some(session) = self.registry.get(id) {
            self.end_here_by(&session, reason, ended_by);
        }
    }

    /// Ends a session on this gateway: its connections close and its flows are reset. The
    /// first end writes the session-end record (`Logoff`, `status_detail` the reason, `actor`
    /// the ender) and the log line.
    pub fn end_here_by(&self, session: &LiveSession, reason: &str, ended_by: &EndedBy) {
        if session.end(reason) {
            tracing::info!(
                target: "rampart::auth", user = %session.username, session = %session.id, reason,
                ended_by = %ended_by, "session ended"
            );
            self.metrics.session_ended(reason);
            self.audit.record(
                AuditEvent::new(
                    Class::Authentication,
                    Activity::LOGOFF,
                    self.clock.now_ms(),
                    Status::Success,
                    "session ended",
                )
                .detail(reason)
                .user(User::with_uid(&session.username, &session.user_id))
                .actor(actor_of(ended_by, session))
                .session(&session.id),
            );
        }
    }

    /// The grant for a logged-in or resumed session: the resources the person may use now.
    pub fn grant(&self, session: &SessionInfo, ticket: Option<String>) -> SessionGrant {
        let identity = Identity {
            username: session.username.clone(),
            groups: session.groups.clone(),
        };
        SessionGrant {
            session_id: session.id.clone(),
            ticket: ticket.map(Sensitive::new),
            user: session.username.clone(),
            expires_at: session.expires_at,
            resources: self.policy().visible_to(&identity),
        }
    }
}

/// Why this gateway ends a session. On records, logs, metrics and the close reason the client
/// reads, each is its label (`logout`, `idle`, …); an end another node recorded arrives as its
/// label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndReason {
    /// The person logged out.
    Logout,
    /// Unused for longer than the idle timeout.
    Idle,
    /// Past its lifetime.
    Expired,
    /// The directory no longer has the person enabled.
    AccountDisabled,
    /// The person's groups changed so that the session's access is no longer theirs.
    GroupsChanged,
    /// A replaced ticket came back: a copy of the session is in use.
    TicketReused,
    /// A newer login took the person over `max_sessions_per_user`.
    SessionLimit,
    /// The login's audit record could not be written.
    AuditUnavailable,
    /// An operator ended it through the admin API.
    AdminKill,
}

impl EndReason {
    /// The label on records, logs, metrics and the client's close reason.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::Idle => "idle",
            Self::Expired => "expired",
            Self::AccountDisabled => "account_disabled",
            Self::GroupsChanged => "groups_changed",
            Self::TicketReused => "ticket_reused",
            Self::SessionLimit => "session_limit",
            Self::AuditUnavailable => "audit_unavailable",
            Self::AdminKill => "admin_kill",
        }
    }

    /// Who ends a session for this reason when no operator gave it: the person for a logout,
    /// else the rule the reason names.
    pub(crate) fn ender(self, username: &str) -> EndedBy {
        Self::ender_of(self.as_str(), username)
    }

    /// The same, for a reason recorded by another node (`ended_elsewhere`, `revoked`, …).
    pub(crate) fn ender_of(reason: &str, username: &str) -> EndedBy {
        if reason == Self::Logout.as_str() {
            EndedBy::Person(username.to_owned())
        } else {
            EndedBy::Rule(reason.to_owned())
        }
    }
}

/// The audit record's `actor` for an ender: the operator by name (type `Operator`), a rule as
/// `rule NAME` (type `System`), the person as themselves.
fn actor_of(ended_by: &EndedBy, session: &LiveSession) -> Actor {
    match ended_by {
        EndedBy::Operator(name) => Actor::operator(name),
        EndedBy::Rule(_) => Actor::system(&ended_by.to_string()),
        EndedBy::Person(_) => Actor {
            user: User::with_uid(&session.username, &session.user_id),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logout_is_ended_by_the_person_and_every_other_reason_by_its_rule() {
        assert_eq!(EndReason::Logout.ender("alice"), EndedBy::Person("alice".into()));
        assert_eq!(EndReason::Idle.ender("alice"), EndedBy::Rule("idle".into()));
        assert_eq!(
            EndReason::TicketReused.ender("alice"),
            EndedBy::Rule("ticket_reused".into())
        );
        assert_eq!(
            EndReason::ender_of("ended_elsewhere", "alice"),
            EndedBy::Rule("ended_elsewhere".into())
        );
        assert_eq!(EndReason::ender_of("logout", "bob"), EndedBy::Person("bob".into()));
    }
}
