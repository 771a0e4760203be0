//! `rampart`: the service desk's and security team's command line. `rampart dev` runs a whole
//! Rampart on this machine with embedded defaults.

mod dev;

use clap::{Parser, Subcommand};
use rampart_gateway::logging::{self, LogFormat};
use std::process::ExitCode;

/// Rampart administration.
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
    /// Run a gateway with a demo user, token and echo resource on this machine.
    Dev(dev::DevArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Dev(args) => dev::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
