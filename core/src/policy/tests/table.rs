//! The acceptance table: people × resources × times with a fixed clock; each row's outcome is
//! written out by hand, so the table is the specification.

use super::{POLICY, new_york, person, utc, zurich};
use crate::policy::{AccessTime, Decision, DenyReason, Policy};
use jiff::civil::Weekday;
use jiff::tz::TimeZoneDatabase;
use jiff::{Timestamp, ToSpan};

/// `(deny reason, rule)`: `(None, Some(rule))` is an allow by `rule`.
type Outcome = (Option<DenyReason>, Option<String>);

fn allow(rule: &str) -> Outcome {
    (None, Some(rule.into()))
}

fn outside(rule: &str) -> Outcome {
    (Some(DenyReason::OutsideHours), Some(rule.into()))
}

fn too_old(rule: &str) -> Outcome {
    (Some(DenyReason::SessionTooOld), Some(rule.into()))
}

fn not_allowed() -> Outcome {
    (Some(DenyReason::NotAllowed), None)
}

fn unknown() -> Outcome {
    (Some(DenyReason::UnknownResource), None)
}

/// Seconds in a minute and an hour, for session ages.
const M: i64 = 60;
const H: i64 = 60 * M;

/// A session that began a minute ago.
const FRESH: i64 = M;

/// `(person, resource, now, session age in seconds, expected)`.
type Row = (&'static str, &'static str, i64, i64, Outcome);

// Reference week: Monday 2025-06-02 to Sunday 2025-06-08 (Zurich UTC+2, New York UTC-4).
// DST: on Sunday 2025-03-30 at 01:00 UTC Zurich moves from UTC+1 to UTC+2 (02:00 → 03:00),
// and back on Sunday 2025-10-26 at 01:00 UTC (03:00 → 02:00).
#[rustfmt::skip]
fn rows() -> Vec<Row> {
    vec![
        // Implicit group rule `intranet.allow`: any time, groups case-insensitive and trimmed.
        ("alice",  "intranet", zurich("2025-06-02T03:00"),      FRESH,      allow("intranet.allow")),
        ("alice",  "intranet", zurich("2025-06-08T23:30"),      FRESH,      allow("intranet.allow")),
        ("dora",   "intranet", zurich("2025-06-07T12:00"),      FRESH,      allow("intranet.allow")),
        // Default deny: not named by any rule covering the resource.
        ("zed",    "intranet", zurich("2025-06-03T12:00"),      FRESH,      not_allowed()),
        ("nobody", "intranet", zurich("2025-06-03T12:00"),      FRESH,      not_allowed()),
        ("alice",  "mail",     zurich("2025-06-02T10:00"),      FRESH,      not_allowed()),
        ("alice",  "vault",    zurich("2025-06-02T10:00"),      FRESH,      not_allowed()),
        ("bob",    "payments", zurich("2025-06-02T10:00"),      FRESH,      not_allowed()),
        ("dave",   "intranet", zurich("2025-06-07T10:00"),      FRESH,      not_allowed()),
        // Group rule, Mon-Fri 07:00-20:00 Europe/Zurich: both edges, inside and out.
        ("bob",    "intranet", zurich("2025-06-02T06:59:59"),   FRESH,      outside("contractors-office-hours")),
        ("bob",    "intranet", zurich("2025-06-02T07:00:00"),   FRESH,      allow("contractors-office-hours")),
        ("bob",    "intranet", zurich("2025-06-02T12:00:00"),   FRESH,      allow("contractors-office-hours")),
        ("bob",    "intranet", zurich("2025-06-06T19:59:59"),   FRESH,      allow("contractors-office-hours")),
        ("bob",    "intranet", zurich("2025-06-06T20:00:00"),   FRESH,      outside("contractors-office-hours")),
        ("bob",    "mail",     zurich("2025-06-04T12:00"),      FRESH,      allow("contractors-office-hours")),
        // The weekend.
        ("bob",    "intranet", zurich("2025-06-07T10:00"),      FRESH,      outside("contractors-office-hours")),
        ("bob",    "intranet", zurich("2025-06-08T12:00"),      FRESH,      outside("contractors-office-hours")),
        // The same edges as instants written in New York time: the rule's zone counts.
        ("bob",    "intranet", new_york("2025-06-02T00:59:59"), FRESH,      outside("contractors-office-hours")),
        ("bob",    "intranet", new_york("2025-06-02T01:00:00"), FRESH,      allow("contractors-office-hours")),
        ("bob",    "intranet", new_york("2025-06-06T13:59:59"), FRESH,      allow("contractors-office-hours")),
        ("bob",    "intranet", new_york("2025-06-06T14:00:00"), FRESH,      outside("contractors-office-hours")),
        // User rule, Sat 09:00-12:00 Europe/Zurich (written "Dave" in the file).
        ("dave",   "mail",     zurich("2025-06-07T08:59:59"),   FRESH,      outside("dave-saturday")),
        ("dave",   "mail",     zurich("2025-06-07T09:00:00"),   FRESH,      allow("dave-saturday")),
        ("dave",   "mail",     zurich("2025-06-07T11:59:59"),   FRESH,      allow("dave-saturday")),
        ("dave",   "mail",     zurich("2025-06-07T12:00:00"),   FRESH,      outside("dave-saturday")),
        ("dave",   "mail",     zurich("2025-06-06T10:00:00"),   FRESH,      outside("dave-saturday")),
        // Implicit user rule: any time, no age limit, and it comes before the group rule.
        ("carol",  "payments", zurich("2025-06-08T03:00"),      FRESH,      allow("payments.allow")),
        ("carol",  "payments", zurich("2025-06-02T12:00"),      30 * H,     allow("payments.allow")),
        // Overnight window Fri 22:00-06:00 America/New_York.
        ("frank",  "backup",   new_york("2025-06-06T21:59:59"), FRESH,      outside("night-ops")),
        ("frank",  "backup",   new_york("2025-06-06T22:00:00"), FRESH,      allow("night-ops")),
        ("frank",  "backup",   new_york("2025-06-07T00:00:00"), FRESH,      allow("night-ops")),
        ("frank",  "backup",   new_york("2025-06-07T05:59:59"), FRESH,      allow("night-ops")),
        ("frank",  "backup",   new_york("2025-06-07T06:00:00"), FRESH,      outside("night-ops")),
        ("frank",  "backup",   new_york("2025-06-05T23:00:00"), FRESH,      outside("night-ops")),
        ("frank",  "backup",   new_york("2025-06-07T23:00:00"), FRESH,      outside("night-ops")),
        ("frank",  "backup",   new_york("2025-06-02T03:00:00"), FRESH,      outside("night-ops")),
        // Saturday 04:00 in Zurich is Friday 22:00 in New York.
        ("frank",  "backup",   zurich("2025-06-07T04:00:00"),   FRESH,      allow("night-ops")),
        // Overnight window Sat 22:00-06:00 Europe/Zurich across the DST night of 29/30 March.
        ("erin",   "backup",   utc("2025-03-29T20:59:59Z"),     FRESH,      outside("erin-nights")),  // 21:59:59 CET
        ("erin",   "backup",   utc("2025-03-29T21:00:00Z"),     FRESH,      allow("erin-nights")),    // 22:00 CET
        ("erin",   "backup",   utc("2025-03-30T00:59:59Z"),     FRESH,      allow("erin-nights")),    // 01:59:59 CET
        ("erin",   "backup",   utc("2025-03-30T01:00:00Z"),     FRESH,      allow("erin-nights")),    // 03:00 CEST
        ("erin",   "backup",   utc("2025-03-30T03:59:59Z"),     FRESH,      allow("erin-nights")),    // 05:59:59 CEST
        ("erin",   "backup",   utc("2025-03-30T04:00:00Z"),     FRESH,      outside("erin-nights")),  // 06:00 CEST
        ("erin",   "backup",   utc("2025-03-30T04:30:00Z"),     FRESH,      outside("erin-nights")),  // 06:30 CEST
        ("erin",   "backup",   utc("2025-06-08T03:59:59Z"),     FRESH,      allow("erin-nights")),    // 05:59:59 CEST
        ("erin",   "backup",   utc("2025-06-08T04:00:00Z"),     FRESH,      outside("erin-nights")),  // 06:00 CEST
        // The same window across the autumn change of 25/26 October (03:00 CEST → 02:00 CET).
        ("erin",   "backup",   utc("2025-10-25T19:59:59Z"),     FRESH,      outside("erin-nights")),  // 21:59:59 CEST
        ("erin",   "backup",   utc("2025-10-25T20:00:00Z"),     FRESH,      allow("erin-nights")),    // 22:00 CEST
        ("erin",   "backup",   utc("2025-10-26T04:30:00Z"),     FRESH,      allow("erin-nights")),    // 05:30 CET
        ("erin",   "backup",   utc("2025-10-26T04:59:59Z"),     FRESH,      allow("erin-nights")),    // 05:59:59 CET
        ("erin",   "backup",   utc("2025-10-26T05:00:00Z"),     FRESH,      outside("erin-nights")),  // 06:00 CET
        // Sun 07:00-09:00 Europe/Zurich on the DST day and on the Sunday before (CET).
        ("mia",    "mail",     utc("2025-03-30T04:59:59Z"),     FRESH,      outside("sunday-maint")), // 06:59:59 CEST
        ("mia",    "mail",     utc("2025-03-30T05:00:00Z"),     FRESH,      allow("sunday-maint")),   // 07:00 CEST
        ("mia",    "mail",     utc("2025-03-30T06:59:59Z"),     FRESH,      allow("sunday-maint")),   // 08:59:59 CEST
        ("mia",    "mail",     utc("2025-03-30T07:00:00Z"),     FRESH,      outside("sunday-maint")), // 09:00 CEST
        ("mia",    "mail",     zurich("2025-03-30T07:00:00"),   FRESH,      allow("sunday-maint")),
        ("mia",    "mail",     utc("2025-03-23T05:59:59Z"),     FRESH,      outside("sunday-maint")), // 06:59:59 CET
        ("mia",    "mail",     utc("2025-03-23T06:00:00Z"),     FRESH,      allow("sunday-maint")),   // 07:00 CET
        ("mia",    "mail",     utc("2025-03-23T08:00:00Z"),     FRESH,      outside("sunday-maint")), // 09:00 CET
        // Named by two rules: the first to allow wins; otherwise the first naming rule says why.
        ("ben",    "mail",     zurich("2025-06-04T12:00"),      FRESH,      allow("contractors-office-hours")),
        ("ben",    "mail",     utc("2025-03-30T05:30:00Z"),     FRESH,      allow("sunday-maint")),
        ("ben",    "mail",     zurich("2025-06-08T12:00"),      FRESH,      outside("contractors-office-hours")),
        // max_session_age = "8h": just under, exactly, just over.
        ("pat",    "payments", zurich("2025-06-02T12:00"),      0,          allow("payments-8h")),
        ("pat",    "payments", zurich("2025-06-02T12:00"),      8 * H - 1,  allow("payments-8h")),
        ("pat",    "payments", zurich("2025-06-02T12:00"),      8 * H,      allow("payments-8h")),
        ("pat",    "payments", zurich("2025-06-02T12:00"),      8 * H + 1,  too_old("payments-8h")),
        ("pat",    "payments", zurich("2025-06-07T03:00"),      72 * H,     too_old("payments-8h")),
        // A start after `now` (clock skew) is not too old.
        ("pat",    "payments", zurich("2025-06-02T12:00"),      -30,        allow("payments-8h")),
        // Windows and an age limit together: hours are reported before age.
        ("quinn",  "vault",    zurich("2025-06-02T10:00"),      90 * M - 1, allow("audit")),
        ("quinn",  "vault",    zurich("2025-06-02T10:00"),      90 * M + 1, too_old("audit")),
        ("quinn",  "vault",    zurich("2025-06-07T10:00"),      2 * H,      outside("audit")),
        ("quinn",  "vault",    zurich("2025-06-07T10:00"),      FRESH,      outside("audit")),
        ("quinn",  "payments", zurich("2025-06-02T10:00"),      FRESH,      allow("audit")),
        ("quinn",  "payments", zurich("2025-06-02T07:59:59"),   FRESH,      outside("audit")),
        // Unknown resources, whoever asks.
        ("alice",  "paymnts",  zurich("2025-06-02T10:00"),      FRESH,      unknown()),
        ("carol",  "",         zurich("2025-06-02T10:00"),      FRESH,      unknown()),
        ("bob",    "Intranet", zurich("2025-06-02T10:00"),      FRESH,      unknown()),
        ("nobody", "missing",  zurich("2025-06-02T10:00"),      FRESH,      unknown()),
    ]
}

#[test]
fn acceptance_table() {
    let policy = Policy::parse(POLICY).unwrap();
    for (index, (user, resource, now, age, want)) in rows().into_iter().enumerate() {
        let at = AccessTime {
            now,
            session_started: now - age,
        };
        let decision = policy.decide(&person(user), resource, at);
        let got: Outcome = match &decision {
            Decision::Allow { target, rule } => {
                assert_eq!(Some(target), policy.resource(resource).map(|r| &r.target));
                (None, Some(rule.clone()))
            }
            Decision::Deny { reason, rule } => (Some(*reason), rule.clone()),
        };
        let when = Timestamp::from_second(now).unwrap();
        assert_eq!(
            got, want,
            "row {index}: {user} → {resource:?} at {when} (session age {age}s)"
        );
    }
}

/// The table's comments assume these calendar facts; check them so a typo in a date shows up.
#[test]
fn table_dates_are_what_the_comments_say() {
    let db = TimeZoneDatabase::bundled();
    let zurich_zone = db.get("Europe/Zurich").unwrap();
    let monday = Timestamp::from_second(zurich("2025-06-02T12:00"))
        .unwrap()
        .to_zoned(zurich_zone.clone());
    assert_eq!(monday.weekday(), Weekday::Monday);
    assert_eq!(monday.offset().seconds(), 2 * 3600);
    let new_york_zone = db.get("America/New_York").unwrap();
    let friday = Timestamp::from_second(new_york("2025-06-06T22:00"))
        .unwrap()
        .to_zoned(new_york_zone);
    assert_eq!(friday.weekday(), Weekday::Friday);
    assert_eq!(friday.offset().seconds(), -4 * 3600);
    // Last Sunday of March 2025: 01:59:59 CET is followed by 03:00:00 CEST.
    let before = Timestamp::from_second(utc("2025-03-30T00:59:59Z"))
        .unwrap()
        .to_zoned(zurich_zone.clone());
    let after = before.checked_add(1.second()).unwrap();
    assert_eq!(before.weekday(), Weekday::Sunday);
    assert_eq!((before.hour(), before.minute(), before.second()), (1, 59, 59));
    assert_eq!((after.hour(), after.minute(), after.second()), (3, 0, 0));
    assert_eq!(
        after.date().checked_add(7.days()).unwrap().month(),
        4,
        "the last Sunday of March"
    );
}
