//! A bulk tunnel's throughput with and without a login storm, measured by `iperf3` through the
//! gateway, in the same run.
//!
//! `cargo run --release -p rampart-benches --bin login-storm -- [USERS] [CLIENTS] [SECS]`
//! (defaults 2000, 300 and 8). A real slapd holds USERS+1 generated people; `user00000` keeps
//! one session open and forwards a local port to an `iperf3 -s` on 127.0.0.1 (one QUIC stream
//! per TCP connection, as `rampart-connect forward` does), and `iperf3 -c` pushes through it for
//! SECS seconds — first alone, then while CLIENTS concurrent clients each log in over and over
//! (new QUIC connection, directory password, TOTP code computed in-process, full login with
//! session creation) as fast as the gateway answers. Each person's codes for steps T and T+1
//! are used once each, so USERS × 2 full logins are possible per 30 s; past that a login is sent
//! with a wrong password (still a real LDAP bind) and counted as "every code spent".
//!
//! The gateway runs in-process with the default admission settings (32 logins in progress, a
//! queue of 256, 5 s wait) on its own tokio runtime; the tunnel client and the storm's clients
//! have runtimes of their own, so they share only the CPU — which on a small machine is the
//! point: the CPU seconds of each part during each run are printed beside the figures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_benches::tunnel::{IperfServer, iperf_through, provision, run_gateway, seed_of, start_tunnel, unix_now};
use rampart_client::{ClientError, GatewayClient};
use rampart_core::ErrorCode;
use rampart_core::policy::Policy;
use rampart_core::secret::Sensitive;
use rampart_core::totp::{TotpParams, generate_totp};
use rampart_gateway::GatewaySettings;
use rampart_tests::slapd::{SERVICE_PASSWORD, Slapd, generated_people_ldif as ldif, generated_person as user};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// TOTP period in seconds (the default parameters).
const PERIOD: u64 = 30;

/// Runs the gateway on a runtime of its own for the rest of the process; returns its address.
fn start_gateway(
    state: PathBuf,
    slapd: &Slapd,
    iperf_port: u16,
    ca: &rampart_certs::CertificateAuthority,
) -> anyhow::Result<String> {
    std::fs::write(state.join("pw"), SERVICE_PASSWORD)?;
    let settings = GatewaySettings {
        max_logins_in_progress: 32,
        login_queue: 256,
        ..GatewaySettings::default()
    };
    let ldap = slapd.ldap_config(&state.join("pw"), settings.max_logins_in_progress as usize);
    let (first, _, _) = user(0);
    let policy = Policy::parse(&format!(
        "[[resource]]\nname = \"iperf\"\ntarget = \"127.0.0.1:{iperf_port}\"\nallow_users = [\"{first}\"]\n"
    ))
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    run_gateway(state, ldap, policy, settings, ca, false)
}

/// CPU seconds used so far, by part of the benchmark (Linux `/proc`, USER_HZ = 100).
#[derive(Debug, Default, Clone, Copy)]
struct Cpu {
    gateway: f64,
    tunnel: f64,
    clients: f64,
    slapd: f64,
    iperf_server: f64,
    /// Children reaped by this process: the `iperf3 -c` runs.
    iperf_client: f64,
}

/// `(comm, ppid, utime + stime in seconds)` from a `/proc/.../stat` line.
fn parse_stat(stat: &str) -> Option<(String, u32, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_owned();
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let ppid = rest.get(1)?.parse().ok()?;
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((comm, ppid, (utime + stime) as f64 / 100.0))
}

fn cpu_now(iperf_pid: u32) -> Cpu {
    let mut cpu = Cpu::default();
    let stats = |dir: &str| -> Vec<(u32, String)> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| {
                        let pid = e.file_name().to_str()?.parse().ok()?;
                        Some((pid, std::fs::read_to_string(e.path().join("stat")).ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    // Threads of this process: the gateway's runtime and its SQLite worker, the tunnel
    // client's runtime, and the rest (the storm's clients).
    for (_, stat) in stats("/proc/self/task") {
        if let Some((comm, _, secs)) = parse_stat(&stat) {
            if comm.starts_with("gateway") || comm.starts_with("sqlx") {
                cpu.gateway += secs;
            } else if comm.starts_with("tunnel") {
                cpu.tunnel += secs;
            } else {
                cpu.clients += secs;
            }
        }
    }
    // Children this process has waited for: only the iperf3 -c runs end while measuring.
    if let Some(rest) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| stat.rfind(')').map(|close| stat[close + 1..].to_owned()))
    {
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        cpu.iperf_client = (field(13) + field(14)) as f64 / 100.0;
    }
    let me = std::process::id();
    for (pid, stat) in stats("/proc") {
        if let Some((comm, ppid, secs)) = parse_stat(&stat) {
            if pid == iperf_pid {
                cpu.iperf_server += secs;
            } else if ppid == me && comm == "slapd" {
                cpu.slapd += secs;
            }
        }
    }
    cpu
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;

    fn sub(self, before: Cpu) -> Cpu {
        Cpu {
            gateway: self.gateway - before.gateway,
            tunnel: self.tunnel - before.tunnel,
            clients: self.clients - before.clients,
            slapd: self.slapd - before.slapd,
            iperf_server: self.iperf_server - before.iperf_server,
            iperf_client: self.iperf_client - before.iperf_client,
        }
    }
}

impl std::fmt::Display for Cpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "gateway {:.1}, tunnel client {:.1}, storm clients {:.1}, slapd {:.1}, iperf3 -s {:.1}, iperf3 -c {:.1}",
            self.gateway, self.tunnel, self.clients, self.slapd, self.iperf_server, self.iperf_client
        )
    }
}

/// What the storm's logins were answered.
#[derive(Debug, Default)]
struct Tally {
    granted: AtomicU64,
    invalid: AtomicU64,
    busy: AtomicU64,
    try_later: AtomicU64,
    failed: AtomicU64,
    /// Logins sent with a wrong password because every code of the person's window was used.
    spent: AtomicU64,
    latency_micros: AtomicU64,
    /// Attempts whose connection was made (those `latency_micros` sums).
    timed: AtomicU64,
    /// The first few failures, as the client described them.
    failures: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, why: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut failures = self.failures.lock().unwrap();
        if failures.len() < 3 {
            failures.push(why);
        }
    }

    fn answered(&self) -> u64 {
        self.granted.load(Ordering::Relaxed) + self.invalid.load(Ordering::Relaxed)
    }
}

/// A code for person `i` never used before, or None when both were used in this window. The
/// gateway accepts steps T−1, T and T+1, each once; only T and T+1 are used here, so a code
/// computed just before a step boundary is still good when the gateway checks it.
fn fresh_code(i: usize, last_steps: &[AtomicU64]) -> Option<String> {
    let slot = &last_steps[i];
    loop {
        let now = unix_now();
        let current = now / PERIOD;
        let last = slot.load(Ordering::Acquire);
        let step = (last + 1).max(current);
        if step > current + 1 {
            return None;
        }
        if slot
            .compare_exchange(last, step, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return generate_totp(&seed_of(i), &TotpParams::default(), step * PERIOD).ok();
        }
    }
}

/// `clients` workers logging in over and over until `stop`, each on a new QUIC connection.
fn storm(
    gateway: String,
    ca_pem: String,
    users: usize,
    clients: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let last_steps: Arc<Vec<AtomicU64>> = Arc::new((0..=users).map(|_| AtomicU64::new(0)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    (0..clients)
        .map(|_| {
            let (gateway, ca_pem, stop, tally) = (gateway.clone(), ca_pem.clone(), stop.clone(), tally.clone());
            let (last_steps, next) = (last_steps.clone(), next.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    // People 1..=users; person 0 holds the tunnel.
                    let i = 1 + next.fetch_add(1, Ordering::Relaxed) % users;
                    let (uid, mut pw, _) = user(i);
                    let code = match fresh_code(i, &last_steps) {
                        Some(code) => code,
                        None => {
                            tally.spent.fetch_add(1, Ordering::Relaxed);
                            pw.push_str("-wrong");
                            "000000".into()
                        }
                    };
                    let began = Instant::now();
                    let client = match GatewayClient::connect(&gateway, &ca_pem).await {
                        Ok(client) => client,
                        Err(e) => {
                            tally.fail(format!("connect: {e}"));
                            continue;
                        }
                    };
                    let result = client.login(&uid, Sensitive::new(pw), Sensitive::new(code)).await;
                    match result {
                        Ok(_) => tally.granted.fetch_add(1, Ordering::Relaxed),
                        Err(ClientError::Refused {
                            code: ErrorCode::InvalidCredentials,
                            ..
                        }) => tally.invalid.fetch_add(1, Ordering::Relaxed),
                        Err(ClientError::Busy { .. }) => tally.busy.fetch_add(1, Ordering::Relaxed),
                        Err(ClientError::Refused {
                            code: ErrorCode::TryLater,
                            ..
                        }) => tally.try_later.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            tally.fail(format!("login: {e}"));
                            0
                        }
                    };
                    tally
                        .latency_micros
                        .fetch_add(began.elapsed().as_micros() as u64, Ordering::Relaxed);
                    tally.timed.fetch_add(1, Ordering::Relaxed);
                    // Closing waits for the QUIC draining period; not part of a login.
                    tokio::spawn(async move { client.close().await });
                }
            })
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let users: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let clients: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(300);
    let secs: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(8);
    anyhow::ensure!(
        users >= 1 && clients >= 1 && secs >= 1,
        "USERS, CLIENTS and SECS must be positive"
    );

    let setup = Instant::now();
    let slapd = Slapd::start_with(None, &ldif(users + 1), false);
    let dir = tempfile::tempdir()?;
    provision(dir.path(), users).await?;
    let iperf = IperfServer::start()?;
    let ca = rampart_certs::CertificateAuthority::create("Bench")?;
    let ca_pem = ca.cert_pem().to_owned();
    let gateway = start_gateway(dir.path().to_owned(), &slapd, iperf.port, &ca)?;
    let local = start_tunnel(gateway.clone(), ca_pem.clone(), 0, "iperf")?;
    let setup = setup.elapsed();

    // 1. The tunnel alone.
    let iperf_pid = iperf.child.id();
    let cpu_before = cpu_now(iperf_pid);
    let alone = iperf_through(&local, secs, 1).await?;
    let cpu_alone = cpu_now(iperf_pid) - cpu_before;

    // 2. The same while the storm runs: it starts a second early and stops when iperf3 ends.
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let storm_started = Instant::now();
    let workers = storm(gateway, ca_pem, users, clients, stop.clone(), tally.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let answered_before = tally.answered();
    let busy_before = tally.busy.load(Ordering::Relaxed);
    let window = Instant::now();
    let cpu_before = cpu_now(iperf_pid);
    let stormy = iperf_through(&local, secs, 1).await?;
    let cpu_stormy = cpu_now(iperf_pid) - cpu_before;
    let window = window.elapsed();
    let answered_in_window = tally.answered() - answered_before;
    let busy_in_window = tally.busy.load(Ordering::Relaxed) - busy_before;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.await;
    }
    let storm_time = storm_started.elapsed();

    let total = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let attempts = tally.answered() + total(&tally.busy) + total(&tally.try_later) + total(&tally.failed);
    let mib = |bytes_per_sec: f64| bytes_per_sec / (1024.0 * 1024.0);
    println!(
        "login-storm: {users} people in slapd {}, {clients} storm clients, iperf3 for {secs} s (setup {:.1} s)",
        slapd.url,
        setup.as_secs_f64()
    );
    println!("  gateway admission: 32 logins in progress, queue 256, 5 s wait (defaults)");
    println!("  tunnel throughput alone:          {:>8.1} MiB/s", mib(alone));
    println!("  tunnel throughput during storm:   {:>8.1} MiB/s", mib(stormy));
    println!("  ratio storm / alone:              {:>8.3}", stormy / alone);
    println!(
        "  logins answered during iperf3:    {:>8.1} /s  ({answered_in_window} in {:.1} s; busy answers {busy_in_window})",
        answered_in_window as f64 / window.as_secs_f64(),
        window.as_secs_f64()
    );
    println!(
        "  whole storm ({:.1} s, {attempts} attempts): {} granted, {} invalid ({} with every code spent), {} busy, {} try-later, {} failed",
        storm_time.as_secs_f64(),
        total(&tally.granted),
        total(&tally.invalid),
        total(&tally.spent),
        total(&tally.busy),
        total(&tally.try_later),
        total(&tally.failed),
    );
    println!(
        "  mean time to an answer (connect + login): {:.1} ms",
        total(&tally.latency_micros) as f64 / 1000.0 / total(&tally.timed).max(1) as f64
    );
    for failure in tally.failures.lock().unwrap().iter() {
        println!("  failure: {failure}");
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!("  CPU seconds while iperf3 ran ({cores} cores x {secs} s):");
    println!("    alone:  {cpu_alone}");
    println!("    storm:  {cpu_stormy}");
    drop(iperf);
    Ok(())
}
