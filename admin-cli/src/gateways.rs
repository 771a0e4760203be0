//! `rampart gateways list`: every gateway sharing the store, as each last reported itself
//! (asked through any one gateway's admin API, `--gateway-admin`), with those that went silent.

use crate::client::{CliError, Client, Connection};
use crate::view::{Output, Table, json};
use clap::Subcommand;
use jiff::Timestamp;
use rampart_api::gateway::{GatewayList, GatewayView};

/// Gateway commands.
#[derive(Debug, Subcommand)]
pub enum GatewaysCommand {
    /// List every gateway sharing the store: up, silent (no heartbeat for 15 s) or stopped.
    List,
}

/// Runs a gateways command against a gateway's admin API.
pub async fn run(connection: &Connection, output: Output, command: GatewaysCommand) -> Result<(), CliError> {
    let client = Client::gateway_admin(connection)?;
    match command {
        GatewaysCommand::List => {
            let list: GatewayList = client.get("/v1/gateways").await?;
            match output {
                Output::Json => json(&list)?,
                Output::Table => {
                    gateway_table(&list.gateways, Timestamp::now().as_second()).print("no gateway has registered")
                }
            }
        }
    }
    Ok(())
}

/// One row per gateway.
pub fn gateway_table(gateways: &[GatewayView], now: i64) -> Table {
    let mut table = Table::new(&[
        "GATEWAY",
        "STATE",
        "ADDRESS",
        "VERSION",
        "UP FOR",
        "LAST SEEN",
        "SESSIONS",
        "FLOWS",
    ]);
    for g in gateways {
        table.row(vec![
            g.id.clone(),
            g.state.clone(),
            g.address.clone(),
            g.version.clone(),
            ago(now.saturating_sub(g.started_at)),
            format!("{} ago", ago(now.saturating_sub(g.last_seen_at))),
            g.sessions.to_string(),
            g.flows.to_string(),
        ]);
    }
    table
}

/// Seconds as `45s`, `12m`, `3h`, `2d`.
fn ago(secs: i64) -> String {
    match secs.max(0) {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_gateways_stand_out_with_their_last_heartbeat() {
        let view = |id: &str, state: &str, seen: i64| GatewayView {
            id: id.to_owned(),
            address: "192.0.2.1:4433".to_owned(),
            admin_url: None,
            version: "0.1.0".to_owned(),
            started_at: 1000,
            last_seen_at: seen,
            sessions: 7,
            flows: 2,
            state: state.to_owned(),
        };
        let text = gateway_table(
            &[view("gw-a:4433", "up", 4995), view("gw-b:4433", "silent", 4000)],
            5000,
        )
        .render();
        assert!(
            text.contains("gw-a:4433") && text.contains("up") && text.contains("5s ago"),
            "{text}"
        );
        assert!(
            text.contains("gw-b:4433") && text.contains("silent") && text.contains("16m ago"),
            "{text}"
        );
    }
}
