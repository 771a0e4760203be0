//! `rampart`: the service desk's and security team's command line. Token, enrolment, report,
//! operator and key commands talk to the provisioner's API; session and policy commands talk to
//! a gateway's admin API; `rampart dev` runs a whole Rampart on this machine with embedded
//! defaults.

mod admin;
mod audit;
mod cert;
mod client;
#[cfg(feature = "dev")]
mod dev;
#[cfg(not(feature = "dev"))]
#[path = "dev_unavailable.rs"]
mod dev;
mod enrol;
mod gateways;
mod logging;
mod policy;
mod profile;
mod qr_file;
mod readiness;
mod sessions;
mod store_copy;
mod token;
mod view;
mod vm;

use clap::{Parser, Subcommand};
use client::{CliError, Client, Connection};
use logging::LogFormat;
use std::process::ExitCode;
use view::Output;

/// Rampart administration.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t, global = true, env = "RAMPART_LOG_FORMAT")]
    log_format: LogFormat,
    /// Result format: a table for people or JSON for scripts.
    #[arg(long, short, value_enum, default_value_t, global = true)]
    output: Output,
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a gateway and a provisioner with a demo user, token and echo resource on this machine.
    Dev(dev::DevArgs),
    /// One person's token: issue, list, show, revoke, lost, unlock, resync, temporary code.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Enrol many people at once from a CSV file or a directory group.
    Enrol(enrol::EnrolArgs),
    /// Tokens by state, pending for too long, locked, per group; `report capacity` for VM pools.
    #[command(args_conflicts_with_subcommands = true)]
    Report {
        /// Pending tokens older than this many days are listed (default 7).
        #[arg(long)]
        pending_days: Option<u32>,
        #[command(subcommand)]
        which: Option<ReportCommand>,
    },
    /// The readiness funnel: registration code issued, enrolled, profile set up, rehearsal
    /// passed, first real connection; counts, who is stuck where, and a CSV export.
    Readiness(readiness::ReadinessArgs),
    /// VM pools, inventory and allocations.
    #[command(subcommand)]
    Vm(vm::VmCommand),
    /// Operators and their API keys.
    #[command(subcommand)]
    Operator(admin::OperatorCommand),
    /// Seed-sealing keys: list, rotate, retire.
    #[command(subcommand)]
    Keys(admin::KeysCommand),
    /// Who is connected through a gateway now; end a session (needs --gateway-admin).
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// Every gateway sharing the store and whether it is up (needs --gateway-admin).
    #[command(subcommand)]
    Gateways(gateways::GatewaysCommand),
    /// Why someone may or may not open a resource; the gateway's policy file (needs
    /// --gateway-admin).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Connection profiles for employees' `rampart-connect setup`.
    #[command(subcommand)]
    Profile(profile::ProfileCommand),
    /// The audit trail on disk: verify it was not altered, query it, follow it.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Server certificates from the organisation CA for more gateways or provisioners; show a
    /// certificate file.
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// Move a one-host installation's SQLite store into PostgreSQL (stop its services first).
    #[command(subcommand)]
    Store(store_copy::StoreCommand),
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// VM pools: capacity, allocated, free, in maintenance, allocations per day, days left.
    Capacity,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `rampart dev` runs the services and shows their log; every other command's answer is its
    // output, so the store's and directory's routine lines stay out of it.
    let default_filter = if matches!(cli.command, Command::Dev(_)) {
        "info"
    } else {
        "warn"
    };
    logging::init_at(cli.log_format, default_filter);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let output = cli.output;
    if let Command::Dev(args) = cli.command {
        return dev::run(args).await.map_err(CliError::from);
    }
    if let Command::Sessions(command) = cli.command {
        return sessions::run(&cli.connection, output, command).await;
    }
    if let Command::Gateways(command) = cli.command {
        return gateways::run(&cli.connection, output, command).await;
    }
    if let Command::Policy(command) = cli.command {
        return policy::run(&cli.connection, output, command).await;
    }
    if let Command::Profile(command) = cli.command {
        return profile::run(output, cli.connection.ca_path(), command);
    }
    if let Command::Audit(command) = cli.command {
        return audit::run(output, command).await;
    }
    if let Command::Cert(command) = cli.command {
        return cert::run(output, command);
    }
    if let Command::Store(command) = cli.command {
        return store_copy::run(output, command).await;
    }
    let client = Client::new(&cli.connection)?;
    match cli.command {
        Command::Dev(_)
        | Command::Sessions(_)
        | Command::Gateways(_)
        | Command::Policy(_)
        | Command::Audit(_)
        | Command::Profile(_)
        | Command::Cert(_)
        | Command::Store(_) => Ok(()),
        Command::Token(command) => token::run(&client, output, command).await,
        Command::Enrol(args) => enrol::run(&client, output, args).await,
        Command::Report {
            which: Some(ReportCommand::Capacity),
            ..
        } => vm::capacity(&client, output).await,
        Command::Report { pending_days, .. } => admin::report(&client, output, pending_days).await,
        Command::Readiness(args) => readiness::run(&client, output, args).await,
        Command::Vm(command) => vm::run(&client, output, command).await,
        Command::Operator(command) => admin::operator(&client, output, command).await,
        Command::Keys(command) => admin::keys(&client, output, command).await,
    }
}
