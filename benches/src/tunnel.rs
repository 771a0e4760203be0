//! Pieces the throughput benchmarks share: generated people with pending tokens in a store,
//! an `iperf3 -s` on loopback, a logged-in client forwarding a local port through the gateway
//! (one QUIC stream per TCP connection, as `rampart-connect forward` does), and `iperf3 -c`
//! measured at the receiving end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_client::GatewayClient;
use rampart_core::secret::Sensitive;
use rampart_core::totp::{SEED_LEN, TotpParams, generate_totp};
use rampart_store::{KeyRing, SqliteStore, Store, TokenRecord, UserRecord};
use rampart_tests::slapd::generated_person as user;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The (not secret) TOTP seed of generated person `i`.
pub fn seed_of(i: usize) -> Vec<u8> {
    vec![(i % 251) as u8 + 1; SEED_LEN]
}

/// Users and pending tokens for generated people `0..=users`, as the provisioner would issue
/// them.
pub async fn provision(state: &Path, users: usize) -> anyhow::Result<()> {
    let store = SqliteStore::open(state).await?;
    let keys = KeyRing::load_or_create(&state.join("master.key"))?;
    provision_into(&store, &keys, users).await?;
    store.close().await;
    Ok(())
}

/// [`provision`] into any store, sealing with `keys`.
pub async fn provision_into(store: &dyn Store, keys: &KeyRing, users: usize) -> anyhow::Result<()> {
    for i in 0..=users {
        let (uid, _, uuid) = user(i);
        store
            .upsert_user(&UserRecord {
                id: uuid.clone(),
                username: uid.clone(),
                display_name: uid,
                password_hash: None,
                enabled: true,
                groups: vec![],
                created_at: 0,
            })
            .await?;
        let token_id = format!("t{i}");
        store
            .insert_token(&TokenRecord::pending(
                token_id.clone(),
                uuid,
                TotpParams::default(),
                keys.seal(&token_id, &seed_of(i))?,
                0,
            ))
            .await?;
    }
    Ok(())
}

/// Logs generated person `person` in on a runtime of its own (thread name `tunnel`) and
/// forwards a local port to `resource` through that one connection; returns the local address.
pub fn start_tunnel(gateway: String, ca_pem: String, person: usize, resource: &str) -> anyhow::Result<String> {
    let resource = resource.to_owned();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<Result<String, String>>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("tunnel")
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (uid, pw, _) = user(person);
            let code = generate_totp(&seed_of(person), &TotpParams::default(), unix_now()).unwrap();
            let client = match GatewayClient::connect(&gateway, &ca_pem).await {
                Ok(client) => client,
                Err(e) => return addr_tx.send(Err(e.to_string())).unwrap(),
            };
            if let Err(e) = client.login(&uid, Sensitive::new(pw), Sensitive::new(code)).await {
                return addr_tx.send(Err(e.to_string())).unwrap();
            }
            let client = Arc::new(client);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(Ok(listener.local_addr().unwrap().to_string())).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                let client = client.clone();
                let resource = resource.clone();
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    match client.open(&resource).await {
                        Ok((mut send, mut recv)) => {
                            let (r, w) = tcp.into_split();
                            rampart_core::quic_relay::relay(r, w, &mut recv, &mut send, |_| {}, |_| {}).await;
                        }
                        Err(e) => eprintln!("tunnel stream refused: {e}"),
                    }
                });
            }
        });
    });
    addr_rx
        .recv_timeout(Duration::from_secs(30))?
        .map_err(anyhow::Error::msg)
}

/// An `iperf3 -s` on 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct IperfServer {
    /// The process.
    pub child: Child,
    /// Its port.
    pub port: u16,
}

impl IperfServer {
    /// Starts it and waits until it accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        rampart_tests::require_tool("iperf3", "iperf3");
        let port = rampart_tests::slapd::free_port();
        let child = Command::new("iperf3")
            .args(["-s", "-B", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "iperf3 -s did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self { child, port })
    }
}

impl Drop for IperfServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one `iperf3 -c` run measured at the receiving end, in bytes per second.
#[derive(Debug, Clone)]
pub struct IperfRun {
    /// All streams together (`end.sum_received`).
    pub total: f64,
    /// Each stream's own figure (`end.streams[].receiver`).
    pub streams: Vec<f64>,
}

/// `iperf3 -c` to `local` for `secs` with `parallel` streams: bytes per second the server
/// received.
pub async fn iperf_through(local: &str, secs: u64, parallel: u32) -> anyhow::Result<f64> {
    Ok(iperf_run(local, secs, parallel).await?.total)
}

/// [`iperf_through`] with each stream's figure as well.
pub async fn iperf_run(local: &str, secs: u64, parallel: u32) -> anyhow::Result<IperfRun> {
    let (host, port) = local
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("{local} is not HOST:PORT"))?;
    let out = tokio::process::Command::new("iperf3")
        .args([
            "-c",
            host,
            "-p",
            port,
            "-t",
            &secs.to_string(),
            "-P",
            &parallel.to_string(),
            "-J",
        ])
        .stdin(Stdio::null())
        .output()
        .await?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        anyhow::anyhow!(
            "iperf3 output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Some(error) = json["error"].as_str() {
        anyhow::bail!("iperf3: {error}");
    }
    let bits = json["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .ok_or_else(|| anyhow::anyhow!("no end.sum_received in iperf3 output: {json}"))?;
    let streams = json["end"]["streams"]
        .as_array()
        .map(|streams| {
            streams
                .iter()
                .filter_map(|s| s["receiver"]["bits_per_second"].as_f64())
                .map(|b| b / 8.0)
                .collect()
        })
        .unwrap_or_default();
    Ok(IperfRun {
        total: bits / 8.0,
        streams,
    })
}

/// Runs an in-process gateway for the rest of the process, on a runtime of its own (threads
/// named `gateway`, so CPU accounting can tell it apart), checking passwords in `ldap`, with a
/// certificate from `ca`; with `audit` it writes its audit trail into `state/audit`. Returns its
/// address.
pub fn run_gateway(
    state: std::path::PathBuf,
    ldap: rampart_directory::ldap::LdapConfig,
    policy: rampart_core::policy::Policy,
    settings: rampart_gateway::GatewaySettings,
    ca: &rampart_certs::CertificateAuthority,
    audit: bool,
) -> anyhow::Result<String> {
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    run_gateway_on(listen, state, ldap, policy, settings, ca, audit)
}

/// [`run_gateway`] listening on `listen` (port 0: any free one), with a certificate naming its
/// address.
pub fn run_gateway_on(
    listen: std::net::SocketAddr,
    state: std::path::PathBuf,
    ldap: rampart_directory::ldap::LdapConfig,
    policy: rampart_core::policy::Policy,
    settings: rampart_gateway::GatewaySettings,
    ca: &rampart_certs::CertificateAuthority,
    audit: bool,
) -> anyhow::Result<String> {
    use rampart_gateway::{Clock, FlowLog, Gateway, GatewayParts};
    let cert = ca.issue_server(&[listen.ip().to_string()])?;
    let (chain, key) = (cert.cert_chain()?, cert.private_key()?);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("gateway")
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&state).await.unwrap());
            let keys = Arc::new(KeyRing::load_or_create(&state.join("master.key")).unwrap());
            let (flows, writer) = FlowLog::open(&state.join("flows.jsonl")).await.unwrap();
            let (audit, audit_writer) = if audit {
                let settings = rampart_audit::AuditConfig::default()
                    .settings(&state, "gateway")
                    .unwrap();
                let (log, writer) = rampart_audit::AuditLog::open(&settings, "bench", Clock::system()).unwrap();
                (log, Some(writer))
            } else {
                (rampart_audit::AuditLog::disabled(), None)
            };
            let gateway = Gateway::bind(GatewayParts {
                listen,
                admin_listen: None,
                cert_chain: chain,
                key,
                store,
                keys,
                directory: Arc::new(rampart_directory::LdapDirectory::new(ldap).unwrap()),
                policy,
                policy_file: None,
                flows,
                audit,
                settings,
                clock: Clock::system(),
            })
            .unwrap();
            addr_tx.send(gateway.local_addr().unwrap().to_string()).unwrap();
            gateway.run(std::future::pending()).await;
            writer.finish().await;
            if let Some(writer) = audit_writer {
                writer.finish().await;
            }
        });
    });
    Ok(addr_rx.recv_timeout(Duration::from_secs(30))?)
}
