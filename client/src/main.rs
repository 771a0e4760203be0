//! `rampart-connect`: set up from the service desk's profile, log in to a Rampart gateway, and
//! reach resources through local port forwards or a SOCKS5 proxy; `doctor` says what is wrong.
//! This file parses the command line and hands each command to its module's `run`.

use clap::{Parser, Subcommand};
use rampart_client::error::exit;
use rampart_client::forward::Mapping;
use rampart_client::known::Overrides;
use rampart_client::messages::Failure;
use rampart_client::{Home, doctor, enrol, forward, login, logout, rehearse, setup, socks, status};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Connect to your organisation's internal resources through a Rampart gateway.
#[derive(Debug, Parser)]
#[command(version, about, after_help = EXIT_CODES)]
struct Cli {
    /// Gateway address, HOST:PORT, tried first (then the profile's gateways in your order;
    /// default: the profile's, or the saved session's).
    #[arg(long, global = true, env = "RAMPART_GATEWAY")]
    gateway: Option<String>,
    /// Organisation CA certificate (PEM) the gateway's certificate must chain to, instead of the
    /// profile's (else the saved session's); also RAMPART_CONNECT_CA. RAMPART_CA, the service
    /// desk's `rampart` variable, is not used.
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// Folder for the profile and the saved session (default: your config folder/rampart-connect).
    #[arg(long, global = true, env = "RAMPART_CONNECT_HOME")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 ok, 1 other failure (and doctor found a problem), 2 usage, \
3 wrong username/password/code or locked token, 4 gateway unreachable or not trusted, 5 not logged in \
or session ended, 6 gateway busy, 7 resource unknown, not allowed or unreachable.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Import the profile from the service desk: a file, the one-line form, or - for standard input.
    Setup {
        /// The profile file, or the line starting with rampart-profile:.
        profile: String,
    },
    /// Log in with your directory password and the code from your authenticator app.
    Login {
        /// Your username (default: from the profile, else asked).
        #[arg(long, short)]
        user: Option<String>,
        /// The current code (asked for if omitted).
        #[arg(long)]
        otp: Option<String>,
        /// Read the password from standard input (else RAMPART_PASSWORD, else a hidden prompt).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Enrol your authenticator app with your directory password and the registration code
    /// from the service desk (a letter, a call or an e-mail); needs the profile set up first.
    Enrol {
        /// Your username (default: from the profile, else asked).
        #[arg(long, short)]
        user: Option<String>,
        /// The enrolment service, https://HOST:PORT (default: the profile's).
        #[arg(long, value_name = "URL")]
        provisioner: Option<String>,
        /// Read the password from standard input (else RAMPART_PASSWORD, else a hidden prompt).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Who is logged in, until when, and the resources you may reach.
    Status,
    /// Carry local TCP ports to resources: LOCAL_ADDR=RESOURCE (e.g. 127.0.0.1:3389=desktop);
    /// without mappings, the profile's.
    Forward {
        /// Mappings.
        #[arg(value_name = "LOCAL_ADDR=RESOURCE")]
        mappings: Vec<Mapping>,
    },
    /// A SOCKS5 proxy on this computer: programs reach resources by name through it.
    Socks {
        /// Where to listen (loopback only).
        #[arg(default_value = "127.0.0.1:1080")]
        listen: SocketAddr,
    },
    /// Check name resolution, UDP reachability, certificate trust and your clock, with fixes.
    Doctor {
        /// Instead, rehearse: with your session, open each of your resources through the
        /// gateway and report the outcome to the service desk (exit 0 only if all opened).
        #[arg(long)]
        rehearse: bool,
    },
    /// End the session on the gateway and forget it here.
    Logout {
        /// Forget the session here even if no gateway can be told (it then lasts until it
        /// expires).
        #[arg(long)]
        forget: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    rampart_core::logging::init(rampart_core::logging::Format::Text, "warn");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("{}", failure.explain());
            ExitCode::from(failure.exit_code())
        }
    }
}

/// Runs the command; the exit code, or the failure `main` explains.
async fn run(cli: Cli) -> Result<u8, Failure> {
    let home = Home::resolve(cli.home)?;
    let overrides = Overrides {
        gateway: cli.gateway,
        ca: cli.ca,
    };
    let code = match cli.command {
        Command::Setup { profile } => setup::run(&home, &profile)?,
        Command::Login {
            user,
            otp,
            password_stdin,
        } => {
            let request = login::Request {
                user,
                otp,
                password_stdin,
            };
            login::run(&home, &overrides, request).await?
        }
        Command::Enrol {
            user,
            provisioner,
            password_stdin,
        } => {
            let request = enrol::Request {
                user,
                provisioner,
                password_stdin,
            };
            enrol::run(&home, &overrides, request).await?
        }
        Command::Status => status::run(&home).await?,
        Command::Forward { mappings } => forward::run(&home, mappings).await?,
        Command::Socks { listen } => socks::run(&home, listen).await?,
        Command::Doctor { rehearse: true } => rehearse::run(&home, &overrides).await?,
        Command::Doctor { rehearse: false } => doctor::run(&home, &overrides).await?,
        Command::Logout { forget } => logout::run(&home, forget).await?,
    };
    Ok(code)
}
