//! `rampart-connect`: log in to a Rampart gateway and forward local ports to resources.

use clap::{Parser, Subcommand};
use rampart_client::error::exit;
use rampart_client::forward::{self, Mapping, Tunnel};
use rampart_client::{ClientError, GatewayClient, Home, SavedSession};
use rampart_core::secret::Sensitive;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Connect to your organisation's internal resources through a Rampart gateway.
#[derive(Debug, Parser)]
#[command(version, about, after_help = EXIT_CODES)]
struct Cli {
    /// Gateway address, HOST:PORT.
    #[arg(long, global = true, env = "RAMPART_GATEWAY")]
    gateway: Option<String>,
    /// Organisation CA certificate (PEM) that the gateway's certificate must chain to.
    #[arg(long, global = true, env = "RAMPART_CA")]
    ca: Option<PathBuf>,
    /// Folder for the saved session (default: your config folder/rampart-connect).
    #[arg(long, global = true, env = "RAMPART_CONNECT_HOME")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 ok, 1 other failure, 2 usage, 3 wrong username/password/code, \
4 gateway unreachable or not trusted, 5 not logged in or session ended, 6 gateway busy, \
7 resource unknown, not allowed or unreachable.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Log in with your directory password and the code from your authenticator app.
    Login {
        /// Your username.
        #[arg(long, short)]
        user: String,
        /// The current code (asked for if omitted).
        #[arg(long)]
        otp: Option<String>,
        /// Read the password from standard input (else RAMPART_PASSWORD, else a hidden prompt).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Carry local TCP ports to resources: LOCAL_ADDR=RESOURCE (e.g. 127.0.0.1:3389=desktop).
    Forward {
        /// One or more mappings.
        #[arg(required = true, value_name = "LOCAL_ADDR=RESOURCE")]
        mappings: Vec<Mapping>,
    },
    /// End the session on the gateway and forget it here.
    Logout,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<(), ClientError> {
    let home = Home::resolve(cli.home)?;
    match cli.command {
        Command::Login {
            user,
            otp,
            password_stdin,
        } => {
            let saved = home.load_session().ok().flatten();
            let gateway = cli
                .gateway
                .or_else(|| saved.as_ref().map(|s| s.gateway.clone()))
                .ok_or_else(|| ClientError::Local("which gateway? pass --gateway HOST:PORT".into()))?;
            let ca_pem = match (cli.ca, saved) {
                (Some(path), _) => std::fs::read_to_string(&path)
                    .map_err(|e| ClientError::Local(format!("cannot read the CA file {}: {e}", path.display())))?,
                (None, Some(saved)) => saved.ca_pem,
                (None, None) => {
                    return Err(ClientError::Local(
                        "pass --ca with your organisation's CA certificate".into(),
                    ));
                }
            };
            let password = read_password(password_stdin)?;
            let otp = match otp {
                Some(code) => Sensitive::new(code),
                None => Sensitive::new(prompt("Code from your authenticator app: ")?),
            };
            let client = GatewayClient::connect(&gateway, &ca_pem).await?;
            let grant = client.login(&user, password, otp).await;
            client.close().await;
            let grant = grant?;
            let ticket = grant
                .ticket
                .ok_or_else(|| ClientError::Protocol("no session ticket in the answer".into()))?;
            home.save_session(&SavedSession {
                gateway,
                ca_pem,
                user: grant.user.clone(),
                session_id: grant.session_id,
                ticket,
                expires_at: grant.expires_at,
                resources: grant.resources.clone(),
            })?;
            println!("Logged in as {}.", grant.user);
            if grant.resources.is_empty() {
                println!("No resources are open to you yet; ask the service desk.");
            } else {
                println!("You can reach:");
                for r in &grant.resources {
                    println!("  {:<20} {}", r.name, r.description);
                }
            }
            Ok(())
        }
        Command::Forward { mappings } => {
            let saved = home.load_session()?.ok_or(ClientError::NotLoggedIn)?;
            let listeners = forward::bind(&mappings).await?;
            let tunnel = Tunnel::start(saved).await?;
            let mut tasks = tokio::task::JoinSet::new();
            for (listener, resource) in listeners {
                let local = listener.local_addr().map_err(|e| ClientError::Local(e.to_string()))?;
                println!("forwarding {local} -> {resource}");
                tasks.spawn(forward::serve(tunnel.clone(), listener, resource));
            }
            let _ = std::io::stdout().flush();
            let _ = tokio::signal::ctrl_c().await;
            tasks.abort_all();
            Ok(())
        }
        Command::Logout => {
            let saved = home.load_session()?.ok_or(ClientError::NotLoggedIn)?;
            let result = async {
                let client = GatewayClient::connect(&saved.gateway, &saved.ca_pem).await?;
                client.resume(&saved.ticket).await?;
                client.logout().await?;
                client.close().await;
                Ok::<(), ClientError>(())
            }
            .await;
            home.clear_session()?;
            match result {
                Ok(()) | Err(ClientError::Refused { .. }) => {
                    println!("Logged out.");
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
    }
}

fn read_password(from_stdin: bool) -> Result<Sensitive<String>, ClientError> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| ClientError::Local(format!("cannot read the password from standard input: {e}")))?;
        let trimmed = line.trim_end_matches(['\n', '\r']).to_owned();
        zeroize::Zeroize::zeroize(&mut line);
        return Ok(Sensitive::new(trimmed));
    }
    if let Ok(password) = std::env::var("RAMPART_PASSWORD") {
        return Ok(Sensitive::new(password));
    }
    if !std::io::stdin().is_terminal() {
        return Err(ClientError::Local(
            "no password: use --password-stdin or RAMPART_PASSWORD, or run in a terminal".into(),
        ));
    }
    rpassword::prompt_password("Password: ")
        .map(Sensitive::new)
        .map_err(|e| ClientError::Local(format!("cannot read the password: {e}")))
}

fn prompt(question: &str) -> Result<String, ClientError> {
    if !std::io::stdin().is_terminal() {
        return Err(ClientError::Local(
            "no code: pass --otp CODE or run in a terminal".into(),
        ));
    }
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| ClientError::Local(e.to_string()))?;
    Ok(line.trim().to_owned())
}
