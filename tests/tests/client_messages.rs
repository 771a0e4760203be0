//! End to end: what `rampart-connect` tells a person in situations a newcomer walked into — a
//! gateway certificate made for other names than the one the profile dials (said as such by
//! `login` and `doctor`, not as a wrong CA), `status` while the gateway is down (one heading),
//! and a `forward` whose session ended because the account was disabled (call the service desk:
//! logging in again would not work).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_tests::gateway::LdapLab;
use rampart_tests::slapd::{ALICE, dn_of};
use rampart_tests::*;
use rampart_tests::{rampart_connect, start_listening};
use std::time::{Duration, Instant};

const POLICY: &str =
    "[[resource]]\nname = \"echo\"\ntarget = \"{echo}\"\ndescription = \"Echo service\"\nallow_users = [\"alice\"]\n";

const WRONG_NAME: &str = "The gateway's certificate is not made for the name your profile dials (localhost): it \
                          covers gw1.bank.example, 127.0.0.1. Ask the service desk to fix the profile or the \
                          certificate.";

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_made_for_other_names_is_not_called_a_wrong_ca() {
    let lab = LdapLab::start(POLICY, "").await;
    let dir = tempfile::tempdir().unwrap();
    // A gateway of the organisation, with a certificate from its CA for gw1.bank.example and
    // 127.0.0.1 only; the profile dials it as localhost.
    let issued = lab
        .gw
        .ca
        .issue_server(&["gw1.bank.example".into(), "127.0.0.1".into()])
        .unwrap();
    let (cert, key) = (dir.path().join("gw1.pem"), dir.path().join("gw1.key"));
    issued.save(&cert, &key).unwrap();
    let gw1 = lab.another_gateway_with_cert("", None, "", Some((&cert, &key)));
    let port = gw1.addr.rsplit_once(':').unwrap().1;
    let dialled = format!("localhost:{port}");
    let ca = dir.path().join("org-ca.pem");
    std::fs::write(&ca, &lab.gw.ca_pem).unwrap();
    let home = dir.path().join("home");
    let with_profile = |command: &str| {
        let mut cmd = rampart_connect(&home);
        cmd.arg("--gateway").arg(&dialled).arg("--ca").arg(&ca).arg(command);
        cmd
    };

    let mut login = with_profile("login");
    login.args(["--user", "alice", "--password-stdin", "--otp", "123456"]);
    let out = run_with_stdin(login, &format!("{}\n", ALICE.password));
    assert_eq!(out.status.code(), Some(4), "{}", output_text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(WRONG_NAME), "{said}");
    for wrong in ["organisation's CA", "could not prove", "setup"] {
        assert!(!said.contains(wrong), "{wrong:?} in {said}");
    }
    assert_no_secrets(&output_text(&out), &[ALICE.password], "login output");

    let out = with_profile("doctor").output().unwrap();
    assert!(!out.status.success(), "{}", output_text(&out));
    let said = output_text(&out);
    assert!(
        said.contains(&format!(
            "{dialled}: its certificate is not made for the name localhost (it covers gw1.bank.example, 127.0.0.1)"
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "{dialled}: its certificate is signed by your organisation's CA"
        )),
        "{said}"
    );
    assert!(said.contains(WRONG_NAME), "{said}");
    assert!(!said.contains("is not the one this gateway uses"), "{said}");

    // Dialled by a name it covers, the same gateway is fine.
    let out = rampart_connect(&home)
        .arg("--gateway")
        .arg(&gw1.addr)
        .arg("--ca")
        .arg(&ca)
        .arg("doctor")
        .output()
        .unwrap();
    let said = output_text(&out);
    assert!(!said.contains("not made for the name"), "{said}");
    assert!(
        said.contains("its certificate is signed by your organisation's CA"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_with_the_gateway_down_prints_one_heading() {
    let mut lab = LdapLab::start(POLICY, "").await;
    let (_dir, home) = lab.alice_logged_in().await;
    lab.gw.stop();
    let out = rampart_connect(&home).arg("status").output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", output_text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Logged in as alice until"), "{said}");
    assert!(said.contains("(not checked: "), "{said}");
    assert_eq!(said.matches("reach:").count(), 1, "one heading: {said}");
    assert!(said.contains("At login you could reach:\n  echo"), "{said}");
    assert!(!said.contains("You can reach:"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forward_whose_account_was_disabled_sends_the_person_to_the_service_desk() {
    let lab = LdapLab::start(POLICY, "directory_recheck_secs = 1\nsession_check_secs = 1").await;
    let (_dir, home) = lab.alice_logged_in().await;
    let (mut forward, local, log) = start_listening(&home, &["forward", "127.0.0.1:0=echo"], "forwarding ");
    assert_eq!(echo_round_trip(&local, b"ping"), b"ping");

    lab.slapd.modify(&format!(
        "dn: {}\nchangetype: modify\nreplace: employeeType\nemployeeType: disabled\n",
        dn_of(&ALICE)
    ));
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
        said.contains(
            "Your session has ended (your account was disabled). Logging in again will not work until it is \
             enabled: call the service desk."
        ),
        "{said}"
    );
    assert!(!said.contains("Log in again"), "{said}");
}

/// A resource refused outside its hours names the hours (once the refusal only said "not at
/// this time of day"), and `status` shows them beside the resource.
#[tokio::test(flavor = "multi_thread")]
async fn a_resource_refused_outside_its_hours_names_them() {
    // One hour, twelve hours away from now: closed whenever the test runs.
    let hour = (now() / 3600 + 12) % 24;
    let window = format!("daily {hour:02}:00-{:02}:00", (hour + 1) % 24);
    let policy = format!(
        "{POLICY}[[resource]]\nname = \"night\"\ntarget = \"{{echo}}\"\n\
         [[rule]]\nname = \"night-shift\"\nresources = [\"night\"]\nusers = [\"alice\"]\ntime_zone = \"UTC\"\n\
         windows = [\"{window}\"]\n"
    );
    let lab = LdapLab::start(&policy, "").await;
    let (_dir, home) = lab.alice_logged_in().await;
    let hours = format!("{window} (UTC)");
    let status = rampart_connect(&home).arg("status").output().unwrap();
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(
        said.contains("night") && said.contains(&format!("(open {hours})")),
        "{said}"
    );

    let (mut forward, local, log) = start_listening(&home, &["forward", "127.0.0.1:0=night"], "forwarding ");
    let _ = std::net::TcpStream::connect(&local).map(|mut tcp| {
        use std::io::Read;
        let mut buf = [0u8; 1];
        let _ = tcp.read(&mut buf);
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let said = loop {
        let said = std::fs::read_to_string(&log).unwrap();
        if said.contains("is open to you") || Instant::now() > deadline {
            break said;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = forward.kill();
    let _ = forward.wait();
    assert!(
        said.contains(&format!("\"night\" is open to you {hours}, not now.")),
        "{said}"
    );
}
