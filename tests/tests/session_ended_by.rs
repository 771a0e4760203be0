//! The session-end audit record names who ended the session, as an analyst reads it with
//! `rampart audit query`: the operator whose API key killed it — also when the kill went
//! through another gateway than the one holding the session, or was a token revocation at the
//! provisioner — and the rule for an automatic end (idleness). Real `rampart-gateway` processes, real slapd, the real `rampart` CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_tests::gateway::{GatewayProc, LdapLab, login_person};
use rampart_tests::output_text;
use rampart_tests::provisioner::ProvisionerProc;
use rampart_tests::slapd::{ALICE, BOB};
use serde_json::Value;
use std::time::{Duration, Instant};

const POLICY: &str = "[[resource]]\nname = \"app\"\ntarget = \"{echo}\"\nallow_groups = [\"staff\"]\n";

/// The records `rampart -o json audit query AUDIT_DIR --user NAME` prints.
async fn query_by(gw: &GatewayProc, key: &str, name: &str) -> Vec<Value> {
    let dir = gw.state.join("audit");
    let out = gw
        .cli(
            key,
            &["-o", "json", "audit", "query", dir.to_str().unwrap(), "--user", name],
        )
        .await;
    assert!(out.status.success(), "audit query failed: {}", output_text(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Waits for the session-end record of `session` among the records naming `name`.
async fn session_end_record(gw: &GatewayProc, key: &str, name: &str, session: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = query_by(gw, key, name)
            .await
            .into_iter()
            .find(|r| r["class_uid"] == 3002 && r["activity_name"] == "Logoff" && r["session"]["uid"] == session);
        if let Some(record) = found {
            return record;
        }
        assert!(
            Instant::now() < deadline,
            "no session-end record of {session} found by --user {name}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_or_a_revocation_names_the_operator_and_an_idle_end_names_the_rule() {
    let lab = LdapLab::start(POLICY, "session_check_secs = 1\nsession_idle_secs = 10").await;
    let gw = &lab.gw;
    // A second gateway on the same store: the desk's CLI may reach any of them.
    let other = lab.second_gateway("session_check_secs = 1\nsession_idle_secs = 10");
    // The provisioner first: its `init` makes the first operator, `admin`.
    let prov = ProvisionerProc::start_for(gw, &lab.directory, "");
    let alice_secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let bob_secret = gw.enrol(BOB.uuid, BOB.uid).await;
    let desk = gw.operator("desk-ann", "helpdesk").await;
    let auditor = gw.operator("audit-1", "auditor").await;

    // Alice is attached to the first gateway; the desk kills her session through the second.
    let (alice, alice_grant) = login_person(gw, &ALICE, &alice_secret, 0).await;
    let killed = other.cli(&desk, &["sessions", "kill", &alice_grant.session_id]).await;
    assert!(killed.status.success(), "{}", output_text(&killed));

    // The gateway holding it closes it and its record names the operator: found by searching
    // for the operator, as an analyst would, with the person and the reason beside.
    let record = session_end_record(gw, &auditor, "desk-ann", &alice_grant.session_id).await;
    assert_eq!(record["actor"]["user"]["name"], "desk-ann", "{record}");
    assert_eq!(record["actor"]["user"]["type"], "Operator", "{record}");
    assert_eq!(record["user"]["name"], "alice", "{record}");
    assert_eq!(record["status_detail"], "admin_kill", "{record}");
    drop(alice);

    // Bob logs in and does nothing: the idle rule ends his session, and says so.
    let (_bob, bob_grant) = login_person(gw, &BOB, &bob_secret, 0).await;
    let record = session_end_record(gw, &auditor, "bob", &bob_grant.session_id).await;
    assert_eq!(record["status_detail"], "idle", "{record}");
    assert_eq!(record["actor"]["user"]["name"], "rule idle", "{record}");
    assert_eq!(record["actor"]["user"]["type"], "System", "{record}");

    // Alice logs in again; the desk revokes her token at the provisioner: the gateway learns
    // of the end from the store, and its record names the operator who revoked.
    let (_alice, again) = login_person(gw, &ALICE, &alice_secret, 1).await;
    let revoked = prov.rampart(&["token", "revoke", "alice", "--reason", "left the bank"]);
    assert!(revoked.status.success(), "{}", output_text(&revoked));
    let record = session_end_record(gw, &auditor, "admin", &again.session_id).await;
    assert_eq!(record["status_detail"], "token_revoked", "{record}");
    assert_eq!(record["actor"]["user"]["name"], "admin", "{record}");
    assert_eq!(record["actor"]["user"]["type"], "Operator", "{record}");

    // The gateway's log line says the same.
    let ends = gw.wait_log("session ended", 2, Duration::from_secs(5));
    let enders: Vec<_> = ends
        .iter()
        .map(|e| e["ended_by"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(enders.contains(&"operator desk-ann".to_owned()), "{ends:#?}");
    assert!(enders.contains(&"rule idle".to_owned()), "{ends:#?}");

    // The trail with these records still verifies.
    let dir = gw.state.join("audit");
    let public_key = gw.state.join("audit-signing.pub");
    let verify = gw
        .cli(
            &auditor,
            &[
                "audit",
                "verify",
                dir.to_str().unwrap(),
                "--public-key",
                public_key.to_str().unwrap(),
            ],
        )
        .await;
    assert!(verify.status.success(), "{}", output_text(&verify));
}
