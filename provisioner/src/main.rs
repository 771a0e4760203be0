//! `rampart-provisioner`: initialise a provisioner's state, check its config, or run it.

use clap::{Parser, Subcommand};
use rampart_provisioner::init::{InitOptions, initialise};
use rampart_provisioner::{ProvisionerConfig, ProvisionerServer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "rampart-provisioner",
    version,
    about = "Rampart provisioner: the service desk's token API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the state directory, master key, CA, server certificate, config and first admin key.
    Init {
        /// State directory to create.
        #[arg(long, default_value = "rampart-provisioner")]
        state_dir: PathBuf,
        /// HTTPS address to write into the config.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// Name of the first admin operator.
        #[arg(long, default_value = "admin")]
        admin: String,
        /// Extra DNS name or address for the server certificate (repeatable).
        #[arg(long = "dns-name")]
        dns_names: Vec<String>,
        /// Use this existing CA folder (ca.pem, ca.key) instead of creating one.
        #[arg(long)]
        ca_dir: Option<PathBuf>,
        /// Print the result as JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Check the config file and directory settings without starting.
    CheckConfig {
        /// Config file.
        #[arg(long, short, default_value = "provisioner.toml")]
        config: PathBuf,
    },
    /// Serve the API until SIGINT or SIGTERM.
    Run {
        /// Config file.
        #[arg(long, short, default_value = "provisioner.toml")]
        config: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rampart-provisioner: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init {
            state_dir,
            listen,
            admin,
            dns_names,
            ca_dir,
            json,
        } => {
            let report = initialise(&InitOptions {
                state_dir,
                listen,
                admin_name: admin,
                server_names: dns_names,
                ca_dir,
            })
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "Provisioner initialised.\n\n  config      {config}\n  master key  {master} (back it up; keep it secret)\n  CA          {ca}\n\n\
                     Start it:\n  rampart-provisioner run --config {config}\n\n\
                     The first admin API key is shown only now. For the `rampart` CLI:\n  \
                     export RAMPART_URL={url}\n  export RAMPART_CA={ca}\n  export RAMPART_API_KEY={key}\n",
                    config = report.config.display(),
                    master = report.master_key.display(),
                    ca = report.ca_cert.display(),
                    url = report.url,
                    key = report.admin_api_key,
                );
            }
            Ok(())
        }
        Command::CheckConfig { config } => {
            let loaded = ProvisionerConfig::load(&config)?;
            rampart_provisioner::server::open(&loaded).await?;
            println!("{}: ok", config.display());
            Ok(())
        }
        Command::Run { config } => {
            let loaded = ProvisionerConfig::load(&config)?;
            let server = ProvisionerServer::from_config(&loaded).await?;
            server.run(shutdown_signal()).await
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
