//! Tests of the access policy: the acceptance table, validation, explanations and the old format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod explain;
mod legacy;
mod table;
mod validation;

use super::Identity;
use jiff::civil::DateTime;
use jiff::tz::TimeZoneDatabase;
use jiff::{SignedDuration, Timestamp};

/// The policy of the acceptance table: implicit rules, group and user rules, windows in two time
/// zones (one overnight), a session age limit, and a rule with both.
pub(super) const POLICY: &str = r#"
    [[resource]]
    name = "intranet"
    target = "intranet.bank.example:443"
    description = "Intranet"
    allow_groups = ["staff"]

    [[resource]]
    name = "mail"
    target = "mail.bank.example:993"
    description = "Mail"

    [[resource]]
    name = "payments"
    target = "10.0.0.5:8443"
    allow_users = ["Carol"]

    [[resource]]
    name = "backup"
    target = "backup.bank.example:22"

    [[resource]]
    name = "vault"
    target = "vault.bank.example:8200"

    [[rule]]
    name = "contractors-office-hours"
    resources = ["intranet", "mail"]
    groups = ["contractors"]
    time_zone = "Europe/Zurich"
    windows = ["Mon-Fri 07:00-20:00"]

    [[rule]]
    name = "dave-saturday"
    resources = ["mail"]
    users = ["Dave"]
    time_zone = "Europe/Zurich"
    windows = ["Sat 09:00-12:00"]

    [[rule]]
    name = "sunday-maint"
    resources = ["mail"]
    groups = ["maint"]
    time_zone = "Europe/Zurich"
    windows = ["Sun 07:00-09:00"]

    [[rule]]
    name = "night-ops"
    resources = ["backup"]
    groups = ["ops"]
    time_zone = "America/New_York"
    windows = ["Fri 22:00-06:00"]

    [[rule]]
    name = "erin-nights"
    resources = ["backup"]
    users = ["erin"]
    time_zone = "Europe/Zurich"
    windows = ["Sat 22:00-06:00"]

    [[rule]]
    name = "payments-8h"
    resources = ["payments"]
    groups = ["payments-ops"]
    max_session_age = "8h"

    [[rule]]
    name = "audit"
    resources = ["payments", "vault"]
    groups = ["auditors"]
    time_zone = "Europe/Zurich"
    windows = ["Mon-Fri 08:00-18:00"]
    max_session_age = "1h 30m"
"#;

/// The people of the acceptance table, by username.
pub(super) fn person(username: &str) -> Identity {
    let groups: &[&str] = match username {
        "alice" => &["staff", "vpn"],
        "dora" => &[" STAFF "],
        "bob" => &["contractors"],
        "ben" => &["contractors", "maint"],
        "mia" => &["maint"],
        "frank" => &["ops"],
        "pat" => &["payments-ops"],
        "quinn" => &["auditors"],
        "carol" | "dave" | "erin" | "nobody" => &[],
        "zed" => &["staff-not", "contractor"],
        other => panic!("no such person {other}"),
    };
    who(username, groups)
}

/// Everyone in [`person`].
pub(super) const PEOPLE: [&str; 13] = [
    "alice", "dora", "bob", "ben", "mia", "frank", "pat", "quinn", "carol", "dave", "erin", "zed", "nobody",
];

pub(super) fn who(username: &str, groups: &[&str]) -> Identity {
    Identity {
        username: username.into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

/// Unix seconds of a wall-clock time in an IANA zone, e.g. `civil("Europe/Zurich", "2025-06-02T07:00")`.
pub(super) fn civil(zone: &str, time: &str) -> i64 {
    let zone = TimeZoneDatabase::bundled().get(zone).unwrap();
    let time: DateTime = time.parse().unwrap();
    time.to_zoned(zone).unwrap().timestamp().as_second()
}

/// Wall-clock time in Zurich.
pub(super) fn zurich(time: &str) -> i64 {
    civil("Europe/Zurich", time)
}

/// Wall-clock time in New York.
pub(super) fn new_york(time: &str) -> i64 {
    civil("America/New_York", time)
}

/// An instant written in UTC, independent of any zone rules.
pub(super) fn utc(time: &str) -> i64 {
    time.parse::<Timestamp>().unwrap().as_second()
}

/// A duration such as `"8h 1s"`, in seconds.
pub(super) fn secs(duration: &str) -> i64 {
    duration.parse::<SignedDuration>().unwrap().as_secs()
}
