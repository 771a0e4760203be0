//! Validation: one bad file reports every problem at once, each with its location.

use crate::policy::Policy;

const BAD: &str = r#"
    [[resource]]
    name = "intranet"
    target = "intranet.bank.example:443"
    allow_groups = ["staff"]

    [[resource]]
    name = "mail"
    target = "mail.bank.example:993"

    [[rule]]
    name = "x"
    resources = ["intranet", "payroll"]
    groups = ["staff"]

    [[rule]]
    name = "contractors"
    resources = ["mail"]
    groups = ["contractors"]
    time_zone = "Europe/Zurich"
    windows = ["Mon-Fri 07:00-20:00", "Mon-Fri", "Mon 08:00-08:00", "Mno 07:00-09:00"]

    [[rule]]
    name = "y"
    resources = ["mail"]
    users = ["dave"]
    time_zone = "Europe/Zurch"
    windows = ["Sat 09:00-12:00"]

    [[rule]]
    name = "z"
    resources = ["mail"]
    users = ["erin"]
    windows = ["Sun 10:00-11:00"]

    [[rule]]
    name = "x"
    resources = []
    max_session_age = "0s"

    [[rule]]
    name = "intranet.allow"
    resources = ["intranet"]
    users = ["a\u0000b"]
    groups = [" "]
    max_session_age = "eight hours"

    [[rule]]
    name = "bad name!"
    resources = ["mail"]
    groups = ["g"]
    time_zone = "Europe/Zurich"
    windows = ["Sat 25:00-26:00"]
"#;

#[test]
fn every_problem_is_reported_with_its_location() {
    let errors = Policy::parse(BAD).unwrap_err().0;
    let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let want = [
        (r#"rule[0] "x".resources"#, r#"unknown resource "payroll""#),
        (
            r#"rule[1] "contractors".windows[1]"#,
            r#"expected "DAYS HH:MM-HH:MM", e.g. "Mon-Fri 07:00-20:00""#,
        ),
        (r#"rule[1] "contractors".windows[2]"#, "starts and ends at 08:00"),
        (r#"rule[1] "contractors".windows[3]"#, r#"unknown day "Mno""#),
        (r#"rule[2] "y".time_zone"#, r#"unknown time zone "Europe/Zurch""#),
        (r#"rule[3] "z""#, "windows need a time_zone"),
        (r#"rule[4] "x".name"#, "duplicate rule name (also rule[0])"),
        (r#"rule[4] "x".resources"#, "names no resources"),
        (r#"rule[4] "x""#, "names no groups or users"),
        (r#"rule[4] "x".max_session_age"#, "must be longer than zero"),
        (
            r#"rule[5] "intranet.allow".name"#,
            r#"reserved for the allow_users/allow_groups of resource "intranet""#,
        ),
        (r#"rule[5] "intranet.allow".users"#, "control characters"),
        (r#"rule[5] "intranet.allow".groups"#, "empty group name"),
        (r#"rule[5] "intranet.allow".max_session_age"#, "not a duration"),
        (r#"rule[6] "bad name!".name"#, "may contain only"),
        (r#"rule[6] "bad name!".windows[0]"#, "invalid time \"25:00\""),
    ];
    assert_eq!(errors.len(), want.len(), "{got:#?}");
    for ((problem, text), (location, fragment)) in errors.iter().zip(&got).zip(want) {
        assert_eq!(problem.location, location, "{text}");
        assert!(
            problem.message.contains(fragment),
            "{text:?} should contain {fragment:?}"
        );
    }
    assert_eq!(got[5], r#"rule[3] "z": windows need a time_zone"#);
    assert_eq!(got[0], r#"rule[0] "x".resources: unknown resource "payroll""#);
}

#[test]
fn rules_and_resources_are_checked_together() {
    let text = r#"
        [[resource]]
        name = "bad name"
        target = "nohost"
        [[rule]]
        name = "ok"
        resources = ["bad name", "gone"]
        users = ["u"]
    "#;
    let locations: Vec<String> = Policy::parse(text)
        .unwrap_err()
        .0
        .into_iter()
        .map(|p| p.location)
        .collect();
    // A declared resource with problems of its own is not also "unknown" to the rule.
    assert_eq!(
        locations,
        [
            r#"resource[0] "bad name".name"#,
            r#"resource[0] "bad name".target"#,
            r#"rule[0] "ok".resources"#
        ]
    );
}

#[test]
fn missing_required_fields_are_located_and_unknown_fields_refused() {
    let errors = Policy::parse("[[rule]]\nusers = ['u']\n").unwrap_err().0;
    let locations: Vec<&str> = errors.iter().map(|p| p.location.as_str()).collect();
    assert_eq!(locations, [r#"rule[0] "".name"#, r#"rule[0] "".resources"#]);
    let errors = Policy::parse("[[rule]]\nname = 'a'\nresources = []\nusers = ['u']\nwindow = ['daily 00:00-24:00']\n")
        .unwrap_err()
        .0;
    let locations: Vec<&str> = errors.iter().map(|p| p.location.as_str()).collect();
    assert_eq!(locations, [r#"rule[0] "a".window"#, r#"rule[0] "a".resources"#]);
    assert!(errors[0].message.contains("unknown field"), "{}", errors[0].message);
}

#[test]
fn a_time_zone_without_windows_is_any_time_but_still_checked() {
    let text = |zone: &str| {
        let rule = format!("name = 'a'\nresources = ['r']\nusers = ['u']\ntime_zone = '{zone}'");
        format!("[[resource]]\nname = 'r'\ntarget = 'h:1'\n[[rule]]\n{rule}\n")
    };
    assert_eq!(Policy::parse(&text("Europe/Zurich")).unwrap().rule_count(), 1);
    let errors = Policy::parse(&text("Mars/Olympus")).unwrap_err().0;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].location, r#"rule[0] "a".time_zone"#);
}
