//! Several gateways on their own hosts sharing one PostgreSQL database, as separate processes
//! with separate state folders and no shared files: only the database URL, the key-encryption
//! key and certificates from the organisation CA. A code accepted at one gateway is refused at
//! the other, wrong codes at both add up to one lock, and a kill through one gateway's admin API
//! cuts a live flow on the other within the documented bound (measured).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_client::{ClientError, GatewayClient};
use rampart_core::ErrorCode;
use rampart_core::secret::Sensitive;
use rampart_tests::gateway::{LdapLab, login_person, open_flow, totp_code};
use rampart_tests::pg::SharedStore;
use rampart_tests::slapd::ALICE;
use std::time::{Duration, Instant};

const POLICY: &str = "[[resource]]\nname = \"app\"\ntarget = \"{echo}\"\nallow_groups = [\"staff\"]\n";

async fn login_refusal(addr: &str, ca: &str, code: Sensitive<String>) -> ErrorCode {
    let client = GatewayClient::connect(addr, ca).await.unwrap();
    let result = client.login("alice", Sensitive::new(ALICE.password.into()), code).await;
    client.close().await;
    match result {
        Err(ClientError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gateways_on_their_own_hosts_share_replay_lockout_and_kills_through_postgresql() {
    let store = SharedStore::start(false).await;
    let table = store.table("");
    let settings = "session_check_secs = 1\nmax_token_failures = 4\nfailed_login_delay_ms = 200";
    let lab = LdapLab::start_with_store(POLICY, settings, &table).await;
    let gateway_b = lab.another_gateway(settings, None, &table);
    let gateway_a = &lab.gw;
    assert_ne!(
        gateway_a.state, gateway_b.state,
        "each gateway has a state folder of its own"
    );
    assert!(!gateway_a.state.join("rampart.db").exists() && !gateway_b.state.join("master.key").exists());
    let secret = gateway_a.enrol(ALICE.uuid, ALICE.uid).await;

    // A code accepted at A is refused at B.
    let code = totp_code(&secret, 0).await;
    let (client, grant) = login_person(gateway_a, &ALICE, &secret, 0).await;
    let replay = login_refusal(&gateway_b.addr, &gateway_b.ca_pem, code).await;
    assert_eq!(replay, ErrorCode::InvalidCredentials);
    assert!(
        gateway_b.log_events().iter().any(|e| e["reason"] == "code_replayed"),
        "B records the replay as such"
    );

    // A kill through B's admin API cuts the live flow on A within session_check_secs (+ slack).
    let (_send, mut recv) = open_flow(&client, "app", b"before the kill").await;
    let helpdesk = gateway_b.operator("desk-b", "helpdesk").await;
    let started = Instant::now();
    let (status, _) = gateway_b
        .admin("DELETE", &format!("/v1/sessions/{}", grant.session_id), Some(&helpdesk))
        .await;
    assert!((200..300).contains(&status), "kill through B: {status}");
    let mut buf = [0u8; 64];
    let cut = tokio::time::timeout(Duration::from_secs(4), recv.read(&mut buf)).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(cut, Ok(Err(_)) | Ok(Ok(None))),
        "the flow on A was not cut within 4 s: {cut:?}"
    );
    println!("kill through B reached the flow on A after {} ms", elapsed.as_millis());
    client.close().await;

    // Wrong codes at both gateways add up to one lock (max_token_failures = 4).
    let wrong = || Sensitive::new(rampart_tests::wrong_code(&secret));
    for (gw, n) in [(gateway_a, 2), (&gateway_b, 2)] {
        for _ in 0..n {
            assert_eq!(
                login_refusal(&gw.addr, &gw.ca_pem, wrong()).await,
                ErrorCode::InvalidCredentials
            );
        }
    }
    let (shared, _) = gateway_b.open_store().await;
    let token = shared.live_token_for_user(ALICE.uuid).await.unwrap().unwrap();
    assert_eq!(
        token.failures, 4,
        "failures from both gateways are counted on one token"
    );
    let fresh = totp_code(&secret, 1).await;
    let locked = login_refusal(&gateway_a.addr, &gateway_a.ca_pem, fresh).await;
    assert_eq!(
        locked,
        ErrorCode::TokenLocked,
        "the right password and a right code meet the lock"
    );
}
