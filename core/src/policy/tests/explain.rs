//! Explanations: the service-desk sentences for each outcome, the per-rule details, and
//! agreement with `decide` over many combinations.

use super::{PEOPLE, POLICY, person, secs, utc, who, zurich};
use crate::policy::{AccessTime, Decision, Explanation, Policy, RuleCheck};

fn policy() -> Policy {
    Policy::parse(POLICY).unwrap()
}

#[test]
fn allowed_names_the_rule_and_how_it_names_the_person() {
    let policy = policy();
    let e = policy.explain(&person("alice"), "intranet", zurich("2025-06-07T10:00"), None);
    assert!(e.allowed);
    assert_eq!(e.decided_by.as_deref(), Some("intranet.allow"));
    assert_eq!(e.reason, r#"allowed by rule "intranet.allow" (group staff)"#);
    let e = policy.explain(&person("dave"), "mail", zurich("2025-06-07T10:00"), None);
    assert_eq!(e.reason, r#"allowed by rule "dave-saturday" (user dave)"#);
}

#[test]
fn outside_hours_gives_the_windows_zone_and_local_time() {
    let e = policy().explain(&person("bob"), "intranet", zurich("2025-06-07T10:12"), None);
    assert!(!e.allowed);
    assert_eq!(e.decided_by.as_deref(), Some("contractors-office-hours"));
    assert_eq!(
        e.reason,
        r#"denied: outside the hours of rule "contractors-office-hours" (Mon-Fri 07:00-20:00 Europe/Zurich); it is Sat 10:12 there"#
    );
    // Local time is the rule's zone, also across the DST change (06:30 CEST, not 05:30).
    let e = policy().explain(&person("erin"), "backup", utc("2025-03-30T04:30:00Z"), None);
    assert!(
        e.reason
            .contains(r#"rule "erin-nights" (Sat 22:00-06:00 Europe/Zurich)"#),
        "{}",
        e.reason
    );
    assert!(e.reason.ends_with("it is Sun 06:30 there"), "{}", e.reason);
}

#[test]
fn session_too_old_gives_the_limit_and_the_age() {
    let now = zurich("2025-06-02T12:00");
    let e = policy().explain(&person("pat"), "payments", now, Some(now - secs("9h 2m")));
    assert!(!e.allowed);
    assert_eq!(e.decided_by.as_deref(), Some("payments-8h"));
    assert_eq!(
        e.reason,
        r#"denied: the session is older than the 8h allowed by rule "payments-8h" (it began 9h 2m ago)"#
    );
    let e = policy().explain(&person("quinn"), "vault", now, Some(now - secs("2h")));
    assert!(
        e.reason.contains(r#"older than the 1h 30m allowed by rule "audit""#),
        "{}",
        e.reason
    );
}

#[test]
fn not_allowed_lists_the_person_and_groups_and_unknown_names_the_resource() {
    let policy = policy();
    let now = zurich("2025-06-02T12:00");
    let e = policy.explain(&person("alice"), "payments", now, None);
    assert!(!e.allowed);
    assert_eq!(e.decided_by, None);
    assert_eq!(
        e.reason,
        r#"denied: no rule for "payments" names alice or any of the groups staff, vpn"#
    );
    assert_eq!(e.rules.len(), 3, "{:#?}", e.rules);
    assert!(e.rules.iter().all(|r| r.outcome == "does not name this person"));
    let e = policy.explain(&person("nobody"), "backup", now, None);
    assert_eq!(
        e.reason,
        r#"denied: no rule for "backup" names nobody, who is in no groups"#
    );
    let e = policy.explain(&person("alice"), "paymnts", now, Some(now));
    assert!(!e.allowed && e.decided_by.is_none() && e.rules.is_empty());
    assert_eq!(e.reason, r#"denied: there is no resource named "paymnts""#);
}

#[test]
fn every_covering_rule_is_listed_in_order() {
    let now = utc("2025-03-30T05:30:00Z"); // Sunday 07:30 in Zurich
    let e = policy().explain(&person("ben"), "mail", now, Some(now - 60));
    let check = |rule: &str, names: Option<&str>, windows: &str, in_window: bool, outcome: &str| RuleCheck {
        rule: rule.into(),
        names_person: names.map(Into::into),
        windows: Some(windows.into()),
        in_window: Some(in_window),
        local_time: Some("Sun 07:30".into()),
        max_session_age_secs: None,
        session_age_ok: None,
        outcome: outcome.into(),
    };
    let want = [
        check(
            "contractors-office-hours",
            Some("group contractors"),
            "Mon-Fri 07:00-20:00 (Europe/Zurich)",
            false,
            "outside its hours",
        ),
        check(
            "dave-saturday",
            None,
            "Sat 09:00-12:00 (Europe/Zurich)",
            false,
            "does not name this person",
        ),
        check(
            "sunday-maint",
            Some("group maint"),
            "Sun 07:00-09:00 (Europe/Zurich)",
            true,
            "allows",
        ),
    ];
    assert_eq!(e.rules, want);
    assert_eq!(e.decided_by.as_deref(), Some("sunday-maint"));
    assert_eq!((e.user.as_str(), e.resource.as_str(), e.at), ("ben", "mail", now));
    assert_eq!(e.groups, ["contractors", "maint"]);
}

#[test]
fn age_details_and_the_missing_session_start() {
    let policy = policy();
    let now = zurich("2025-06-02T12:00");
    let old = policy.explain(&person("pat"), "payments", now, Some(now - secs("9h")));
    let last = &old.rules[1];
    assert_eq!(last.rule, "payments-8h");
    assert_eq!(last.max_session_age_secs, Some(8 * 3600));
    assert_eq!(
        (last.session_age_ok, last.outcome.as_str()),
        (Some(false), "session too old")
    );
    assert_eq!((last.windows.as_deref(), last.in_window), (None, None));
    // Without a session start the question is "would a new session be allowed now".
    let fresh = policy.explain(&person("pat"), "payments", now, None);
    assert!(fresh.allowed);
    assert_eq!(fresh.rules[1].session_age_ok, None);
}

#[test]
fn explanations_survive_json() {
    let now = zurich("2025-06-07T10:12");
    let e = policy().explain(&person("bob"), "mail", now, Some(now - 60));
    let json = serde_json::to_string(&e).unwrap();
    assert_eq!(serde_json::from_str::<Explanation>(&json).unwrap(), e);
}

#[test]
fn explain_agrees_with_decide() {
    let policy = policy();
    let mut people: Vec<_> = PEOPLE.iter().map(|p| person(p)).collect();
    people.push(who("mixed", &["Contractors", "payments-ops", "ops"]));
    let resources = ["intranet", "mail", "payments", "backup", "vault", "missing"];
    // Two weeks from each start in steps of 131 minutes: across the March DST change, and in June.
    let starts = [zurich("2025-03-24T00:00"), zurich("2025-06-02T00:00")];
    let times: Vec<i64> = starts
        .iter()
        .flat_map(|s| (0..2 * 7 * 24 * 60 / 131).map(move |n| s + n * 131 * 60))
        .collect();
    let ages = [0, secs("1h 30m"), secs("1h 31m"), secs("8h"), secs("8h 1s")];
    let mut allowed = 0;
    for who in &people {
        for resource in resources {
            for &now in &times {
                for age in ages {
                    let at = AccessTime {
                        now,
                        session_started: now - age,
                    };
                    let decision = policy.decide(who, resource, at);
                    let (allows, rule) = match &decision {
                        Decision::Allow { rule, .. } => (true, Some(rule.clone())),
                        Decision::Deny { rule, .. } => (false, rule.clone()),
                    };
                    let e = policy.explain(who, resource, now, Some(at.session_started));
                    assert_eq!((e.allowed, &e.decided_by), (allows, &rule), "{decision:?} vs {e:#?}");
                    allowed += usize::from(allows);
                }
                let now_only = policy.explain(who, resource, now, None);
                let new_session = AccessTime {
                    now,
                    session_started: now,
                };
                let decision = policy.decide(who, resource, new_session);
                assert_eq!(
                    now_only.allowed,
                    matches!(decision, Decision::Allow { .. }),
                    "{now_only:#?}"
                );
            }
        }
    }
    assert!(
        allowed > 1000,
        "the combinations should include many allows, got {allowed}"
    );
}
