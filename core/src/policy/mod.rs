//! Access policy: named resources, rules saying who may open them and when, and the pure
//! decision function.
//!
//! Default deny: a person may open a resource only if a rule covering it names them or one of
//! their groups, the time is inside one of the rule's windows (if it has any), and their session
//! is not older than the rule allows (if it sets a limit). Decisions depend only on (identity,
//! resource name, policy, the times passed in), so they are tested with tables and a fixed clock.
//!
//! The file format, its validation and the window syntax are described in [`Policy::parse`].

mod explain;
mod file;
mod rule;
mod target;
#[cfg(test)]
mod tests;
mod window;

pub use explain::{Explanation, RuleCheck};
pub use file::{PolicyErrors, PolicyProblem};
pub use target::Target;

use crate::protocol::ResourceInfo;
use rule::{Check, Rule};
use std::collections::BTreeMap;

/// Largest policy file accepted, in bytes.
pub const MAX_POLICY_LEN: usize = 1024 * 1024;

/// A validated policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    resources: BTreeMap<String, Resource>,
    /// Implicit `<resource>.allow` rules first, then `[[rule]]` tables, in file order.
    rules: Vec<Rule>,
}

/// One resource the gateway can connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Unique name clients use.
    pub name: String,
    /// Where the gateway connects.
    pub target: Target,
    /// What it is, in words.
    pub description: String,
    /// Normalised usernames allowed at any time (the implicit rule `<name>.allow`).
    pub allow_users: Vec<String>,
    /// Directory groups allowed at any time (compared case-insensitively).
    pub allow_groups: Vec<String>,
}

/// Who is asking: the session's normalised username and directory groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Normalised username.
    pub username: String,
    /// Directory group names.
    pub groups: Vec<String>,
}

/// When a decision is made: now and when the session began (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessTime {
    /// The moment of the decision, unix seconds.
    pub now: i64,
    /// When the session began (the login), unix seconds.
    pub session_started: i64,
}

/// The outcome of a policy decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Connect to this target.
    Allow {
        /// Where to connect.
        target: Target,
        /// Name of the rule that allowed it, for the log.
        rule: String,
    },
    /// Refuse.
    Deny {
        /// Why.
        reason: DenyReason,
        /// The first rule covering the resource that names the person, if any.
        rule: Option<String>,
    },
}

/// Why access was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// No resource has that name.
    UnknownResource,
    /// The resource exists; no rule covering it names the user or any of their groups.
    NotAllowed,
    /// The first rule naming the person has time windows, and now is outside all of them.
    OutsideHours,
    /// The first rule naming the person limits the session's age, and the session is older.
    SessionTooOld,
}

impl DenyReason {
    /// Stable snake_case name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownResource => "unknown_resource",
            Self::NotAllowed => "not_allowed",
            Self::OutsideHours => "outside_hours",
            Self::SessionTooOld => "session_too_old",
        }
    }
}

/// What the rules covering a resource concluded, shared by [`Policy::decide`] and
/// [`Policy::explain`] so the two cannot disagree.
enum Verdict<'c, 'r> {
    /// This check allows.
    Allow(&'c Check<'r>),
    /// Nothing allows; the first check that names the person, if any, says why.
    Deny(Option<&'c Check<'r>>),
}

fn verdict<'c, 'r>(checks: &'c [Check<'r>]) -> Verdict<'c, 'r> {
    match checks.iter().find(|c| c.allows()) {
        Some(check) => Verdict::Allow(check),
        None => Verdict::Deny(checks.iter().find(|c| c.naming.is_some())),
    }
}

impl Policy {
    /// Builds a policy from resources already validated by the caller (e.g. `rampart dev`).
    /// Each resource's `allow_users`/`allow_groups` become its rule `<name>.allow`.
    pub fn from_resources(resources: impl IntoIterator<Item = Resource>) -> Self {
        let resources: BTreeMap<_, _> = resources.into_iter().map(|r| (r.name.clone(), r)).collect();
        let rules = resources.values().filter_map(Rule::implicit).collect();
        Self { resources, rules }
    }

    /// Decides whether `who` may open `resource` at `at`.
    pub fn decide(&self, who: &Identity, resource: &str, at: AccessTime) -> Decision {
        let Some(found) = self.resources.get(resource) else {
            return Decision::Deny {
                reason: DenyReason::UnknownResource,
                rule: None,
            };
        };
        let checks = self.checks(who, resource, at.now, Some(at.session_started));
        match verdict(&checks) {
            Verdict::Allow(check) => Decision::Allow {
                target: found.target.clone(),
                rule: check.rule.name.clone(),
            },
            Verdict::Deny(first) => Decision::Deny {
                reason: first.map_or(DenyReason::NotAllowed, Check::deny_reason),
                rule: first.map(|c| c.rule.name.clone()),
            },
        }
    }

    /// The resources some rule names `who` for, regardless of time windows and session age,
    /// each with the hours those rules allow (none when one of them allows any time).
    pub fn visible_to(&self, who: &Identity) -> Vec<ResourceInfo> {
        self.resources
            .values()
            .filter_map(|r| {
                let naming: Vec<&Rule> = self
                    .rules_for(&r.name)
                    .filter(|rule| rule.naming(who).is_some())
                    .collect();
                if naming.is_empty() {
                    return None;
                }
                // One rule allowing any time makes the resource open at any time.
                let mut hours: Option<Vec<String>> = Some(Vec::new());
                for rule in &naming {
                    match (&rule.schedule, hours.as_mut()) {
                        (Some(s), Some(list)) => {
                            let text = format!("{} ({})", s.windows_text(), s.zone_name);
                            if !list.contains(&text) {
                                list.push(text);
                            }
                        }
                        _ => hours = None,
                    }
                }
                Some(ResourceInfo {
                    name: r.name.clone(),
                    description: r.description.clone(),
                    target: Some(r.target.to_string()),
                    hours: hours.map(|list| list.join("; ")),
                })
            })
            .collect()
    }

    /// All resources, by name.
    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.resources.values()
    }

    /// The resource with this name.
    pub fn resource(&self, name: &str) -> Option<&Resource> {
        self.resources.get(name)
    }

    /// How many rules there are, counting each resource's implicit `<name>.allow` rule.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The rules covering `resource`, in evaluation order.
    fn rules_for<'p, 'r>(&'p self, resource: &'r str) -> impl Iterator<Item = &'p Rule> + use<'p, 'r> {
        self.rules.iter().filter(move |rule| rule.covers(resource))
    }

    /// Every rule covering `resource`, checked against `who` at `now`.
    fn checks(&self, who: &Identity, resource: &str, now: i64, session_started: Option<i64>) -> Vec<Check<'_>> {
        self.rules_for(resource)
            .map(|rule| rule.check(who, now, session_started))
            .collect()
    }
}
