//! `rampart sessions …`: who is connected through a gateway right now (its admin API,
//! `--gateway-admin`), and ending one session or all of one person's sessions.

use crate::client::{CliError, Client, Connection, exit, segment};
use crate::view::{Output, Table, json, say};
use clap::{ArgGroup, Subcommand};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rampart_api::gateway::{KillResult, SessionList, SessionView};

/// The shortest session id prefix `kill` accepts in place of the full id (what the table shows).
const SHORT_ID: usize = 8;

/// Session commands.
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List the people connected through the gateway now.
    List {
        /// Only this person's sessions (username).
        #[arg(long)]
        user: Option<String>,
    },
    /// End a session now (give its id), or every session of one person (give --user).
    ///
    /// The person is disconnected at once and must log in again.
    #[command(group(ArgGroup::new("which").required(true).multiple(false).args(["id", "user"])))]
    Kill {
        /// Session id, as shown by `rampart sessions list` (the first 8 characters are enough).
        id: Option<String>,
        /// End every session of this person (username) instead.
        #[arg(long)]
        user: Option<String>,
    },
}

/// Runs a sessions command against the gateway's admin API.
pub async fn run(connection: &Connection, output: Output, command: SessionsCommand) -> Result<(), CliError> {
    let client = Client::gateway_admin(connection)?;
    match command {
        SessionsCommand::List { user } => {
            let list = list(&client, user.as_deref()).await?;
            match output {
                Output::Json => json(&list)?,
                Output::Table => session_table(&list.sessions, Timestamp::now().as_second(), &TimeZone::system())
                    .print("no live sessions"),
            }
        }
        SessionsCommand::Kill { id, user } => {
            let result = match (id, user) {
                (_, Some(user)) => {
                    let result: KillResult = client
                        .delete_json(&format!("/v1/people/{}/sessions", segment(&user)))
                        .await?;
                    if result.ended.is_empty() && output == Output::Table {
                        say!("{user} has no live session; nothing ended");
                        return Ok(());
                    }
                    result
                }
                (Some(id), None) => kill_one(&client, id.trim()).await?,
                (None, None) => return Err(CliError::failure("give a session id or --user NAME")),
            };
            match output {
                Output::Json => json(&result)?,
                Output::Table => say!("{}", kill_summary(&result)),
            }
        }
    }
    Ok(())
}

async fn list(client: &Client, user: Option<&str>) -> Result<SessionList, CliError> {
    let path = match user {
        Some(user) => {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("user", user)
                .finish();
            format!("/v1/sessions?{query}")
        }
        None => "/v1/sessions".to_owned(),
    };
    client.get(&path).await
}

/// Ends one session; a short id from the table is completed from the live sessions.
async fn kill_one(client: &Client, id: &str) -> Result<KillResult, CliError> {
    if id.is_empty() {
        return Err(CliError::failure("the session id is empty"));
    }
    let not_live = || CliError {
        message: format!(
            "session {id} is not live on the gateway at {} (it has ended, or it is on another gateway)",
            client.base()
        ),
        code: exit::NOT_FOUND,
    };
    match client.delete_json(&format!("/v1/sessions/{}", segment(id))).await {
        Err(e) if e.code == exit::NOT_FOUND => {}
        other => return other,
    }
    if id.chars().count() < SHORT_ID {
        return Err(not_live());
    }
    let live = list(client, None).await?;
    let matching: Vec<&SessionView> = live.sessions.iter().filter(|s| s.id.starts_with(id)).collect();
    match matching.as_slice() {
        [] => Err(not_live()),
        [session] => client
            .delete_json(&format!("/v1/sessions/{}", segment(&session.id)))
            .await
            .map_err(|e| if e.code == exit::NOT_FOUND { not_live() } else { e }),
        _ => Err(CliError::failure(format!(
            "{id} matches {} live sessions; give more of the id",
            matching.len()
        ))),
    }
}

/// `ended 2 session(s): 3f2a…, 9b01…`.
fn kill_summary(result: &KillResult) -> String {
    if result.ended.is_empty() {
        "ended 0 sessions".to_owned()
    } else {
        format!("ended {} session(s): {}", result.ended.len(), result.ended.join(", "))
    }
}

/// The live sessions as a table; `now` (unix seconds) gives the idle times, `tz` the local time.
pub fn session_table(sessions: &[SessionView], now: i64, tz: &TimeZone) -> Table {
    let mut table = Table::new(&[
        "SESSION",
        "USER",
        "GATEWAY",
        "SOURCE",
        "SINCE",
        "IDLE",
        "CONN",
        "FLOWS",
        "RESOURCES",
        "UP",
        "DOWN",
    ]);
    for s in sessions {
        table.row(vec![
            s.id.chars().take(SHORT_ID).collect(),
            s.user.clone(),
            s.gateway.clone().unwrap_or_else(|| "-".to_owned()),
            s.source.clone(),
            local_time(s.since, tz),
            duration(now.saturating_sub(s.last_activity)),
            s.connections.to_string(),
            s.active_flows.to_string(),
            if s.resources_used.is_empty() {
                "-".to_owned()
            } else {
                s.resources_used.join(",")
            },
            bytes(s.bytes_to_targets),
            bytes(s.bytes_from_targets),
        ]);
    }
    table
}

/// Unix seconds as local `2026-11-23 08:30`.
fn local_time(unix: i64, tz: &TimeZone) -> String {
    Timestamp::from_second(unix).map_or_else(
        |_| "-".to_owned(),
        |t| t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M").to_string(),
    )
}

/// A duration in seconds as `45s`, `3m`, `2h05m`, `3d4h`.
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// Bytes as `512 B`, `1.2 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    #[allow(clippy::cast_precision_loss)] // one decimal is all that is shown
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const SAMPLE: &str = r#"{
        "sessions": [
            {
                "id": "3f2a9c01d4e5b6a7c8d9e0f1a2b3c4d5",
                "user": "alice",
                "user_id": "u-1001",
                "groups": ["finance", "staff"],
                "source": "198.51.100.7:50412",
                "since": 1795419000,
                "expires_at": 1795447800,
                "last_activity": 1795422420,
                "connections": 1,
                "active_flows": 2,
                "resources_used": ["payments", "wiki"],
                "bytes_to_targets": 1258291,
                "bytes_from_targets": 512
            },
            {
                "id": "9b01aa",
                "user": "bob",
                "user_id": "u-1002",
                "groups": [],
                "source": "203.0.113.9:6000",
                "since": 1795420800,
                "expires_at": 1795449600,
                "last_activity": 1795422600,
                "connections": 0,
                "active_flows": 0,
                "resources_used": [],
                "bytes_to_targets": 0,
                "bytes_from_targets": 3221225472
            }
        ]
    }"#;

    #[test]
    fn session_list_renders_as_a_table() {
        let list: SessionList = serde_json::from_str(SAMPLE).unwrap();
        let tz = TimeZone::fixed(jiff::tz::offset(1));
        // 2026-11-23 08:30 CET is 1795419000.
        let text = session_table(&list.sessions, 1_795_422_600, &tz).render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        for title in [
            "SESSION",
            "USER",
            "SOURCE",
            "SINCE",
            "IDLE",
            "CONN",
            "FLOWS",
            "RESOURCES",
            "UP",
            "DOWN",
        ] {
            assert!(lines[0].contains(title), "{title} missing: {text}");
        }
        let alice = lines[1];
        assert!(alice.starts_with("3f2a9c01  alice"), "{alice}");
        assert!(!alice.contains("3f2a9c01d"), "tables show the short id: {alice}");
        for cell in [
            "198.51.100.7:50412",
            "2026-11-23 08:30",
            "3m",
            "payments,wiki",
            "1.2 MiB",
            "512 B",
        ] {
            assert!(alice.contains(cell), "{cell} missing: {alice}");
        }
        let bob = lines[2];
        for cell in ["9b01aa", "bob", "0s", "3.0 GiB", "2026-11-23 09:00"] {
            assert!(bob.contains(cell), "{cell} missing: {bob}");
        }
    }

    #[test]
    fn durations_and_sizes_read_plainly() {
        assert_eq!(duration(-5), "0s");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(180), "3m");
        assert_eq!(duration(7500), "2h05m");
        assert_eq!(duration(3 * 86_400 + 4 * 3600 + 59), "3d4h");
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(1_258_291), "1.2 MiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn kill_summary_lists_the_ids() {
        let result = KillResult {
            ended: vec!["aa".into(), "bb".into()],
        };
        assert_eq!(kill_summary(&result), "ended 2 session(s): aa, bb");
        assert_eq!(kill_summary(&KillResult { ended: vec![] }), "ended 0 sessions");
    }
}
