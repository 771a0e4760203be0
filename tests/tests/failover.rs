//! Losing the database's primary, against a real PostgreSQL primary and synchronous standby
//! and a real gateway whose store URL lists both. With a live session and a tunnel carrying
//! data, the primary is killed (`kill -9`): the tunnel keeps flowing, logins in the gap are told
//! to try again (never let in); once the standby is promoted, logins succeed without restarting
//! the gateway, and the code accepted just before the kill is still refused — its replay mark
//! reached the standby before the login was confirmed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_client::{ClientError, GatewayClient};
use rampart_core::ErrorCode;
use rampart_core::secret::Sensitive;
use rampart_tests::gateway::{GatewayProc, LdapLab, open_flow, round_trip, totp_code};
use rampart_tests::pg::SharedStore;
use rampart_tests::slapd::ALICE;
use std::time::{Duration, Instant};

const POLICY: &str = "[[resource]]\nname = \"app\"\ntarget = \"{echo}\"\nallow_groups = [\"staff\"]\n";

async fn login(gw: &GatewayProc, code: Sensitive<String>) -> Result<GatewayClient, ErrorCode> {
    let client = GatewayClient::connect(&gw.addr, &gw.ca_pem).await.unwrap();
    match client.login("alice", Sensitive::new(ALICE.password.into()), code).await {
        Ok(_) => Ok(client),
        Err(ClientError::Refused { code, .. }) => {
            client.close().await;
            Err(code)
        }
        Err(other) => panic!("login failed unexpectedly: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_follows_a_database_failover_without_restart_and_never_lets_a_replay_in() {
    let mut store = SharedStore::start(true).await;
    let table = store.table("health_interval_ms = 200\nconnect_timeout_secs = 2\nstatement_timeout_secs = 5");
    let lab = LdapLab::start_with_store(POLICY, "failed_login_delay_ms = 200", &table).await;
    let gw = &lab.gw;
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;

    // A live session with a tunnel, opened with the code of this step.
    let before = totp_code(&secret, 0).await;
    let session = login(gw, Sensitive::new(before.expose().clone())).await.unwrap();
    let (mut send, mut recv) = open_flow(&session, "app", b"before the failover").await;

    // The primary dies.
    store.primary.kill9().unwrap();
    round_trip(&mut send, &mut recv, b"the tunnel flows while the database is gone").await;

    // A login in the gap is told to come back, whatever its code.
    let started = Instant::now();
    let gap = login(gw, totp_code(&secret, 1).await).await.err();
    assert_eq!(gap, Some(ErrorCode::TryLater), "a login without a writable database");
    assert!(started.elapsed() < Duration::from_secs(15), "the refusal came in time");
    round_trip(&mut send, &mut recv, b"still flowing during the gap").await;

    // The standby is promoted; the gateway finds it on its own.
    let standby = store.standby.take().unwrap();
    let promoted = Instant::now();
    tokio::task::spawn_blocking(move || {
        standby.promote().unwrap();
        standby
    })
    .await
    .map(|standby| store.standby = Some(standby))
    .unwrap();
    gw.wait_log("store moved to the primary", 1, Duration::from_secs(20));
    println!(
        "the gateway works on the new primary {} ms after `pg_ctl promote` began",
        promoted.elapsed().as_millis()
    );

    // First the code accepted just before the kill: its replay mark survived on the standby.
    let replay = login(gw, before).await.err();
    assert_eq!(
        replay,
        Some(ErrorCode::InvalidCredentials),
        "the pre-failover code is refused"
    );
    assert!(
        gw.log_events().iter().any(|e| e["reason"] == "code_replayed"),
        "refused as a replay, not for another reason:\n{}",
        gw.log()
    );
    // Then a fresh code logs in, with no restart of the gateway.
    let after = login(gw, totp_code(&secret, 1).await).await;
    assert!(after.is_ok(), "a fresh code after the failover: {:?}", after.err());
    round_trip(&mut send, &mut recv, b"and after it").await;
    session.close().await;
}
