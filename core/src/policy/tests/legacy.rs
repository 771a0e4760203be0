//! The format before `[[rule]]`: resources with `allow_users`/`allow_groups` still parse and
//! decide as they did, at any time; also `from_resources`, `visible_to` and targets.

use super::{POLICY as RULES_POLICY, person, who, zurich};
use crate::policy::{AccessTime, Decision, DenyReason, Policy, Target};

const POLICY: &str = r#"
    [[resource]]
    name = "intranet"
    target = "intranet.bank.example:443"
    description = "Intranet"
    allow_groups = ["staff"]

    [[resource]]
    name = "payments"
    target = "10.0.0.5:8443"
    allow_groups = ["payments-ops"]
    allow_users = ["Carol"]

    [[resource]]
    name = "nobody"
    target = "10.0.0.6:22"
"#;

/// Old decisions depend on nobody's clock: try several moments, including a very old session.
const MOMENTS: [AccessTime; 3] = [
    AccessTime {
        now: 0,
        session_started: 0,
    },
    AccessTime {
        now: 1_748_858_400,
        session_started: 1_748_858_340,
    },
    AccessTime {
        now: 1_749_373_200,
        session_started: 1_000_000_000,
    },
];

#[test]
fn exhaustive_users_by_resources() {
    let policy = Policy::parse(POLICY).unwrap();
    assert_eq!(
        policy.rule_count(),
        2,
        "one implicit rule per resource with allow lists"
    );
    let users = [
        who("alice", &["staff"]),
        who("bob", &["payments-ops", "staff"]),
        who("carol", &[]),
        who("dave", &["STAFF"]),
        who("eve", &["staff-not"]),
    ];
    let resources = ["intranet", "payments", "nobody", "missing"];
    let expect = |u: &str, r: &str| match (u, r) {
        (_, "missing") => Err(DenyReason::UnknownResource),
        ("alice" | "bob" | "dave", "intranet") => Ok("intranet.allow"),
        ("bob" | "carol", "payments") => Ok("payments.allow"),
        _ => Err(DenyReason::NotAllowed),
    };
    for at in MOMENTS {
        for u in &users {
            for r in resources {
                let got = match policy.decide(u, r, at) {
                    Decision::Allow { rule, .. } => Ok(rule),
                    Decision::Deny { reason, rule: None } => Err(reason),
                    Decision::Deny {
                        reason,
                        rule: Some(rule),
                    } => panic!("{reason:?} by {rule}"),
                };
                assert_eq!(got, expect(&u.username, r).map(String::from), "{} → {r}", u.username);
            }
        }
    }
}

#[test]
fn from_resources_makes_the_same_rules() {
    let parsed = Policy::parse(POLICY).unwrap();
    let built = Policy::from_resources(parsed.resources().cloned());
    assert_eq!(built, parsed);
    assert_eq!(built.rule_count(), 2);
    let at = MOMENTS[1];
    let allowed = built.decide(&who("carol", &[]), "payments", at);
    let target = Target::parse("10.0.0.5:8443").unwrap();
    assert_eq!(
        allowed,
        Decision::Allow {
            target,
            rule: "payments.allow".into()
        }
    );
    assert_eq!(built.resource("nobody").map(|r| r.target.port), Some(22));
    assert!(built.resource("missing").is_none());
}

#[test]
fn visible_resources_follow_rules_regardless_of_time() {
    let policy = Policy::parse(POLICY).unwrap();
    let names = |policy: &Policy, who| policy.visible_to(&who).into_iter().map(|r| r.name).collect::<Vec<_>>();
    assert_eq!(
        names(&policy, who("bob", &["payments-ops", "staff"])),
        ["intranet", "payments"]
    );
    assert!(names(&policy, who("zed", &[])).is_empty());
    let rules = Policy::parse(RULES_POLICY).unwrap();
    assert_eq!(names(&rules, person("bob")), ["intranet", "mail"]);
    assert_eq!(names(&rules, person("quinn")), ["payments", "vault"]);
    assert_eq!(names(&rules, person("dave")), ["mail"]);
    let info = rules.visible_to(&person("alice"));
    assert_eq!(
        (info[0].name.as_str(), info[0].description.as_str()),
        ("intranet", "Intranet")
    );
    // Each resource carries the hours of the rules naming the person; a rule allowing any time
    // (here alice's `intranet.allow`) leaves none.
    assert_eq!(info[0].hours, None);
    let dave = rules.visible_to(&person("dave"));
    assert!(
        dave[0].hours.as_deref().is_some_and(|h| h.contains("Europe/Zurich")),
        "{dave:?}"
    );
    // Visibility ignores the clock; opening does not.
    let sunday = AccessTime {
        now: zurich("2025-06-08T12:00"),
        session_started: zurich("2025-06-08T12:00"),
    };
    assert!(matches!(
        rules.decide(&person("bob"), "mail", sunday),
        Decision::Deny { .. }
    ));
}

#[test]
fn all_problems_are_reported_with_locations() {
    let bad = r#"
        [[resource]]
        name = "bad name"
        target = "nohost"
        [[resource]]
        name = "ok"
        target = "h:0"
        allow_users = ["x\u0000y"]
        [[resource]]
        name = "ok"
        target = "h:1"
    "#;
    let errors = Policy::parse(bad).unwrap_err().0;
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 5, "{text:#?}");
    assert!(text.iter().any(|t| t.starts_with("resource[0] \"bad name\".name")));
    assert!(text.iter().any(|t| t.starts_with("resource[0] \"bad name\".target")));
    assert!(text.iter().any(|t| t.starts_with("resource[1] \"ok\".target")));
    assert!(text.iter().any(|t| t.starts_with("resource[1] \"ok\".allow_users")));
    assert!(text.iter().any(|t| t.starts_with("resource[2] \"ok\".name: duplicate")));
}

#[test]
fn unknown_fields_and_syntax_errors() {
    assert!(Policy::parse("[[resource]]\nname='a'\ntarget='h:1'\nallowed_groups=['x']").is_err());
    assert!(Policy::parse("[[resource").is_err());
    let empty = Policy::parse("").unwrap();
    assert!(empty.resources().next().is_none());
    assert_eq!(empty.rule_count(), 0);
}

#[test]
fn equivalent_target_spellings_are_equal() {
    let a = Target::parse("Intranet.Bank.Example.:443").unwrap();
    let b = Target::parse("intranet.bank.example:443").unwrap();
    assert_eq!(a, b);
    let mapped = Target::parse("[::ffff:10.0.0.5]:22").unwrap();
    assert_eq!(mapped, Target::parse("10.0.0.5:22").unwrap());
    assert_eq!(Target::parse("[::1]:80").unwrap().dial_string(), "[::1]:80");
    for bad in ["", "host", "host:", "host:70000", ":80", "a b:1", "[::1:80", "ho/st:1"] {
        assert!(Target::parse(bad).is_err(), "{bad:?}");
    }
}

/// Found by the `policy` fuzz target: `allocated.:22` and `Allocated:22` used to parse as the
/// host `allocated`, whose canonical form `allocated:22` reads back as a malformed
/// `allocated:<pool>:<port>` target, so a policy shown to an operator could not be loaded again.
#[test]
fn a_host_named_allocated_is_refused() {
    for text in ["allocated.:22", "Allocated:22", "ALLOCATED.:22"] {
        let error = Target::parse(text).unwrap_err();
        assert!(error.contains("full name"), "{text:?}: {error}");
    }
    let pool = Target::parse("allocated:desktops:3389").unwrap();
    assert_eq!(Target::parse(&pool.to_string()), Ok(pool));
    let named = Target::parse("allocated.bank.example:22").unwrap();
    assert_eq!(Target::parse(&named.to_string()), Ok(named));
}
