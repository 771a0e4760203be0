//! End to end: `rampart dev`, an independent TOTP generator, `rampart-connect login` and
//! `forward`, over real QUIC and TCP sockets on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_client::{ClientError, GatewayClient};
use rampart_core::ErrorCode;
use rampart_tests::*;
use std::process::Command;

#[test]
fn demo_user_logs_in_with_an_independent_code_and_forwards_a_mebibyte_to_echo() {
    let dev = Dev::start(&[]);
    let home = dev.home("alice-laptop");
    let password = dev.field("password");
    let secret = dev.secret();
    let code = oathtool_code(&secret, now());

    let login = dev.login(&home, "demo", &password, &code);
    assert!(login.status.success(), "login failed: {}", output_text(&login));
    assert!(
        String::from_utf8_lossy(&login.stdout).contains("echo"),
        "resources listed"
    );

    // The demo token was issued through dev's provisioner, which now shows it active.
    let shown = Command::new(bin("rampart"))
        .args(["--output", "json", "token", "show", "demo"])
        .env("RAMPART_URL", dev.field("provisioner_url"))
        .env("RAMPART_API_KEY", dev.field("admin_api_key"))
        .env("RAMPART_CA", dev.field("ca_cert"))
        .output()
        .unwrap();
    assert!(shown.status.success(), "{}", output_text(&shown));
    let person: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(person["tokens"][0]["state"], "active", "{person}");

    let forward = Forward::start(&home, &["echo"]);
    let data = random_bytes(1024 * 1024);
    let back = echo_round_trip(&forward.locals[0], &data);
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echoed bytes differ");

    let flows = dev.wait_flows(1);
    assert_eq!(flows.len(), 1, "one flow line per forwarded connection: {flows:?}");
    let flow = &flows[0];
    assert_eq!(flow["user"], "demo");
    assert_eq!(flow["resource"], "echo");
    assert_eq!(flow["decision"], "allow");
    assert_eq!(flow["bytes_to_target"], 1024 * 1024);
    assert_eq!(flow["bytes_from_target"], 1024 * 1024);
    assert!(flow["target"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(flow["start"].as_str().unwrap() <= flow["end"].as_str().unwrap());

    // Two more connections on the same session: one flow line each.
    for size in [1usize, 70_000] {
        let data = random_bytes(size);
        assert!(echo_round_trip(&forward.locals[0], &data) == data);
    }
    assert_eq!(dev.wait_flows(3).len(), 3);

    let everything = [
        dev.stderr(),
        output_text(&login),
        forward.stderr(),
        std::fs::read_to_string(dev.field("flow_log")).unwrap(),
    ]
    .join("\n");
    assert_no_secrets(
        &everything,
        &[&password, &code, &secret],
        "gateway log, flow log or client output",
    );
}

#[test]
fn replayed_and_wrong_codes_are_rejected_with_one_message() {
    let dev = Dev::start(&[]);
    let password = dev.field("password");
    let secret = dev.secret();
    let code = oathtool_code(&secret, now());

    let first = dev.login(&dev.home("a"), "demo", &password, &code);
    assert!(first.status.success(), "{}", output_text(&first));

    let replay = dev.login(&dev.home("b"), "demo", &password, &code);
    assert_eq!(replay.status.code(), Some(3), "replayed code: {}", output_text(&replay));
    let wrong = wrong_code(&secret);
    let bad_code = dev.login(&dev.home("c"), "demo", &password, &wrong);
    assert_eq!(
        bad_code.status.code(),
        Some(3),
        "wrong code: {}",
        output_text(&bad_code)
    );
    let bad_password = dev.login(
        &dev.home("d"),
        "demo",
        "not-the-password",
        &oathtool_code(&secret, now() + 30),
    );
    assert_eq!(bad_password.status.code(), Some(3));
    let unknown = dev.login(&dev.home("e"), "nobody", &password, &code);
    assert_eq!(unknown.status.code(), Some(3));

    // The person sees one message for all four; the log keeps the real reasons.
    let message = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(message(&replay), message(&bad_code));
    assert_eq!(message(&replay), message(&bad_password));
    assert_eq!(message(&replay), message(&unknown));
    let log = dev.stderr();
    for reason in ["code_replayed", "wrong_code", "wrong_password", "unknown_user"] {
        assert!(log.contains(reason), "gateway log lacks reason {reason}");
    }

    // A later step's code still works: the replay rule is per step, not a lockout.
    let next = oathtool_code(&secret, now() + 30);
    let again = dev.login(&dev.home("f"), " DEMO ", &password, &next);
    assert!(again.status.success(), "{}", output_text(&again));

    let outputs = [&first, &replay, &bad_code, &bad_password, &unknown, &again]
        .map(output_text)
        .join("\n");
    assert_no_secrets(
        &(outputs + &log),
        &[&password, &code, &next, &secret],
        "client output or gateway log",
    );
}

#[tokio::test]
async fn streams_before_login_and_to_unknown_resources_are_refused_and_the_gateway_keeps_serving() {
    let dev = Dev::start(&[]);
    let ca_pem = std::fs::read_to_string(dev.field("ca_cert")).unwrap();
    let gateway = dev.field("gateway");

    let anonymous = GatewayClient::connect(&gateway, &ca_pem).await.unwrap();
    match anonymous.open("echo").await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, ErrorCode::NotAuthenticated),
        other => panic!("stream before login was not refused: {other:?}"),
    }
    anonymous.close().await;

    let password = dev.field("password");
    let home = dev.home("h");
    let login = dev.login(&home, "demo", &password, &oathtool_code(&dev.secret(), now()));
    assert!(login.status.success(), "{}", output_text(&login));

    // `forward` refuses a name the session may not use before it listens (and says which it
    // may); the gateway refuses it too when a stream asks for it on the session.
    let out = Command::new(bin("rampart-connect"))
        .arg("--home")
        .arg(&home)
        .args(["forward", "127.0.0.1:0=no-such-resource"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"no-such-resource\" is not a resource you may use"),
        "{}",
        output_text(&out)
    );
    let client_home = rampart_client::Home::resolve(Some(home.clone())).unwrap();
    let mut credential = client_home.load_session().unwrap().unwrap().credential().unwrap();
    let client = GatewayClient::connect(&gateway, &ca_pem).await.unwrap();
    rampart_client::resume::resume_saved(&client_home, &client, &gateway, &mut credential)
        .await
        .unwrap();
    match client.open("no-such-resource").await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, ErrorCode::UnknownResource),
        other => panic!("an unknown resource was not refused: {other:?}"),
    }
    client.close().await;
    // The same session and gateway still carry an allowed resource.
    let forward = Forward::start(&home, &["echo"]);
    assert_eq!(echo_round_trip(&forward.locals[0], b"still serving"), b"still serving");

    let flows = dev.wait_flows(2);
    let denied: Vec<_> = flows.iter().filter(|f| f["decision"] == "deny").collect();
    assert_eq!(denied.len(), 1, "{flows:?}");
    assert_eq!(denied[0]["outcome"], "unknown_resource");
}

#[test]
fn forward_without_a_session_says_to_log_in() {
    let dev = Dev::start(&[]);
    let out = Command::new(bin("rampart-connect"))
        .arg("--home")
        .arg(dev.home("empty"))
        .args(["forward", "127.0.0.1:0=echo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rampart-connect login"));
}

#[test]
fn extra_resources_are_offered_and_sigterm_stops_dev_cleanly() {
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target_addr = target.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in target.incoming().flatten() {
            use std::io::Write;
            let mut stream = stream;
            let _ = stream.write_all(b"hello from intranet\n");
        }
    });
    let mut dev = Dev::start(&["--resource", &format!("intranet={target_addr}")]);
    let names: Vec<&str> = dev.info["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(names, ["echo", "intranet"]);

    let home = dev.home("h");
    let login = dev.login(
        &home,
        "demo",
        &dev.field("password"),
        &oathtool_code(&dev.secret(), now()),
    );
    assert!(
        String::from_utf8_lossy(&login.stdout).contains("intranet"),
        "{}",
        output_text(&login)
    );
    let forward = Forward::start(&home, &["intranet"]);
    assert_eq!(echo_round_trip(&forward.locals[0], b""), b"hello from intranet\n");
    drop(forward);

    let status = dev.terminate();
    assert!(status.success(), "rampart dev exit status after SIGTERM: {status}");
    assert_eq!(dev.flows().len(), 1, "the flow log was flushed on shutdown");
}

#[test]
fn bad_resource_argument_is_a_clear_error() {
    let out = Command::new(bin("rampart"))
        .args(["dev", "--listen", "127.0.0.1:0", "--state-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .args(["--resource", "bad name=nohost"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("resource[1]") && err.contains("target"), "{err}");
}

#[tokio::test]
async fn dev_json_names_the_gateway_admin_and_metrics_and_the_cli_lists_the_demo_session() {
    let dev = Dev::start(&[]);
    let admin_url = dev.field("admin_url");
    let metrics_url = dev.field("metrics_url");
    assert_eq!(metrics_url, format!("{admin_url}/metrics"));
    let key = dev.field("admin_api_key");
    let ca_pem = std::fs::read_to_string(dev.field("ca_cert")).unwrap();
    let http = https_client(&ca_pem);

    let health = http.get(format!("{admin_url}/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let anonymous = http.get(&metrics_url).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401, "metrics need an operator key");

    let home = dev.home("h");
    let login = dev.login(
        &home,
        "demo",
        &dev.field("password"),
        &oathtool_code(&dev.secret(), now()),
    );
    assert!(login.status.success(), "{}", output_text(&login));

    let sessions = Command::new(bin("rampart"))
        .args(["sessions", "list", "-o", "json"])
        .env("RAMPART_GATEWAY_ADMIN", &admin_url)
        .env("RAMPART_CA", dev.field("ca_cert"))
        .env("RAMPART_API_KEY", &key)
        .output()
        .unwrap();
    assert!(sessions.status.success(), "{}", output_text(&sessions));
    let listed: serde_json::Value = serde_json::from_slice(&sessions.stdout).unwrap();
    let users: Vec<&str> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["user"].as_str())
        .collect();
    assert_eq!(users, ["demo"], "the login's live session is listed");

    let metrics = http.get(&metrics_url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(r#"rampart_gateway_logins_total{kind="login",result="success",reason=""} 1"#),
        "{text}"
    );
}
