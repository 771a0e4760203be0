//! End to end: the audit trail of a real `rampart dev` (gateway and provisioner) over real
//! QUIC, TCP and HTTPS — one record per login attempt, decision, flow, session end and token
//! change, with the right fields; hostile usernames as data; `rampart audit verify`, `query`
//! and `tail` on the files the services wrote.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_client::{ClientError, GatewayClient};
use rampart_core::ErrorCode;
use rampart_core::secret::Sensitive;
use rampart_tests::gateway::{open_refusal, round_trip};
use rampart_tests::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

async fn client(dev: &Dev) -> GatewayClient {
    let ca_pem = std::fs::read_to_string(dev.field("ca_cert")).unwrap();
    GatewayClient::connect(&dev.field("gateway"), &ca_pem).await.unwrap()
}

fn is(record: &Value, class: u64, activity: u64) -> bool {
    record["class_uid"] == class && record["activity_id"] == activity
}

fn exactly_one<'a>(records: &'a [Value], what: &str, wanted: impl Fn(&Value) -> bool) -> &'a Value {
    let found: Vec<&Value> = records.iter().filter(|r| wanted(r)).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {what}, found {}: {found:#?}",
        found.len()
    );
    found[0]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_login_decision_flow_kill_and_revocation_has_exactly_one_record() {
    let dev = Dev::start(&[]);
    let password = dev.field("password");
    let secret = dev.secret();

    // A wrong code, then a good login.
    let first = client(&dev).await;
    let refused = first
        .login(
            "demo",
            Sensitive::new(password.clone()),
            Sensitive::new(wrong_code(&secret)),
        )
        .await;
    assert!(matches!(refused, Err(ClientError::Refused { .. })), "{refused:?}");
    let session = client(&dev).await;
    let grant = session
        .login(
            "demo",
            Sensitive::new(password.clone()),
            Sensitive::new(oathtool_code(&secret, now())),
        )
        .await
        .unwrap();

    // An allowed flow of known size, closed cleanly; then a refused stream.
    let data = random_bytes(123_457);
    let (mut send, mut recv) = session.open("echo").await.unwrap();
    round_trip(&mut send, &mut recv, &data).await;
    send.finish().unwrap();
    let rest = recv.read_to_end(1 << 20).await.unwrap();
    assert!(rest.is_empty());
    assert_eq!(open_refusal(&session, "payroll").await, ErrorCode::UnknownResource);

    // The service desk ends the session, then revokes the token.
    let kill = dev.cli(&["sessions", "kill", "--user", "demo"]);
    assert!(kill.status.success(), "{}", output_text(&kill));
    let revoke = dev.cli(&["token", "revoke", "demo", "--reason", "laptop stolen"]);
    assert!(revoke.status.success(), "{}", output_text(&revoke));

    let records = dev.wait_audit(1, |r| is(r, 3001, 11));
    assert_eq!(records.len(), 1, "no revocation record");
    let records = dev.audit_records();
    let sid = grant.session_id.as_str();

    let failure = exactly_one(&records, "failed login", |r| is(r, 3002, 1) && r["status"] == "Failure");
    assert_eq!(failure["user"]["name"], "demo");
    assert_eq!(failure["status_detail"], "wrong_code", "the real reason is on file");
    assert_eq!(failure["src_endpoint"]["ip"], "127.0.0.1");
    assert_eq!(failure["type_uid"], 300_201);

    let login = exactly_one(&records, "login", |r| is(r, 3002, 1) && r["status"] == "Success");
    assert_eq!(login["session"]["uid"], sid);
    assert_eq!(login["user"]["name"], "demo");
    assert!(login["user"]["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert_eq!(login["metadata"]["product"]["name"], "Rampart");
    assert_eq!(login["metadata"]["log_name"], "gateway");

    let allowed = exactly_one(&records, "allow decision", |r| {
        is(r, 3003, 99) && r["disposition_id"] == 1
    });
    assert_eq!(allowed["dst_endpoint"]["svc_name"], "echo");
    assert_eq!(allowed["dst_endpoint"]["ip"], "127.0.0.1");
    assert!(
        allowed["policy"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("echo"))
    );
    assert_eq!(allowed["session"]["uid"], sid);

    let denied = exactly_one(&records, "deny decision", |r| {
        is(r, 3003, 99) && r["disposition_id"] == 2
    });
    assert_eq!(denied["dst_endpoint"]["svc_name"], "payroll");
    assert_eq!(denied["status_detail"], "unknown_resource");
    assert_eq!(denied["disposition"], "Blocked");

    exactly_one(&records, "flow open", |r| is(r, 4001, 1));
    let closed = exactly_one(&records, "flow close", |r| is(r, 4001, 2));
    assert_eq!(closed["traffic"]["bytes_out"], data.len(), "client to target");
    assert_eq!(closed["traffic"]["bytes_in"], data.len(), "target to client");
    assert_eq!(closed["status_detail"], "closed");
    assert_eq!(closed["dst_endpoint"]["svc_name"], "echo");
    assert!(closed["duration"].as_i64().is_some());
    assert!(closed["end_time"].as_i64() >= closed["start_time"].as_i64());
    assert_eq!(closed["user"]["name"], "demo");

    let kill = exactly_one(&records, "session kill", |r| {
        is(r, 3002, 2) && r["session"]["uid"] == sid && r["status_detail"] == "admin_kill"
    });
    assert_eq!(kill["user"]["name"], "demo");
    exactly_one(&records, "kill API call", |r| {
        is(r, 6003, 4) && r["http_request"]["url"]["path"] == "/v1/people/demo/sessions"
    });

    let revoked = exactly_one(&records, "revocation", |r| is(r, 3001, 11));
    assert_eq!(revoked["user"]["name"], "demo");
    let operator = revoked["actor"]["user"]["name"].as_str().unwrap();
    assert!(operator.starts_with("dev-admin-"), "{operator}");
    assert_eq!(revoked["status_detail"], "laptop stolen");
    assert_eq!(revoked["metadata"]["log_name"], "provisioner");
    let call = exactly_one(&records, "revoke API call", |r| {
        r["class_uid"] == 6003 && r["http_request"]["url"]["path"] == "/v1/people/demo/token/revoke"
    });
    assert_eq!(call["actor"]["user"]["name"], operator);
    assert_eq!(call["status"], "Success");

    // What the security team runs: verify (with the signing key's public half) and query.
    let audit_dir = dev.field("audit_dir");
    let public_key = dev.field("audit_public_key");
    let verify = dev.cli(&["audit", "verify", &audit_dir, "--public-key", &public_key]);
    assert!(verify.status.success(), "{}", output_text(&verify));
    let text = String::from_utf8_lossy(&verify.stdout);
    assert!(
        text.contains("gateway: intact") && text.contains("provisioner: intact"),
        "{text}"
    );

    let query = dev.cli(&[
        "-o",
        "json",
        "audit",
        "query",
        &audit_dir,
        "--user",
        "DEMO",
        "--decision",
        "deny",
    ]);
    assert!(query.status.success(), "{}", output_text(&query));
    let lines: Vec<Value> = String::from_utf8_lossy(&query.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["dst_endpoint"]["svc_name"], "payroll");
    let flows = dev.cli(&[
        "audit",
        "query",
        &audit_dir,
        "--resource",
        "echo",
        "--class",
        "flow",
        "--source",
        "127.0.0.1",
    ]);
    let table = String::from_utf8_lossy(&flows.stdout);
    assert_eq!(table.lines().count(), 3, "header, open and close: {table}");
    assert!(table.contains(&format!("out={0} in={0}", data.len())), "{table}");
    let none = dev.cli(&["audit", "query", &audit_dir, "--since", "2100-01-01 00:00"]);
    assert_eq!(String::from_utf8_lossy(&none.stdout).trim(), "No audit records match.");
    let bad = dev.cli(&["audit", "query", &audit_dir, "--since", "yesterday-ish"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        output_text(&bad).contains("cannot read --since"),
        "{}",
        output_text(&bad)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_username_is_one_well_formed_record() {
    let dev = Dev::start(&[]);
    let name = "mallory\n{\"class_uid\":3002,\"status\":\"Success\"}\r\"\u{2028}\u{2029}\u{1b}[2J\u{1b}[31mroot";
    let session = client(&dev).await;
    let refused = session
        .login(name, Sensitive::new("x".into()), Sensitive::new("123456".into()))
        .await;
    assert!(matches!(refused, Err(ClientError::Refused { .. })), "{refused:?}");

    let records = dev.wait_audit(1, |r| r["class_uid"] == 3002);
    let auth: Vec<&Value> = records.iter().filter(|r| r["class_uid"] == 3002).collect();
    assert_eq!(auth.len(), 1, "{auth:#?}");
    assert_eq!(auth[0]["user"]["name"], name, "the name is kept exactly, as data");
    assert_eq!(auth[0]["status"], "Failure");
    // Nothing in the files can split a line or reach a terminal raw.
    let dir = dev.field("audit_dir");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains('\r') && !text.contains('\u{1b}'));
        assert!(!text.contains('\u{2028}') && !text.contains('\u{2029}'));
    }
    // The table view escapes it too.
    let table = dev.cli(&["audit", "query", &dir, "--class", "auth"]);
    let shown = String::from_utf8_lossy(&table.stdout);
    assert_eq!(shown.lines().count(), 2, "{shown}");
    assert!(!shown.contains('\u{1b}') && shown.contains("\\u{1b}[2J"), "{shown}");
}

#[test]
fn tail_follows_new_records_and_verify_survives_a_restart() {
    let mut dev = Dev::start(&[]);
    let dir = dev.field("audit_dir");
    let mut tail = Command::new(bin("rampart"))
        .args(["-o", "json", "audit", "tail", &dir, "--class", "auth", "-n", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(tail.stdout.take().unwrap()).lines();
    std::thread::sleep(Duration::from_millis(500));
    let home = dev.home("laptop");
    let login = dev.login(
        &home,
        "demo",
        &dev.field("password"),
        &oathtool_code(&dev.secret(), now()),
    );
    assert!(login.status.success(), "{}", output_text(&login));
    let started = Instant::now();
    let line = lines.next().unwrap().unwrap();
    let record: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["activity_name"], "Logon");
    assert_eq!(record["status"], "Success");
    assert!(started.elapsed() < Duration::from_secs(5));
    let _ = tail.kill();
    let _ = tail.wait();

    // A clean stop closes each stream with a signed checkpoint; the next run continues the chain.
    assert!(dev.terminate().success());
    let records = audit_records(std::path::Path::new(&dir));
    assert!(records.last().is_some_and(|r| r.get("checkpoint").is_some()));
    let verify = Command::new(bin("rampart"))
        .args([
            "-o",
            "json",
            "audit",
            "verify",
            &dir,
            "--public-key",
            &dev.field("audit_public_key"),
        ])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", output_text(&verify));
    let reports: Vec<Value> = serde_json::from_slice(&verify.stdout).unwrap();
    assert!(
        reports
            .iter()
            .all(|r| r["intact"] == true && r["checkpoints_verified"].as_u64() >= Some(1)),
        "{reports:?}"
    );

    // Tamper with one byte: verify names the file and line, and exits 8.
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("gateway-"))
        .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("\"Success\"", "\"Failure\"", 1)).unwrap();
    let broken = Command::new(bin("rampart"))
        .args(["audit", "verify", &dir])
        .output()
        .unwrap();
    assert_eq!(broken.status.code(), Some(8), "{}", output_text(&broken));
    let said = output_text(&broken);
    assert!(said.contains("gateway: BROKEN at") && said.contains("edited"), "{said}");
    assert!(said.contains(&file.display().to_string()), "{said}");
}

/// In the first minutes of dev mode `audit verify` once said "intact, 0 signed checkpoints
/// verified": the start-up records waited a whole `checkpoint_secs` for their signature. Now the
/// first checkpoint follows start within seconds, and a stream with nothing signed says so
/// plainly.
#[test]
fn records_of_start_up_are_signed_within_seconds() {
    let dev = Dev::start(&[]);
    let audit_dir = dev.field("audit_dir");
    let public_key = dev.field("audit_public_key");
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let verify = dev.cli(&["audit", "verify", &audit_dir, "--public-key", &public_key]);
        assert!(verify.status.success(), "{}", output_text(&verify));
        let text = String::from_utf8_lossy(&verify.stdout).into_owned();
        let provisioner = text
            .lines()
            .find(|l| l.starts_with("provisioner: "))
            .unwrap_or_default();
        if provisioner.contains("signed checkpoints verified") && !provisioner.contains("NOT YET SIGNED") {
            break text;
        }
        assert!(
            provisioner.contains("no signed checkpoint yet") || provisioner.contains("NOT YET SIGNED"),
            "an unsigned tail is said plainly: {text}"
        );
        assert!(Instant::now() < deadline, "not signed within 10 s: {text}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(!text.contains(" 0 signed checkpoints"), "{text}");
}
