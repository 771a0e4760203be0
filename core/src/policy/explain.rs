//! Explanations: why a person may or may not open a resource, rule by rule, for the service desk.

use super::rule::Check;
use super::{DenyReason, Identity, Policy, Verdict, verdict};
use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

/// Why `user` may or may not open `resource` at `at`, with every rule that was considered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The normalised username asked about.
    pub user: String,
    /// Their directory groups.
    pub groups: Vec<String>,
    /// The resource asked about.
    pub resource: String,
    /// The moment evaluated, unix seconds.
    pub at: i64,
    /// Whether access would be allowed.
    pub allowed: bool,
    /// The allowing rule, or for a denial the first rule that names the person.
    pub decided_by: Option<String>,
    /// One plain-language sentence, e.g. `allowed by rule "office-hours" (group staff)`.
    pub reason: String,
    /// Every rule covering the resource, in evaluation order.
    pub rules: Vec<RuleCheck>,
}

/// How one rule judged the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCheck {
    /// The rule's name.
    pub rule: String,
    /// `user carol` or `group staff`; `None` if the rule does not name the person.
    pub names_person: Option<String>,
    /// `Mon-Fri 07:00-20:00, Sat 09:00-12:00 (Europe/Zurich)`; `None` if any time.
    pub windows: Option<String>,
    /// Whether the moment is inside a window; `None` when the rule has no windows.
    pub in_window: Option<bool>,
    /// The moment in the rule's time zone, e.g. `Mon 07:45`: what the windows are compared
    /// with. `None` when the rule has no windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_time: Option<String>,
    /// The rule's session age limit in seconds, if any.
    pub max_session_age_secs: Option<u64>,
    /// Whether the session is young enough; `None` without a limit or a session start.
    pub session_age_ok: Option<bool>,
    /// `allows`, `does not name this person`, `outside its hours` or `session too old`.
    pub outcome: String,
}

impl Policy {
    /// Explains whether `who` may open `resource` at unix time `now`, agreeing with
    /// [`Policy::decide`]. Without `session_started` the age limits are not checked: the
    /// question is then "would this person be allowed now, in a new session".
    pub fn explain(&self, who: &Identity, resource: &str, now: i64, session_started: Option<i64>) -> Explanation {
        let mut explanation = Explanation {
            user: who.username.clone(),
            groups: who.groups.clone(),
            resource: resource.to_owned(),
            at: now,
            allowed: false,
            decided_by: None,
            reason: format!("denied: there is no resource named {resource:?}"),
            rules: Vec::new(),
        };
        if self.resource(resource).is_none() {
            return explanation;
        }
        let checks = self.checks(who, resource, now, session_started);
        explanation.rules = checks.iter().map(|check| RuleCheck::of(check, now)).collect();
        match verdict(&checks) {
            Verdict::Allow(check) => {
                explanation.allowed = true;
                explanation.decided_by = Some(check.rule.name.clone());
                let naming = check.naming.map(|n| format!(" ({n})")).unwrap_or_default();
                explanation.reason = format!("allowed by rule {:?}{naming}", check.rule.name);
            }
            Verdict::Deny(Some(check)) => {
                explanation.decided_by = Some(check.rule.name.clone());
                explanation.reason = denial(check, now, session_started);
            }
            Verdict::Deny(None) => explanation.reason = nobody_named(who, resource),
        }
        explanation
    }
}

impl RuleCheck {
    /// How `check` judged the moment `now`.
    fn of(check: &Check<'_>, now: i64) -> Self {
        let rule = check.rule;
        let outcome = if check.allows() {
            "allows"
        } else if check.naming.is_none() {
            "does not name this person"
        } else if check.deny_reason() == DenyReason::OutsideHours {
            "outside its hours"
        } else {
            "session too old"
        };
        Self {
            rule: rule.name.clone(),
            names_person: check.naming.map(|n| n.to_string()),
            windows: rule
                .schedule
                .as_ref()
                .map(|s| format!("{} ({})", s.windows_text(), s.zone_name)),
            in_window: check.in_window,
            local_time: rule.schedule.as_ref().and_then(|s| s.local_text(now)),
            max_session_age_secs: rule.max_session_age.map(|age| age.as_secs().unsigned_abs()),
            session_age_ok: check.age_ok,
            outcome: outcome.to_owned(),
        }
    }
}

/// Why the first rule naming the person did not allow.
fn denial(check: &Check<'_>, now: i64, session_started: Option<i64>) -> String {
    let rule = check.rule;
    if let (DenyReason::OutsideHours, Some(schedule)) = (check.deny_reason(), &rule.schedule) {
        let local = schedule.local_text(now).unwrap_or_else(|| "a time out of range".into());
        return format!(
            "denied: outside the hours of rule {:?} ({} {}); it is {local} there",
            rule.name,
            schedule.windows_text(),
            schedule.zone_name
        );
    }
    let limit = rule.max_session_age.map(|age| format!("{age:#}")).unwrap_or_default();
    let began = session_started
        .map(|started| {
            format!(
                " (it began {:#} ago)",
                SignedDuration::from_secs(now.saturating_sub(started))
            )
        })
        .unwrap_or_default();
    format!(
        "denied: the session is older than the {limit} allowed by rule {:?}{began}",
        rule.name
    )
}

/// No rule covering `resource` names the person.
fn nobody_named(who: &Identity, resource: &str) -> String {
    let groups = if who.groups.is_empty() {
        ", who is in no groups".to_owned()
    } else {
        format!(" or any of the groups {}", who.groups.join(", "))
    };
    format!("denied: no rule for {resource:?} names {}{groups}", who.username)
}
