//! `rampart-provisioner`: initialise a provisioner's state, check its config, or run it.

use clap::{Parser, Subcommand};
use rampart_core::clock::Clock;
use rampart_provisioner::init::{InitOptions, initialise};
use rampart_provisioner::preflight::{Problems, gather, load_checked};
use rampart_provisioner::{ProvisionerConfig, ProvisionerServer};
use rampart_serve::logging::{self, LogFormat};
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
        /// The organisation's name for a new CA, shown to employees (`CN=NAME Rampart CA`).
        #[arg(long, default_value = "Rampart")]
        organisation: String,
        /// Print the result as JSON (for scripts).
        #[arg(long)]
        json: bool,
        /// A shared PostgreSQL store (`postgres://USER@HOST:PORT[,HOST:PORT]/DB`) instead of SQLite
        /// in the state directory; written into the config. Its schema is migrated.
        #[arg(long, env = "RAMPART_STORE_URL", hide_env_values = true)]
        store_url: Option<String>,
        /// The key-encryption key file for a shared store (see `keys new-kek`).
        #[arg(long)]
        kek_file: Option<PathBuf>,
    },
    /// Check the config file and directory settings without starting.
    CheckConfig {
        /// Config file.
        #[arg(long, short, default_value = "provisioner.toml")]
        config: PathBuf,
    },
    /// Bring the store's schema up to this version (PostgreSQL: once for all nodes, before
    /// starting upgraded services; several nodes running it at once is safe).
    Migrate {
        /// Config file.
        #[arg(long, short, default_value = "provisioner.toml")]
        config: PathBuf,
    },
    /// Seed-sealing keys kept in a shared store: a new key-encryption key, or moving a
    /// one-host installation's master.key into the store.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Serve the API until SIGINT or SIGTERM.
    Run {
        /// Config file.
        #[arg(long, short, default_value = "provisioner.toml")]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Write a new random key-encryption key (64 hex digits, mode 0600) for `[store] kek_file`;
    /// every node of one installation needs the same one.
    NewKek {
        /// File to create (refused if it exists).
        #[arg(long)]
        out: PathBuf,
    },
    /// Wrap every key of a master.key file with the key-encryption key and store it under its
    /// own id, so every token keeps working from the shared store without re-enrolment.
    Import {
        /// Config file (its `[store]` names the database and the key-encryption key).
        #[arg(long, short, default_value = "provisioner.toml")]
        config: PathBuf,
        /// The key file to import (default: STATE_DIR/master.key).
        #[arg(long)]
        from: Option<PathBuf>,
    },
}

/// Exit code for an unusable configuration (EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Only `run` is a service with a log to keep; the other commands' answer is their output.
    let default_filter = if matches!(cli.command, Command::Run { .. }) {
        "info"
    } else {
        "warn"
    };
    logging::init_at(LogFormat::Text, default_filter);
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is::<Problems>() => {
            for problem in err.to_string().lines() {
                eprintln!("rampart-provisioner: error: {problem}");
            }
            ExitCode::from(EXIT_CONFIG)
        }
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
            organisation,
            json,
            store_url,
            kek_file,
        } => {
            let kek_file = kek_file
                .map(|file| {
                    file.canonicalize()
                        .map_err(|e| anyhow::anyhow!("--kek-file {}: {e}", file.display()))
                })
                .transpose()?;
            let report = initialise(&InitOptions {
                state_dir,
                listen,
                admin_name: admin,
                server_names: dns_names,
                organisation,
                ca_dir,
                store_url,
                kek_file,
            })
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let keys = match &report.master_key {
                    Some(file) => format!("{} (back it up; keep it secret)", file.display()),
                    None => "in the store, wrapped by the key-encryption key".to_owned(),
                };
                println!(
                    "Provisioner initialised.\n\n  config      {config}\n  store       {store}\n  seal keys   {keys}\n  CA          {ca}\n\n\
                     Start it:\n  rampart-provisioner run --config {config}\n",
                    config = report.config.display(),
                    store = report.store,
                    ca = report.ca_cert.display(),
                );
                match &report.admin_api_key {
                    Some(key) => println!(
                        "The first admin API key is shown only now. For the `rampart` CLI:\n  \
                         export RAMPART_URL={url}\n  export RAMPART_CA={ca}\n  export RAMPART_API_KEY={key}\n",
                        url = report.url,
                        ca = report.ca_cert.display(),
                    ),
                    None => println!(
                        "The shared store has operators already: use their API keys with this provisioner too \
                         (RAMPART_URL={url}).\n",
                        url = report.url
                    ),
                }
                println!(
                    "Next, a certificate for each gateway, for the name employees' profiles dial (then set `cert` \
                     and `key` in gateway.toml, and check it with `rampart-gateway check-config`):\n  \
                     rampart cert issue --ca-dir {ca_dir} --name gw1.bank.example --cert gateway.pem --key gateway.key",
                    ca_dir = report.ca_cert.parent().unwrap_or(std::path::Path::new(".")).display(),
                );
            }
            Ok(())
        }
        Command::CheckConfig { config } => {
            let (loaded, mut problems) = gather(&config)?;
            for warning in loaded.directory.warnings() {
                eprintln!("rampart-provisioner: warning: {warning}");
            }
            // The directory is asked even when other files are wrong, unless its own settings are.
            if !problems.iter().any(|p| p.starts_with("directory")) {
                problems.extend(loaded.directory.check_live().await);
            }
            if !problems.is_empty() {
                return Err(Problems(problems).into());
            }
            rampart_provisioner::server::open(&loaded, Clock::shifted(loaded.settings.clock_offset_secs))
                .await
                .map_err(|e| Problems(vec![format!("{e:#}")]))?;
            println!("{}: ok", config.display());
            Ok(())
        }
        Command::Migrate { config } => {
            let loaded = ProvisionerConfig::load(&config)?;
            let report = loaded.store.migrate(&loaded.state_dir).await?;
            if report.before == report.after {
                println!(
                    "{}: schema is at version {}, nothing to do",
                    report.database, report.after
                );
            } else {
                println!(
                    "{}: schema moved from version {} to {}",
                    report.database, report.before, report.after
                );
            }
            Ok(())
        }
        Command::Keys(KeysCommand::NewKek { out }) => {
            let (kek, hex) = rampart_store::seal::LocalKek::generate()?;
            rampart_provisioner::init::write_secret_file(&out, hex.as_bytes())?;
            println!(
                "Key-encryption key {} written to {} (mode 0600).\nGive every node the same file and set `kek_file` in \
                 [store] (or RAMPART_KEK); keep a copy offline: without it the seeds in the database cannot be opened.",
                rampart_store::seal::KeyEncryptionKey::id(&kek),
                out.display()
            );
            Ok(())
        }
        Command::Keys(KeysCommand::Import { config, from }) => {
            let loaded = ProvisionerConfig::load(&config)?;
            let kek = loaded.store.kek()?.ok_or_else(|| {
                anyhow::anyhow!("no key-encryption key: set [store] kek_file or RAMPART_KEK (see `keys new-kek`)")
            })?;
            let store = loaded.store.open(&loaded.state_dir).await?;
            let from = from.unwrap_or_else(|| loaded.master_key_path());
            let now = Clock::system().now();
            let added =
                rampart_store::KeyRing::import_file(store.as_ref(), kek.as_ref(), &from, "keys-import", now).await?;
            let ring = rampart_store::KeyRing::from_store(store.clone(), kek, "keys-import", now).await?;
            println!(
                "Imported {} key(s) from {} into {}; the store now holds keys {:?} (current {}).",
                added.len(),
                from.display(),
                store.describe(),
                ring.key_ids(),
                ring.current_key_id()
            );
            Ok(())
        }
        Command::Run { config } => {
            let loaded = load_checked(&config)?;
            for warning in loaded.directory.warnings() {
                tracing::warn!(target: "rampart::directory", "{warning}");
            }
            let server =
                ProvisionerServer::from_config(&loaded, Clock::shifted(loaded.settings.clock_offset_secs)).await?;
            server.run(rampart_serve::shutdown::signal()).await
        }
    }
}
