//! The running gateway as the admin listener sees it: sessions, kills, policy explanations and
//! reloads, readiness and metrics, with operators checked against the shared store.

use crate::admin::{AdminBackend, AdminError};
use crate::state::{EndReason, Shared};
use rampart_api::gateway::{Check, GatewayView, KillResult, PolicyStatus, Readiness, SessionView};
use rampart_core::policy::{Explanation, Identity};
use rampart_core::username::normalize_username;
use rampart_directory::DirectoryError;
use rampart_store::{EndedBy, OperatorRecord};
use std::sync::Arc;

/// A name the readiness check looks up: it exists nowhere, so the directory answers "no such
/// person" quickly when it is healthy.
const READINESS_PROBE_USER: &str = "rampart-readiness-probe";
/// Longest a readiness check may take before it counts as failed.
const READINESS_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// Most sessions one listing returns (a few thousand employees fit many times over).
const MAX_LISTED_SESSIONS: u32 = 20_000;

/// [`AdminBackend`] over the gateway's shared state.
#[derive(Debug)]
pub(crate) struct GatewayAdmin {
    shared: Arc<Shared>,
}

impl GatewayAdmin {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

fn unavailable(e: impl std::fmt::Display) -> AdminError {
    AdminError::Unavailable(e.to_string())
}

fn username(typed: &str) -> Result<String, AdminError> {
    normalize_username(typed).map_err(|e| AdminError::Invalid(format!("username {typed:?}: {e}")))
}

#[async_trait::async_trait]
impl AdminBackend for GatewayAdmin {
    async fn operator(&self, api_key: &str) -> Result<Option<OperatorRecord>, AdminError> {
        let hash = rampart_store::access::key_hash(api_key);
        let found = self
            .shared
            .store
            .operator_by_key_hash(&hash)
            .await
            .map_err(unavailable)?;
        Ok(found.filter(|o| o.revoked_at.is_none()))
    }

    async fn sessions(&self, user: Option<&str>) -> Result<Vec<SessionView>, AdminError> {
        let user = user.map(username).transpose()?;
        let now = self.shared.clock.now();
        let stored = self
            .shared
            .store
            .live_sessions(now, MAX_LISTED_SESSIONS)
            .await
            .map_err(unavailable)?;
        let mut views: Vec<SessionView> = stored
            .into_iter()
            .filter(|s| user.as_deref().is_none_or(|u| s.username == u))
            .map(|record| match self.shared.registry.get(&record.id) {
                Some(live) => SessionView {
                    gateway: Some(self.shared.node.id.clone()),
                    ..live.view()
                },
                None => SessionView {
                    gateway: record.gateway_id,
                    id: record.id,
                    user: record.username,
                    user_id: record.user_id,
                    groups: record.groups,
                    source: record.source,
                    since: record.created_at,
                    expires_at: record.expires_at,
                    last_activity: record.last_seen_at.unwrap_or(record.created_at),
                    connections: 0,
                    active_flows: 0,
                    resources_used: Vec::new(),
                    bytes_to_targets: 0,
                    bytes_from_targets: 0,
                },
            })
            .collect();
        views.sort_by(|a, b| (a.since, &a.id).cmp(&(b.since, &b.id)));
        Ok(views)
    }

    async fn gateways(&self) -> Result<Vec<GatewayView>, AdminError> {
        let now = self.shared.clock.now();
        let silent_after = i64::try_from(crate::node::HEARTBEAT.as_secs() * 3).unwrap_or(i64::MAX);
        let nodes = self.shared.store.gateway_nodes().await.map_err(unavailable)?;
        Ok(nodes
            .into_iter()
            .map(|node| GatewayView {
                state: if node.stopped_at.is_some() {
                    "stopped"
                } else if now.saturating_sub(node.last_seen_at) > silent_after {
                    "silent"
                } else {
                    "up"
                }
                .to_owned(),
                id: node.id,
                address: node.address,
                admin_url: node.admin_url,
                version: node.version,
                started_at: node.started_at,
                last_seen_at: node.last_seen_at,
                sessions: node.sessions,
                flows: node.flows,
            })
            .collect())
    }

    async fn kill_session(&self, id: &str, actor: &str) -> Result<KillResult, AdminError> {
        let now = self.shared.clock.now();
        let live_here = self.shared.registry.get(id).filter(|s| !s.is_ended());
        let user = match &live_here {
            Some(session) => session.username.clone(),
            None => {
                // Not attached here: it may be live between connections or on another gateway.
                let stored = self
                    .shared
                    .store
                    .live_sessions(now, MAX_LISTED_SESSIONS)
                    .await
                    .map_err(unavailable)?;
                match stored.into_iter().find(|s| s.id == id) {
                    Some(record) => record.username,
                    None => return Err(AdminError::NotFound(format!("no live session {id}"))),
                }
            }
        };
        tracing::info!(target: "rampart::admin", actor, session = %id, user = %user, "session killed by an operator");
        let ended_by = EndedBy::Operator(actor.to_owned());
        self.shared
            .end_session_by(id, EndReason::AdminKill.as_str(), &ended_by)
            .await;
        Ok(KillResult {
            ended: vec![id.to_owned()],
        })
    }

    async fn kill_user(&self, typed: &str, actor: &str) -> Result<KillResult, AdminError> {
        let name = username(typed)?;
        // Sessions live in the store under the person's stable id; find it from sessions here
        // or from the directory, so sessions on other gateways end too.
        let local: Vec<_> = self
            .shared
            .registry
            .all()
            .into_iter()
            .filter(|s| s.username == name)
            .collect();
        let user_id = match local.first() {
            Some(s) => s.user_id.clone(),
            None => match self.shared.directory.lookup(&name).await {
                Ok(Some(person)) => person.stable_id,
                Ok(None) => return Err(AdminError::NotFound(format!("no person named {name} in the directory"))),
                Err(e) => return Err(unavailable(e)),
            },
        };
        let now = self.shared.clock.now();
        let ended_by = EndedBy::Operator(actor.to_owned());
        let ended = self
            .shared
            .store
            .end_user_sessions_by(&user_id, EndReason::AdminKill.as_str(), Some(&ended_by), now)
            .await
            .map_err(unavailable)?;
        for session in local {
            self.shared
                .end_here_by(&session, EndReason::AdminKill.as_str(), &ended_by);
        }
        tracing::info!(target: "rampart::admin", actor, user = %name, sessions = ended.len(), "all sessions of a person killed by an operator");
        Ok(KillResult { ended })
    }

    async fn explain(&self, typed: &str, resource: &str, at: Option<i64>) -> Result<Explanation, AdminError> {
        let name = username(typed)?;
        let person = match self.shared.directory.lookup(&name).await {
            Ok(Some(person)) => person,
            Ok(None) => {
                return Err(AdminError::NotFound(format!(
                    "no enabled person named {name} in the directory: they cannot log in at all"
                )));
            }
            Err(DirectoryError::Unavailable(e)) => return Err(unavailable(e)),
            Err(e) => return Err(unavailable(e)),
        };
        let identity = Identity {
            username: person.username,
            groups: person.groups,
        };
        let now = at.unwrap_or_else(|| self.shared.clock.now());
        Ok(self.shared.policy().explain(&identity, resource, now, None))
    }

    fn policy_status(&self) -> PolicyStatus {
        self.shared.policy.status()
    }

    async fn reload_policy(&self) -> Result<PolicyStatus, AdminError> {
        let shared = &self.shared;
        match shared.policy.reload(true, shared.clock.now(), &shared.metrics).await {
            Ok(changed) => Ok(PolicyStatus {
                reloaded: Some(changed),
                ..shared.policy.status()
            }),
            Err(problems) => Err(AdminError::Invalid(problems.join("; "))),
        }
    }

    async fn readiness(&self) -> Readiness {
        let bound = READINESS_CHECK_TIMEOUT;
        let no_answer = || format!("no answer within {} s", bound.as_secs());
        let (store, directory) = tokio::join!(
            tokio::time::timeout(bound, self.shared.store.ping()),
            tokio::time::timeout(bound, self.shared.directory.lookup(READINESS_PROBE_USER)),
        );
        let store = match store {
            Ok(Ok(())) => check("store", true, "answers"),
            Ok(Err(e)) => check("store", false, &e.to_string()),
            Err(_) => check("store", false, &no_answer()),
        };
        let directory = match directory {
            Ok(Ok(_)) => check("directory", true, "answers"),
            Ok(Err(e)) => check("directory", false, &e.to_string()),
            Err(_) => check("directory", false, &no_answer()),
        };
        let status = self.shared.policy.status();
        let policy = check(
            "policy",
            true,
            &format!("{} resources, {} rules", status.resources, status.rules),
        );
        // Fails while logins are refused for a clock that is off from the database's.
        let (clock_ok, clock_detail) = self.shared.clock_check.readiness();
        let clock = check("clock", clock_ok, &clock_detail);
        let checks = vec![store, directory, policy, clock];
        Readiness {
            ready: checks.iter().all(|c| c.ok),
            checks,
        }
    }

    fn metrics(&self) -> String {
        let shared = &self.shared;
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        shared.metrics.logins_queued().set(gauge(shared.admission.queued()));
        shared
            .metrics
            .logins_in_progress()
            .set(gauge(shared.admission.in_progress()));
        shared.metrics.sessions_active().set(gauge(shared.registry.len()));
        shared.metrics.encode()
    }
}

fn check(name: &str, ok: bool, detail: &str) -> Check {
    Check {
        name: name.to_owned(),
        ok,
        detail: Some(detail.to_owned()),
    }
}
