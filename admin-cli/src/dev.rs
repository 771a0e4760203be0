//! `rampart dev`: a complete Rampart on one machine: state directory, organisation CA and
//! certificates, a demo user with a fresh password and TOTP token (issued through the
//! provisioner), an in-process echo resource, the gateway and the provisioner sharing one
//! store — plus `dev.json` and the exact commands to try it. `--gateways N` runs several
//! gateways on one store and `--store-url` puts that store on PostgreSQL (primary and standbys),
//! so scale-out and database failover can be tried on one machine.

use anyhow::{Context, bail};
use rampart_audit::{AuditConfig, AuditLog, AuditSettings, AuditWriter};
use rampart_certs::CertificateAuthority;
use rampart_core::policy::Policy;
use rampart_directory::{LocalDirectory, hash_password};
use rampart_gateway::{Clock, FlowLog, Gateway, GatewayParts, GatewaySettings};
use rampart_provisioner::config::ConsoleConfig;
use rampart_provisioner::{Provisioner, ProvisionerServer, ProvisionerSettings};
use rampart_store::{OperatorRole, Store, StoreConfig, UserRecord};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;

const DEMO_USER: &str = "demo";
/// Operator recorded as the issuer of the demo token.
const DEV_ACTOR: &str = "rampart-dev";
/// The demo user's group that makes them an administrator in the web console.
const DEV_ADMINS: &str = "rampart-admins";

/// Options of `rampart dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// State directory (store, keys, certificates, logs, dev.json).
    #[arg(long, default_value = "rampart-dev")]
    state_dir: PathBuf,
    /// UDP address the gateway listens on.
    #[arg(long, default_value = "127.0.0.1:4433")]
    listen: SocketAddr,
    /// TCP address of the provisioner's HTTPS API.
    #[arg(long, default_value = "127.0.0.1:8443")]
    provisioner_listen: SocketAddr,
    /// TCP address of the gateway's admin HTTPS listener (sessions, policy, metrics).
    #[arg(long, default_value = "127.0.0.1:9443")]
    admin_listen: SocketAddr,
    /// Extra resource allowed to the demo user, NAME=HOST:PORT (repeatable).
    #[arg(long = "resource", value_name = "NAME=HOST:PORT")]
    resources: Vec<String>,
    /// Gateways to run on the one store (1–4), on consecutive ports from --listen and
    /// --admin-listen; the demo profile lists them all.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=4))]
    gateways: u16,
    /// A PostgreSQL store (`postgres://USER@HOST:PORT[,HOST:PORT]/DB`, several hosts for a
    /// primary and its standbys) instead of SQLite in the state directory. It is migrated at
    /// start; the seal keys live in it, wrapped by STATE/kek (created when missing).
    #[arg(long, env = "RAMPART_STORE_URL", hide_env_values = true)]
    store_url: Option<String>,
}

/// What `dev.json` holds: everything a person or a script needs to try Rampart.
#[derive(Debug, Serialize)]
struct DevInfo {
    gateway: String,
    gateways: Vec<String>,
    admin_urls: Vec<String>,
    store: String,
    ca_cert: PathBuf,
    user: String,
    password: String,
    otpauth_uri: String,
    resources: Vec<String>,
    flow_log: PathBuf,
    audit_dir: PathBuf,
    audit_public_key: PathBuf,
    profile_file: PathBuf,
    profile_line: String,
    client_home: PathBuf,
    provisioner_url: String,
    /// The web console: the demo user signs in there with their password and a code.
    console_url: String,
    admin_api_key: String,
    admin_url: String,
    metrics_url: String,
}

#[derive(Serialize)]
struct PolicyFile {
    resource: Vec<PolicyResource>,
}

#[derive(Serialize)]
struct PolicyResource {
    name: String,
    target: String,
    description: String,
    allow_users: Vec<String>,
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    let state = args.state_dir.clone();
    std::fs::create_dir_all(&state).with_context(|| format!("cannot create {}", state.display()))?;
    let state = state
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", state.display()))?;

    let store_config = StoreConfig {
        url: args.store_url.clone(),
        kek_file: args.store_url.as_ref().map(|_| state.join("kek")),
        ..StoreConfig::default()
    };
    if args.store_url.is_some() {
        create_kek_if_missing(&state.join("kek"))?;
        store_config.migrate(&state).await.context("cannot migrate the store")?;
    }
    let store: Arc<dyn Store> = store_config.open(&state).await.context("cannot open the store")?;
    let keys = Arc::new(
        store_config
            .key_ring(store.clone(), &state, true, Clock::system().now())
            .await
            .context("cannot load the seed-sealing keys")?,
    );

    let ca = load_or_create_ca(&state.join("ca"))?;
    let ca_cert = state.join("ca").join(rampart_certs::CA_CERT_FILE);
    let gateway_cert = ca.issue_server(&server_names(args.listen))?;

    let echo = start_echo().await?;
    let (policy, resource_names) = build_policy(&state, echo, &args.resources)?;

    let clock = Clock::system();
    let password = random_password()?;
    let directory = Arc::new(LocalDirectory::new(store.clone())?);
    // Two streams, as the services write them when run apart, anchored in the store.
    let open_audit = async |service: &str| -> anyhow::Result<(AuditLog, AuditWriter, AuditSettings)> {
        let settings = AuditConfig::default()
            .settings(&state, service)
            .context("the audit trail is on by default")?;
        let book = Arc::new(rampart_audit::anchor::StoreBook::new(store.clone()));
        let (log, writer) = AuditLog::open_anchored(&settings, env!("CARGO_PKG_VERSION"), book, clock.clone())
            .await
            .with_context(|| format!("cannot open the audit trail in {}", settings.dir.display()))?;
        Ok((log, writer, settings))
    };
    let (gateway_audit, gateway_audit_writer, audit_settings) = open_audit("gateway").await?;
    let mut audit_writers = vec![gateway_audit_writer];
    let (provisioner_audit, provisioner_audit_writer, _) = open_audit("provisioner").await?;
    let provisioner = Provisioner::new(
        store.clone(),
        keys.clone(),
        directory.clone(),
        ProvisionerSettings::default(),
        clock.clone(),
    )
    .with_audit(provisioner_audit)
    .with_console(ConsoleConfig {
        admin_groups: vec![DEV_ADMINS.into()],
        audit_dirs: vec![audit_settings.dir.clone()],
        policy_file: Some(state.join("policy.toml")),
        profile_file: Some(state.join("profile.json")),
        audit_public_key: Some(rampart_audit::keys::public_key_path(&audit_settings.signing_key)),
        ..ConsoleConfig::default()
    });
    upsert_demo_user(store.as_ref(), &password, clock.now()).await?;
    let issued = provisioner
        .issue(DEV_ACTOR, DEMO_USER, true, None)
        .await
        .context("cannot issue the demo token")?;
    let admin_api_key = admin_key(&provisioner, &state.join("dev.json")).await?;

    let provisioner_cert = ca.issue_server(&server_names(args.provisioner_listen))?;
    let provisioner_server = ProvisionerServer::bind(
        args.provisioner_listen,
        provisioner_cert.cert_chain()?,
        provisioner_cert.private_key()?,
        provisioner,
    )?;
    let provisioner_url = format!(
        "https://{}",
        rampart_provisioner::init::url_host(provisioner_server.local_addr()?)
    );

    let flow_log = state.join("flows.jsonl");
    let mut gateways = Vec::new();
    let mut flow_writers = Vec::new();
    let mut gateway_audit = Some(gateway_audit);
    for index in 0..args.gateways {
        let (flows_path, audit) = match gateway_audit.take() {
            Some(audit) => (flow_log.clone(), audit),
            None => {
                let (audit, writer, _) = open_audit(&format!("gateway-{}", index + 1)).await?;
                audit_writers.push(writer);
                (state.join(format!("flows-{}.jsonl", index + 1)), audit)
            }
        };
        let (flows, flow_writer) = FlowLog::open(&flows_path).await.context("cannot open the flow log")?;
        flow_writers.push(flow_writer);
        let listen = nth_port(args.listen, index);
        let admin_listen = nth_port(args.admin_listen, index);
        let gateway = Gateway::bind(GatewayParts {
            listen,
            admin_listen: Some(admin_listen),
            cert_chain: gateway_cert.cert_chain()?,
            key: gateway_cert.private_key()?,
            store: store.clone(),
            keys: keys.clone(),
            directory: directory.clone(),
            policy: policy.clone(),
            policy_file: Some(state.join("policy.toml")),
            flows,
            audit,
            settings: GatewaySettings::default(),
            clock: clock.clone(),
        })
        .with_context(|| format!("cannot start gateway {} on {listen}", index + 1))?;
        gateways.push(gateway);
    }
    let mut gateway_addrs = Vec::new();
    let mut admin_urls = Vec::new();
    for gateway in &gateways {
        gateway_addrs.push(gateway.local_addr()?.to_string());
        match gateway.admin_addr() {
            Some(addr) => admin_urls.push(format!("https://{}", rampart_provisioner::init::url_host(addr))),
            None => anyhow::bail!("a gateway's admin listener did not start"),
        }
    }
    let gateway_addr = gateway_addrs[0].clone();
    let admin_url = admin_urls[0].clone();

    let mut profile = crate::profile::build(
        "Rampart dev".into(),
        gateway_addrs.clone(),
        ca.cert_pem().to_owned(),
        Some(DEMO_USER.into()),
        vec![],
    )?;
    profile.enrol_url = Some(provisioner_url.clone());
    let profile_file = state.join("profile.json");
    std::fs::write(&profile_file, serde_json::to_vec_pretty(&profile)?)
        .with_context(|| format!("cannot write {}", profile_file.display()))?;
    let info = DevInfo {
        gateway: gateway_addr,
        gateways: gateway_addrs,
        admin_urls,
        store: store.describe(),
        ca_cert,
        user: DEMO_USER.into(),
        password,
        otpauth_uri: issued.otpauth_uri,
        resources: resource_names,
        flow_log,
        audit_dir: audit_settings.dir.clone(),
        audit_public_key: rampart_audit::keys::public_key_path(&audit_settings.signing_key),
        profile_file,
        profile_line: profile.to_line(),
        client_home: state.join("client"),
        console_url: format!("{provisioner_url}/console/"),
        provisioner_url,
        admin_api_key,
        metrics_url: format!("{admin_url}/metrics"),
        admin_url,
    };
    write_private(&state.join("dev.json"), &serde_json::to_vec_pretty(&info)?)?;
    print_banner(&info, &state);

    let (stop_provisioner, provisioner_stopped) = tokio::sync::oneshot::channel::<()>();
    let provisioner_task = tokio::spawn(provisioner_server.run(async move {
        let _ = provisioner_stopped.await;
    }));
    // The first gateway stops on SIGINT or SIGTERM; the others with it.
    let (stop_others, others_stop) = tokio::sync::watch::channel(false);
    let mut gateways = gateways.into_iter();
    let first = gateways.next().context("no gateway")?;
    let others: Vec<_> = gateways
        .map(|gateway| {
            let mut stop = others_stop.clone();
            tokio::spawn(gateway.run(async move {
                let _ = stop.changed().await;
            }))
        })
        .collect();
    first.run(rampart_gateway::shutdown::signal()).await;
    let _ = stop_others.send(true);
    for other in others {
        let _ = other.await;
    }
    let _ = stop_provisioner.send(());
    if let Ok(Err(err)) = provisioner_task.await {
        tracing::error!(error = %err, "provisioner failed");
    }
    for writer in flow_writers {
        writer.finish().await;
    }
    for writer in audit_writers {
        writer.finish().await;
    }
    provisioner_audit_writer.finish().await;
    Ok(())
}

/// `base` with its port moved up by `index` (port 0 stays 0: any free port).
fn nth_port(base: SocketAddr, index: u16) -> SocketAddr {
    let port = match base.port() {
        0 => 0,
        port => port.saturating_add(index),
    };
    SocketAddr::new(base.ip(), port)
}

/// A key-encryption key for a dev store on PostgreSQL, made once and kept in the state folder.
fn create_kek_if_missing(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let (_, hex) = rampart_store::seal::LocalKek::generate()?;
    write_private(path, hex.as_bytes())
}

fn load_or_create_ca(dir: &Path) -> anyhow::Result<CertificateAuthority> {
    if dir.join(rampart_certs::CA_CERT_FILE).exists() {
        return Ok(CertificateAuthority::load(dir)?);
    }
    let ca = CertificateAuthority::create("Rampart Dev")?;
    ca.save(dir)?;
    Ok(ca)
}

fn server_names(listen: SocketAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
        names.push(listen.ip().to_string());
    }
    names
}

/// An in-process TCP echo service on an ephemeral loopback port.
async fn start_echo() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot start the echo service")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut w).await;
            });
        }
    });
    Ok(addr)
}

/// Writes `policy.toml` with `echo` and every `--resource`, all allowed to the demo user, and
/// validates it exactly as a gateway validates its policy file.
fn build_policy(state: &Path, echo: SocketAddr, extra: &[String]) -> anyhow::Result<(Policy, Vec<String>)> {
    let mut resource = vec![PolicyResource {
        name: "echo".into(),
        target: echo.to_string(),
        description: "echo service (sends back what it receives)".into(),
        allow_users: vec![DEMO_USER.into()],
    }];
    for spec in extra {
        let Some((name, target)) = spec.split_once('=') else {
            bail!("--resource {spec:?}: expected NAME=HOST:PORT");
        };
        resource.push(PolicyResource {
            name: name.into(),
            target: target.into(),
            description: String::new(),
            allow_users: vec![DEMO_USER.into()],
        });
    }
    let text = toml::to_string(&PolicyFile { resource })?;
    let policy = Policy::parse(&text).context("invalid --resource")?;
    std::fs::write(state.join("policy.toml"), &text).context("cannot write policy.toml")?;
    let names = policy.resources().map(|r| r.name.clone()).collect();
    Ok((policy, names))
}

/// Creates or updates the demo user (a local directory entry) with `password`.
async fn upsert_demo_user(store: &dyn Store, password: &str, now: i64) -> anyhow::Result<()> {
    let existing = store.user_by_username(DEMO_USER).await?;
    let user = UserRecord {
        id: existing.as_ref().map_or_else(|| random_hex(16), |u| Ok(u.id.clone()))?,
        username: DEMO_USER.into(),
        display_name: "Demo Employee".into(),
        password_hash: Some(hash_password(password)?),
        enabled: true,
        groups: vec!["staff".into(), DEV_ADMINS.into()],
        created_at: existing.map_or(now, |u| u.created_at),
    };
    store.upsert_user(&user).await?;
    Ok(())
}

/// The admin API key from an earlier `dev.json` if it still works, else a new admin operator.
async fn admin_key(provisioner: &Provisioner, dev_json: &Path) -> anyhow::Result<String> {
    let earlier = std::fs::read(dev_json)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|info| info.get("admin_api_key")?.as_str().map(str::to_owned));
    if let Some(key) = earlier
        && provisioner.authenticate(&key).await.is_ok()
    {
        return Ok(key);
    }
    let name = format!("dev-admin-{}", random_hex(4)?);
    let (operator, key) =
        rampart_provisioner::service::new_operator(&name, OperatorRole::Admin, DEV_ACTOR, Clock::system().now())?;
    provisioner.store().insert_operator(&operator).await?;
    Ok(key)
}

fn fill_random(buf: &mut [u8]) -> anyhow::Result<()> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    fill_random(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A 16-letter password from an unambiguous alphabet (about 80 bits).
fn random_password() -> anyhow::Result<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut buf = [0u8; 16];
    fill_random(&mut buf)?;
    Ok(buf
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

fn write_private(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(content)?;
    Ok(())
}

/// `rampart-connect`, by full path when it was built next to this binary.
fn connect_command() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("rampart-connect")))
        .filter(|path| path.exists())
        .map_or_else(|| "rampart-connect".to_owned(), |path| path.display().to_string())
}

fn print_banner(info: &DevInfo, state: &Path) {
    let secret = url::Url::parse(&info.otpauth_uri)
        .ok()
        .and_then(|uri| {
            uri.query_pairs()
                .find(|(k, _)| k == "secret")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default();
    let qr = rampart_provisioner::qr::terminal(&info.otpauth_uri).unwrap_or_default();
    let home = info.client_home.display();
    let connect = connect_command();
    let profile = info.profile_file.display();
    let ca = info.ca_cert.display();
    let gw = info.gateways.join(", ");
    let store = &info.store;
    println!(
        "\nRampart dev is running. State: {state}\n\n  \
         gateway   {gw}\n  store     {store}\n  user      {user}\n  password  {pw}\n  token     {uri}\n\n\
         Scan this with an authenticator app, or compute codes with `oathtool --totp -b {secret}`:\n{qr}\n\
         Set up and log in (in another terminal), as an employee would with their profile:\n  \
         {connect} --home {home} setup {profile}\n  \
         {connect} --home {home} login\n\n\
         Then forward a local port to a resource ({resources}):\n  \
         {connect} --home {home} forward 127.0.0.1:7007=echo\n\n\
         Web console: {console}\n  \
         sign in as {user} with the password above and a code from the token (an administrator there: desk, \
         audit trail, live sessions); the browser does not know the dev CA ({ca}): trust it, or accept the warning\n\n\
         Service desk API: {provisioner} (admin key in dev.json), e.g.\n  \
         RAMPART_URL={provisioner} RAMPART_CA={ca} RAMPART_API_KEY=$(jq -r .admin_api_key {state}/dev.json) rampart token list\n\n\
         Gateway admin: {admin} (same key): sessions, policy explain, metrics at {metrics}, e.g.\n  \
         RAMPART_GATEWAY_ADMIN={admin} RAMPART_CA={ca} RAMPART_API_KEY=... rampart sessions list\n\n\
         Flow records: {flows}\nAudit trail: {audit} (check it with `rampart audit verify {audit} --public-key {audit_key}{anchors}`)\n\
         Everything above is also in {state}/dev.json. Stop with Ctrl-C.\n",
        state = state.display(),
        user = info.user,
        pw = info.password,
        uri = info.otpauth_uri,
        resources = info.resources.join(", "),
        flows = info.flow_log.display(),
        audit = info.audit_dir.display(),
        audit_key = info.audit_public_key.display(),
        // The anchors that show a cut tail or a deleted stream are in the store.
        anchors = if info.store.starts_with("sqlite") {
            format!(" --store-url sqlite:{}", state.display())
        } else {
            String::new()
        },
        provisioner = info.provisioner_url,
        console = info.console_url,
        admin = info.admin_url,
        metrics = info.metrics_url,
    );
    let _ = std::io::Write::flush(&mut std::io::stdout());
}
