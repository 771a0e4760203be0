//! Session end: by logout, by expiry and idleness on the moved clock, by the session limit —
//! the connection closed with the reason, flows reset, and the end on the audit trail.

use crate::harness::{Lab, STEP_SECS, closed_by_gateway, echo_through, open_refusal};
use rampart_core::ErrorCode;
use std::time::Duration;

const POLICY: &str = r#"
[[resource]]
name = "echo"
target = "{echo}"
allow_users = ["alice"]
"#;

/// The close code of a connection whose session ended.
const CLOSE_SESSION_ENDED: u64 = 0x12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_and_leaves_the_connection_unauthenticated() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &[]).await;
    let (client, grant) = lab.login(&alice).await;
    client.logout().await.unwrap();
    assert_eq!(open_refusal(&client, "echo").await, ErrorCode::NotAuthenticated);
    let end = lab.session_end_record(&grant.session_id).await;
    assert_eq!(end["status_detail"], "logout");
    assert_eq!(end["actor"]["user"]["name"], "alice", "ended by the person");
    let live = lab.store().live_sessions_for_user(&alice.id, lab.now()).await.unwrap();
    assert!(live.is_empty(), "the store holds no live session of alice's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_past_its_lifetime_is_closed_by_the_gateway() {
    let lab = Lab::start(POLICY, |s| s.session_lifetime_secs = 60).await;
    let alice = lab.person("alice", "alice pw", &[]).await;
    let (client, grant) = lab.login(&alice).await;
    lab.advance(Duration::from_secs(59));
    echo_through(&client, "echo", b"before the end").await;
    lab.advance(Duration::from_secs(1));
    let (code, reason) = closed_by_gateway(&client).await;
    assert_eq!(code, CLOSE_SESSION_ENDED);
    assert_eq!(reason, "session ended: expired");
    let end = lab.session_end_record(&grant.session_id).await;
    assert_eq!(end["status_detail"], "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_unused_for_the_idle_time_is_closed_and_one_used_since_is_not() {
    let lab = Lab::start(POLICY, |s| s.session_idle_secs = 10).await;
    let alice = lab.person("alice", "alice pw", &[]).await;
    let bob = lab.person("bob", "bob pw", &[]).await;
    let (alice_client, grant) = lab.login(&alice).await;
    lab.advance(Duration::from_secs(1));
    let (bob_client, _) = lab.login(&bob).await;
    lab.advance(Duration::from_secs(9));
    let (code, reason) = closed_by_gateway(&alice_client).await;
    assert_eq!(code, CLOSE_SESSION_ENDED);
    assert_eq!(reason, "session ended: idle");
    assert_eq!(lab.session_end_record(&grant.session_id).await["status_detail"], "idle");
    // The check that found alice idle saw bob's nine quiet seconds on the same clock.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(bob_client.is_open(), "nine seconds unused: not idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_beyond_the_session_limit_ends_the_oldest_session() {
    let lab = Lab::start(POLICY, |s| s.max_sessions_per_user = 1).await;
    let alice = lab.person("alice", "alice pw", &[]).await;
    let (first, first_grant) = lab.login(&alice).await;
    lab.advance(Duration::from_secs(STEP_SECS));
    let (second, _) = lab.login(&alice).await;
    let (code, reason) = closed_by_gateway(&first).await;
    assert_eq!(code, CLOSE_SESSION_ENDED);
    assert_eq!(reason, "session ended: session_limit");
    assert_eq!(
        lab.session_end_record(&first_grant.session_id).await["status_detail"],
        "session_limit"
    );
    echo_through(&second, "echo", b"the newest session lives").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ending_mid_flow_resets_the_flow_and_records_it() {
    let lab = Lab::start(POLICY, |s| s.session_lifetime_secs = 60).await;
    let alice = lab.person("alice", "alice pw", &[]).await;
    let (client, grant) = lab.login(&alice).await;
    let (_send, mut recv) = echo_through(&client, "echo", b"0123456789").await;
    lab.advance(Duration::from_secs(60));
    let mut rest = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), recv.read(&mut rest))
        .await
        .expect("the flow ended in time");
    assert!(!matches!(read, Ok(Some(_))), "no more bytes after the session's end");
    let record = lab.flow_record(|r| r["session_id"] == grant.session_id.as_str()).await;
    assert_eq!(record["decision"], "allow");
    assert_eq!(record["outcome"], "session_ended");
    assert_eq!(record["bytes_to_target"], 10);
    assert_eq!(record["bytes_from_target"], 10);
}
