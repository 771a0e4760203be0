//! `rampart report`, `rampart operator …` and `rampart keys …`: the token report, operators
//! and their API keys, and the seed-sealing keys.

use crate::client::{CliError, Client, segment};
use crate::token::token_table;
use crate::view::out;
use crate::view::{Output, Table, json, time};
use clap::Subcommand;
use rampart_api::provisioner::{CreatedOperator, KeysInfo, NewOperator, OperatorInfo, RotateResponse, TokenReport};

/// Operator commands.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Create an operator and print its API key (shown only once).
    Create {
        /// Unique name.
        name: String,
        /// admin, helpdesk or auditor.
        #[arg(long)]
        role: String,
    },
    /// List operators.
    List,
    /// Withdraw an operator's API key.
    Revoke {
        /// Operator name.
        name: String,
    },
}

/// Seed-sealing key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the keys and how many tokens each seals.
    List,
    /// Add a new key and re-seal every seed under it.
    Rotate,
    /// Remove a key that seals nothing any more.
    Retire {
        /// Key id.
        id: u32,
    },
}

/// `rampart report`.
pub async fn report(client: &Client, output: Output, pending_days: Option<u32>) -> Result<(), CliError> {
    let path = match pending_days {
        Some(days) => format!("/v1/reports/tokens?pending_days={days}"),
        None => "/v1/reports/tokens".to_owned(),
    };
    let report: TokenReport = client.get(&path).await?;
    if output == Output::Json {
        json(&report)?;
        return Ok(());
    }
    out!("Tokens on {}", time(Some(report.generated_at)));
    let mut states = Table::new(&["STATE", "TOKENS"]);
    for (state, count) in &report.by_state {
        states.row(vec![state.clone(), count.to_string()]);
    }
    out!("{}", states.render().trim_end_matches('\n'));
    out!("People with a working token: {}\n", report.people_with_live_token);
    let mut groups = Table::new(&["GROUP", "PENDING", "ACTIVE"]);
    for (group, counts) in &report.per_group {
        let count = |state: &str| counts.get(state).copied().unwrap_or(0).to_string();
        groups.row(vec![group.clone(), count("pending"), count("active")]);
    }
    groups.print("No groups.");
    out!(
        "\nPending for more than {} days ({}):",
        report.pending_days,
        report.pending_older.len()
    );
    token_table(&report.pending_older).print("  none");
    out!("\nLocked ({}):", report.locked.len());
    token_table(&report.locked).print("  none");
    Ok(())
}

/// `rampart operator …`.
pub async fn operator(client: &Client, output: Output, command: OperatorCommand) -> Result<(), CliError> {
    match command {
        OperatorCommand::Create { name, role } => {
            let created: CreatedOperator = client.post("/v1/operators", &NewOperator { name, role }).await?;
            match output {
                Output::Json => json(&created)?,
                Output::Table => out!(
                    "Operator {} ({}) created. Its API key, shown only now:\n  {}",
                    created.operator.name,
                    created.operator.role,
                    created.api_key
                ),
            }
        }
        OperatorCommand::List => {
            let operators: Vec<OperatorInfo> = client.get("/v1/operators").await?;
            match output {
                Output::Json => json(&operators)?,
                Output::Table => {
                    let mut table = Table::new(&["NAME", "ROLE", "CREATED", "BY", "WITHDRAWN"]);
                    for op in &operators {
                        table.row(vec![
                            op.name.clone(),
                            op.role.clone(),
                            time(Some(op.created_at)),
                            op.created_by.clone(),
                            time(op.revoked_at),
                        ]);
                    }
                    table.print("No operators.");
                }
            }
        }
        OperatorCommand::Revoke { name } => {
            client.delete(&format!("/v1/operators/{}", segment(&name))).await?;
            if output == Output::Table {
                out!("The API key of {name} is withdrawn.");
            } else {
                json(&serde_json::json!({ "revoked": name }))?;
            }
        }
    }
    Ok(())
}

/// `rampart keys …`.
pub async fn keys(client: &Client, output: Output, command: KeysCommand) -> Result<(), CliError> {
    match command {
        KeysCommand::List => {
            let keys: KeysInfo = client.get("/v1/keys").await?;
            match output {
                Output::Json => json(&keys)?,
                Output::Table => {
                    let mut table = Table::new(&["KEY", "CURRENT", "TOKENS"]);
                    for key in &keys.keys {
                        table.row(vec![
                            key.id.to_string(),
                            if key.current { "yes".into() } else { String::new() },
                            key.tokens.to_string(),
                        ]);
                    }
                    table.print("No keys.");
                }
            }
        }
        KeysCommand::Rotate => {
            let rotated: RotateResponse = client.post("/v1/keys/rotate", &()).await?;
            match output {
                Output::Json => json(&rotated)?,
                Output::Table => {
                    out!(
                        "Key {} is now current; {} token(s) re-sealed under it.",
                        rotated.new_key,
                        rotated.resealed
                    );
                    if !rotated.failed.is_empty() {
                        out!("Could not re-seal: {}", rotated.failed.join(", "));
                    }
                    if !rotated.retirable.is_empty() {
                        let ids: Vec<String> = rotated.retirable.iter().map(u32::to_string).collect();
                        out!(
                            "Keys sealing nothing now: {} (remove with `rampart keys retire ID`).",
                            ids.join(", ")
                        );
                    }
                }
            }
            if !rotated.failed.is_empty() {
                return Err(CliError {
                    message: format!("{} token(s) could not be re-sealed", rotated.failed.len()),
                    code: crate::client::exit::FAILURE,
                });
            }
        }
        KeysCommand::Retire { id } => {
            client.delete(&format!("/v1/keys/{id}")).await?;
            match output {
                Output::Json => json(&serde_json::json!({ "retired": id }))?,
                Output::Table => out!("Key {id} removed from the key file."),
            }
        }
    }
    Ok(())
}
