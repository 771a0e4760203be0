//! `rampart-gateway`: runs the gateway from a config file, or checks the config and policy.

mod check_directory;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rampart_gateway::Clock;
use rampart_gateway::config::ConfigError;
use rampart_gateway::{Gateway, GatewayConfig, preflight};
use rampart_serve::logging::{self, LogFormat};
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
            let config = match load_checked(&config) {
                Ok(c) => c,
                Err(problems) => return refuse(&problems),
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

/// The config at `path` with every problem that would stop `run`, each on its own line; `Err`
/// when the file cannot be read as a config at all.
fn gather(path: &std::path::Path) -> Result<(GatewayConfig, Vec<String>), Vec<String>> {
    let (config, mut problems) = match GatewayConfig::load_with_problems(path) {
        Ok((config, problems)) => (config, problems),
        Err(ConfigError::Invalid { path, problems }) => {
            return Err(problems.iter().map(|p| format!("{}: {p}", path.display())).collect());
        }
        Err(e) => return Err(vec![e.to_string()]),
    };
    let now = Clock::shifted(config.settings.clock_offset_secs).now();
    problems.extend(preflight::problems(&config, now));
    Ok((config, problems))
}

/// The config at `path`, or every problem that would stop `run`.
fn load_checked(path: &std::path::Path) -> Result<GatewayConfig, Vec<String>> {
    match gather(path)? {
        (config, problems) if problems.is_empty() => Ok(config),
        (_, problems) => Err(problems),
    }
}

/// Prints every problem and returns the exit code for an unusable config.
fn refuse(problems: &[String]) -> ExitCode {
    for p in problems {
        eprintln!("error: {p}");
    }
    ExitCode::from(EXIT_CONFIG)
}

/// `check-config`: every problem with the config and its files, and the directory asked itself
/// (unless its own settings are wrong); warnings do not fail the check.
fn check_config(path: &std::path::Path) -> ExitCode {
    let (config, mut problems) = match gather(path) {
        Ok(gathered) => gathered,
        Err(problems) => return refuse(&problems),
    };
    for warning in config.directory.warnings() {
        eprintln!("warning: {warning}");
    }
    if !problems.iter().any(|p| p.starts_with("directory")) {
        let live = match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime.block_on(config.directory.check_live()),
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        problems.extend(live);
    }
    if !problems.is_empty() {
        return refuse(&problems);
    }
    println!("{}: ok", path.display());
    ExitCode::SUCCESS
}

fn run(config: GatewayConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    for warning in config.directory.warnings() {
        tracing::warn!(target: "rampart::directory", "{warning}");
    }
    runtime.block_on(async {
        let gateway = Gateway::from_config(&config, Clock::shifted(config.settings.clock_offset_secs)).await?;
        gateway.run(rampart_serve::shutdown::signal()).await;
        Ok(())
    })
}
