//! Three nodes — a provisioner and two gateways — on their own "hosts" sharing one PostgreSQL
//! database, as separate processes with separate state folders and no shared files: only the
//! database URL, the key-encryption key and certificates from the organisation CA. A token issued
//! at the provisioner logs in at a gateway; one code sent 100 times at once over both
//! gateways logs in once; wrong codes at both add up to one lock; a kill through one gateway's
//! admin API cuts a live flow on the other within the documented bound (measured); every
//! gateway is listed, with the sessions it holds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_client::{ClientError, GatewayClient};
use rampart_core::ErrorCode;
use rampart_core::secret::Sensitive;
use rampart_tests::gateway::{GatewayProc, LdapLab, open_flow, totp_code};
use rampart_tests::pg::SharedStore;
use rampart_tests::provisioner::{ProvisionerProc, secret_of};
use rampart_tests::slapd::ALICE;
use serde_json::Value;
use std::time::{Duration, Instant};

const POLICY: &str = "[[resource]]\nname = \"app\"\ntarget = \"{echo}\"\nallow_groups = [\"staff\"]\n";

async fn login(addr: &str, ca: &str, code: Sensitive<String>) -> Result<GatewayClient, ErrorCode> {
    let client = GatewayClient::connect(addr, ca).await.unwrap();
    match client.login("alice", Sensitive::new(ALICE.password.into()), code).await {
        Ok(_) => Ok(client),
        Err(ClientError::Refused { code, .. }) => {
            client.close().await;
            Err(code)
        }
        Err(other) => panic!("login failed unexpectedly: {other:?}"),
    }
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", rampart_tests::output_text(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn gateways_on_their_own_hosts_share_replay_lockout_and_kills_through_postgresql() {
    let store = SharedStore::start(false).await;
    let table = store.table("");
    let settings = "session_check_secs = 1\nmax_token_failures = 4\nfailed_login_delay_ms = 200\n\
                    max_logins_in_progress = 128\nlogin_queue = 256\nlogin_queue_wait_secs = 60";
    let lab = LdapLab::start_with_store(POLICY, settings, &table).await;
    // The second gateway serves a certificate from `rampart cert issue`, as an operator makes one
    // for a new host; clients trust it through the organisation CA their profiles carry.
    let ca_dir = tempfile::tempdir().unwrap();
    lab.gw.ca.save(ca_dir.path()).unwrap();
    let (b_cert, b_key) = (ca_dir.path().join("gw-b.pem"), ca_dir.path().join("gw-b.key"));
    let issued = std::process::Command::new(rampart_tests::bin("rampart"))
        .args(["cert", "issue", "--ca-dir"])
        .arg(ca_dir.path())
        .args(["--name", "127.0.0.1", "--name", "localhost", "--cert"])
        .arg(&b_cert)
        .arg("--key")
        .arg(&b_key)
        .output()
        .unwrap();
    assert!(issued.status.success(), "{}", rampart_tests::output_text(&issued));
    let gateway_b = lab.another_gateway_with_cert(settings, None, &table, Some((&b_cert, &b_key)));
    let gateways: [&GatewayProc; 2] = [&lab.gw, &gateway_b];
    assert_ne!(
        gateways[0].state, gateways[1].state,
        "each gateway has a state folder of its own"
    );
    for gw in gateways {
        assert!(!gw.state.join("rampart.db").exists() && !gw.state.join("master.key").exists());
    }

    // The third node: a provisioner of its own, initialised on the shared store.
    let prov_state = tempfile::tempdir().unwrap();
    let prov = ProvisionerProc::start_with_store(
        prov_state.path(),
        ca_dir.path(),
        &lab.directory,
        "max_token_failures = 4",
        Some((&store.url, &store.kek_file)),
    );
    assert!(!prov_state.path().join("rampart.db").exists() && !prov_state.path().join("master.key").exists());
    let issued = prov.rampart_json(&["token", "issue", "alice"]);
    let secret = secret_of(issued["otpauth_uri"].as_str().unwrap());

    // One code, 100 times at once, spread over both gateways: exactly one login.
    let code = totp_code(&secret, 0).await;
    let attempts: Vec<_> = (0..100)
        .map(|i| {
            let gw = gateways[i % 2];
            let (addr, ca, code) = (gw.addr.clone(), gw.ca_pem.clone(), code.clone());
            tokio::spawn(async move { (i % 2, login(&addr, &ca, code).await) })
        })
        .collect();
    let mut winner = None;
    let mut refusals = Vec::new();
    for attempt in attempts {
        match attempt.await.unwrap() {
            (at, Ok(client)) => {
                assert!(winner.is_none(), "a second login with one code");
                winner = Some((at, client));
            }
            (_, Err(code)) => refusals.push(code),
        }
    }
    let (holder, client) = winner.expect("one login succeeded");
    assert_eq!(refusals.len(), 99);
    assert!(
        refusals.iter().all(|c| *c == ErrorCode::InvalidCredentials),
        "{refusals:?}"
    );
    let replays: usize = gateways
        .iter()
        .map(|gw| {
            gw.log_events()
                .iter()
                .filter(|e| e["reason"] == "code_replayed")
                .count()
        })
        .sum();
    assert_eq!(replays, 99, "both gateways refused the code as a replay");
    let (here, there) = (gateways[holder], gateways[1 - holder]);

    // Every gateway is listed from either one, with the session the holder carries.
    let auditor = there.operator("audit-1", "auditor").await;
    let (_send, mut recv) = open_flow(&client, "app", b"a live flow").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let listed = loop {
        let listed = json_of(&there.cli(&auditor, &["-o", "json", "gateways", "list"]).await);
        let busy = listed["gateways"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["address"] == here.addr.as_str() && g["sessions"] == 1);
        if busy || Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let nodes = listed["gateways"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{listed}");
    assert!(nodes.iter().all(|g| g["state"] == "up"), "{listed}");
    let holder_node = nodes.iter().find(|g| g["address"] == here.addr.as_str()).unwrap();
    assert_eq!(holder_node["sessions"], 1, "{listed}");
    let sessions = json_of(&there.cli(&auditor, &["-o", "json", "sessions", "list"]).await);
    assert_eq!(sessions["sessions"][0]["gateway"], holder_node["id"], "{sessions}");

    // A kill through the other gateway's admin API cuts the live flow within
    // session_check_secs (1 s here) plus slack.
    let helpdesk = there.operator("desk-b", "helpdesk").await;
    let session_id = sessions["sessions"][0]["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let (status, _) = there
        .admin("DELETE", &format!("/v1/sessions/{session_id}"), Some(&helpdesk))
        .await;
    assert!((200..300).contains(&status), "kill through the other gateway: {status}");
    let mut buf = [0u8; 64];
    let cut = tokio::time::timeout(Duration::from_secs(4), recv.read(&mut buf)).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(cut, Ok(Err(_)) | Ok(Ok(None))),
        "the flow was not cut within 4 s: {cut:?}"
    );
    println!(
        "a kill through one gateway cut the flow on the other after {} ms",
        elapsed.as_millis()
    );
    client.close().await;

    // Wrong codes at both gateways add up to one lock (max_token_failures = 4).
    for gw in [here, here, there, there] {
        let wrong = Sensitive::new(rampart_tests::wrong_code(&secret));
        assert_eq!(
            login(&gw.addr, &gw.ca_pem, wrong).await.err(),
            Some(ErrorCode::InvalidCredentials)
        );
    }
    let (shared, _) = there.open_store().await;
    let token = shared.live_token_for_user(ALICE.uuid).await.unwrap().unwrap();
    assert_eq!(
        token.failures, 4,
        "failures from both gateways are counted on one token"
    );
    let locked = login(&here.addr, &here.ca_pem, totp_code(&secret, 1).await).await.err();
    assert_eq!(
        locked,
        Some(ErrorCode::TokenLocked),
        "the right password and a right code meet the lock"
    );

    // A node given another key-encryption key refuses to start, naming both keys.
    let wrong = tempfile::tempdir().unwrap();
    let wrong_kek = wrong.path().join("kek");
    let (_, hex) = rampart_store::seal::LocalKek::generate().unwrap();
    std::fs::write(&wrong_kek, hex.as_bytes()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrong_kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = std::fs::read_to_string(there.config_path())
        .unwrap()
        .replace(&store.kek_file.display().to_string(), &wrong_kek.display().to_string())
        .replace(
            &there.state.display().to_string(),
            &wrong.path().join("state").display().to_string(),
        );
    std::fs::copy(there.dir.path().join("gateway.pem"), wrong.path().join("gateway.pem")).unwrap();
    std::fs::copy(there.dir.path().join("gateway.key"), wrong.path().join("gateway.key")).unwrap();
    std::fs::copy(there.policy_path(), wrong.path().join("policy.toml")).unwrap();
    std::fs::write(wrong.path().join("gateway.toml"), config).unwrap();
    let refused = std::process::Command::new(rampart_tests::bin("rampart-gateway"))
        .args(["run", "--config"])
        .arg(wrong.path().join("gateway.toml"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = rampart_tests::output_text(&refused);
    assert!(
        !refused.status.success(),
        "a gateway with the wrong key-encryption key started: {text}"
    );
    assert!(text.contains("does not open seal key"), "{text}");
}
