//! Reading records back for people: filters by user, resource, decision, source address, class
//! and time range over every stream in order, and a one-line summary of a record for tables
//! (strings from outside are shown escaped, so no record can drive the reader's terminal).
//!
//! Only lines whose own hash holds are shown: a line edited, or added by hand without its hash,
//! is skipped and counted. That is a per-line check — whether the lines still form the chain,
//! and whether its checkpoints are signed, is what `verify` answers.

use crate::AuditError;
use crate::files::{collect, for_each_line};
use rampart_core::audit::{Class, LineError, check_line};
use rampart_core::username::normalize_username;
use serde_json::Value;
use std::path::PathBuf;

/// Which records to keep; every set field must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The person (`user.name`) or the operator (`actor.user.name`), as usernames compare:
    /// case-insensitive, and any spelling normalising to the same name (`ＡＬＩＣＥ` is `alice`).
    pub user: Option<String>,
    /// The resource (`dst_endpoint.svc_name`, or a changed resource's name).
    pub resource: Option<String>,
    /// Allowed (true) or blocked (false).
    pub allowed: Option<bool>,
    /// Source IP address (`src_endpoint.ip`).
    pub source: Option<String>,
    /// Only this class.
    pub class: Option<Class>,
    /// From this time on, milliseconds since the epoch.
    pub since_ms: Option<i64>,
    /// Before this time.
    pub until_ms: Option<i64>,
}

impl Filter {
    /// Whether `record` passes. Checkpoints never do: they are not events.
    pub fn matches(&self, record: &Value) -> bool {
        if record.get("checkpoint").is_some() {
            return false;
        }
        let text = |v: &Value| v.as_str().map(str::to_owned);
        if let Some(user) = &self.user {
            let wanted = normalize_username(user).ok();
            let names = [&record["user"]["name"], &record["actor"]["user"]["name"]];
            if !names
                .iter()
                .filter_map(|v| v.as_str())
                .any(|n| n.eq_ignore_ascii_case(user) || wanted.is_some() && normalize_username(n).ok() == wanted)
            {
                return false;
            }
        }
        if let Some(resource) = &self.resource {
            let mut names: Vec<String> = text(&record["dst_endpoint"]["svc_name"]).into_iter().collect();
            if let Some(list) = record["resources"].as_array() {
                names.extend(list.iter().filter_map(|r| text(&r["name"])));
            }
            if !names.iter().any(|n| n == resource) {
                return false;
            }
        }
        if let Some(allowed) = self.allowed {
            let wanted = if allowed { 1 } else { 2 };
            if record["disposition_id"].as_u64() != Some(wanted) {
                return false;
            }
        }
        if let Some(source) = &self.source
            && record["src_endpoint"]["ip"].as_str() != Some(source.as_str())
        {
            return false;
        }
        if let Some(class) = self.class
            && record["class_uid"].as_u64() != Some(u64::from(class.uid()))
        {
            return false;
        }
        let time = record["time"].as_i64().unwrap_or(0);
        if self.since_ms.is_some_and(|since| time < since) || self.until_ms.is_some_and(|until| time >= until) {
            return false;
        }
        true
    }
}

/// Every record in `paths` that passes `filter`, stream after stream, each in order, and the
/// number of lines skipped because they are not sound records: unfinished (no `\n`), not a
/// record, or failing their own hash.
pub fn query(paths: &[PathBuf], filter: &Filter) -> Result<(Vec<Value>, u64), AuditError> {
    let mut found = Vec::new();
    let mut rejected = 0;
    for files in collect(paths)?.values() {
        for file in files {
            for_each_line(&file.path, |_, bytes, terminated| match checked_record(bytes) {
                Ok(record) if terminated => {
                    if filter.matches(&record) {
                        found.push(record);
                    }
                }
                _ => rejected += 1,
            })?;
        }
    }
    found.sort_by_key(|r| r["time"].as_i64().unwrap_or(0));
    Ok((found, rejected))
}

/// One line (without its `\n`) as a record with all its fields, `hash` included — if its
/// content matches its hash.
pub fn checked_record(line: &[u8]) -> Result<Value, LineError> {
    let link = check_line(line)?;
    let mut record = link.record;
    if let Some(fields) = record.as_object_mut() {
        fields.insert("hash".into(), Value::String(link.hash));
    }
    Ok(record)
}

/// Short class name for a record (`auth`, `decision`, `flow`, `account`, `api`).
pub fn class_label(record: &Value) -> &'static str {
    let uid = record["class_uid"].as_u64().unwrap_or(0);
    Class::ALL
        .into_iter()
        .find(|c| u64::from(c.uid()) == uid)
        .map_or("other", Class::short_name)
}

/// Columns for a table row: time, class, activity, user, source, resource or target, status,
/// detail. Strings are escaped for the terminal.
pub fn row(record: &Value) -> [String; 8] {
    let time = record["time"]
        .as_i64()
        .and_then(rampart_core::audit::event::format_time_ms)
        .unwrap_or_default();
    let user = record["user"]["name"]
        .as_str()
        .or_else(|| record["actor"]["user"]["name"].as_str())
        .unwrap_or("");
    let source = match (
        record["src_endpoint"]["ip"].as_str(),
        record["src_endpoint"]["port"].as_u64(),
    ) {
        (Some(ip), Some(port)) => format!("{ip}:{port}"),
        (Some(ip), None) => ip.to_owned(),
        _ => String::new(),
    };
    let dst = &record["dst_endpoint"];
    let mut resource = dst["svc_name"].as_str().unwrap_or("").to_owned();
    if resource.is_empty() {
        resource = record["api"]["operation"].as_str().unwrap_or("").to_owned();
    }
    if resource.is_empty()
        && let Some(r) = record["resources"].as_array().and_then(|l| l.first())
    {
        resource = format!(
            "{} {}",
            r["type"].as_str().unwrap_or(""),
            r["name"].as_str().unwrap_or("")
        );
    }
    let status = record["disposition"]
        .as_str()
        .or_else(|| record["status"].as_str())
        .unwrap_or("");
    let mut detail = record["status_detail"].as_str().unwrap_or("").to_owned();
    if let Some(count) = record["count"].as_u64() {
        detail = format!("{detail} count={count}").trim().to_owned();
    }
    if let Some(traffic) = record["traffic"].as_object() {
        let out = traffic.get("bytes_out").and_then(Value::as_u64).unwrap_or(0);
        let back = traffic.get("bytes_in").and_then(Value::as_u64).unwrap_or(0);
        detail = format!("{detail} out={out} in={back}").trim().to_owned();
    }
    [
        time,
        class_label(record).to_owned(),
        record["activity_name"].as_str().unwrap_or("").to_owned(),
        user.to_owned(),
        source,
        resource,
        status.to_owned(),
        detail,
    ]
    .map(|cell| printable(&cell))
}

pub use rampart_core::text::printable;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn flow() -> Value {
        json!({
            "time": 2_000, "class_uid": 4001, "activity_name": "Close",
            "user": {"name": "Alice"}, "src_endpoint": {"ip": "10.1.2.3", "port": 5555},
            "dst_endpoint": {"svc_name": "intranet", "hostname": "intra", "port": 443},
            "disposition_id": 1, "disposition": "Allowed", "status": "Success",
            "traffic": {"bytes_in": 10, "bytes_out": 20}
        })
    }

    #[test]
    fn each_filter_field_narrows() {
        let record = flow();
        let pass = |f: Filter| f.matches(&record);
        assert!(pass(Filter::default()));
        assert!(pass(Filter {
            user: Some("alice".into()),
            ..Filter::default()
        }));
        assert!(!pass(Filter {
            user: Some("bob".into()),
            ..Filter::default()
        }));
        for spelling in ["ＡＬＩＣＥ", " alice\t", "Ａlice"] {
            assert!(
                pass(Filter {
                    user: Some(spelling.into()),
                    ..Filter::default()
                }),
                "{spelling:?} is alice"
            );
        }
        assert!(!pass(Filter {
            user: Some("alic".into()),
            ..Filter::default()
        }));
        assert!(pass(Filter {
            resource: Some("intranet".into()),
            ..Filter::default()
        }));
        assert!(!pass(Filter {
            resource: Some("payments".into()),
            ..Filter::default()
        }));
        assert!(pass(Filter {
            allowed: Some(true),
            ..Filter::default()
        }));
        assert!(!pass(Filter {
            allowed: Some(false),
            ..Filter::default()
        }));
        assert!(pass(Filter {
            source: Some("10.1.2.3".into()),
            ..Filter::default()
        }));
        assert!(!pass(Filter {
            source: Some("10.1.2.4".into()),
            ..Filter::default()
        }));
        assert!(pass(Filter {
            class: Some(Class::NetworkActivity),
            ..Filter::default()
        }));
        assert!(!pass(Filter {
            class: Some(Class::Authentication),
            ..Filter::default()
        }));
        assert!(pass(Filter {
            since_ms: Some(2_000),
            until_ms: Some(2_001),
            ..Filter::default()
        }));
        assert!(!pass(Filter {
            since_ms: Some(2_001),
            ..Filter::default()
        }));
        assert!(!pass(Filter {
            until_ms: Some(2_000),
            ..Filter::default()
        }));
        assert!(!Filter::default().matches(&json!({"checkpoint": {}})));
    }

    #[test]
    fn only_lines_whose_hash_holds_are_shown() {
        use rampart_core::audit::{GENESIS, seal};
        let dir = tempfile::tempdir().unwrap();
        let genuine = seal(0, GENESIS, &flow()).unwrap();
        let mut forged = flow();
        forged["user"]["name"] = json!("mallory");
        let mut edited = String::from_utf8(seal(1, &genuine.hash, &flow()).unwrap().line).unwrap();
        edited = edited.replacen("Alice", "Alica", 1);
        let unfinished = seal(2, &genuine.hash, &flow()).unwrap().line;
        let mut text = String::from_utf8(genuine.line.clone()).unwrap();
        text.push_str(&format!("{forged}\n{edited}"));
        text.push_str(std::str::from_utf8(&unfinished[..unfinished.len() - 1]).unwrap());
        std::fs::write(dir.path().join("gw-0000000000000000.jsonl"), text).unwrap();

        let (records, rejected) = query(&[dir.path().to_path_buf()], &Filter::default()).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0]["user"]["name"], "Alice");
        assert_eq!(records[0]["hash"], genuine.hash.as_str());
        assert_eq!(rejected, 3);
        let whole: Value = serde_json::from_slice(&genuine.line).unwrap();
        assert_eq!(records[0], whole, "the same record as the line read whole");
    }

    #[test]
    fn a_loss_report_shows_its_count() {
        let record = json!({"class_uid": 1008, "status": "Failure", "status_detail": "records_dropped", "count": 7});
        let cells = row(&record);
        assert_eq!(cells[1], "log");
        assert_eq!(cells[7], "records_dropped count=7");
    }

    #[test]
    fn table_cells_cannot_drive_a_terminal() {
        let mut record = flow();
        record["user"]["name"] = json!("ev\u{1b}[2Jil\nroot\u{2028}");
        let cells = row(&record);
        assert_eq!(cells[3], "ev\\u{1b}[2Jil\\u{a}root\\u{2028}");
        assert_eq!(cells[7], "out=20 in=10");
        assert_eq!(cells[1], "flow");
    }
}
