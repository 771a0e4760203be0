//! End to end: what a person running `rampart-connect forward` sees at its start and at its
//! session's end — resource names the session may not use refused before anything listens,
//! naming the ones it may; and a session ended by the service desk or by idleness announced
//! when it happens, with its reason, not at the next connection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_tests::gateway::LdapLab;
use rampart_tests::*;
use rampart_tests::{rampart_connect, start_listening};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const POLICY: &str = "[[resource]]\nname = \"echo\"\ntarget = \"{echo}\"\ndescription = \"Echo service\"\nallow_users = [\"alice\"]\n\n\
                      [[resource]]\nname = \"payroll\"\ntarget = \"{echo}\"\nallow_users = [\"bob\"]\n";

/// `forward` with `args`, which must exit by itself within 20 s.
fn forward_refused(home: &Path, args: &[&str]) -> Output {
    let mut child = rampart_connect(home)
        .arg("forward")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if wait_exit(&mut child, Duration::from_secs(20)).is_none() {
        let _ = child.kill();
        panic!(
            "forward {args:?} kept running: {}",
            output_text(&child.wait_with_output().unwrap())
        );
    }
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn names_the_session_may_not_use_are_refused_at_start_naming_those_it_may() {
    let lab = LdapLab::start(POLICY, "").await;
    let (_dir, home) = lab.alice_logged_in().await;

    // A typo and a resource granted to someone else, beside a good one: nothing listens, and
    // the person reads what is wrong and what they may use.
    let out = forward_refused(&home, &["127.0.0.1:0=echo", "127.0.0.1:0=ecoh", "127.0.0.1:0=payroll"]);
    assert_eq!(out.status.code(), Some(7), "{}", output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("forwarding"), "something listened: {stdout}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("Not forwarding anything: \"ecoh\", \"payroll\" are not resources you may use."),
        "{said}"
    );
    assert!(said.contains("You may use: echo."), "{said}");
    assert!(said.contains("rampart-connect status"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "one message: {said}");

    // One wrong name alone.
    let out = forward_refused(&home, &["127.0.0.1:0=nosuch"]);
    assert_eq!(out.status.code(), Some(7), "{}", output_text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("\"nosuch\" is not a resource you may use. You may use: echo."),
        "{said}"
    );

    // The good name alone still forwards.
    let (mut forward, local, _log) = start_listening(&home, &["forward", "127.0.0.1:0=echo"], "forwarding ");
    assert_eq!(echo_round_trip(&local, b"ping"), b"ping");
    let _ = forward.kill();
    let _ = forward.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_through_the_admin_api_ends_an_idle_forward_at_once_saying_who_ended_it() {
    let lab = LdapLab::start(POLICY, "").await;
    let (_dir, home) = lab.alice_logged_in().await;
    let (mut forward, local, log) = start_listening(&home, &["forward", "127.0.0.1:0=echo"], "forwarding ");

    // No connection is open through the forward when the service desk ends the session.
    let key = lab.gw.operator("desk", "helpdesk").await;
    let began = Instant::now();
    let (status, body) = lab.gw.admin("DELETE", "/v1/people/alice/sessions", Some(&key)).await;
    assert_eq!(status, 200, "{body}");
    let Some(exit) = wait_exit(&mut forward, Duration::from_secs(5)) else {
        let _ = forward.kill();
        panic!(
            "the forward did not notice the end: {}",
            std::fs::read_to_string(&log).unwrap()
        );
    };
    assert!(began.elapsed() < Duration::from_secs(5));
    assert_eq!(exit.code(), Some(5));
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains(
            "Your session has ended (the service desk ended it). Log in again if you still need access: \
             rampart-connect login"
        ),
        "{said}"
    );
    assert_eq!(said.matches("Your session has ended").count(), 1, "said once: {said}");
    // It stopped listening.
    assert!(std::net::TcpStream::connect(&local).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_session_ended_by_the_gateway_is_announced_with_its_reason() {
    let lab = LdapLab::start(POLICY, "session_idle_secs = 10\nsession_check_secs = 1").await;
    let (_dir, home) = lab.alice_logged_in().await;
    let (mut forward, _local, log) = start_listening(&home, &["forward", "127.0.0.1:0=echo"], "forwarding ");
    let Some(exit) = wait_exit(&mut forward, Duration::from_secs(30)) else {
        let _ = forward.kill();
        panic!(
            "the forward did not notice the end: {}",
            std::fs::read_to_string(&log).unwrap()
        );
    };
    assert_eq!(exit.code(), Some(5));
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("Your session has ended (it was not used for too long). Log in again"),
        "{said}"
    );
}
