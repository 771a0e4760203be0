//! Logins per second through the gateway against a real slapd, beside slapd's raw bind rate at
//! the same concurrency, measured in the same run.
//!
//! `cargo run --release -p rampart-benches --bin ldap-logins -- [USERS] [CONCURRENCY] [--retry]`
//! (defaults 1000 and 50). Each login is a full one: QUIC handshake, LDAP search, user bind and
//! group search, TOTP check and the atomic replay update in SQLite, session creation. With
//! `--retry` each person waits out "busy" answers and sends the same code again, as
//! `rampart-connect login` does; without it a busy answer counts as a failure. It also prints
//! the most LDAP connections slapd had open at once during the logins. `--pool N` sets the
//! gateway's LDAP pool size (default 8, the directory's default); `--queue N` and `--slots N` its
//! `login_queue` and `max_logins_in_progress`, `--retry-threshold N` its `retry_threshold` (default:
//! the gateway's defaults).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_benches::storm::{OnBusy, most_connections_to, run_with};
use rampart_benches::tunnel::provision;
use rampart_core::policy::Policy;
use rampart_directory::LdapDirectory;
use rampart_directory::ldap::LdapConfig;
use rampart_gateway::{Clock, FlowLog, Gateway, GatewayParts, GatewaySettings};
use rampart_store::{KeyRing, SqliteStore, Store};
use rampart_tests::slapd::{BASE, SERVICE_PASSWORD, Slapd, generated_people_ldif as ldif, generated_person as user};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How to call this program.
const USAGE: &str =
    "usage: ldap-logins [USERS] [CONCURRENCY] [--retry] [--pool N] [--queue N] [--slots N] [--retry-threshold N]";
/// The gateway's LDAP pool size unless `--pool` says otherwise: the directory's default.
const DEFAULT_POOL: usize = 8;

/// slapd's raw simple-bind rate: `concurrency` connections binding as the users in turn.
async fn raw_binds(url: &str, users: usize, concurrency: usize, duration: Duration) -> f64 {
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (url, done) = (url.to_owned(), done.clone());
        tasks.push(tokio::spawn(async move {
            let (conn, mut ldap) = ldap3::LdapConnAsync::new(&url).await.unwrap();
            tokio::spawn(conn.drive());
            let mut i = worker;
            while Instant::now() < deadline {
                let (uid, pw, _) = user(i % users);
                let dn = format!("uid={uid},ou=people,{BASE}");
                ldap.simple_bind(&dn, &pw).await.unwrap().success().unwrap();
                done.fetch_add(1, Ordering::Relaxed);
                i += concurrency;
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (mut on_busy, mut pool, mut positional) = (OnBusy::GiveUp, DEFAULT_POOL, Vec::new());
    let mut settings = GatewaySettings::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--retry" {
            on_busy = OnBusy::Retry;
            continue;
        }
        if !arg.starts_with("--") {
            positional.push(arg);
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{arg} needs a number\n{USAGE}"))?;
        let number = |what: &str| -> anyhow::Result<u32> {
            value
                .parse()
                .map_err(|e| anyhow::anyhow!("{what} must be a number, not {value:?}: {e}"))
        };
        match arg.as_str() {
            "--queue" => settings.login_queue = number("--queue")?,
            "--slots" => settings.max_logins_in_progress = number("--slots")?,
            "--retry-threshold" => settings.retry_threshold = number("--retry-threshold")?,
            "--pool" => pool = usize::try_from(number("--pool")?)?,
            other => anyhow::bail!("unknown option {other}\n{USAGE}"),
        }
    }
    let mut args = positional.into_iter();
    let users: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let concurrency: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(50);

    let slapd = Slapd::start_with(None, &ldif(users), false);
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("pw"), SERVICE_PASSWORD)?;
    let config: LdapConfig = slapd.ldap_config(&dir.path().join("pw"), pool);

    // Tokens for every user, as the provisioner would issue them.
    provision(dir.path(), users.saturating_sub(1)).await?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await?);
    let keys = Arc::new(KeyRing::load_or_create(&dir.path().join("master.key"))?);

    let ca = rampart_certs::CertificateAuthority::create("Bench")?;
    let cert = ca.issue_server(&["127.0.0.1".into()])?;
    let (flows, _writer) = FlowLog::open(&dir.path().join("flows.jsonl")).await?;
    let gateway = Gateway::bind(GatewayParts {
        listen: "127.0.0.1:0".parse()?,
        admin_listen: None,
        cert_chain: cert.cert_chain()?,
        key: cert.private_key()?,
        store,
        keys,
        directory: Arc::new(LdapDirectory::new(config).map_err(anyhow::Error::msg)?),
        policy: Policy::default(),
        policy_file: None,
        flows,
        audit: rampart_audit::AuditLog::disabled(),
        settings,
        clock: Clock::system(),
    })?;
    let addr = gateway.local_addr()?.to_string();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway.run(async move {
        let _ = stop_rx.await;
    }));

    let bind_rate = raw_binds(&slapd.url, users, concurrency, Duration::from_secs(5)).await;

    let slapd_port: u16 = slapd
        .url
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no port in {}", slapd.url))?;
    let (storm, ldap_connections) = most_connections_to(
        slapd_port,
        run_with(&[addr], ca.cert_pem(), users, concurrency, 0, on_busy),
    )
    .await;
    let (latencies, failures, elapsed, login_rate) = (storm.latencies, storm.failures, storm.elapsed, storm.rate);
    let _ = stop_tx.send(());
    let _ = server.await;

    println!(
        "ldap-logins: {users} users, {concurrency} concurrent, slapd {}",
        slapd.url
    );
    println!("  slapd raw simple binds ({concurrency} connections): {bind_rate:>8.0} /s");
    println!(
        "  gateway logins ({concurrency} clients):             {login_rate:>8.0} /s  ({} ok, {failures} failed, total {:.2} s)",
        latencies.len(),
        elapsed.as_secs_f64()
    );
    println!(
        "  login latency p50 {:?}  p99 {:?}  max {:?}",
        rampart_benches::quantile(&latencies, 0.5),
        rampart_benches::quantile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default()
    );
    println!("  ratio logins / raw binds: {:.3}", login_rate / bind_rate);
    println!(
        "  busy answers: {}",
        match on_busy {
            OnBusy::GiveUp => "failures",
            OnBusy::Retry => "waited out as rampart-connect login does",
        }
    );
    println!(
        "  ldap connections: {ldap_connections} at most at once (pool {pool} per kind: service searches, person binds)"
    );
    for (kind, count) in &storm.failure_kinds {
        println!("  failed: {count} x {kind}");
    }
    Ok(())
}
