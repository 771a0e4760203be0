//! Faults under real processes: the directory hung (SIGSTOP) or down (killed) with live
//! tunnels and a second LDAP server; the PostgreSQL store shut down or hung and back, under one
//! gateway process; a gateway killed with SIGKILL in the middle of a burst of logins on a shared
//! store, then restarted; and a flood of QUIC handshakes against the gateway's resident memory,
//! with a real login in the middle of it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_client::{ClientError, GatewayClient};
use rampart_core::ErrorCode;
use rampart_core::secret::Sensitive;
use rampart_tests::faults::{FaultProxy, Frozen, Link, rss_kib};
use rampart_tests::gateway::{GatewayProc, GatewaySpec, LdapLab, open_flow, round_trip, totp_code};
use rampart_tests::pg::SharedStore;
use rampart_tests::slapd::{ALICE, Slapd, dn_of, generated_people_ldif, generated_person};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const POLICY: &str = "[[resource]]\nname = \"app\"\ntarget = \"{echo}\"\nallow_groups = [\"staff\"]\n";

/// Logs `user` in on a new connection with `code`; the connection on success, the refusal's
/// code otherwise, and how long the answer took.
async fn login_as(
    gw: &GatewayProc,
    user: &str,
    password: &str,
    code: Sensitive<String>,
) -> (Result<GatewayClient, ErrorCode>, Duration) {
    let started = Instant::now();
    let client = GatewayClient::connect(&gw.addr, &gw.ca_pem).await.unwrap();
    let result = match client.login(user, Sensitive::new(password.into()), code).await {
        Ok(_) => Ok(client),
        Err(ClientError::Refused { code, .. }) => {
            client.close().await;
            Err(code)
        }
        Err(other) => panic!("{user}: the login failed unexpectedly: {other:?}"),
    };
    (result, started.elapsed())
}

async fn alice_login(gw: &GatewayProc, code: Sensitive<String>) -> (Result<GatewayClient, ErrorCode>, Duration) {
    login_as(gw, ALICE.uid, ALICE.password, code).await
}

/// Refusals the gateway logged as "could not be checked" (directory or store unavailable).
fn unavailable_logins(gw: &GatewayProc) -> usize {
    gw.log_events()
        .iter()
        .filter(|e| e["message"] == "login could not be checked" && e["reason"] == "service_unavailable")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_or_dead_directory_fails_logins_closed_in_time_keeps_tunnels_and_uses_the_second_server() {
    // Two real slapds with the same people; the gateway lists both (connect 1 s, operation 2 s).
    let lab = LdapLab::start(POLICY, "").await;
    let mut second = Slapd::start(None, "");
    let directory = lab.directory.replacen(
        &format!("urls = [\"{}\"]", lab.slapd.url),
        &format!("urls = [\"{}\", \"{}\"]", lab.slapd.url, second.url),
        1,
    );
    assert_ne!(directory, lab.directory);
    let gw = GatewayProc::start(
        GatewayProc::new_ca(),
        &GatewaySpec {
            directory: &directory,
            policy: &lab.policy_text,
            settings: "totp_window = 4\ndirectory_recheck_secs = 1\nfailed_login_delay_ms = 200",
            ..GatewaySpec::default()
        },
    );
    let mut first = lab.slapd;
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let (session, _) = alice_login(&gw, totp_code(&secret, 0).await).await;
    let session = session.unwrap();
    let (mut send, mut recv) = open_flow(&session, "app", b"before any fault").await;

    // The first server hangs: the tunnel flows, and logins go through the second one. The
    // gateway holds pooled connections to the first server: the exchange that finds it hung
    // waits out the operation timeout (that login, if it was one, fails closed) and marks the
    // server failed, so no other pooled connection to it is used. Before, each pooled
    // connection cost a refused login of its own until the pools were empty.
    let hung_first = Frozen::freeze(first.pid().unwrap());
    round_trip(&mut send, &mut recv, b"the first directory hangs").await;
    let binds_before = second.binds_for(&dn_of(&ALICE));
    let mut attempt = 0;
    let through_second = loop {
        attempt += 1;
        let (result, took) = alice_login(&gw, totp_code(&secret, 1).await).await;
        println!(
            "login {attempt} while the first server hangs: {} in {} ms",
            if result.is_ok() { "accepted" } else { "refused" },
            took.as_millis()
        );
        assert!(took < Duration::from_secs(10), "took {took:?}");
        match result {
            Ok(client) => break client,
            Err(ErrorCode::TryLater) if attempt < 2 => {}
            Err(other) => panic!("login {attempt} while the first server hangs: {other:?}"),
        }
    };
    assert!(
        second.binds_for(&dn_of(&ALICE)) > binds_before,
        "the second server checked it"
    );
    through_second.close().await;

    // Both hang: logins fail closed ("try later", never let in) within the configured timeouts.
    let hung_second = Frozen::freeze(second.pid().unwrap());
    let (refused, took) = alice_login(&gw, totp_code(&secret, 2).await).await;
    assert_eq!(refused.err(), Some(ErrorCode::TryLater), "both directories hang");
    println!("login refused with both directories hung: {} ms", took.as_millis());
    assert!(
        took < Duration::from_secs(15),
        "refused after {took:?}; 2 servers × (1 s connect + 2 s operation)"
    );
    assert!(unavailable_logins(&gw) >= 1, "{}", gw.log());
    round_trip(&mut send, &mut recv, b"both directories hang").await;

    // The first dies; the second wakes up: logins go through it again.
    first.stop();
    drop(hung_first);
    drop(hung_second);
    let (back, took) = alice_login(&gw, totp_code(&secret, 2).await).await;
    assert!(back.is_ok(), "a login with the first server down: {back:?}");
    println!("login with the first server down: {} ms", took.as_millis());
    round_trip(&mut send, &mut recv, b"the first directory is gone").await;

    // Both dead: refused at once, the tunnel still flows, and the session was never ended.
    second.stop();
    let (refused, took) = alice_login(&gw, totp_code(&secret, 3).await).await;
    assert_eq!(refused.err(), Some(ErrorCode::TryLater), "both directories down");
    assert!(took < Duration::from_secs(10), "refused after {took:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    round_trip(&mut send, &mut recv, b"no directory at all").await;
    assert!(
        !gw.log_events().iter().any(|e| e["message"] == "session ended"),
        "a directory that cannot answer ends no session:\n{}",
        gw.log()
    );
    session.close().await;
}

/// Logs alice in with `code` until the gateway lets her in again (it answers "try later"
/// meanwhile), for up to `within`; the connection and how long it took.
async fn login_once_back(gw: &GatewayProc, secret: &str, offset: i64, within: Duration) -> (GatewayClient, Duration) {
    let back = Instant::now();
    loop {
        let (result, _) = alice_login(gw, totp_code(secret, offset).await).await;
        match result {
            Ok(client) => return (client, back.elapsed()),
            Err(ErrorCode::TryLater) if back.elapsed() < within => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(other) => panic!("no login after the store came back: {other:?}\n{}", gw.log()),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_or_hung_store_refuses_logins_and_the_gateway_recovers_without_restart() {
    // A PostgreSQL cluster of the test's own, reached through a proxy that can also swallow
    // traffic (a hung store, as a stalled network or a frozen host looks).
    let mut store = SharedStore::start(false).await;
    let primary = format!("127.0.0.1:{}", store.primary.port());
    let proxy = FaultProxy::start(primary.clone()).await;
    let table = store
        .table("health_interval_ms = 200\nconnect_timeout_secs = 2\nstatement_timeout_secs = 3")
        .replacen(&primary, &proxy.addr, 1);
    assert!(table.contains(&proxy.addr), "{table}");
    let lab = LdapLab::start_with_store(POLICY, "totp_window = 4\nfailed_login_delay_ms = 200", &table).await;
    let gw = &lab.gw;
    let pid = gw.pid();
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let before = totp_code(&secret, 0).await;
    let (session, _) = alice_login(gw, Sensitive::new(before.expose().clone())).await;
    let session = session.unwrap();
    let (mut send, mut recv) = open_flow(&session, "app", b"before the outage").await;

    // The database server is shut down: a right code is refused with "try later" (never let
    // in), in time, every time; the tunnel flows.
    tokio::task::block_in_place(|| store.primary.shut_down());
    for attempt in 1..=2 {
        let (refused, took) = alice_login(gw, totp_code(&secret, 1).await).await;
        assert_eq!(
            refused.err(),
            Some(ErrorCode::TryLater),
            "store down, attempt {attempt}"
        );
        println!("store down: login refused after {} ms", took.as_millis());
        assert!(took < Duration::from_secs(20), "store down: refused after {took:?}");
    }
    round_trip(&mut send, &mut recv, b"the tunnel flows without the store").await;

    // Started again: the same gateway process logs people in without a restart.
    tokio::task::block_in_place(|| store.primary.start_again()).unwrap();
    let (recovered, took) = login_once_back(gw, &secret, 1, Duration::from_secs(30)).await;
    println!("store started again: logins work after {} ms", took.as_millis());
    recovered.close().await;

    // Hung (the proxy holds connections open and carries nothing): refused in time too.
    proxy.set(Link::Swallow);
    for attempt in 1..=2 {
        let (refused, took) = alice_login(gw, totp_code(&secret, 2).await).await;
        assert_eq!(
            refused.err(),
            Some(ErrorCode::TryLater),
            "store hung, attempt {attempt}"
        );
        println!("store hung: login refused after {} ms", took.as_millis());
        assert!(took < Duration::from_secs(20), "store hung: refused after {took:?}");
    }
    round_trip(&mut send, &mut recv, b"the tunnel flows while the store hangs").await;
    assert!(unavailable_logins(gw) >= 4, "{}", gw.log());

    // Back again: logins work, and the code accepted before the outages is still used up.
    proxy.set(Link::Pass);
    let (recovered, took) = login_once_back(gw, &secret, 2, Duration::from_secs(30)).await;
    println!("store answers again: logins work after {} ms", took.as_millis());
    let (replayed, _) = alice_login(gw, before).await;
    assert_eq!(replayed.err(), Some(ErrorCode::InvalidCredentials));
    assert!(gw.log_events().iter().any(|e| e["reason"] == "code_replayed"));
    round_trip(&mut send, &mut recv, b"after the outages").await;
    assert_eq!(gw.pid(), pid, "the same gateway process throughout");
    assert_eq!(
        gw.log_events()
            .iter()
            .filter(|e| e["message"] == "gateway ready")
            .count(),
        1,
        "the gateway never restarted:\n{}",
        gw.log()
    );
    recovered.close().await;
    session.close().await;
}

/// Users whose login `gw` refused as a replayed code.
fn replayed_users(gw: &GatewayProc) -> Vec<String> {
    gw.log_events()
        .iter()
        .filter(|e| e["reason"] == "code_replayed")
        .filter_map(|e| e["user"].as_str().map(str::to_owned))
        .collect()
}

/// How one login of the burst ended, as its client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BurstOutcome {
    Accepted,
    Refused(ErrorCode),
    /// No answer: the gateway died first.
    Unknown,
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_killed_during_a_burst_of_logins_loses_no_accepted_step() {
    // N people log in at once on a gateway that is killed with SIGKILL mid-burst. A login is
    // answered only once its step is marked used in the store (and its record is on file), so
    // every code a client saw accepted must be refused as a replay afterwards, by the same
    // gateway restarted and by another one sharing the store.
    const PEOPLE: usize = 40;
    let settings = "max_logins_in_progress = 64\nlogin_queue = 256\nfailed_login_delay_ms = 200";
    let mut lab = LdapLab::start_with_people(POLICY, settings, &generated_people_ldif(PEOPLE)).await;
    let other = lab.second_gateway(settings);
    let mut people = Vec::new();
    for i in 0..PEOPLE {
        let (uid, password, uuid) = generated_person(i);
        let secret = lab.gw.enrol(&uuid, &uid).await;
        people.push((uid, password, secret));
    }
    // Away from a step boundary, so every code stays in the window until it is replayed.
    if rampart_tests::now() % 30 >= 20 {
        tokio::time::sleep(Duration::from_secs(31 - rampart_tests::now() % 30)).await;
    }
    let code_time = rampart_tests::now();
    let mut codes = Vec::new();
    for (_, _, secret) in &people {
        codes.push(totp_code(secret, 0).await.expose().clone());
    }

    // Everyone logs in at once; after the fifth acceptance the gateway is killed.
    let (accepted_tx, mut accepted_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut burst = tokio::task::JoinSet::new();
    for (i, (uid, password, _)) in people.iter().enumerate() {
        let (addr, ca) = (lab.gw.addr.clone(), lab.gw.ca_pem.clone());
        let (uid, password, code) = (uid.clone(), password.clone(), codes[i].clone());
        let accepted_tx = accepted_tx.clone();
        burst.spawn(async move {
            let attempt = async {
                let client = GatewayClient::connect(&addr, &ca).await.ok()?;
                let answer = client.login(&uid, Sensitive::new(password), Sensitive::new(code)).await;
                Some(match answer {
                    Ok(_) => {
                        let _ = accepted_tx.send(i);
                        BurstOutcome::Accepted
                    }
                    Err(ClientError::Refused { code, .. }) => BurstOutcome::Refused(code),
                    Err(_) => BurstOutcome::Unknown,
                })
            };
            let outcome = tokio::time::timeout(Duration::from_secs(20), attempt).await;
            (i, outcome.ok().flatten().unwrap_or(BurstOutcome::Unknown))
        });
    }
    drop(accepted_tx);
    for _ in 0..5 {
        accepted_rx.recv().await.expect("five logins accepted before the kill");
    }
    lab.gw.kill9();
    let mut outcomes = [BurstOutcome::Unknown; PEOPLE];
    while let Some(joined) = burst.join_next().await {
        let (i, outcome) = joined.unwrap();
        outcomes[i] = outcome;
    }
    let accepted: Vec<usize> = (0..PEOPLE).filter(|&i| outcomes[i] == BurstOutcome::Accepted).collect();
    let unknown = outcomes.iter().filter(|o| **o == BurstOutcome::Unknown).count();
    println!(
        "burst of {PEOPLE} logins, gateway killed after the fifth acceptance: {} accepted, {unknown} without an answer, {} refused",
        accepted.len(),
        PEOPLE - accepted.len() - unknown
    );
    assert!(accepted.len() >= 5);

    // The store is consistent: every acceptance a client saw has its step marked used on the
    // person's token and a live session, and no token was locked or charged a failure.
    let (store, _) = lab.gw.open_store().await;
    let now = i64::try_from(rampart_tests::now()).unwrap();
    for &i in &accepted {
        let uuid = generated_person(i).2;
        let token = store.live_token_for_user(&uuid).await.unwrap().expect("a live token");
        let step = code_time / 30;
        assert!(
            token.last_step.is_some_and(|last| last >= step),
            "{}: the accepted step is not marked used ({:?} < {step})",
            people[i].0,
            token.last_step
        );
        assert_eq!(token.failures, 0, "{}", people[i].0);
        let sessions = store.live_sessions_for_user(&uuid, now).await.unwrap();
        assert_eq!(
            sessions.len(),
            1,
            "{}: one live session for one acceptance",
            people[i].0
        );
    }

    // Every code a client saw accepted is refused as a replay: at the restarted gateway and at
    // the other one.
    lab.gw.restart();
    // The logins left without an answer: their codes are either unused (the step was never
    // marked, so the restarted gateway accepts them now) or used up (marked, the answer lost),
    // never anything else.
    let mut unanswered = tokio::task::JoinSet::new();
    for i in (0..PEOPLE).filter(|&i| outcomes[i] == BurstOutcome::Unknown) {
        let (addr, ca) = (lab.gw.addr.clone(), lab.gw.ca_pem.clone());
        let (uid, password, code) = (people[i].0.clone(), people[i].1.clone(), codes[i].clone());
        unanswered.spawn(async move {
            let client = GatewayClient::connect(&addr, &ca).await.unwrap();
            let answer = client.login(&uid, Sensitive::new(password), Sensitive::new(code)).await;
            client.close().await;
            match answer {
                Ok(_) => (uid, None),
                Err(ClientError::Refused { code, .. }) => (uid, Some(code)),
                Err(other) => panic!("{uid}: {other:?}"),
            }
        });
    }
    let (mut now_accepted, mut used_up) = (0, Vec::new());
    while let Some(joined) = unanswered.join_next().await {
        match joined.unwrap() {
            (_, None) => now_accepted += 1,
            (uid, Some(ErrorCode::InvalidCredentials)) => used_up.push(uid),
            (uid, Some(other)) => panic!("{uid}'s unanswered login: {other:?} at the restarted gateway"),
        }
    }
    println!(
        "logins left without an answer: {now_accepted} codes unused and accepted now, {} used up by the killed gateway",
        used_up.len()
    );
    let replays = replayed_users(&lab.gw);
    for uid in &used_up {
        assert!(
            replays.contains(uid),
            "{uid} refused for another reason than a replay:\n{}",
            lab.gw.log()
        );
    }
    for gw in [&lab.gw, &other] {
        for &i in &accepted {
            let (uid, password, _) = &people[i];
            let (replayed, _) = login_as(gw, uid, password, Sensitive::new(codes[i].clone())).await;
            assert_eq!(
                replayed.err(),
                Some(ErrorCode::InvalidCredentials),
                "{uid}'s accepted code works again"
            );
        }
        let replays = replayed_users(gw);
        for uid in accepted.iter().map(|&i| &people[i].0) {
            assert!(
                replays.contains(uid),
                "{uid} refused for another reason than a replay:\n{}",
                gw.log()
            );
        }
    }
}

/// Bound on the growth of the gateway's resident memory over its baseline, during the flood
/// and after it (docs/gateway.md).
const FLOOD_GROWTH_BOUND_KIB: u64 = 64 * 1024;

#[tokio::test(flavor = "multi_thread")]
async fn a_handshake_flood_keeps_the_gateways_memory_bounded_and_logins_working() {
    const SPOOFED: usize = 1000;
    const COMPLETED: usize = 300;
    let lab = LdapLab::start(POLICY, "login_deadline_secs = 3\ntotp_window = 4").await;
    let gw = &lab.gw;
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let addr: std::net::SocketAddr = gw.addr.parse().unwrap();
    let pid = gw.pid();
    // Real first packets of distinct connections, captured before the measurement starts.
    let capturing = Instant::now();
    let initials = capture_initials(&gw.ca_pem, SPOOFED).await;
    println!("{SPOOFED} Initials captured in {} ms", capturing.elapsed().as_millis());
    // Warm up: one full login, so lazily built state is there before the baseline.
    let (warm, _) = alice_login(gw, totp_code(&secret, 0).await).await;
    warm.unwrap().close().await;
    let baseline = rss_kib(pid);
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    // Spoofed Initials, round after round until told to stop, each round from new source
    // sockets that never answer (as a flood with forged sources looks to the gateway).
    let flooding = Arc::new(AtomicBool::new(true));
    let flooder = {
        let flooding = flooding.clone();
        std::thread::spawn(move || {
            let mut sent = 0usize;
            while flooding.load(Ordering::Relaxed) {
                let sockets: Vec<std::net::UdpSocket> = (0..16)
                    .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
                    .collect();
                for (i, packet) in initials.iter().enumerate() {
                    if sockets[i % sockets.len()].send_to(packet, addr).is_ok() {
                        sent += 1;
                    }
                    if i % 100 == 99 {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
            sent
        })
    };
    // Completed handshakes that never log in, all at once, while the flood goes on.
    let mut completed = tokio::task::JoinSet::new();
    for _ in 0..COMPLETED {
        let (gw_addr, ca) = (gw.addr.clone(), gw.ca_pem.clone());
        completed.spawn(async move { GatewayClient::connect(&gw_addr, &ca).await.ok() });
    }
    let mut held = Vec::new();
    while let Some(joined) = completed.join_next().await {
        held.extend(joined.unwrap());
    }
    let during = rss_kib(pid);
    // A real login in the middle of the flood.
    let (in_flood, took) = alice_login(gw, totp_code(&secret, 1).await).await;
    println!("login during the flood: {} ms", took.as_millis());
    assert!(in_flood.is_ok(), "a login during the flood: {in_flood:?}");
    in_flood.unwrap().close().await;
    flooding.store(false, Ordering::Relaxed);
    let sent = tokio::task::spawn_blocking(move || flooder.join().unwrap())
        .await
        .unwrap();
    for client in &held {
        client.abandon();
    }
    // The login deadline (3 s) closes the idle connections; the half-open handshakes time out
    // (10 s). Measured once the last of them is over.
    tokio::time::sleep(Duration::from_secs(12)).await;
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let after = rss_kib(pid);
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "gateway RSS: {baseline} KiB before, {during} KiB with {} idle connections held, peak {peak} KiB \
         (+{} KiB), {after} KiB after ({sent} spoofed Initials from {SPOOFED} distinct connections, \
         {COMPLETED} handshakes without login)",
        held.len(),
        peak.saturating_sub(baseline)
    );
    assert!(held.len() >= COMPLETED / 2, "most handshakes completed: {}", held.len());
    assert!(
        peak.saturating_sub(baseline) < FLOOD_GROWTH_BOUND_KIB,
        "the flood grew the gateway by {} KiB",
        peak - baseline
    );
    assert!(
        after.saturating_sub(baseline) < FLOOD_GROWTH_BOUND_KIB,
        "the gateway kept growing after the flood: {after} KiB vs {baseline} KiB"
    );
    let monitor = gw.operator("monitor", "auditor").await;
    let (_, metrics) = gw.metrics_text(Some(&monitor)).await;
    let retries = rampart_tests::metric_sum(&metrics, "rampart_gateway_quic_retries_total", &[]);
    println!("QUIC Retry answers during the flood: {retries}");
    assert!(retries > 0.0, "the flood was asked to prove its addresses:\n{metrics}");
    drop(held);
    // Still serving.
    let (after_flood, _) = alice_login(gw, totp_code(&secret, 2).await).await;
    assert!(after_flood.is_ok(), "a login after the flood: {after_flood:?}");
}

/// The first datagram of `count` distinct QUIC connections to a socket that never answers.
async fn capture_initials(ca_pem: &str, count: usize) -> Vec<Vec<u8>> {
    let sink = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sink_addr = sink.local_addr().unwrap();
    let ca = rampart_certs::certs_from_pem(ca_pem).unwrap();
    let tls = rampart_certs::client_config(ca, &[rampart_core::ALPN]).unwrap();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let config = quinn::ClientConfig::new(Arc::new(crypto));
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut initials = Vec::with_capacity(count);
    let mut buf = vec![0u8; 2048];
    while initials.len() < count {
        let batch: Vec<_> = (0..200)
            .map(|_| endpoint.connect_with(config.clone(), sink_addr, "127.0.0.1").unwrap())
            .collect();
        // Most first packets arrive at once; a few only with the first retransmission.
        let deadline = Instant::now() + Duration::from_millis(1500);
        let mut got = 0;
        while got < batch.len() && Instant::now() < deadline {
            let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_millis(200), sink.recv_from(&mut buf)).await
            else {
                continue;
            };
            // One datagram per connection, told apart by the destination connection id of the
            // long header (byte 5 its length, then the id): retransmissions and closes share it.
            let dcid = buf.get(6..6 + usize::from(buf[5])).map(<[u8]>::to_vec);
            if n > 6 && dcid.is_some_and(|dcid| seen.insert(dcid)) && initials.len() < count {
                initials.push(buf[..n].to_vec());
                got += 1;
            }
        }
        drop(batch);
    }
    endpoint.close(quinn::VarInt::from_u32(0), b"");
    initials
}
