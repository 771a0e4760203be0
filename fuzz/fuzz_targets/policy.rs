//! Fuzzes the policy file parser: no panic, every problem names a place, and a policy that
//! parses is sound — targets are canonical, every resource's own `allow_users` may open it at
//! any time, unknown resources are refused, and `explain` agrees with `decide`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_core::policy::{AccessTime, Decision, DenyReason, Identity, Policy, Target};

/// Moments across a week (UTC Thursday 2024-01-04 00:00 onwards) and sessions of several ages.
const TIMES: [(i64, i64); 4] = [
    (1_704_326_400, 1_704_326_400),
    (1_704_326_400 + 13 * 3600 + 1800, 1_704_326_400),
    (1_704_326_400 + 2 * 86_400 + 22 * 3600, 1_704_326_400 + 86_400),
    (1_704_326_400 + 3 * 86_400 + 3 * 3600, 1_704_326_400 - 40 * 3600),
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Each line as a lone target: what parses is canonical and re-parses to itself.
    for line in text.lines().take(64) {
        if let Ok(target) = Target::parse(line) {
            assert_eq!(Target::parse(&target.to_string()), Ok(target.clone()), "{line:?}");
        }
    }
    let policy = match Policy::parse(text) {
        Ok(policy) => policy,
        Err(errors) => {
            assert!(!errors.0.is_empty());
            for problem in &errors.0 {
                assert!(!problem.location.is_empty() && !problem.message.is_empty());
            }
            return;
        }
    };
    let nobody = Identity {
        username: "\u{0}no-such-person".into(),
        groups: vec![],
    };
    for resource in policy.resources() {
        assert_eq!(
            Target::parse(&resource.target.to_string()).as_ref(),
            Ok(&resource.target)
        );
        let mut people: Vec<Identity> = resource
            .allow_users
            .iter()
            .map(|user| Identity {
                username: user.clone(),
                groups: vec![],
            })
            .collect();
        people.extend(resource.allow_groups.iter().map(|group| Identity {
            username: "\u{0}member".into(),
            groups: vec![group.clone()],
        }));
        for (now, session_started) in TIMES {
            let at = AccessTime { now, session_started };
            for who in &people {
                let decision = policy.decide(who, &resource.name, at);
                // `allow_users` and `allow_groups` hold at any time.
                assert!(matches!(decision, Decision::Allow { .. }), "{who:?} {decision:?}");
                check_explain(&policy, who, &resource.name, at, &decision);
            }
            let decision = policy.decide(&nobody, &resource.name, at);
            check_explain(&policy, &nobody, &resource.name, at, &decision);
        }
        for who in &people {
            assert!(policy.visible_to(who).iter().any(|info| info.name == resource.name));
        }
    }
    let unknown = "\u{0}not a resource";
    let decision = policy.decide(
        &nobody,
        unknown,
        AccessTime {
            now: TIMES[0].0,
            session_started: TIMES[0].1,
        },
    );
    assert!(matches!(
        decision,
        Decision::Deny {
            reason: DenyReason::UnknownResource,
            rule: None
        }
    ));
});

fn check_explain(policy: &Policy, who: &Identity, resource: &str, at: AccessTime, decision: &Decision) {
    let explanation = policy.explain(who, resource, at.now, Some(at.session_started));
    match decision {
        Decision::Allow { rule, .. } => {
            assert!(explanation.allowed);
            assert_eq!(explanation.decided_by.as_ref(), Some(rule));
        }
        Decision::Deny { rule, .. } => {
            assert!(!explanation.allowed);
            assert_eq!(&explanation.decided_by, rule);
        }
    }
}
