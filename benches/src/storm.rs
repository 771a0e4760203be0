//! A login storm: generated people log in once each, `concurrency` at a time, through one or
//! more gateways (person `i` at gateway `i % gateways`), each a full login with a real TOTP code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::tunnel::{seed_of, unix_now};
use rampart_client::GatewayClient;
use rampart_core::secret::Sensitive;
use rampart_core::totp::{TotpParams, generate_totp};
use rampart_tests::slapd::generated_person as user;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What one storm measured.
#[derive(Debug)]
pub struct Storm {
    /// Successful logins per second, until the last one was answered.
    pub rate: f64,
    /// Latencies of the successful logins, sorted.
    pub latencies: Vec<Duration>,
    /// Logins that failed.
    pub failures: usize,
    /// From the first login to the last answer.
    pub elapsed: Duration,
}

/// People `0..users` log in, with the code of the time step `step_ahead` steps from now.
pub async fn run(gateways: &[String], ca_pem: &str, users: usize, concurrency: usize, step_ahead: u64) -> Storm {
    let seeds: Arc<Vec<Vec<u8>>> = Arc::new((0..users).map(seed_of).collect());
    let gateways = Arc::new(gateways.to_vec());
    let ca_pem = Arc::new(ca_pem.to_owned());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (gateways, ca_pem, seeds, next) = (gateways.clone(), ca_pem.clone(), seeds.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut failures, mut closers) = (Vec::new(), 0usize, Vec::new());
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= seeds.len() {
                    let last = Instant::now();
                    for c in closers {
                        let _ = c.await;
                    }
                    return (latencies, failures, last);
                }
                let (uid, pw, _) = user(i);
                let code = generate_totp(&seeds[i], &TotpParams::default(), unix_now() + 30 * step_ahead).unwrap();
                let t = Instant::now();
                let ok = match GatewayClient::connect(&gateways[i % gateways.len()], &ca_pem).await {
                    Ok(client) => {
                        let r = client.login(&uid, Sensitive::new(pw), Sensitive::new(code)).await;
                        // Closing waits for the QUIC draining period; not part of a login.
                        closers.push(tokio::spawn(async move { client.close().await }));
                        r.is_ok()
                    }
                    Err(_) => false,
                };
                if ok {
                    latencies.push(t.elapsed());
                } else {
                    failures += 1;
                }
            }
        }));
    }
    let (mut latencies, mut failures, mut elapsed) = (Vec::new(), 0, Duration::ZERO);
    for w in workers {
        let (l, f, last) = w.await.unwrap();
        latencies.extend(l);
        failures += f;
        elapsed = elapsed.max(last - started);
    }
    latencies.sort();
    Storm {
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        latencies,
        failures,
        elapsed,
    }
}
