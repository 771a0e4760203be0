//! The readiness funnel: the steps a person goes through before their first real connection
//! (registration code issued, enrolled, profile set up, rehearsal passed, first connection),
//! what the store knows of each person's steps ([`ReadinessRow`]), the rehearsals
//! `rampart-connect doctor --rehearse` reports ([`Rehearsal`]), and the funnel's counts
//! ([`funnel`]).
//!
//! The funnel is monotone: a step counts as reached when it or any later step was reached. A
//! person enrolled by the desk without a registration code has thereby passed "code issued";
//! a person who logged in before any recorded enrolment (a temporary code) has passed
//! "enrolled". So the count of each step is never below the next one's, and each person stands
//! at exactly one place: not started, or stuck after their furthest step.

use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Most resources one rehearsal report may name.
pub const MAX_REHEARSAL_RESOURCES: usize = 200;

/// The form of a gateway session's resume ticket that the store keeps and looks up
/// ([`SessionStore::session_for_ticket`](crate::SessionStore::session_for_ticket)): SHA-256 of
/// the ticket's text, as the gateway stores it.
pub fn session_ticket_hash(ticket: &str) -> Vec<u8> {
    digest(&SHA256, ticket.as_bytes()).as_ref().to_vec()
}

/// A step of the readiness funnel, in the order people go through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The desk issued a registration code (or enrolled the person directly).
    CodeIssued,
    /// The person's authenticator works: a token was activated by its first code.
    Enrolled,
    /// The person logged in with `rampart-connect`, so the profile is set up.
    ProfileSetUp,
    /// A rehearsal opened every one of the person's resources.
    RehearsalPassed,
    /// A login after the passed rehearsal, other than the rehearsal's own session.
    FirstConnection,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Self; 5] = [
        Self::CodeIssued,
        Self::Enrolled,
        Self::ProfileSetUp,
        Self::RehearsalPassed,
        Self::FirstConnection,
    ];

    /// The stable name (`code_issued`, ...), as in JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CodeIssued => "code_issued",
            Self::Enrolled => "enrolled",
            Self::ProfileSetUp => "profile_set_up",
            Self::RehearsalPassed => "rehearsal_passed",
            Self::FirstConnection => "first_connection",
        }
    }

    /// The step in words, for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::CodeIssued => "registration code issued",
            Self::Enrolled => "enrolled",
            Self::ProfileSetUp => "profile set up",
            Self::RehearsalPassed => "rehearsal passed",
            Self::FirstConnection => "first real connection",
        }
    }

    /// The step a stable name stands for.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|step| step.as_str() == text)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One resource a rehearsal tried to open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RehearsalCheck {
    /// The resource's name.
    pub resource: String,
    /// Whether the gateway connected to it.
    pub ok: bool,
    /// Why not, in words; `None` when it opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One rehearsal: a person's client opened each of their resources through their gateway
/// session and reported how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rehearsal {
    /// Random id.
    pub id: String,
    /// The person's stable id (a known user).
    pub user_id: String,
    /// The gateway session the rehearsal ran in.
    pub session_id: Option<String>,
    /// Unix seconds of the report.
    pub at: i64,
    /// Each resource tried, in the order tried.
    pub checks: Vec<RehearsalCheck>,
    /// Where the report came from (the client's address).
    pub source: String,
}

impl Rehearsal {
    /// Passed: at least one resource was tried and every one opened.
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|check| check.ok)
    }

    /// How many resources did not open.
    pub fn failed(&self) -> usize {
        self.checks.iter().filter(|check| !check.ok).count()
    }
}

/// What the store knows of one person's steps: the first time each happened (unix seconds),
/// `None` for a step not (or not yet) recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessRow {
    /// Stable id.
    pub user_id: String,
    /// Normalised username.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Directory groups, sorted.
    pub groups: Vec<String>,
    /// Whether the account is enabled.
    pub enabled: bool,
    /// The person's first registration code.
    pub code_issued_at: Option<i64>,
    /// The first activation of one of the person's tokens (a first code accepted, or a
    /// self-service enrolment confirmed).
    pub enrolled_at: Option<i64>,
    /// The person's first gateway session.
    pub profile_set_up_at: Option<i64>,
    /// The person's first passed rehearsal.
    pub rehearsal_passed_at: Option<i64>,
    /// The person's first session created at or after the first passed rehearsal that no
    /// rehearsal ran in.
    pub first_connection_at: Option<i64>,
}

impl ReadinessRow {
    /// When `step` itself was recorded (not implied by a later step).
    pub fn at(&self, step: Step) -> Option<i64> {
        match step {
            Step::CodeIssued => self.code_issued_at,
            Step::Enrolled => self.enrolled_at,
            Step::ProfileSetUp => self.profile_set_up_at,
            Step::RehearsalPassed => self.rehearsal_passed_at,
            Step::FirstConnection => self.first_connection_at,
        }
    }

    /// The furthest step recorded; every step before it counts as reached. `None`: not started.
    pub fn furthest(&self) -> Option<Step> {
        Step::ALL.into_iter().rev().find(|step| self.at(*step).is_some())
    }

    /// Whether the person reached `step`: it, or a later step, was recorded.
    pub fn reached(&self, step: Step) -> bool {
        self.furthest().is_some_and(|furthest| furthest >= step)
    }
}

/// One step of the funnel: how many people reached it, and who stopped there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepTally<'a> {
    /// The step.
    pub step: Step,
    /// People who reached at least this step.
    pub reached: usize,
    /// People whose furthest step this is (waiting for the next one), in the rows' order.
    pub stuck: Vec<&'a ReadinessRow>,
}

/// The funnel over a set of people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Funnel<'a> {
    /// Everyone counted.
    pub people: usize,
    /// People who reached no step yet, in the rows' order.
    pub not_started: Vec<&'a ReadinessRow>,
    /// Each step in order.
    pub steps: Vec<StepTally<'a>>,
}

/// The funnel of `rows`: per step, who reached it and who stopped there.
pub fn funnel(rows: &[ReadinessRow]) -> Funnel<'_> {
    let mut steps: Vec<StepTally<'_>> = Step::ALL
        .into_iter()
        .map(|step| StepTally {
            step,
            reached: 0,
            stuck: Vec::new(),
        })
        .collect();
    let mut not_started = Vec::new();
    for row in rows {
        let Some(furthest) = row.furthest() else {
            not_started.push(row);
            continue;
        };
        for tally in &mut steps {
            if tally.step <= furthest {
                tally.reached += 1;
            }
            if tally.step == furthest {
                tally.stuck.push(row);
            }
        }
    }
    Funnel {
        people: rows.len(),
        not_started,
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, times: [Option<i64>; 5]) -> ReadinessRow {
        let [
            code_issued_at,
            enrolled_at,
            profile_set_up_at,
            rehearsal_passed_at,
            first_connection_at,
        ] = times;
        ReadinessRow {
            user_id: format!("id-{name}"),
            username: name.to_owned(),
            display_name: name.to_owned(),
            groups: Vec::new(),
            enabled: true,
            code_issued_at,
            enrolled_at,
            profile_set_up_at,
            rehearsal_passed_at,
            first_connection_at,
        }
    }

    #[test]
    fn a_later_step_implies_the_earlier_ones_and_each_person_is_stuck_once() {
        let rows = vec![
            row("new", [None; 5]),
            row("coded", [Some(1), None, None, None, None]),
            // Enrolled at the desk without a registration code.
            row("desk", [None, Some(2), None, None, None]),
            row("set-up", [Some(1), Some(2), Some(3), None, None]),
            row("rehearsed", [Some(1), Some(2), Some(3), Some(4), None]),
            row("live", [Some(1), Some(2), Some(3), Some(4), Some(5)]),
        ];
        let funnel = funnel(&rows);
        assert_eq!(funnel.people, 6);
        assert_eq!(funnel.not_started.len(), 1);
        assert_eq!(funnel.not_started[0].username, "new");
        let reached: Vec<usize> = funnel.steps.iter().map(|s| s.reached).collect();
        assert_eq!(reached, [5, 4, 3, 2, 1]);
        let stuck: Vec<Vec<&str>> = funnel
            .steps
            .iter()
            .map(|s| s.stuck.iter().map(|r| r.username.as_str()).collect())
            .collect();
        assert_eq!(
            stuck,
            [
                vec!["coded"],
                vec!["desk"],
                vec!["set-up"],
                vec!["rehearsed"],
                vec!["live"]
            ]
        );
        assert!(rows[2].reached(Step::CodeIssued) && !rows[2].reached(Step::ProfileSetUp));
        assert_eq!(rows[0].furthest(), None);
    }

    #[test]
    fn a_rehearsal_passes_only_when_every_resource_opened() {
        let check = |resource: &str, ok: bool| RehearsalCheck {
            resource: resource.to_owned(),
            ok,
            reason: (!ok).then(|| "refused".to_owned()),
        };
        let mut rehearsal = Rehearsal {
            id: "r1".into(),
            user_id: "u1".into(),
            session_id: None,
            at: 1,
            checks: Vec::new(),
            source: "192.0.2.1".into(),
        };
        assert!(!rehearsal.passed(), "nothing tried is no pass");
        rehearsal.checks = vec![check("intranet", true), check("desktop", false)];
        assert!(!rehearsal.passed());
        assert_eq!(rehearsal.failed(), 1);
        rehearsal.checks[1].ok = true;
        assert!(rehearsal.passed());
    }

    #[test]
    fn steps_have_stable_names() {
        for step in Step::ALL {
            assert_eq!(Step::parse(step.as_str()), Some(step));
        }
        assert_eq!(Step::parse("nope"), None);
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(session_ticket_hash("abc")[..4], [0xba, 0x78, 0x16, 0xbf]);
    }
}
