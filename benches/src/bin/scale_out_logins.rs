//! The 9 a.m. login storm on a scaled-out Rampart beside a one-host one, in the same run:
//! USERS people (real slapd, real TOTP codes) log in CONCURRENCY at a time through one gateway
//! on SQLite, and spread over two gateways sharing PostgreSQL (a cluster this program starts,
//! with a synchronous standby unless `--no-standby`), in alternating rounds (SQLite, PostgreSQL,
//! SQLite, PostgreSQL; the second round with the next time step's codes). Then the time a kill
//! through one gateway takes to cut a live flow on the other, over five people.
//!
//! `cargo run --release -p rampart-benches --bin scale-out-logins -- [USERS] [CONCURRENCY] [--no-standby]`
//! (defaults 1000 and 50). Each login is a full one: QUIC handshake, LDAP search, user bind and
//! group search, TOTP check, the atomic replay update and session creation in the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_benches::storm::{self, Storm};
use rampart_benches::tunnel::{provision_into, seed_of};
use rampart_client::GatewayClient;
use rampart_core::policy::Policy;
use rampart_core::secret::Sensitive;
use rampart_core::totp::{TotpParams, generate_totp};
use rampart_directory::LdapDirectory;
use rampart_directory::ldap::LdapConfig;
use rampart_gateway::{Clock, FlowLog, Gateway, GatewayParts, GatewaySettings};
use rampart_store::seal::{KeyEncryptionKey, LocalKek};
use rampart_store::{KeyRing, PgSettings, PgStore, SqliteStore, Store, parse_hosts};
use rampart_tests::slapd::{SERVICE_PASSWORD, Slapd, generated_people_ldif as ldif, generated_person as user};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running in-process gateway and the means to stop it.
struct Running {
    addr: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_gateway(
    store: Arc<dyn Store>,
    keys: Arc<KeyRing>,
    ldap: &LdapConfig,
    ca: &rampart_certs::CertificateAuthority,
    policy: &Policy,
    flows_dir: &Path,
    name: &str,
) -> anyhow::Result<Running> {
    let cert = ca.issue_server(&["127.0.0.1".into()])?;
    let (flows, _writer) = FlowLog::open(&flows_dir.join(format!("{name}.jsonl"))).await?;
    let settings = GatewaySettings {
        session_check_secs: 1,
        ..GatewaySettings::default()
    };
    let gateway = Gateway::bind(GatewayParts {
        listen: "127.0.0.1:0".parse()?,
        admin_listen: None,
        cert_chain: cert.cert_chain()?,
        key: cert.private_key()?,
        store,
        keys,
        directory: Arc::new(LdapDirectory::new(ldap.clone()).map_err(anyhow::Error::msg)?),
        policy: policy.clone(),
        policy_file: None,
        flows,
        audit: rampart_audit::AuditLog::disabled(),
        settings,
        clock: Clock::system(),
    })?;
    let addr = gateway.local_addr()?.to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(gateway.run(async move {
        let _ = stopped.await;
    }));
    Ok(Running { addr, stop, task })
}

/// Kill-propagation rounds, with people beyond the storm's.
const KILL_ROUNDS: usize = 5;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let standby = !args.iter().any(|a| a == "--no-standby");
    let mut numbers = args.iter().filter(|a| !a.starts_with("--"));
    let users: usize = numbers.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let concurrency: usize = numbers.next().map(|a| a.parse()).transpose()?.unwrap_or(50);

    let people = users + KILL_ROUNDS;
    let slapd = Slapd::start_with(None, &ldif(people), false);
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("pw"), SERVICE_PASSWORD)?;
    let ldap: LdapConfig = slapd.ldap_config(&dir.path().join("pw"), concurrency);
    let ca = rampart_certs::CertificateAuthority::create("Bench")?;
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let echo_addr = echo.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let killed: Vec<String> = (users..people).map(|i| format!("{:?}", user(i).0)).collect();
    let policy = Policy::parse(&format!(
        "[[resource]]\nname = \"echo\"\ntarget = \"{echo_addr}\"\nallow_users = [{}]\n",
        killed.join(", ")
    ))?;

    // One gateway on SQLite.
    let sqlite_dir = dir.path().join("sqlite");
    std::fs::create_dir_all(&sqlite_dir)?;
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&sqlite_dir).await?);
    let sqlite_keys = Arc::new(KeyRing::load_or_create(&sqlite_dir.join("master.key"))?);
    provision_into(sqlite.as_ref(), &sqlite_keys, users.saturating_sub(1)).await?;
    let one = start_gateway(sqlite, sqlite_keys, &ldap, &ca, &policy, dir.path(), "sqlite").await?;

    // Two gateways on PostgreSQL, each with its own connection pool, as on two hosts.
    let (primary, standby_cluster, url) = tokio::task::spawn_blocking(move || {
        let primary = rampart_pgtest::Cluster::start().unwrap();
        let url = primary.fresh_database().unwrap();
        let standby = standby.then(|| primary.start_standby(true).unwrap());
        (primary, standby, url)
    })
    .await?;
    let settings = PgSettings::default();
    let (seeding, _, _) = PgStore::migrate(parse_hosts(&url, None)?, settings.clone()).await?;
    let kek: Arc<dyn KeyEncryptionKey> = Arc::new(LocalKek::generate()?.0);
    let seeding: Arc<dyn Store> = Arc::new(seeding);
    let seed_keys = KeyRing::from_store(seeding.clone(), kek.clone(), "bench", 0).await?;
    provision_into(seeding.as_ref(), &seed_keys, people.saturating_sub(1)).await?;
    let mut running = Vec::new();
    let mut stores = Vec::new();
    for name in ["pg-a", "pg-b"] {
        let store: Arc<dyn Store> = Arc::new(PgStore::connect(parse_hosts(&url, None)?, settings.clone()).await?);
        let keys = Arc::new(KeyRing::from_store(store.clone(), kek.clone(), "bench", 0).await?);
        stores.push(store.clone());
        running.push(start_gateway(store, keys, &ldap, &ca, &policy, dir.path(), name).await?);
    }
    let addrs: Vec<String> = running.iter().map(|g| g.addr.clone()).collect();
    let mut single = Vec::new();
    let mut double = Vec::new();
    for step_ahead in 0..2 {
        single.push(
            storm::run(
                std::slice::from_ref(&one.addr),
                ca.cert_pem(),
                users,
                concurrency,
                step_ahead,
            )
            .await,
        );
        double.push(storm::run(&addrs, ca.cert_pem(), users, concurrency, step_ahead).await);
    }
    let _ = one.stop.send(());
    let _ = one.task.await;

    // Kill propagation: person 0 holds a flow on gateway A; the kill is written through
    // gateway B's store, as B's admin API does; measured until A cuts the flow.
    let mut kills = Vec::new();
    for (round, person) in (users..people).enumerate() {
        tokio::time::sleep(Duration::from_millis(700 + 137 * round as u64)).await;
        let (uid, pw, _) = user(person);
        let code = generate_totp(
            &seed_of(person),
            &TotpParams::default(),
            rampart_benches::tunnel::unix_now(),
        )
        .unwrap();
        let client = GatewayClient::connect(&addrs[0], ca.cert_pem()).await?;
        let grant = match client.login(&uid, Sensitive::new(pw), Sensitive::new(code)).await {
            Ok(grant) => grant,
            Err(e) => {
                println!("  (kill round {round} skipped: {e})");
                continue;
            }
        };
        let (mut send, mut recv) = client.open("echo").await?;
        send.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        recv.read_exact(&mut buf).await?;
        let started = Instant::now();
        stores[1]
            .end_session(
                &grant.session_id,
                "admin_kill",
                rampart_benches::tunnel::unix_now() as i64,
            )
            .await?;
        let mut rest = [0u8; 16];
        let cut = tokio::time::timeout(Duration::from_secs(10), recv.read(&mut rest)).await;
        if matches!(cut, Ok(Err(_)) | Ok(Ok(None))) {
            kills.push(started.elapsed());
        }
        client.close().await;
    }
    kills.sort();
    for g in running {
        let _ = g.stop.send(());
        let _ = g.task.await;
    }
    drop(standby_cluster);
    drop(primary);

    println!(
        "scale-out-logins: {users} users, {concurrency} at a time, slapd {}",
        slapd.url
    );
    let line = |name: &str, r: &Storm| {
        println!(
            "  {name:<44} {:>7.0} logins/s  ({} ok, {} failed, {:.2} s, p50 {:?}, p99 {:?})",
            r.rate,
            r.latencies.len(),
            r.failures,
            r.elapsed.as_secs_f64(),
            rampart_benches::quantile(&r.latencies, 0.5),
            rampart_benches::quantile(&r.latencies, 0.99)
        );
    };
    let pg_name = if standby {
        "two gateways, PostgreSQL + synchronous standby"
    } else {
        "two gateways, PostgreSQL"
    };
    for round in 0..single.len() {
        line(&format!("round {}: one gateway, SQLite", round + 1), &single[round]);
        line(&format!("round {}: {pg_name}", round + 1), &double[round]);
    }
    let rate = |runs: &[Storm]| runs.iter().map(|r| r.rate).sum::<f64>() / runs.len() as f64;
    println!(
        "  mean of the rounds: SQLite {:.0}/s, PostgreSQL {:.0}/s, ratio two-on-PostgreSQL / one-on-SQLite: {:.2}",
        rate(&single),
        rate(&double),
        rate(&double) / rate(&single)
    );
    println!(
        "  kill through gateway B cut a flow on gateway A (session_check_secs = 1), {} rounds: median {:?}, max {:?}",
        kills.len(),
        rampart_benches::quantile(&kills, 0.5),
        kills.last().copied().unwrap_or_default()
    );
    Ok(())
}
