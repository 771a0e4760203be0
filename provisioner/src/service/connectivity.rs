//! "Why can't they connect": what the gateways' policy file says about each resource that
//! names a person, at this moment, and the gateways sharing the store as they last reported.

use super::{Provisioner, ServiceError};
use rampart_core::policy::{Explanation, Identity, Policy};
use rampart_store::GatewayNode;

/// A gateway heartbeats every 5 s; one silent for three of them is taken as not serving.
const SILENT_AFTER_SECS: i64 = 15;

/// What the policy says about a person's resources.
#[derive(Debug, Clone)]
pub enum PolicyView {
    /// `[console] policy_file` is not set: the console cannot say.
    NotConfigured,
    /// The file could not be read or is not a valid policy (the gateways keep the last good
    /// one): why.
    Unreadable(String),
    /// One explanation per resource some rule names the person for (none: no resource).
    Explained(Vec<Explanation>),
}

/// How a gateway last reported itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayHealth {
    /// It heartbeats.
    Serving,
    /// It has not reported for this many seconds (stopped without a word, or cut off).
    Silent(i64),
    /// It stopped cleanly.
    Stopped,
}

impl GatewayHealth {
    /// In words, for the desk.
    pub fn describe(self) -> String {
        match self {
            Self::Serving => "serving".into(),
            Self::Silent(secs) => format!("silent for {secs} s: not serving, or cut off from the store"),
            Self::Stopped => "stopped".into(),
        }
    }
}

impl Provisioner {
    /// Explains, rule by rule, whether the person with `groups` may open each resource that
    /// names them, now.
    pub async fn explain_access(&self, username: &str, groups: &[String]) -> PolicyView {
        let Some(path) = self.console.policy_file.clone() else {
            return PolicyView::NotConfigured;
        };
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(text) => text,
            Err(e) => return PolicyView::Unreadable(format!("cannot read {}: {e}", path.display())),
        };
        let policy = match Policy::parse(&text) {
            Ok(policy) => policy,
            Err(problems) => {
                return PolicyView::Unreadable(format!("{} is not a valid policy: {problems}", path.display()));
            }
        };
        let who = Identity {
            username: username.to_owned(),
            groups: groups.to_vec(),
        };
        let now = self.now();
        PolicyView::Explained(
            policy
                .visible_to(&who)
                .iter()
                .map(|resource| policy.explain(&who, &resource.name, now, None))
                .collect(),
        )
    }

    /// Every gateway that shares the store, with how it last reported.
    pub async fn gateways(&self) -> Result<Vec<(GatewayNode, GatewayHealth)>, ServiceError> {
        let now = self.now();
        Ok(self
            .store
            .gateway_nodes()
            .await?
            .into_iter()
            .map(|node| {
                let health = match node.stopped_at {
                    Some(_) => GatewayHealth::Stopped,
                    None if now - node.last_seen_at > SILENT_AFTER_SECS => {
                        GatewayHealth::Silent(now - node.last_seen_at)
                    }
                    None => GatewayHealth::Serving,
                };
                (node, health)
            })
            .collect())
    }
}
