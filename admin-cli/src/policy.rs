//! `rampart policy …`: ask a gateway (its admin API, `--gateway-admin`) why someone may or may
//! not open a resource, which policy file it enforces, and make it re-read that file now.

use crate::client::{CliError, Client, Connection, exit};
use crate::view::out;
use crate::view::{Output, Table, json};
use clap::Subcommand;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned, civil};
use rampart_api::gateway::PolicyStatus;
use rampart_core::policy::{Explanation, RuleCheck};

/// Policy commands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Explain whether a person may open a resource, and which rule decides it.
    ///
    /// The gateway uses the person's groups as the directory gives them now.
    Explain {
        /// Username.
        #[arg(long)]
        user: String,
        /// Resource name, as in the policy file.
        #[arg(long)]
        resource: String,
        /// When: `now` (the default), a local date and time such as `2026-11-23 08:30`, a time
        /// today such as `08:30`, a time with its offset such as `2026-11-23T08:30:00+01:00`, or
        /// unix seconds.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Show the policy file the gateway enforces, and any edit it refused.
    Status,
    /// Make the gateway re-read its policy file now (an invalid file is refused and the policy
    /// in force stays).
    Reload,
}

/// Runs a policy command against the gateway's admin API.
pub async fn run(connection: &Connection, output: Output, command: PolicyCommand) -> Result<(), CliError> {
    let tz = TimeZone::system();
    match command {
        PolicyCommand::Explain { user, resource, at } => {
            // A bad --at is reported before anything is sent.
            let at = at.map(|text| parse_at(&text, &tz, Timestamp::now())).transpose()?;
            let client = Client::gateway_admin(connection)?;
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("user", &user).append_pair("resource", &resource);
            if let Some(at) = at {
                query.append_pair("at", &at.to_string());
            }
            let explanation: Explanation = client.get(&format!("/v1/policy/explain?{}", query.finish())).await?;
            match output {
                Output::Json => json(&explanation)?,
                Output::Table => out!("{}", render_explanation(&explanation, &tz).trim_end_matches('\n')),
            }
        }
        PolicyCommand::Status => {
            let client = Client::gateway_admin(connection)?;
            let status: PolicyStatus = client.get("/v1/policy").await?;
            match output {
                Output::Json => json(&status)?,
                Output::Table => out!("{}", render_status(&status, &tz).trim_end_matches('\n')),
            }
        }
        PolicyCommand::Reload => {
            let client = Client::gateway_admin(connection)?;
            let status: PolicyStatus = client.post("/v1/policy/reload", &()).await.map_err(|e| {
                if e.code == exit::FAILURE {
                    // 422: the message lists the problems in the file.
                    CliError::failure(format!(
                        "the gateway did not reload the policy; the policy loaded before stays in force.\n{}",
                        e.message
                    ))
                } else {
                    e
                }
            })?;
            match output {
                Output::Json => json(&status)?,
                Output::Table => out!("{}", render_reload(&status, &tz).trim_end_matches('\n')),
            }
        }
    }
    Ok(())
}

/// Reads `--at` as a person types it into unix seconds: `now`, unix seconds, RFC 3339 with an
/// offset (or a `[Zone/Name]`), a civil date and time in `tz`, or a time of day today in `tz`.
pub fn parse_at(text: &str, tz: &TimeZone, now: Timestamp) -> Result<i64, CliError> {
    parse_time("--at", text, tz, now)
}

/// Reads a time option named `flag` the way [`parse_at`] reads `--at`.
pub fn parse_time(flag: &str, text: &str, tz: &TimeZone, now: Timestamp) -> Result<i64, CliError> {
    let text = text.trim();
    let bad = |why: &str| {
        CliError::failure(format!(
            "cannot read {flag} {text:?}{why}: give a local date and time such as 2026-11-23 08:30, a time \
             today such as 08:30, a time with its offset such as 2026-11-23T08:30:00+01:00, unix seconds, \
             or now"
        ))
    };
    if text.eq_ignore_ascii_case("now") {
        return Ok(now.as_second());
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .ok()
            .and_then(|secs| Timestamp::from_second(secs).ok())
            .map(Timestamp::as_second)
            .ok_or_else(|| bad(" (unix seconds out of range)"));
    }
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t.as_second());
    }
    if let Ok(z) = text.parse::<Zoned>() {
        return Ok(z.timestamp().as_second());
    }
    let civil = text.parse::<civil::DateTime>().or_else(|_| {
        text.parse::<civil::Time>()
            .map(|time| now.to_zoned(tz.clone()).date().to_datetime(time))
    });
    match civil {
        Ok(dt) => tz
            .to_zoned(dt)
            .map(|z| z.timestamp().as_second())
            .map_err(|_| bad(" (not a time in this time zone)")),
        Err(_) => Err(bad("")),
    }
}

/// Unix seconds as local `2026-11-23 08:30 CET`.
fn local_time(unix: i64, tz: &TimeZone) -> String {
    Timestamp::from_second(unix).map_or_else(
        |_| unix.to_string(),
        |t| t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string(),
    )
}

fn yes_no(value: Option<bool>) -> String {
    match value {
        Some(true) => "yes".to_owned(),
        Some(false) => "no".to_owned(),
        None => "-".to_owned(),
    }
}

/// `8h`, `90m`, `45s`.
fn age(secs: u64) -> String {
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// The answer as a person reads it: the verdict line, the reason, the groups, the rule checks.
pub fn render_explanation(e: &Explanation, tz: &TimeZone) -> String {
    let mut out = format!(
        "{:<7} {} → {} at {}\n{}\n",
        if e.allowed { "ALLOWED" } else { "DENIED" },
        e.user,
        e.resource,
        local_time(e.at, tz),
        e.reason
    );
    out.push_str(&format!(
        "Groups: {}\n",
        if e.groups.is_empty() {
            "none".to_owned()
        } else {
            e.groups.join(", ")
        }
    ));
    if let Some(rule) = &e.decided_by {
        out.push_str(&format!("Decided by: {rule}\n"));
    }
    out.push('\n');
    if e.rules.is_empty() {
        out.push_str("No rule of the policy concerns this resource.\n");
    } else {
        out.push_str(&rule_table(&e.rules).render());
    }
    rampart_core::text::printable_lines(&out)
}

fn rule_table(rules: &[RuleCheck]) -> Table {
    let with_age = rules.iter().any(|r| r.max_session_age_secs.is_some());
    let mut table = if with_age {
        Table::new(&["RULE", "NAMES", "HOURS", "IN HOURS", "MAX SESSION", "OUTCOME"])
    } else {
        Table::new(&["RULE", "NAMES", "HOURS", "IN HOURS", "OUTCOME"])
    };
    for r in rules {
        let mut row = vec![
            r.rule.clone(),
            r.names_person.clone().unwrap_or_else(|| "-".to_owned()),
            match (&r.windows, &r.local_time) {
                (Some(windows), Some(local)) => format!("{windows}; there it is {local}"),
                (Some(windows), None) => windows.clone(),
                (None, _) => "any time".to_owned(),
            },
            yes_no(r.in_window),
        ];
        if with_age {
            row.push(match (r.max_session_age_secs, r.session_age_ok) {
                (Some(max), Some(true)) => format!("{} (ok)", age(max)),
                (Some(max), Some(false)) => format!("{} (too old)", age(max)),
                (Some(max), None) => age(max),
                (None, _) => "-".to_owned(),
            });
        }
        row.push(r.outcome.clone());
        table.row(row);
    }
    table
}

/// The policy status as labelled lines, then any refused edit's problems.
pub fn render_status(status: &PolicyStatus, tz: &TimeZone) -> String {
    let mut out = format!(
        "Policy file  {}\nSHA-256      {}\nLoaded       {}\nResources    {}\nRules        {}\n",
        status.path,
        status.sha256,
        local_time(status.loaded_at, tz),
        status.resources,
        status.rules
    );
    if !status.rejected.is_empty() {
        out.push_str("\nThe file on disk was changed but refused, so the policy above stays in force. Problems:\n");
        for problem in &status.rejected {
            out.push_str(&format!("  - {problem}\n"));
        }
    }
    rampart_core::text::printable_lines(&out)
}

/// A reload's answer: whether the file took effect now or already was the policy in force.
pub fn render_reload(status: &PolicyStatus, tz: &TimeZone) -> String {
    let headline = if status.reloaded == Some(false) {
        "Policy unchanged: the file is the policy in force.\n"
    } else {
        "Policy reloaded.\n"
    };
    format!("{headline}{}", render_status(status, tz))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Central European time without needing the system's time zone database.
    fn cet() -> TimeZone {
        TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap()
    }

    fn now() -> Timestamp {
        // 2026-11-23 07:30:00 UTC = 08:30 CET.
        Timestamp::from_second(1_795_419_000).unwrap()
    }

    #[test]
    fn at_accepts_what_people_type() {
        let tz = cet();
        let at = |text: &str| parse_at(text, &tz, now());
        assert_eq!(at("now").unwrap(), 1_795_419_000);
        assert_eq!(at(" NOW ").unwrap(), 1_795_419_000);
        assert_eq!(at("1795419000").unwrap(), 1_795_419_000);
        assert_eq!(at("2026-11-23T08:30:00+01:00").unwrap(), 1_795_419_000);
        assert_eq!(at("2026-11-23T07:30:00Z").unwrap(), 1_795_419_000);
        assert_eq!(at("2026-11-23 07:30Z").unwrap(), 1_795_419_000);
        // Civil times are local (CET here), with or without the T and the seconds.
        assert_eq!(at("2026-11-23 08:30").unwrap(), 1_795_419_000);
        assert_eq!(at("2026-11-23T08:30").unwrap(), 1_795_419_000);
        assert_eq!(at("2026-11-23 08:30:15").unwrap(), 1_795_419_015);
        // Summer time applies in summer.
        assert_eq!(
            at("2026-07-01 08:30").unwrap(),
            at("2026-07-01T08:30:00+02:00").unwrap()
        );
        // A time alone is today, locally.
        assert_eq!(at("09:15").unwrap(), 1_795_419_000 + 45 * 60);
    }

    #[test]
    fn at_refuses_garbage_clearly() {
        let tz = cet();
        for text in [
            "",
            "tomorrow",
            "2026-13-01 08:00",
            "23/11/2026 08:30",
            "99999999999999999999",
            "-5",
        ] {
            let err = parse_at(text, &tz, now()).unwrap_err();
            assert_eq!(err.code, exit::FAILURE, "{text}");
            assert!(err.message.contains("--at"), "{}", err.message);
            assert!(err.message.contains("2026-11-23 08:30"), "{}", err.message);
        }
    }

    const EXPLANATION: &str = r#"{
        "user": "alice",
        "groups": ["finance", "staff"],
        "resource": "payments",
        "at": 1795419000,
        "allowed": false,
        "decided_by": null,
        "reason": "alice is in finance, but finance may open payments only on weekdays 09:00-17:00.",
        "rules": [
            {
                "rule": "payments-office-hours",
                "names_person": "group finance",
                "windows": "Mon-Fri 09:00-17:00",
                "in_window": false,
                "max_session_age_secs": null,
                "session_age_ok": null,
                "outcome": "outside hours"
            },
            {
                "rule": "payments-admins",
                "names_person": null,
                "windows": null,
                "in_window": null,
                "max_session_age_secs": null,
                "session_age_ok": null,
                "outcome": "does not name alice"
            }
        ]
    }"#;

    #[test]
    fn explanation_reads_as_a_verdict_reason_and_rule_table() {
        let e: Explanation = serde_json::from_str(EXPLANATION).unwrap();
        let text = render_explanation(&e, &cet());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "DENIED  alice → payments at 2026-11-23 08:30 CET");
        assert_eq!(lines[1], e.reason);
        assert!(text.contains("Groups: finance, staff"), "{text}");
        assert!(!text.contains("Decided by"), "{text}");
        let header = lines.iter().position(|l| l.starts_with("RULE")).unwrap();
        for title in ["NAMES", "HOURS", "IN HOURS", "OUTCOME"] {
            assert!(lines[header].contains(title), "{text}");
        }
        assert!(!lines[header].contains("MAX SESSION"), "{text}");
        let first = lines[header + 1];
        for cell in [
            "payments-office-hours",
            "group finance",
            "Mon-Fri 09:00-17:00",
            "no",
            "outside hours",
        ] {
            assert!(first.contains(cell), "{cell} missing: {first}");
        }
        let second = lines[header + 2];
        for cell in ["payments-admins", "any time", "does not name alice"] {
            assert!(second.contains(cell), "{cell} missing: {second}");
        }
    }

    #[test]
    fn allowed_explanation_names_the_deciding_rule_and_session_age() {
        let mut e: Explanation = serde_json::from_str(EXPLANATION).unwrap();
        e.allowed = true;
        e.decided_by = Some("payments-office-hours".into());
        e.rules[0].in_window = Some(true);
        e.rules[0].max_session_age_secs = Some(8 * 3600);
        e.rules[0].session_age_ok = Some(true);
        e.rules[0].outcome = "allows".into();
        let text = render_explanation(&e, &cet());
        assert!(
            text.starts_with("ALLOWED alice → payments at 2026-11-23 08:30 CET\n"),
            "{text}"
        );
        assert!(text.contains("Decided by: payments-office-hours"), "{text}");
        assert!(text.contains("MAX SESSION"), "{text}");
        assert!(text.contains("8h (ok)"), "{text}");
    }

    #[test]
    fn status_shows_the_file_and_refused_edits() {
        let status = PolicyStatus {
            path: "/etc/rampart/policy.toml".into(),
            sha256: "ab12".into(),
            loaded_at: 1_795_419_000,
            resources: 3,
            rules: 7,
            rejected: vec!["line 4: unknown group \"finanse\"".into()],
            reloaded: None,
        };
        let text = render_status(&status, &cet());
        assert!(text.contains("Policy file  /etc/rampart/policy.toml"), "{text}");
        assert!(text.contains("Loaded       2026-11-23 08:30 CET"), "{text}");
        assert!(text.contains("Rules        7"), "{text}");
        assert!(text.contains("refused"), "{text}");
        assert!(text.contains("  - line 4: unknown group"), "{text}");
    }

    #[test]
    fn reload_says_whether_anything_changed() {
        let mut status = PolicyStatus {
            path: "/etc/rampart/policy.toml".into(),
            sha256: "ab12".into(),
            loaded_at: 1_795_419_000,
            resources: 3,
            rules: 7,
            rejected: Vec::new(),
            reloaded: Some(true),
        };
        assert!(render_reload(&status, &cet()).starts_with("Policy reloaded.\n"));
        status.reloaded = Some(false);
        let text = render_reload(&status, &cet());
        assert!(
            text.starts_with("Policy unchanged: the file is the policy in force.\n"),
            "{text}"
        );
        assert!(!text.contains("reloaded"), "{text}");
    }
}
