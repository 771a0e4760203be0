//! Tunnel throughput and new-connection rate with the audit trail on and off, side by side in
//! one run.
//!
//! `cargo run --release -p rampart-benches --bin audit-overhead -- [ROUNDS] [SECS] [FLOWS]`
//! (defaults 5, 5 and 2000). Two gateways run in this process on runtimes of their own, the
//! same in every way but one: the first writes no audit trail, the second writes it (decision,
//! open and close records per flow, into chained, rotated files). A real slapd checks
//! passwords. Through each gateway one logged-in client forwards a local port to an
//! `iperf3 -s` and another to an echo service. Each round runs `iperf3 -c` for SECS seconds
//! through each tunnel (the order alternates between rounds), then FLOWS short connections (64
//! bytes echoed, 16 at a time) through each; the medians and the ratios on/off are printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rampart_benches::tunnel::{IperfServer, iperf_through, provision, run_gateway, start_tunnel};
use rampart_core::policy::Policy;
use rampart_gateway::GatewaySettings;
use rampart_tests::slapd::{SERVICE_PASSWORD, Slapd, generated_people_ldif as ldif, generated_person as user};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Generated people 0..4: iperf and echo tunnels for each gateway.
const PEOPLE: usize = 4;

/// Runs a gateway with the audit trail on or off; returns its address and CA.
fn start_gateway(state: PathBuf, slapd: &Slapd, policy: Policy, audit: bool) -> anyhow::Result<(String, String)> {
    std::fs::write(state.join("pw"), SERVICE_PASSWORD)?;
    let ldap = slapd.ldap_config(&state.join("pw"), 4);
    let ca = rampart_certs::CertificateAuthority::create("Bench")?;
    let addr = run_gateway(state, ldap, policy, GatewaySettings::default(), &ca, audit)?;
    Ok((addr, ca.cert_pem().to_owned()))
}

/// `count` short connections through `local`, 16 at a time, each echoing 64 bytes; per second.
async fn short_flows(local: &str, count: usize) -> anyhow::Result<f64> {
    let began = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let local = local.to_owned();
            let next = next.clone();
            tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                    let mut tcp = tokio::net::TcpStream::connect(&local).await?;
                    tcp.write_all(&[7u8; 64]).await?;
                    let mut back = [0u8; 64];
                    tcp.read_exact(&mut back).await?;
                    anyhow::ensure!(back == [7u8; 64], "the echo sent back other bytes");
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    Ok(count as f64 / began.elapsed().as_secs_f64())
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn audit_lines(state: &Path) -> usize {
    std::fs::read_dir(state.join("audit"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default().lines().count())
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let secs: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let flows: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    anyhow::ensure!(
        rounds >= 1 && secs >= 1 && flows >= 1,
        "ROUNDS, SECS and FLOWS must be positive"
    );

    let slapd = Slapd::start_with(None, &ldif(PEOPLE), false);
    let iperf = IperfServer::start()?;
    let echo = rampart_tests::gateway::spawn_echo().await;
    let people: Vec<String> = (0..PEOPLE).map(|i| format!("\"{}\"", user(i).0)).collect();
    let policy_text = format!(
        "[[resource]]\nname = \"iperf\"\ntarget = \"127.0.0.1:{}\"\nallow_users = [{people}]\n\n\
         [[resource]]\nname = \"echo\"\ntarget = \"{echo}\"\nallow_users = [{people}]\n",
        iperf.port,
        people = people.join(", ")
    );
    let policy = || Policy::parse(&policy_text).map_err(|e| anyhow::anyhow!("{e:?}"));
    let off_dir = tempfile::tempdir()?;
    let on_dir = tempfile::tempdir()?;
    provision(off_dir.path(), PEOPLE - 1).await?;
    provision(on_dir.path(), PEOPLE - 1).await?;
    let (off_gw, off_ca) = start_gateway(off_dir.path().to_owned(), &slapd, policy()?, false)?;
    let (on_gw, on_ca) = start_gateway(on_dir.path().to_owned(), &slapd, policy()?, true)?;
    let off_iperf = start_tunnel(off_gw.clone(), off_ca.clone(), 0, "iperf")?;
    let on_iperf = start_tunnel(on_gw.clone(), on_ca.clone(), 1, "iperf")?;
    let off_echo = start_tunnel(off_gw, off_ca, 2, "echo")?;
    let on_echo = start_tunnel(on_gw, on_ca, 3, "echo")?;

    let (mut off_tp, mut on_tp, mut off_rate, mut on_rate) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        let on_first = round % 2 == 1;
        for on in [on_first, !on_first] {
            let (tunnel, samples) = if on {
                (&on_iperf, &mut on_tp)
            } else {
                (&off_iperf, &mut off_tp)
            };
            samples.push(iperf_through(tunnel, secs, 1).await?);
        }
        for on in [on_first, !on_first] {
            let (tunnel, samples) = if on {
                (&on_echo, &mut on_rate)
            } else {
                (&off_echo, &mut off_rate)
            };
            samples.push(short_flows(tunnel, flows).await?);
        }
        let mib = |b: f64| b / (1024.0 * 1024.0);
        println!(
            "  round {}: iperf3 off {:.1} MiB/s, on {:.1} MiB/s; short flows off {:.0}/s, on {:.0}/s",
            round + 1,
            mib(*off_tp.last().unwrap()),
            mib(*on_tp.last().unwrap()),
            off_rate.last().unwrap(),
            on_rate.last().unwrap()
        );
    }
    // Let the writer catch up before counting what it wrote.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mib = |b: f64| b / (1024.0 * 1024.0);
    let (off_tp, on_tp) = (median(off_tp), median(on_tp));
    let (off_rate, on_rate) = (median(off_rate), median(on_rate));
    println!("audit-overhead: {rounds} rounds, iperf3 {secs} s per run, {flows} short flows per run (medians)");
    println!("  one TCP flow, audit off:   {:>8.1} MiB/s", mib(off_tp));
    println!("  one TCP flow, audit on:    {:>8.1} MiB/s", mib(on_tp));
    println!("  ratio on / off:            {:>8.3}", on_tp / off_tp);
    println!("  short flows, audit off:    {off_rate:>8.0} /s");
    println!("  short flows, audit on:     {on_rate:>8.0} /s");
    println!("  ratio on / off:            {:>8.3}", on_rate / off_rate);
    println!(
        "  audit records written by the audited gateway: {} (none by the other: {})",
        audit_lines(on_dir.path()),
        audit_lines(off_dir.path())
    );
    drop(iperf);
    Ok(())
}
