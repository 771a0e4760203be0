//! `rampart-gateway`: runs the gateway from a config file, or checks the config and policy.

mod check_directory;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rampart_gateway::logging::{self, LogFormat};
use rampart_gateway::{Gateway, GatewayConfig};
use std::path::PathBuf;
use std::process::ExitCode;

/// Rampart gateway: QUIC login and per-resource TCP forwarding.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t, global = true, env = "RAMPART_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve until SIGINT or SIGTERM.
    Run {
        /// Config file.
        #[arg(long, short, env = "RAMPART_GATEWAY_CONFIG")]
        config: PathBuf,
    },
    /// Look a person up in the configured directory and show what the gateway would see:
    /// DN, stable id, groups, enabled state, and whether the password is right.
    CheckDirectory {
        /// Config file.
        #[arg(long, short, env = "RAMPART_GATEWAY_CONFIG")]
        config: PathBuf,
        /// The username as the person types it.
        #[arg(long)]
        user: String,
        /// Read the password from standard input instead of a hidden prompt.
        #[arg(long)]
        password_stdin: bool,
        /// Skip the password check; only look the person up.
        #[arg(long, conflicts_with = "password_stdin")]
        no_password: bool,
    },
    /// Check the config and the policy it names, print every problem, and exit.
    CheckConfig {
        /// Config file.
        #[arg(long, short, env = "RAMPART_GATEWAY_CONFIG")]
        config: PathBuf,
    },
}

/// Exit code for an invalid configuration (EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    match cli.command {
        Command::CheckConfig { config } => check_config(&config),
        Command::CheckDirectory {
            config,
            user,
            password_stdin,
            no_password,
        } => match check_directory::run(&config, &user, password_stdin, no_password) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Run { config } => {
            let config = match GatewayConfig::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            match run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    let mut problems = Vec::new();
    match GatewayConfig::load(path) {
        Err(e) => problems.push(e.to_string()),
        Ok(config) => match std::fs::read_to_string(&config.policy) {
            Err(e) => problems.push(format!("cannot read policy {}: {e}", config.policy.display())),
            Ok(text) => {
                if let Err(errors) = rampart_core::policy::Policy::parse(&text) {
                    problems.extend(errors.0.iter().map(|p| format!("{}: {p}", config.policy.display())));
                }
            }
        },
    }
    if problems.is_empty() {
        println!("{}: ok", path.display());
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            eprintln!("error: {p}");
        }
        ExitCode::from(EXIT_CONFIG)
    }
}

fn run(config: GatewayConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let gateway = Gateway::from_config(&config).await?;
        gateway.run(rampart_gateway::shutdown::signal()).await;
        Ok(())
    })
}
