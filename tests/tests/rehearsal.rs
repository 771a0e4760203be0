//! `rampart-connect doctor --rehearse` against a real slapd, gateway and provisioner: alice,
//! logged in from a profile that names the provisioner, rehearses with one of her two
//! resources pointing at a closed port — the rehearsal fails, says which and why, exits
//! non-zero, and the readiness funnel does not put her at "rehearsal passed". Once the policy
//! is fixed, the rehearsal passes and exits 0 and she is at "rehearsal passed"; her next login
//! is her first real connection. A report with a ticket that is no live session is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_tests::console::ConsoleClient;
use rampart_tests::gateway::LdapLab;
use rampart_tests::provisioner::{self, ProvisionerProc};
use rampart_tests::slapd::{ALICE, BOB};
use rampart_tests::*;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const POLICY: &str = "[[resource]]\nname = \"echo\"\ntarget = \"{echo}\"\nallow_groups = [\"staff\"]\n\n\
                      [[resource]]\nname = \"desktop\"\ntarget = \"{desktop}\"\nallow_groups = [\"staff\"]\n";

/// A local port nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    addr
}

fn login(home: &Path, secret: &str, at: u64) {
    let mut login = rampart_connect(home);
    login.args(["login", "--password-stdin", "--otp", &oathtool_code(secret, at)]);
    let out = run_with_stdin(login, &format!("{}\n", ALICE.password));
    assert!(out.status.success(), "{}", output_text(&out));
}

fn rehearse(home: &Path) -> (Option<i32>, String) {
    let out = rampart_connect(home).args(["doctor", "--rehearse"]).output().unwrap();
    (out.status.code(), output_text(&out))
}

/// Alice's row of the funnel and the report, read with the admin key.
async fn alice(prov: &ProvisionerProc) -> (Value, Value) {
    let (status, report) = prov
        .call("GET", "/v1/readiness?group=staff", Some(&prov.admin_key), None)
        .await;
    assert_eq!(status, 200, "{report}");
    let person = report["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["username"] == "alice")
        .cloned()
        .unwrap_or_else(|| panic!("alice is not in the report: {report}"));
    (person, report)
}

fn stuck_at<'a>(report: &'a Value, step: &str) -> Vec<&'a str> {
    let steps = report["steps"].as_array().unwrap();
    let found = steps.iter().find(|s| s["step"] == step).unwrap();
    found["stuck_people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rehearsal_passes_only_when_every_resource_opens_and_moves_the_person_along_the_funnel() {
    let desktop = closed_port();
    let template = POLICY.replace("{desktop}", &desktop);
    let lab = LdapLab::start(&template, "").await;
    // Bob, of payments, is a service-desk operator in the console.
    let console = "\n[console]\nhelpdesk_groups = [\"payments\"]\nsign_in_failure_delay_ms = 100\n";
    let prov = ProvisionerProc::start_for(&lab.gw, &format!("{}{console}", lab.directory), "");

    // The desk sends alice a registration code, then enrols her itself: she has a token.
    let issued = prov.rampart_json(&["token", "registration-code", "alice", "--by", "letter"]);
    leaks::remember("registration code", issued["registration_code"].as_str().unwrap());
    let (person, _) = alice(&prov).await;
    assert_eq!(person["furthest_step"], "code_issued", "{person}");
    let (status, issued) = prov
        .call("POST", "/v1/people/alice/token", Some(&prov.admin_key), Some(json!({})))
        .await;
    assert_eq!(status, 201, "{issued}");
    let secret = provisioner::secret_of(issued["otpauth_uri"].as_str().unwrap());
    let (person, _) = alice(&prov).await;
    assert_eq!(
        person["furthest_step"], "code_issued",
        "a token not yet activated: {person}"
    );

    // Set up from a profile naming the provisioner, she logs in: enrolled and set up.
    let made = prov.rampart(&[
        "profile",
        "create",
        "--gateway",
        &lab.gw.addr,
        "--user",
        "alice",
        "--enrol-url",
        &prov.url,
    ]);
    assert!(made.status.success(), "{}", output_text(&made));
    let line = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let setup = rampart_connect(&home).args(["setup", &line]).output().unwrap();
    assert!(setup.status.success(), "{}", output_text(&setup));
    let first_login_at = now();
    login(&home, &secret, first_login_at);
    let (person, _) = alice(&prov).await;
    assert_eq!(person["furthest_step"], "profile_set_up", "{person}");
    assert!(person["enrolled_at"].as_i64().is_some(), "{person}");

    // One resource leads to a closed port: the rehearsal fails and says which.
    let (code, text) = rehearse(&home);
    assert_eq!(code, Some(7), "{text}");
    assert!(text.contains("[ ok ] echo"), "{text}");
    assert!(text.contains("[FAIL] desktop"), "{text}");
    assert!(!text.contains("[FAIL] echo"), "{text}");
    assert!(
        text.contains("reported to the service desk: rehearsal not passed yet"),
        "{text}"
    );
    let (person, report) = alice(&prov).await;
    assert_eq!(person["furthest_step"], "profile_set_up", "{person}");
    assert_eq!(person["rehearsal_passed_at"], Value::Null, "{person}");
    assert!(stuck_at(&report, "profile_set_up").contains(&"alice"), "{report}");
    assert!(!stuck_at(&report, "rehearsal_passed").contains(&"alice"), "{report}");

    // A report whose ticket is no live session records nothing.
    let (status, body) = prov
        .call(
            "POST",
            "/v1/rehearsals",
            None,
            Some(json!({"resources": [{"resource": "echo", "ok": true}]})),
        )
        .await;
    assert_eq!(status, 401, "{body}");

    // The desk fixes the resource; the gateway reloads its policy.
    lab.gw.write_policy(&lab.policy(&POLICY.replace("{desktop}", "{echo}")));
    lab.gw.hangup();
    lab.gw.wait_log("policy reloaded", 1, Duration::from_secs(10));
    let (code, text) = rehearse(&home);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("[ ok ] echo") && text.contains("[ ok ] desktop"),
        "{text}"
    );
    assert!(text.contains("All 2 of your resources opened."), "{text}");
    assert!(
        text.contains("reported to the service desk: rehearsal passed"),
        "{text}"
    );
    let (person, report) = alice(&prov).await;
    assert_eq!(person["furthest_step"], "rehearsal_passed", "{person}");
    assert!(person["rehearsal_passed_at"].as_i64().is_some(), "{person}");
    assert_eq!(person["first_connection_at"], Value::Null, "{person}");
    assert_eq!(stuck_at(&report, "rehearsal_passed"), ["alice"], "{report}");

    // Her next login, with the next code, is her first real connection.
    login(&home, &secret, first_login_at + 30);
    let (person, report) = alice(&prov).await;
    assert_eq!(person["furthest_step"], "first_connection", "{person}");
    assert_eq!(stuck_at(&report, "first_connection"), ["alice"], "{report}");
    let steps = report["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["reached"] == 1), "{report}");

    // The desk's console page and its export say the same.
    let (status, issued) = prov
        .call("POST", "/v1/people/bob/token", Some(&prov.admin_key), Some(json!({})))
        .await;
    assert_eq!(status, 201, "{issued}");
    let bob_secret = provisioner::secret_of(issued["otpauth_uri"].as_str().unwrap());
    let mut desk = ConsoleClient::new(&prov);
    let signed = desk
        .sign_in("bob", BOB.password, &oathtool_code(&bob_secret, now()))
        .await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    let page = desk.get("/console/readiness?group=staff").await;
    assert_eq!(page.status, 200, "{}", page.body);
    // Everyone in staff reached every step; alice is at the last one.
    assert!(
        page.body.contains("<tr><td>not started</td><td></td><td>0</td></tr>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Members of staff: 1 person,"), "{}", page.body);
    for step in [
        "registration code issued",
        "enrolled",
        "profile set up",
        "rehearsal passed",
    ] {
        assert!(
            page.body
                .contains(&format!("<tr><td>{step}</td><td>1</td><td>0</td></tr>")),
            "{step}: {}",
            page.body
        );
    }
    assert!(
        page.body
            .contains("<tr><td>first real connection</td><td>1</td><td>1</td></tr>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("first real connection (1)"), "{}", page.body);
    assert!(
        page.body.contains("href=\"/console/desk/people/alice\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("href=\"/console/readiness.csv?group=staff\""),
        "{}",
        page.body
    );
    let export = desk.get("/console/readiness.csv?group=staff").await;
    assert_eq!(export.status, 200);
    let rows: Vec<&str> = export.body.lines().collect();
    assert_eq!(rows.len(), 2, "{}", export.body);
    assert!(
        rows[0].starts_with("username,display_name,groups,furthest_step,"),
        "{}",
        export.body
    );
    assert!(rows[1].starts_with("alice,"), "{}", export.body);
    assert!(rows[1].contains(",first real connection,"), "{}", export.body);
    let stranger = ConsoleClient::new(&prov).get("/console/readiness").await;
    assert_ne!(stranger.status, 200, "the page needs a signed-in operator");

    // The managers' CLI says the same, and writes the export to a new owner-only file.
    let file = dir.path().join("readiness.csv");
    let out = prov.rampart(&["readiness", "--group", "staff", "--csv", file.to_str().unwrap()]);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("  first real connection (1): alice"), "{text}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), export.body);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let again = prov.rampart(&["readiness", "--csv", file.to_str().unwrap()]);
    assert!(!again.status.success(), "an existing file is not overwritten");
    assert!(
        output_text(&again).contains("already exists"),
        "{}",
        output_text(&again)
    );
}
