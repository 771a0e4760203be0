//! Sessions at scale against a gateway running as a process of its own (`tunnel-bench gateway`
//! with `BENCH_PEOPLE=N`), whose resident memory and CPU are read from `/proc/PID`: many idle
//! logged-in sessions, and many sessions each carrying an RDP-like echoed flow.
//!
//! ```text
//! session-load idle GATEWAY CA_PEM GATEWAY_PID COUNT [CONCURRENCY] [--settle SECS] [--first N]
//!     people N..N+COUNT (N: --first, default 0) log in (each its own QUIC connection and UDP
//!     socket, password, TOTP code), CONCURRENCY (default 50) at a time, and stay connected and
//!     idle; a person's code is used once per 30 s, so runs in quick succession take other
//!     people with --first. The gateway's VmRSS is read before the first login and SECS
//!     (default 5) after the last. Prints
//!     "idle OK FAILED RSS_BEFORE_KIB RSS_AFTER_KIB SECONDS_TO_LOG_IN STILL_OPEN HWM_KIB
//!     IDLE_GATEWAY_CORES" (HWM: the gateway's VmHWM; cores: over the settle time).
//! session-load rdp GATEWAY CA_PEM GATEWAY_PID COUNT RESOURCE SECS [DIRECT_ADDR]
//!              [--mbit X] [--concurrency N] [--first N]
//!     people N..N+COUNT log in and each opens one flow to RESOURCE (an echo service) through
//!     its own session; for SECS seconds (after 1 s unmeasured) every flow carries X Mbit/s
//!     (default 1) each way in 200-1200-byte messages every 20 ms, plus a timed 3-byte
//!     "interactive" message 5 times a second whose echo time is recorded. With DIRECT_ADDR
//!     the same load first runs straight to the echo service. Prints
//!     "direct FLOWS_OK FLOWS MBIT_UP MBIT_DOWN P50_US P99_US MAX_US SAMPLES" (with DIRECT_ADDR),
//!     "rdp CARRIED COUNT MBIT_UP MBIT_DOWN P50_US P99_US MAX_US SAMPLES GATEWAY_CORES" and
//!     "rdp-added P50_US P99_US" (tunnel minus direct; with DIRECT_ADDR). MBIT_* are totals over
//!     all flows (up: written towards the echo service, down: echoed back).
//! ```
//!
//! Every figure is also explained on stderr, with failures counted by kind. The client needs
//! one file descriptor per session: the soft `ulimit -n` must exceed COUNT (checked at start;
//! this program cannot raise it, as the workspace forbids `unsafe` and has no rlimit crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_benches::quantile;
use rampart_benches::tunnel::{seed_of, unix_now};
use rampart_client::{ClientError, GatewayClient};
use rampart_core::secret::Sensitive;
use rampart_core::totp::{TotpParams, generate_totp};
use rampart_tests::slapd::generated_person as user;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod load;
mod procfs;

use load::{Load, LoadRun, run_load};
use procfs::{CpuMark, clk_tck, status_kib};

/// How to call this program.
const USAGE: &str =
    "usage: session-load idle GATEWAY CA_PEM GATEWAY_PID COUNT [CONCURRENCY] [--settle SECS] [--first N]
       session-load rdp GATEWAY CA_PEM GATEWAY_PID COUNT RESOURCE SECS [DIRECT_ADDR] [--mbit X] [--concurrency N]
                        [--first N]";

/// Prints `line` on stdout now.
fn announce(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Positional arguments, and `--name value` options by name.
type Args = (Vec<String>, BTreeMap<String, String>);

fn parse_args(raw: &[String]) -> anyhow::Result<Args> {
    let (mut positional, mut options) = (Vec::new(), BTreeMap::new());
    let mut it = raw.iter();
    while let Some(a) = it.next() {
        match a.strip_prefix("--") {
            Some(name) => {
                let value = it
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--{name} needs a value\n{USAGE}"))?;
                options.insert(name.to_owned(), value.clone());
            }
            None => positional.push(a.clone()),
        }
    }
    Ok((positional, options))
}

/// The `index`th positional argument, or a usage error naming `what`.
fn arg<'a>(args: &'a Args, index: usize, what: &str) -> anyhow::Result<&'a str> {
    args.0
        .get(index)
        .map(String::as_str)
        .ok_or_else(|| anyhow::anyhow!("{what} is missing\n{USAGE}"))
}

/// Positional argument `index` if given, else option `--what` if given, else `default`
/// (`None`: required).
fn number<T: std::str::FromStr>(args: &Args, index: Option<usize>, what: &str, default: Option<T>) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match index.and_then(|i| args.0.get(i)).or_else(|| args.1.get(what)) {
        Some(text) => text
            .parse()
            .map_err(|e| anyhow::anyhow!("{what} must be a number, not {text:?}: {e}")),
        None => default.ok_or_else(|| anyhow::anyhow!("{what} is missing\n{USAGE}")),
    }
}

/// Fails early, with what to do, when this process may not open `needed` more descriptors.
fn check_fd_limit(needed: usize) -> anyhow::Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap_or("unlimited");
    if let Ok(soft) = soft.parse::<usize>() {
        anyhow::ensure!(
            soft >= needed + 64,
            "the soft limit on open files is {soft}, too few for {needed} sessions: run `ulimit -n {}` first",
            needed + 64
        );
    }
    Ok(())
}

/// A short name for why a login failed, to count failures by kind (never a secret).
fn kind(stage: &str, e: &ClientError) -> String {
    match e {
        ClientError::Refused { code, message } => format!("{stage}: refused {code:?}: {message}"),
        ClientError::Busy { .. } => format!("{stage}: busy"),
        other => format!("{stage}: {other}"),
    }
}

/// What logging people in measured.
#[derive(Debug, Default)]
struct Logins {
    /// Person and connection of each success.
    clients: Vec<(usize, GatewayClient)>,
    /// Failures by kind.
    failures: BTreeMap<String, usize>,
    /// Busy answers that were retried.
    busy_retries: usize,
    /// From the first login to the last answer.
    elapsed: Duration,
}

/// Logs person `i` in on a connection of its own; up to two busy answers are waited out.
async fn log_in(gateway: &str, ca_pem: &str, i: usize, busy: &AtomicUsize) -> Result<GatewayClient, String> {
    let (uid, pw, _) = user(i);
    let client = GatewayClient::connect(gateway, ca_pem)
        .await
        .map_err(|e| kind("connect", &e))?;
    let mut retries = 0;
    loop {
        let code = generate_totp(&seed_of(i), &TotpParams::default(), unix_now()).unwrap();
        match client
            .login(&uid, Sensitive::new(pw.clone()), Sensitive::new(code))
            .await
        {
            Ok(_) => return Ok(client),
            Err(ClientError::Busy { retry_after_secs }) if retries < 2 => {
                retries += 1;
                busy.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_secs(retry_after_secs.clamp(1, 5).into())).await;
            }
            Err(e) => {
                client.abandon();
                return Err(kind("login", &e));
            }
        }
    }
}

/// People `0..count` log in, `concurrency` at a time; progress on stderr every 5 s.
async fn log_in_all(gateway: &str, ca_pem: &str, people: std::ops::Range<usize>, concurrency: usize) -> Logins {
    let (first, count) = (people.start, people.len());
    let (gateway, ca_pem) = (Arc::new(gateway.to_owned()), Arc::new(ca_pem.to_owned()));
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let busy = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let progress = {
        let done = done.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                eprintln!(
                    "  {} of {count} logins answered after {:.0} s",
                    done.load(Ordering::Relaxed),
                    started.elapsed().as_secs_f64()
                );
            }
        })
    };
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (gateway, ca_pem, next, done, busy) = (
            gateway.clone(),
            ca_pem.clone(),
            next.clone(),
            done.clone(),
            busy.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut results = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return results;
                }
                let i = first + i;
                results.push((i, log_in(&gateway, &ca_pem, i, &busy).await));
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut logins = Logins::default();
    for worker in workers {
        for (i, result) in worker.await.unwrap() {
            match result {
                Ok(client) => logins.clients.push((i, client)),
                Err(kind) => *logins.failures.entry(kind).or_default() += 1,
            }
        }
    }
    logins.elapsed = started.elapsed();
    progress.abort();
    logins.busy_retries = busy.load(Ordering::Relaxed);
    logins.clients.sort_by_key(|(i, _)| *i);
    logins
}

/// Prints failures by kind on stderr.
fn report_failures(what: &str, failures: &BTreeMap<String, usize>) {
    for (kind, n) in failures {
        eprintln!("  {what} failed {n}×: {kind}");
    }
}

/// Closes every connection, all at once (each waits at most 2 s for its close to be sent).
async fn close_all(clients: Vec<Arc<GatewayClient>>) {
    let closing: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(async move { c.close().await }))
        .collect();
    for c in closing {
        let _ = c.await;
    }
}

/// `idle GATEWAY CA_PEM GATEWAY_PID COUNT [CONCURRENCY] [--settle SECS] [--first N]`
async fn idle(args: &Args) -> anyhow::Result<()> {
    let gateway = arg(args, 0, "GATEWAY")?;
    let ca_pem = std::fs::read_to_string(arg(args, 1, "CA_PEM")?)?;
    let pid: u32 = number(args, Some(2), "GATEWAY_PID", None)?;
    let count: usize = number(args, Some(3), "COUNT", None)?;
    let first: usize = number(args, None, "first", Some(0))?;
    let concurrency: usize = number(args, Some(4), "concurrency", Some(50))?;
    let settle: u64 = number(args, None, "settle", Some(5))?;
    check_fd_limit(count)?;
    let clk_tck = clk_tck()?;
    let before = status_kib(pid, "VmRSS")?;
    eprintln!("idle: {count} people log in, {concurrency} at a time; gateway pid {pid} at {before} KiB resident");
    let logins = log_in_all(gateway, &ca_pem, first..first + count, concurrency).await;
    let ok = logins.clients.len();
    let failed = count - ok;
    let mark = CpuMark::now(pid)?;
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let (idle_cores, own_cores, _) = CpuMark::now(pid)?.cores_since(&mark, clk_tck);
    let after = status_kib(pid, "VmRSS")?;
    let hwm = status_kib(pid, "VmHWM")?;
    let still_open = logins.clients.iter().filter(|(_, c)| c.is_open()).count();
    let secs = logins.elapsed.as_secs_f64();
    announce(&format!(
        "idle {ok} {failed} {before} {after} {secs:.2} {still_open} {hwm} {idle_cores:.3}"
    ))?;
    let per_session = after.saturating_sub(before) as f64 / ok.max(1) as f64;
    eprintln!(
        "idle: {ok} of {count} logged in ({failed} failed, {} busy answers waited out) in {secs:.1} s \
         ({:.0}/s); {still_open} still open {settle} s later; gateway resident {before} -> {after} KiB \
         ({:.1} MiB, {per_session:.1} KiB per session, peak {hwm} KiB); while idle the gateway used \
         {idle_cores:.3} cores and this client {own_cores:.3}",
        logins.busy_retries,
        ok as f64 / secs.max(1e-9),
        after as f64 / 1024.0,
    );
    report_failures("login", &logins.failures);
    close_all(logins.clients.into_iter().map(|(_, c)| Arc::new(c)).collect()).await;
    Ok(())
}

/// Microseconds at quantile `q` of sorted echo times.
fn micros(echoes: &[Duration], q: f64) -> f64 {
    quantile(echoes, q).as_secs_f64() * 1e6
}

/// The human summary of a load run on stderr.
fn describe(what: &str, run: &LoadRun, flows: usize, mbit: f64) {
    eprintln!(
        "{what}: {} of {flows} flows carried ({} below 90% of {mbit} Mbit/s); {:.1} Mbit/s up, {:.1} down \
         in total; echo p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs over {} echoes; gateway {:.3} cores, \
         this load generator {:.3}, machine {:.2} busy",
        run.carried,
        run.slow,
        run.mbit_up,
        run.mbit_down,
        micros(&run.echoes, 0.5),
        micros(&run.echoes, 0.99),
        micros(&run.echoes, 1.0),
        run.echoes.len(),
        run.cores.0,
        run.cores.1,
        run.cores.2,
    );
    report_failures("flow", &run.failures);
}

/// `rdp GATEWAY CA_PEM GATEWAY_PID COUNT RESOURCE SECS [DIRECT_ADDR] [--mbit X] [--concurrency N] [--first N]`
async fn rdp(args: &Args) -> anyhow::Result<()> {
    let gateway = arg(args, 0, "GATEWAY")?;
    let ca_pem = std::fs::read_to_string(arg(args, 1, "CA_PEM")?)?;
    let pid: u32 = number(args, Some(2), "GATEWAY_PID", None)?;
    let count: usize = number(args, Some(3), "COUNT", None)?;
    let first: usize = number(args, None, "first", Some(0))?;
    let resource = arg(args, 4, "RESOURCE")?;
    let secs: u64 = number(args, Some(5), "SECS", None)?;
    let direct = args.0.get(6).cloned();
    let mbit: f64 = number(args, None, "mbit", Some(1.0))?;
    let concurrency: usize = number(args, None, "concurrency", Some(50))?;
    anyhow::ensure!(
        secs >= 1 && count >= 1 && mbit > 0.0,
        "COUNT, SECS and --mbit must be positive"
    );
    check_fd_limit(count)?;
    let clk_tck = clk_tck()?;
    let mut direct_p = None;
    if let Some(addr) = direct {
        let mut flows = Vec::new();
        for _ in 0..count {
            let tcp = tokio::net::TcpStream::connect(&addr).await?;
            tcp.set_nodelay(true)?;
            flows.push(tcp.into_split());
        }
        eprintln!("direct: {count} flows to {addr}, {mbit} Mbit/s each way each, {secs} s");
        let run = run_load(flows, Load::new(mbit), secs, pid, clk_tck).await?;
        describe("direct", &run, count, mbit);
        let p = (micros(&run.echoes, 0.5), micros(&run.echoes, 0.99));
        announce(&format!(
            "direct {} {count} {:.2} {:.2} {:.0} {:.0} {:.0} {}",
            run.carried,
            run.mbit_up,
            run.mbit_down,
            p.0,
            p.1,
            micros(&run.echoes, 1.0),
            run.echoes.len()
        ))?;
        direct_p = Some(p);
    }
    eprintln!("rdp: {count} people log in, {concurrency} at a time, each opening one flow to {resource}");
    let logins = log_in_all(gateway, &ca_pem, first..first + count, concurrency).await;
    eprintln!(
        "rdp: {} of {count} logged in in {:.1} s",
        logins.clients.len(),
        logins.elapsed.as_secs_f64()
    );
    report_failures("login", &logins.failures);
    let clients: Vec<Arc<GatewayClient>> = logins.clients.into_iter().map(|(_, c)| Arc::new(c)).collect();
    let resource = Arc::new(resource.to_owned());
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let opening: Vec<_> = clients
        .iter()
        .map(|c| {
            let (c, resource, semaphore) = (c.clone(), resource.clone(), semaphore.clone());
            tokio::spawn(async move {
                let _permit = semaphore.acquire().await;
                c.open(&resource).await.map_err(|e| kind("open", &e))
            })
        })
        .collect();
    let (mut flows, mut open_failures) = (Vec::new(), BTreeMap::new());
    for o in opening {
        match o.await? {
            Ok((send, recv)) => flows.push((recv, send)),
            Err(kind) => *open_failures.entry(kind).or_default() += 1,
        }
    }
    report_failures("open", &open_failures);
    eprintln!("rdp: {} flows, {mbit} Mbit/s each way each, {secs} s", flows.len());
    let run = run_load(flows, Load::new(mbit), secs, pid, clk_tck).await?;
    describe("rdp", &run, count, mbit);
    let (p50, p99) = (micros(&run.echoes, 0.5), micros(&run.echoes, 0.99));
    announce(&format!(
        "rdp {} {count} {:.2} {:.2} {p50:.0} {p99:.0} {:.0} {} {:.3}",
        run.carried,
        run.mbit_up,
        run.mbit_down,
        micros(&run.echoes, 1.0),
        run.echoes.len(),
        run.cores.0,
    ))?;
    if let Some((d50, d99)) = direct_p {
        announce(&format!("rdp-added {:.0} {:.0}", p50 - d50, p99 - d99))?;
        eprintln!(
            "rdp: the tunnel added {:.0} µs at p50 and {:.0} µs at p99 (goal: < 5000 µs at p99; gateway < 1 core)",
            p50 - d50,
            p99 - d99
        );
    }
    close_all(clients).await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let command = raw.first().map(String::as_str).unwrap_or_default();
    let args = parse_args(raw.get(1..).unwrap_or_default())?;
    match command {
        "idle" => idle(&args).await,
        "rdp" => rdp(&args).await,
        _ => anyhow::bail!("{USAGE}"),
    }
}
