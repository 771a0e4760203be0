//! `rampart-provisioner init`: a ready-to-run provisioner in one command — the state directory
//! (0700), the store, the master key file (0600), the organisation CA (unless one is given), a
//! server certificate, `provisioner.toml`, and the first admin API key, shown once.
//!
//! With a PostgreSQL store (`--store-url`, `--kek-file`) the schema is migrated and the seal keys
//! live in the database; a further provisioner joining a store that has operators already gets
//! its own files and no new admin key.

use crate::config::MASTER_KEY_FILE;
use crate::service::ServiceError;
use anyhow::{Context, bail};
use rampart_certs::CertificateAuthority;
use rampart_core::clock::Clock;
use rampart_store::{OperatorRole, StoreConfig};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Name of the config file `init` writes into the state directory.
pub const CONFIG_FILE: &str = "provisioner.toml";

/// What to create.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// State directory.
    pub state_dir: PathBuf,
    /// HTTPS address written into the config.
    pub listen: SocketAddr,
    /// Name of the first admin operator.
    pub admin_name: String,
    /// Extra DNS names or addresses for the server certificate; the first is its subject.
    pub server_names: Vec<String>,
    /// The organisation's name for a new CA (`CN=<name> Rampart CA, O=<name>`), which employees
    /// see in `rampart-connect doctor`.
    pub organisation: String,
    /// An existing CA folder (`ca.pem`, `ca.key`); default: create one in `STATE/ca`.
    pub ca_dir: Option<PathBuf>,
    /// A shared PostgreSQL store (`postgres://…`); None: SQLite in the state directory.
    pub store_url: Option<String>,
    /// The key-encryption key file every node of a shared store holds.
    pub kek_file: Option<PathBuf>,
}

/// What was created; the API key appears only here.
#[derive(Debug, Serialize)]
pub struct InitReport {
    /// The config file.
    pub config: PathBuf,
    /// `https://ADDR` of the API.
    pub url: String,
    /// CA certificate clients must trust.
    pub ca_cert: PathBuf,
    /// First admin's name.
    pub admin_name: String,
    /// First admin's API key; None when joining a shared store that has operators already.
    pub admin_api_key: Option<String>,
    /// The master key file; None when the seal keys live in a shared store.
    pub master_key: Option<PathBuf>,
    /// Where the store is (never a password).
    pub store: String,
}

/// Creates everything; refuses if the state directory already has operators.
pub async fn initialise(options: &InitOptions) -> anyhow::Result<InitReport> {
    let state = &options.state_dir;
    create_private_dir(state)?;
    let state = state
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", state.display()))?;
    let store_config = StoreConfig {
        url: options.store_url.clone(),
        kek_file: options.kek_file.clone(),
        ..StoreConfig::default()
    };
    let shared = options.store_url.is_some();
    if let Some(url) = &options.store_url
        && rampart_store::without_password(url) != *url
    {
        bail!(
            "the store URL carries a password, which would be written into provisioner.toml: leave it out and give it \
             with [store] password_file or RAMPART_STORE_PASSWORD"
        );
    }
    if shared {
        if options.kek_file.is_none() && std::env::var(rampart_store::seal::kek::KEK_ENV).is_err() {
            bail!(
                "a shared store needs a key-encryption key: --kek-file FILE (make one with `rampart-provisioner keys new-kek`)"
            );
        }
        store_config
            .migrate(&state)
            .await
            .context("cannot migrate the shared store")?;
    }
    let store = store_config.open(&state).await.context("cannot open the store")?;
    let has_operators = !store.list_operators().await?.is_empty();
    if has_operators && !shared {
        bail!(
            "{} is already initialised (it has operators); create more keys with `rampart operator create`",
            state.display()
        );
    }
    let master_key = (!shared).then(|| state.join(MASTER_KEY_FILE));
    store_config
        .key_ring(store.clone(), &state, true, Clock::system().now())
        .await
        .context("cannot set up the seed-sealing keys")?;

    let ca_dir = options.ca_dir.clone().unwrap_or_else(|| state.join("ca"));
    let ca = if ca_dir.join(rampart_certs::CA_CERT_FILE).exists() {
        CertificateAuthority::load(&ca_dir).context("cannot load the CA")?
    } else {
        let ca = CertificateAuthority::create(&options.organisation).context("cannot create the CA")?;
        ca.save(&ca_dir).context("cannot save the CA")?;
        ca
    };
    // The names clients dial come first (the first is the subject); loopback names last, so a
    // provisioner reached on its host works too.
    let mut names = options.server_names.clone();
    if !options.listen.ip().is_unspecified() && !options.listen.ip().is_loopback() {
        names.push(options.listen.ip().to_string());
    }
    names.extend(["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()]);
    let mut seen = std::collections::HashSet::new();
    names.retain(|name| seen.insert(name.clone()));
    let tls_dir = state.join("tls");
    create_private_dir(&tls_dir)?;
    let (cert, key) = (tls_dir.join("provisioner.pem"), tls_dir.join("provisioner.key"));
    ca.issue_server(&names)
        .and_then(|issued| issued.save(&cert, &key))
        .context("cannot issue the server certificate")?;

    let config = state.join(CONFIG_FILE);
    if !config.exists() {
        let store_table = match (&options.store_url, &options.kek_file) {
            (Some(url), kek) => {
                let quoted = |text: String| toml::Value::String(text).to_string();
                let kek = kek
                    .as_ref()
                    .map(|file| format!("kek_file = {}\n", quoted(file.display().to_string())))
                    .unwrap_or_default();
                format!("\n[store]\nurl = {}\n{kek}", quoted(url.clone()))
            }
            (None, _) => String::new(),
        };
        let text = format!(
            "# Rampart provisioner. See `rampart-provisioner --help`.\n\
             listen = \"{}\"\nstate_dir = \".\"\ncert = \"tls/provisioner.pem\"\nkey = \"tls/provisioner.key\"\n\n\
             [directory]\nkind = \"local\"\n\n[settings]\nissuer = {issuer}\n{store_table}",
            options.listen,
            // What authenticator apps show: the organisation's name (no `:`, which the otpauth
            // label reserves).
            issuer = toml::Value::String(options.organisation.replace(':', " ").trim().to_owned()),
        );
        std::fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;
    }

    let admin_api_key = if has_operators {
        None
    } else {
        let (operator, api_key) =
            crate::service::new_operator(&options.admin_name, OperatorRole::Admin, "init", Clock::system().now())
                .map_err(|e: ServiceError| anyhow::anyhow!(e))?;
        store
            .insert_operator(&operator)
            .await
            .context("cannot create the admin operator")?;
        Some(api_key)
    };
    Ok(InitReport {
        config,
        url: format!("https://{}", url_host(options.listen)),
        ca_cert: ca_dir.join(rampart_certs::CA_CERT_FILE),
        admin_name: options.admin_name.clone(),
        admin_api_key,
        master_key,
        store: store.describe(),
    })
}

/// `host:port` for a URL: loopback for an unspecified address, brackets for IPv6.
pub fn url_host(listen: SocketAddr) -> String {
    let ip = if listen.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        listen.ip()
    };
    SocketAddr::new(ip, listen.port()).to_string()
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Creates `path` with `contents`, readable by its owner only; refuses to replace a file.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}
