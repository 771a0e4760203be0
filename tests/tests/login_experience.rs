//! End to end: `rampart-connect login` as an employee meets it on a bad morning — a gateway
//! that does not answer or is not trusted (nothing is asked), prompts slower than the gateway's
//! login deadline (reconnected without a word), a busy gateway (a countdown, then the same code
//! again, Ctrl-C to stop), and a gateway whose clock is two minutes fast (the person is not
//! blamed, the desk is told once many people's codes agree) — at a real terminal (tmux) against
//! real gateways and slapd; and a forward whose session ends says so once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_tests::gateway::{GatewayProc, GatewaySpec, LdapLab};
use rampart_tests::slapd::{ALICE, BOB, generated_people_ldif, generated_person};
use rampart_tests::terminal::Terminal;
use rampart_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const PASSWORD_PROMPT: &str = "Password:";
const CODE_PROMPT: &str = "Code from your authenticator app:";

/// `rampart-connect login` for `user` at `gateway` trusting `ca`, as typed at a terminal.
fn login_command(home: &Path, gateway: &str, ca: &Path, user: &str) -> String {
    format!(
        "{} --home {} --gateway {gateway} --ca {} login --user {user}",
        bin("rampart-connect").display(),
        home.display(),
        ca.display()
    )
}

fn write_ca(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

/// A 127.0.0.1 UDP port nothing listens on.
fn closed_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn login_asks_for_nothing_until_a_trusted_gateway_answers_and_outlasts_slow_typing() {
    // A 2-second login deadline: slower typing than that must not cost the login.
    let lab = LdapLab::start("", "login_deadline_secs = 2").await;
    let secret = lab.gw.enrol(ALICE.uuid, ALICE.uid).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), "org-ca.pem", &lab.gw.ca_pem);

    // Nobody answers: said at once (within the handshake timeout), and nothing was asked.
    let nowhere = format!("127.0.0.1:{}", closed_udp_port());
    let terminal = Terminal::start(
        dir.path(),
        &login_command(&dir.path().join("h1"), &nowhere, &ca, ALICE.uid),
    );
    let screen = terminal.wait_for("EXIT=", Duration::from_secs(30));
    assert!(screen.contains("EXIT=4"), "{screen}");
    assert!(
        screen.contains(&format!("Cannot reach the gateway at {nowhere}")),
        "{screen}"
    );
    assert!(
        !screen.contains(PASSWORD_PROMPT) && !screen.contains(CODE_PROMPT),
        "asked before the gateway answered: {screen}"
    );

    // A gateway that cannot prove it is the organisation's: refused before anything is typed.
    let other = rampart_certs::CertificateAuthority::create("Someone Else").unwrap();
    let wrong_ca = write_ca(dir.path(), "other-ca.pem", other.cert_pem());
    let terminal = Terminal::start(
        dir.path(),
        &login_command(&dir.path().join("h2"), &lab.gw.addr, &wrong_ca, ALICE.uid),
    );
    let screen = terminal.wait_for("EXIT=", Duration::from_secs(30));
    assert!(screen.contains("EXIT=4"), "{screen}");
    assert!(
        screen.contains("could not prove it belongs to your organisation"),
        "{screen}"
    );
    assert!(!screen.contains(PASSWORD_PROMPT), "{screen}");

    // The right gateway: asked, and the login goes through although the person took longer
    // than the gateway's deadline to type (the connection made first is renewed quietly).
    let terminal = Terminal::start(
        dir.path(),
        &login_command(&dir.path().join("h3"), &lab.gw.addr, &ca, ALICE.uid),
    );
    terminal.wait_for(PASSWORD_PROMPT, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(1500));
    terminal.type_line(ALICE.password);
    terminal.wait_for(CODE_PROMPT, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(1500));
    terminal.type_line(&oathtool_code(&secret, now()));
    let screen = terminal.wait_for("EXIT=", Duration::from_secs(30));
    assert!(screen.contains("Logged in as alice until"), "{screen}");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        lab.gw
            .log()
            .contains("closing connection: no login before the deadline"),
        "the first connection did outlive the deadline: {}",
        lab.gw.log()
    );
}

/// A gateway with one login slot, no queue, and a directory it waits on for `wait_secs`: while
/// slapd is stopped, one login holds the slot and every other one is told the gateway is busy.
fn busy_gateway(lab: &LdapLab, wait_secs: u64) -> GatewayProc {
    let directory = lab.directory.replace(
        "operation_timeout_secs = 2",
        &format!("operation_timeout_secs = {wait_secs}"),
    );
    assert_ne!(directory, lab.directory, "the lab's directory timeout changed");
    GatewayProc::start(
        GatewayProc::new_ca(),
        &GatewaySpec {
            directory: &directory,
            policy: "",
            settings: "max_logins_in_progress = 1\nlogin_queue = 0",
            ..GatewaySpec::default()
        },
    )
}

/// Bob's login, held in the directory while slapd is stopped: it keeps the only slot.
fn hold_the_slot(gw: &GatewayProc) -> tokio::task::JoinHandle<()> {
    let (addr, ca) = (gw.addr.clone(), gw.ca_pem.clone());
    tokio::spawn(async move {
        let client = rampart_client::GatewayClient::connect(&addr, &ca).await.unwrap();
        let _ = client
            .login(
                BOB.uid,
                rampart_core::secret::Sensitive::new(BOB.password.to_owned()),
                rampart_core::secret::Sensitive::new("000000".to_owned()),
            )
            .await;
    })
}

/// Waits until the gateway counts a login in progress (the holder has the slot).
async fn wait_slot_taken(gw: &GatewayProc, monitor: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text) = gw.metrics_text(Some(monitor)).await;
        if metric_sum(&text, "rampart_gateway_logins_in_progress", &[]) >= 1.0 {
            return;
        }
        assert!(Instant::now() < deadline, "the holder never got the slot:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_gateway_is_waited_out_with_a_countdown_and_the_same_code() {
    let lab = LdapLab::start("", "").await;
    let gw = busy_gateway(&lab, 30);
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), "org-ca.pem", &gw.ca_pem);
    let slapd = lab.slapd.pid().unwrap().to_string();
    Command::new("kill").args(["-STOP", &slapd]).status().unwrap();
    let monitor = gw.operator("monitor", "auditor").await;
    let holder = hold_the_slot(&gw);
    wait_slot_taken(&gw, &monitor).await;

    // Ctrl-C during the countdown stops at once, with what to do, and spends nothing.
    let stopped = Terminal::start(
        dir.path(),
        &login_command(&dir.path().join("h1"), &gw.addr, &ca, ALICE.uid),
    );
    stopped.wait_for(PASSWORD_PROMPT, Duration::from_secs(20));
    stopped.type_line(ALICE.password);
    stopped.wait_for(CODE_PROMPT, Duration::from_secs(20));
    stopped.type_line(&oathtool_code(&secret, now()));
    stopped.wait_for("trying again in", Duration::from_secs(20));
    stopped.ctrl_c();
    let screen = stopped.wait_for("EXIT=", Duration::from_secs(10));
    assert!(
        screen.contains("Stopped while the gateway was busy; no code was used"),
        "{screen}"
    );
    assert!(screen.contains("EXIT=1"), "{screen}");

    // Waited out: the countdown shows, the directory comes back, and the same code logs in
    // without a second prompt.
    let terminal = Terminal::start(
        dir.path(),
        &login_command(&dir.path().join("h2"), &gw.addr, &ca, ALICE.uid),
    );
    terminal.wait_for(PASSWORD_PROMPT, Duration::from_secs(20));
    terminal.type_line(ALICE.password);
    terminal.wait_for(CODE_PROMPT, Duration::from_secs(20));
    terminal.type_line(&oathtool_code(&secret, now()));
    let screen = terminal.wait_for("trying again in", Duration::from_secs(20));
    assert!(
        screen.contains("The gateway is busy (many people are logging in)") && screen.contains("Ctrl-C to stop"),
        "{screen}"
    );
    std::thread::sleep(Duration::from_secs(2));
    Command::new("kill").args(["-CONT", &slapd]).status().unwrap();
    let screen = terminal.wait_for("EXIT=", Duration::from_secs(30));
    assert!(screen.contains("Logged in as alice until"), "{screen}");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert_eq!(
        screen.matches(CODE_PROMPT).count(),
        1,
        "asked for a code again: {screen}"
    );
    let _ = holder.await;
    let (_, text) = gw.metrics_text(Some(&monitor)).await;
    assert!(
        metric_sum(
            &text,
            "rampart_gateway_logins_total",
            &[("result", "busy"), ("kind", "login")]
        ) >= 2.0,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn codes_refused_by_a_fast_gateway_blame_its_clock_not_the_employees() {
    const PEOPLE: usize = 5;
    // The gateway's clock runs two minutes fast; its own check against the database is
    // loosened so logins reach the code.
    let lab = LdapLab::start_with_people(
        "",
        "clock_offset_secs = 120\nmax_clock_skew_ms = 600000",
        &generated_people_ldif(PEOPLE),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), "org-ca.pem", &lab.gw.ca_pem);
    let mut codes = Vec::new();
    for i in 0..PEOPLE {
        let (uid, password, uuid) = generated_person(i);
        let secret = lab.gw.enrol(&uuid, &uid).await;
        // The phone is right: the code of the real time.
        let code = oathtool_code(&secret, now());
        let out = login_plain(
            &dir.path().join(format!("h{i}")),
            &lab.gw.addr,
            &ca,
            &uid,
            &password,
            &code,
        );
        codes.push(code);
        assert_eq!(out.status.code(), Some(3), "{}", output_text(&out));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains("Your username, password or code was not accepted"),
            "{said}"
        );
        // Named once (it used to be said twice), without blaming this computer.
        assert_eq!(said.matches("differ by").count(), 1, "{said}");
        // Two minutes, give or take the second the two clocks were read apart.
        assert!(
            ["1 min 59 s", "2 min 0 s", "2 min 1 s"]
                .iter()
                .any(|apart| said.contains(&format!(
                    "This computer's clock and the gateway's differ by {apart} (the gateway's is ahead)"
                ))),
            "{said}"
        );
        assert!(
            said.contains("if your phone shows the same time as this computer, the gateway's clock is probably wrong"),
            "{said}"
        );
        assert!(said.contains("tell the service desk"), "{said}");
        assert!(
            !said.contains("Your computer's clock is") && !said.contains("likely cause"),
            "{said}"
        );
    }

    // Each refusal is placed in time on the record; the desk is told once that it is the
    // gateway's clock, by how much.
    let common = lab.gw.wait_log(
        "the rejected codes of many people agree: this gateway's clock is probably off by gateway_ahead_secs \
         (positive: ahead of their phones); check its time synchronisation",
        1,
        Duration::from_secs(10),
    );
    assert_eq!(common.len(), 1, "told once: {common:?}");
    assert_eq!(common[0]["level"], "WARN", "{}", common[0]);
    assert_eq!(common[0]["target"], "rampart::clock", "{}", common[0]);
    assert_eq!(common[0]["gateway_ahead_secs"], 120, "{}", common[0]);
    assert_eq!(common[0]["people"], PEOPLE, "{}", common[0]);
    let each = lab.gw.wait_log(
        "a rejected code is one for another time: the phone's clock or this gateway's is off by that much",
        PEOPLE,
        Duration::from_secs(10),
    );
    assert!(each.iter().all(|e| e["offset_secs"] == -120), "{each:?}");
    let refused: Vec<String> = audit_records(&lab.gw.state.join("audit"))
        .into_iter()
        .filter(|r| r["class_uid"] == 3002 && r["status"] == "Failure")
        .filter_map(|r| r["status_detail"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        refused
            .iter()
            .filter(|d| *d == "wrong_code; code_offset_secs=-120")
            .count(),
        PEOPLE,
        "{refused:?}"
    );
    let monitor = lab.gw.operator("monitor", "auditor").await;
    let (status, text) = lab.gw.metrics_text(Some(&monitor)).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        metric_sum(&text, "rampart_gateway_code_drift_common_seconds", &[]),
        120.0,
        "{text}"
    );
    assert_eq!(
        metric_sum(
            &text,
            "rampart_gateway_rejected_code_offsets_total",
            &[("offset_secs", "-120")]
        ),
        PEOPLE as f64,
        "{text}"
    );
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    assert_no_secrets(&lab.gw.log(), &codes, "the gateway log");
}

/// `rampart-connect login` with the password on standard input and `code` on the command line.
fn login_plain(home: &Path, gateway: &str, ca: &Path, user: &str, password: &str, code: &str) -> Output {
    let mut cmd = rampart_connect(home);
    cmd.arg("--gateway")
        .arg(gateway)
        .arg("--ca")
        .arg(ca)
        .args(["login", "--user", user, "--password-stdin", "--otp", code])
        .env_remove("RAMPART_CONNECT_CA");
    run_with_stdin(cmd, &format!("{password}\n"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forward_whose_session_is_killed_says_so_once() {
    let lab = LdapLab::start(
        "[[resource]]\nname = \"echo\"\ntarget = \"{echo}\"\nallow_users = [\"alice\"]\n",
        "",
    )
    .await;
    let secret = lab.gw.enrol(ALICE.uuid, ALICE.uid).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), "org-ca.pem", &lab.gw.ca_pem);
    let home = dir.path().join("home");
    let out = login_plain(
        &home,
        &lab.gw.addr,
        &ca,
        ALICE.uid,
        ALICE.password,
        &oathtool_code(&secret, now()),
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let (mut forward, local, log) = start_listening(&home, &["forward", "127.0.0.1:0=echo"], "forwarding ");
    assert_eq!(echo_round_trip(&local, b"ping"), b"ping");
    // Connections keep coming while the session is ended: those that find it over do not
    // each repeat the message (the forward may already have stopped listening).
    let knocking = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let knocker = {
        let (knocking, local) = (knocking.clone(), local.clone());
        std::thread::spawn(move || {
            while knocking.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(mut tcp) = std::net::TcpStream::connect(&local) {
                    let _ = std::io::Write::write_all(&mut tcp, b"ping");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let key = lab.gw.operator("desk", "helpdesk").await;
    let killed = lab.gw.cli(&key, &["sessions", "kill", "--user", "alice"]).await;
    assert!(killed.status.success(), "{}", output_text(&killed));
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = forward.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = forward.kill();
            panic!("the forward kept running: {}", std::fs::read_to_string(&log).unwrap());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    knocking.store(false, std::sync::atomic::Ordering::Relaxed);
    knocker.join().unwrap();
    assert_eq!(status.code(), Some(5));
    let said = std::fs::read_to_string(&log).unwrap();
    assert_eq!(said.matches("Your session has ended").count(), 1, "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_grown_too_old_while_waiting_is_asked_for_again_and_nothing_else() {
    let lab = LdapLab::start("", "").await;
    let gw = busy_gateway(&lab, 120);
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), "org-ca.pem", &gw.ca_pem);
    let slapd = lab.slapd.pid().unwrap().to_string();
    Command::new("kill").args(["-STOP", &slapd]).status().unwrap();
    let monitor = gw.operator("monitor", "auditor").await;
    let holder = hold_the_slot(&gw);
    wait_slot_taken(&gw, &monitor).await;

    let terminal = Terminal::start(
        dir.path(),
        &login_command(&dir.path().join("home"), &gw.addr, &ca, ALICE.uid),
    );
    terminal.wait_for(PASSWORD_PROMPT, Duration::from_secs(20));
    terminal.type_line(ALICE.password);
    terminal.wait_for(CODE_PROMPT, Duration::from_secs(20));
    terminal.type_line(&oathtool_code(&secret, now()));
    terminal.wait_for("trying again in", Duration::from_secs(20));
    // At most 52 s after typing, the code is no longer sent: the person is asked for the
    // current one, and only for it.
    let screen = terminal.wait_for("The code you typed is too old now", Duration::from_secs(70));
    assert!(
        screen.contains("Type the one your authenticator app shows now"),
        "{screen}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while terminal.screen().matches(CODE_PROMPT).count() < 2 {
        assert!(Instant::now() < deadline, "{}", terminal.screen());
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill").args(["-CONT", &slapd]).status().unwrap();
    terminal.type_line(&oathtool_code(&secret, now()));
    let screen = terminal.wait_for("EXIT=", Duration::from_secs(30));
    assert!(screen.contains("Logged in as alice until"), "{screen}");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert_eq!(screen.matches(PASSWORD_PROMPT).count(), 1, "{screen}");
    assert_eq!(screen.matches(CODE_PROMPT).count(), 2, "{screen}");
    let _ = holder.await;
    // No code was sent late: the token counted no wrong code.
    let (_, text) = gw.metrics_text(Some(&monitor)).await;
    assert_eq!(
        metric_sum(&text, "rampart_gateway_logins_total", &[("reason", "wrong_code")]),
        0.0,
        "{text}"
    );
}
