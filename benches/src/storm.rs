//! A login storm: generated people log in once each, `concurrency` at a time, through one or
//! more gateways (person `i` at gateway `i % gateways`), each a full login with a real TOTP code;
//! either one attempt each, or waiting out "busy" answers as `rampart-connect login` does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::tunnel::{seed_of, unix_now};
use rampart_client::GatewayClient;
use rampart_client::login::{Link, TypedCode};
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
    /// Latencies of the successful logins (from the person's first try to being in), sorted.
    pub latencies: Vec<Duration>,
    /// Logins that failed, by the error's text with numbers left out.
    pub failures: usize,
    /// Each kind of failure and how often it happened, most frequent first.
    pub failure_kinds: Vec<(String, usize)>,
    /// From the first login to the last answer.
    pub elapsed: Duration,
}

/// How a person in the storm treats a "busy" answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBusy {
    /// One attempt: a busy answer is a failure.
    GiveUp,
    /// Wait as long as the gateway asks and send the same code again, as `rampart-connect
    /// login` does (its [`Link`]).
    Retry,
}

/// People `0..users` log in, with the code of the time step `step_ahead` steps from now.
pub async fn run(gateways: &[String], ca_pem: &str, users: usize, concurrency: usize, step_ahead: u64) -> Storm {
    run_with(gateways, ca_pem, users, concurrency, step_ahead, OnBusy::GiveUp).await
}

/// [`run`], treating busy answers as `on_busy` says.
pub async fn run_with(
    gateways: &[String],
    ca_pem: &str,
    users: usize,
    concurrency: usize,
    step_ahead: u64,
    on_busy: OnBusy,
) -> Storm {
    let seeds: Arc<Vec<Vec<u8>>> = Arc::new((0..users).map(seed_of).collect());
    let gateways = Arc::new(gateways.to_vec());
    let ca_pem = Arc::new(ca_pem.to_owned());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (gateways, ca_pem, seeds, next) = (gateways.clone(), ca_pem.clone(), seeds.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut failures, mut closers) = (Vec::new(), Vec::new(), Vec::new());
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
                let at = unix_now() + 30 * step_ahead;
                let code = generate_totp(&seeds[i], &TotpParams::default(), at).unwrap();
                let gateway = gateways[i % gateways.len()].clone();
                let t = Instant::now();
                let outcome = match on_busy {
                    OnBusy::GiveUp => match GatewayClient::connect(&gateway, &ca_pem).await {
                        Ok(client) => {
                            let r = client.login(&uid, Sensitive::new(pw), Sensitive::new(code)).await;
                            // Closing waits for the QUIC draining period; not part of a login.
                            closers.push(tokio::spawn(async move { client.close().await }));
                            r.map(drop)
                        }
                        Err(e) => Err(e),
                    },
                    OnBusy::Retry => match Link::open(vec![gateway], ca_pem.to_string()).await {
                        Ok(mut link) => {
                            let typed = TypedCode::new(Sensitive::new(code), i64::try_from(at).unwrap_or(i64::MAX));
                            let r = link.login(&uid, &Sensitive::new(pw), typed, None).await;
                            closers.push(tokio::spawn(async move { link.close().await }));
                            r.map(drop)
                        }
                        Err(e) => Err(e),
                    },
                };
                match outcome {
                    Ok(()) => latencies.push(t.elapsed()),
                    Err(e) => failures.push(kind(&e.to_string())),
                }
            }
        }));
    }
    let (mut latencies, mut kinds, mut elapsed) = (Vec::new(), Vec::<(String, usize)>::new(), Duration::ZERO);
    let mut failures = 0;
    for w in workers {
        let (l, f, last) = w.await.unwrap();
        latencies.extend(l);
        failures += f.len();
        for k in f {
            match kinds.iter_mut().find(|(known, _)| *known == k) {
                Some((_, n)) => *n += 1,
                None => kinds.push((k, 1)),
            }
        }
        elapsed = elapsed.max(last - started);
    }
    latencies.sort();
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
    Storm {
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        latencies,
        failures,
        failure_kinds: kinds,
        elapsed,
    }
}

/// An error's text with its digits replaced, so the same kind of failure counts as one.
fn kind(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect()
}

/// The most TCP connections established at once to `port` on this host while `until` runs,
/// sampled from `/proc/net/tcp` and `tcp6` every 10 ms (the server's side of each connection).
pub async fn most_connections_to<F: Future>(port: u16, until: F) -> (F::Output, usize) {
    let most = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let most = most.clone();
        tokio::spawn(async move {
            loop {
                most.fetch_max(established_to(port), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let output = until.await;
    sampler.abort();
    (output, most.load(Ordering::Relaxed).max(established_to(port)))
}

/// TCP connections in state ESTABLISHED whose local port is `port`.
fn established_to(port: u16) -> usize {
    let local = format!(":{port:04X} ");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|table| {
            table
                .lines()
                .skip(1)
                .filter(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    fields.len() > 3 && format!("{} ", fields[1]).ends_with(&local) && fields[3] == "01"
                })
                .count()
        })
        .sum()
}

/// What an offered storm got back.
#[derive(Debug, Default)]
pub struct Offered {
    /// Logins sent.
    pub sent: usize,
    /// Logins that succeeded.
    pub ok: usize,
    /// Logins answered "busy".
    pub busy: usize,
    /// Logins that failed otherwise (no answer in time, refused).
    pub failed: usize,
    /// Ticks at which no login was sent because [`IN_FLIGHT`] were still unanswered.
    pub skipped: usize,
    /// From the first login sent to the last answer.
    pub elapsed: Duration,
}

/// Unanswered logins an offered storm keeps at most (each holds a UDP socket of the generator's).
pub const IN_FLIGHT: usize = 12_000;

/// Offers logins at `rate` per second for `duration`, whatever the answers (an open loop, as a
/// crowd arriving at 9 a.m. does): people `first..first + count` in turn, one attempt each, with
/// at most [`IN_FLIGHT`] unanswered at once (a tick with none free is counted as skipped).
pub async fn offer(gateway: &str, ca_pem: &str, first: usize, count: usize, rate: f64, duration: Duration) -> Offered {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut skipped = 0;
    let ok = Arc::new(AtomicUsize::new(0));
    let busy = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut sent = 0usize;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1.0)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while started.elapsed() < duration && sent < count {
        tick.tick().await;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let i = first + sent;
        sent += 1;
        let (gateway, ca_pem) = (gateway.to_owned(), ca_pem.to_owned());
        let (ok, busy, failed) = (ok.clone(), busy.clone(), failed.clone());
        tasks.spawn(async move {
            let (uid, pw, _) = user(i);
            let code = generate_totp(&seed_of(i), &TotpParams::default(), unix_now()).unwrap();
            let outcome = match GatewayClient::connect(&gateway, &ca_pem).await {
                Ok(client) => {
                    let r = client.login(&uid, Sensitive::new(pw), Sensitive::new(code)).await;
                    client.abandon();
                    r.map(drop)
                }
                Err(e) => Err(e),
            };
            let counter = match outcome {
                Ok(()) => &ok,
                Err(rampart_client::ClientError::Busy { .. }) => &busy,
                Err(_) => &failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    Offered {
        sent,
        ok: ok.load(Ordering::Relaxed),
        busy: busy.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        skipped,
        elapsed: started.elapsed(),
    }
}
