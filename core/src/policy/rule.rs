//! Rules: who they name, which resources they cover, and checking one rule at one moment.

use super::window::Schedule;
use super::{DenyReason, Identity, Resource};
use jiff::SignedDuration;
use std::fmt;

/// One validated rule: an implicit `<resource>.allow` or a `[[rule]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rule {
    pub(super) name: String,
    /// Names of the resources covered.
    pub(super) resources: Vec<String>,
    /// Normalised usernames.
    pub(super) users: Vec<String>,
    /// Group names, trimmed; compared case-insensitively.
    pub(super) groups: Vec<String>,
    /// `None`: any time.
    pub(super) schedule: Option<Schedule>,
    /// Positive whole seconds; `None`: no limit.
    pub(super) max_session_age: Option<SignedDuration>,
}

/// How a rule names a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Naming<'r> {
    /// By normalised username.
    User(&'r str),
    /// By a group, as spelled in the rule.
    Group(&'r str),
}

impl fmt::Display for Naming<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(user) => write!(f, "user {user}"),
            Self::Group(group) => write!(f, "group {group}"),
        }
    }
}

/// One rule checked against one person at one moment.
#[derive(Debug, Clone)]
pub(super) struct Check<'r> {
    pub(super) rule: &'r Rule,
    /// `None`: the rule does not name the person.
    pub(super) naming: Option<Naming<'r>>,
    /// `None`: the rule has no windows.
    pub(super) in_window: Option<bool>,
    /// `None`: the rule has no age limit, or the session start is unknown.
    pub(super) age_ok: Option<bool>,
}

impl Check<'_> {
    /// The rule names the person, and neither its windows nor its age limit stand in the way.
    pub(super) fn allows(&self) -> bool {
        self.naming.is_some() && self.in_window != Some(false) && self.age_ok != Some(false)
    }

    /// Why this rule does not allow, assuming it names the person: hours come before age.
    pub(super) fn deny_reason(&self) -> DenyReason {
        if self.in_window == Some(false) {
            DenyReason::OutsideHours
        } else {
            DenyReason::SessionTooOld
        }
    }
}

impl Rule {
    /// The rule `<name>.allow` made from a resource's `allow_users`/`allow_groups`, if either
    /// is non-empty.
    pub(super) fn implicit(resource: &Resource) -> Option<Self> {
        if resource.allow_users.is_empty() && resource.allow_groups.is_empty() {
            return None;
        }
        Some(Self {
            name: format!("{}{IMPLICIT_SUFFIX}", resource.name),
            resources: vec![resource.name.clone()],
            users: resource.allow_users.clone(),
            groups: resource.allow_groups.iter().map(|g| g.trim().to_owned()).collect(),
            schedule: None,
            max_session_age: None,
        })
    }

    /// Whether this rule is about `resource`.
    pub(super) fn covers(&self, resource: &str) -> bool {
        self.resources.iter().any(|r| r == resource)
    }

    /// How this rule names `who`: by username first, else by the first of its groups they are in.
    pub(super) fn naming(&self, who: &Identity) -> Option<Naming<'_>> {
        if let Some(user) = self.users.iter().find(|u| **u == who.username) {
            return Some(Naming::User(user));
        }
        self.groups
            .iter()
            .find(|rule_group| who.groups.iter().any(|g| g.trim().eq_ignore_ascii_case(rule_group)))
            .map(|g| Naming::Group(g))
    }

    /// Checks this rule for `who` at unix time `now`; the age limit is checked only when
    /// `session_started` is known.
    pub(super) fn check(&self, who: &Identity, now: i64, session_started: Option<i64>) -> Check<'_> {
        Check {
            rule: self,
            naming: self.naming(who),
            in_window: self.schedule.as_ref().map(|s| s.contains(now)),
            age_ok: self
                .max_session_age
                .zip(session_started)
                .map(|(limit, started)| i128::from(now) - i128::from(started) <= i128::from(limit.as_secs())),
        }
    }
}

/// A resource's implicit rule is named `<resource>.allow`.
pub(super) const IMPLICIT_SUFFIX: &str = ".allow";
