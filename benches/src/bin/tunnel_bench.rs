//! The pieces `scripts/bench` runs to measure Rampart's tunnel beside `ssh -L`, stunnel and
//! socat: a gateway with a real slapd, a logged-in client forwarding a local port, an echo
//! service, and the probes (iperf3 at the receiving end, 1-byte ping-pong, new connections per
//! second). Each is a subcommand, so the script can start each piece in a network namespace of
//! its choosing and stop it by its pid.
//!
//! ```text
//! tunnel-bench gateway STATE_DIR LISTEN_IP NAME=HOST:PORT...
//!     slapd with generated people user00000..user00007 (BENCH_PEOPLE=N: the first N),
//!     their tokens, and a gateway on
//!     LISTEN_IP (any free port) allowing all of them every NAME; writes STATE_DIR/ca.pem and
//!     prints the gateway's address, then runs until SIGTERM or Ctrl-C.
//! tunnel-bench forward GATEWAY CA_PEM PERSON RESOURCE
//!     logs generated person PERSON in (password and TOTP code) and forwards a local port on
//!     127.0.0.1 to RESOURCE, one QUIC stream per TCP connection as `rampart-connect forward`
//!     does; prints the local address, then runs until SIGTERM or Ctrl-C.
//! tunnel-bench echo LISTEN               echo service; prints its address, runs until stopped
//! tunnel-bench ports COUNT               COUNT distinct free TCP ports on 127.0.0.1
//! tunnel-bench iperf HOST:PORT SECS FLOWS    iperf3 -c; prints "TOTAL MIN MAX" in Gbit/s
//!                                        (received; MIN and MAX over the flows)
//! tunnel-bench ping-pong HOST:PORT ROUNDS    prints "MEDIAN P99" round-trip µs
//! tunnel-bench conns HOST:PORT SECS      prints new 1-byte-echo connections per second
//! tunnel-bench storm GATEWAY CA_PEM FIRST COUNT RATE SECS
//!     offers logins of generated people FIRST.. at RATE per second for SECS (or until COUNT
//!     were sent), one attempt each, whatever the answers; prints "SENT OK BUSY FAILED SECONDS
//!     SKIPPED" (SECONDS: until the last answer; SKIPPED: ticks with too many unanswered)"
//! ```

use rampart_benches::tunnel::{iperf_run, provision, run_gateway_on, start_tunnel};
use rampart_benches::{probe, storm};
use rampart_core::policy::Policy;
use rampart_gateway::GatewaySettings;
use rampart_tests::slapd::{SERVICE_PASSWORD, Slapd, generated_people_ldif as ldif, generated_person as user};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Generated people in the directory, each with a token: one per tunnel of a gateway.
const PEOPLE: usize = 8;

/// How many generated people `gateway` provisions and allows: `BENCH_PEOPLE` if set (the
/// session-load benchmark logs thousands in), else [`PEOPLE`].
fn people() -> anyhow::Result<usize> {
    match std::env::var("BENCH_PEOPLE") {
        Ok(text) => match text.parse() {
            Ok(n) if n >= 1 => Ok(n),
            _ => anyhow::bail!("BENCH_PEOPLE must be a positive number, not {text:?}"),
        },
        Err(_) => Ok(PEOPLE),
    }
}

/// How to call this program.
const USAGE: &str = "usage: tunnel-bench gateway STATE_DIR LISTEN_IP NAME=HOST:PORT...
       tunnel-bench forward GATEWAY CA_PEM PERSON RESOURCE
       tunnel-bench echo LISTEN
       tunnel-bench ports COUNT
       tunnel-bench iperf HOST:PORT SECS FLOWS
       tunnel-bench ping-pong HOST:PORT ROUNDS
       tunnel-bench conns HOST:PORT SECS
       tunnel-bench storm GATEWAY CA_PEM FIRST COUNT RATE SECS";

/// Gigabits per second from bytes per second.
fn gbits(bytes_per_sec: f64) -> f64 {
    bytes_per_sec * 8.0 / 1e9
}

/// Prints `line` on stdout now, so a script waiting for it sees it while this process runs.
fn announce(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Waits for SIGTERM or Ctrl-C.
async fn until_stopped() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

/// The `index`th argument, or a usage error naming `what`.
fn arg<'a>(args: &'a [String], index: usize, what: &str) -> anyhow::Result<&'a str> {
    args.get(index)
        .map(String::as_str)
        .ok_or_else(|| anyhow::anyhow!("{what} is missing\n{USAGE}"))
}

/// The `index`th argument parsed as a number `what`.
fn number<T: std::str::FromStr>(args: &[String], index: usize, what: &str) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    let text = arg(args, index, what)?;
    text.parse()
        .map_err(|e| anyhow::anyhow!("{what} must be a number, not {text:?}: {e}"))
}

/// The policy allowing every generated person each `NAME=HOST:PORT` target.
fn policy(targets: &[String]) -> anyhow::Result<Policy> {
    let people: Vec<String> = (0..people()?).map(|i| format!("\"{}\"", user(i).0)).collect();
    let mut text = String::new();
    for target in targets {
        let (name, addr) = target
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("target {target:?} is not NAME=HOST:PORT"))?;
        text.push_str(&format!(
            "[[resource]]\nname = \"{name}\"\ntarget = \"{addr}\"\nallow_users = [{}]\n\n",
            people.join(", ")
        ));
    }
    Policy::parse(&text).map_err(|e| anyhow::anyhow!("policy: {e:?}"))
}

/// `gateway STATE_DIR LISTEN_IP NAME=HOST:PORT...`
async fn gateway(args: &[String]) -> anyhow::Result<()> {
    let state = PathBuf::from(arg(args, 0, "STATE_DIR")?);
    let ip: IpAddr = arg(args, 1, "LISTEN_IP")?
        .parse()
        .map_err(|e| anyhow::anyhow!("LISTEN_IP: {e}"))?;
    let policy = policy(args.get(2..).unwrap_or_default())?;
    let people = people()?;
    let slapd = Slapd::start_with(None, &ldif(people), false);
    provision(&state, people - 1).await?;
    std::fs::write(state.join("pw"), SERVICE_PASSWORD)?;
    let ldap = slapd.ldap_config(&state.join("pw"), 4);
    let ca = rampart_certs::CertificateAuthority::create("Bench")?;
    std::fs::write(state.join("ca.pem"), ca.cert_pem())?;
    let addr = run_gateway_on(
        SocketAddr::new(ip, 0),
        state,
        ldap,
        policy,
        GatewaySettings::default(),
        &ca,
        false,
    )?;
    announce(&addr)?;
    until_stopped().await?;
    // Stops slapd and removes its files.
    drop(slapd);
    Ok(())
}

/// `forward GATEWAY CA_PEM PERSON RESOURCE`
async fn forward(args: &[String]) -> anyhow::Result<()> {
    let gateway = arg(args, 0, "GATEWAY")?.to_owned();
    let ca_pem = std::fs::read_to_string(arg(args, 1, "CA_PEM")?)?;
    let person: usize = number(args, 2, "PERSON")?;
    anyhow::ensure!(person < PEOPLE, "PERSON must be below {PEOPLE}");
    let resource = arg(args, 3, "RESOURCE")?;
    let local = start_tunnel(gateway, ca_pem, person, resource)?;
    announce(&local)?;
    until_stopped().await
}

/// `ports COUNT`: bound together, so they differ; released before printing.
fn ports(args: &[String]) -> anyhow::Result<()> {
    let count: usize = number(args, 0, "COUNT")?;
    let listeners = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    let ports = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port().to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    drop(listeners);
    announce(&ports.join("\n"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or_default();
    let rest = args.get(1..).unwrap_or_default();
    match command {
        "gateway" => gateway(rest).await,
        "forward" => forward(rest).await,
        "echo" => {
            let addr = probe::echo_server(arg(rest, 0, "LISTEN")?).await?;
            announce(&addr)?;
            until_stopped().await
        }
        "ports" => ports(rest),
        "iperf" => {
            let secs: u64 = number(rest, 1, "SECS")?;
            let flows: u32 = number(rest, 2, "FLOWS")?;
            anyhow::ensure!(secs >= 1 && flows >= 1, "SECS and FLOWS must be positive");
            let run = iperf_run(arg(rest, 0, "HOST:PORT")?, secs, flows).await?;
            let min = run.streams.iter().copied().fold(f64::INFINITY, f64::min);
            let max = run.streams.iter().copied().fold(0.0, f64::max);
            let min = if min.is_finite() { min } else { run.total };
            announce(&format!(
                "{:.3} {:.3} {:.3}",
                gbits(run.total),
                gbits(min),
                gbits(max.max(min))
            ))
        }
        "ping-pong" => {
            let rounds: usize = number(rest, 1, "ROUNDS")?;
            anyhow::ensure!(rounds >= 1, "ROUNDS must be positive");
            let times = probe::ping_pong(arg(rest, 0, "HOST:PORT")?, rounds).await?;
            let micros = |q| rampart_benches::quantile(&times, q).as_secs_f64() * 1e6;
            announce(&format!("{:.0} {:.0}", micros(0.5), micros(0.99)))
        }
        "conns" => {
            let secs: u64 = number(rest, 1, "SECS")?;
            anyhow::ensure!(secs >= 1, "SECS must be positive");
            let rate = probe::connection_rate(arg(rest, 0, "HOST:PORT")?, Duration::from_secs(secs)).await?;
            announce(&format!("{rate:.0}"))
        }
        "storm" => {
            let ca_pem = std::fs::read_to_string(arg(rest, 1, "CA_PEM")?)?;
            let first: usize = number(rest, 2, "FIRST")?;
            let count: usize = number(rest, 3, "COUNT")?;
            let rate: f64 = number(rest, 4, "RATE")?;
            let secs: u64 = number(rest, 5, "SECS")?;
            anyhow::ensure!(rate > 0.0 && secs >= 1, "RATE and SECS must be positive");
            let got = storm::offer(
                arg(rest, 0, "GATEWAY")?,
                &ca_pem,
                first,
                count,
                rate,
                Duration::from_secs(secs),
            )
            .await;
            announce(&format!(
                "{} {} {} {} {:.2} {}",
                got.sent,
                got.ok,
                got.busy,
                got.failed,
                got.elapsed.as_secs_f64(),
                got.skipped
            ))
        }
        _ => anyhow::bail!("{USAGE}"),
    }
}
