//! Resume: a session carried to a new connection by its latest ticket and key, a new ticket
//! each time, a replaced ticket coming back ending the session, and no resume after the
//! session's end.

use crate::harness::{Lab, closed_by_gateway, echo_through, refusal_of};
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
async fn each_resume_hands_out_a_new_ticket_and_the_session_goes_on() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &[]).await;
    let (first, grant) = lab.login(&alice).await;
    let mut credential = first.credential().unwrap();
    drop(first);
    let mut tickets = vec![credential.ticket.expose().to_owned()];
    for _ in 0..2 {
        let client = lab.client().await;
        let resumed = client.resume(&mut credential).await.expect("the latest ticket resumes");
        assert_eq!(resumed.session_id, grant.session_id, "the same session");
        assert_eq!(
            resumed.expires_at, grant.expires_at,
            "a resume does not extend the session"
        );
        assert!(
            !tickets.contains(&credential.ticket.expose().to_owned()),
            "each resume hands out a ticket never seen before"
        );
        tickets.push(credential.ticket.expose().to_owned());
        echo_through(&client, "echo", b"still alice").await;
        drop(client);
    }
    let record = lab
        .audit_record(|r| r["class_uid"] == 3002 && r["activity_id"] == 3 && r["status"] == "Success")
        .await;
    assert_eq!(record["session"]["uid"], grant.session_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_ticket_presented_again_ends_the_session_everywhere() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &[]).await;
    let (first, grant) = lab.login(&alice).await;
    let stale = first.credential().unwrap();
    drop(first);
    let mut current = stale.clone();
    let holder = lab.client().await;
    holder.resume(&mut current).await.unwrap();

    let thief = lab.client().await;
    let mut copy = stale;
    let refused = refusal_of(thief.resume(&mut copy).await);
    assert_eq!(refused.unwrap_err(), ErrorCode::TicketReused);
    let (code, reason) = closed_by_gateway(&holder).await;
    assert_eq!(code, CLOSE_SESSION_ENDED, "the session's live connection is closed");
    assert!(reason.contains("ticket_reused"), "{reason}");
    let end = lab.session_end_record(&grant.session_id).await;
    assert_eq!(end["status_detail"], "ticket_reused");

    let later = lab.client().await;
    let refused = refusal_of(later.resume(&mut current).await);
    assert_eq!(
        refused.unwrap_err(),
        ErrorCode::TicketReused,
        "even the newest ticket no longer resumes, and says why"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_does_not_resume() {
    let lab = Lab::start(POLICY, |s| s.session_lifetime_secs = 60).await;
    let alice = lab.person("alice", "alice pw", &[]).await;
    let (first, _) = lab.login(&alice).await;
    let mut credential = first.credential().unwrap();
    drop(first);
    lab.advance(Duration::from_secs(59));
    let client = lab.client().await;
    client
        .resume(&mut credential)
        .await
        .expect("a second before the end it still resumes");
    drop(client);
    lab.advance(Duration::from_secs(1));
    let client = lab.client().await;
    let refused = refusal_of(client.resume(&mut credential).await);
    assert_eq!(refused.unwrap_err(), ErrorCode::SessionExpired);
    let record = lab
        .audit_record(|r| r["class_uid"] == 3002 && r["activity_id"] == 3 && r["status"] == "Failure")
        .await;
    assert_eq!(record["status_detail"], "unknown_or_expired_ticket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_out_session_does_not_resume() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &[]).await;
    let (client, _) = lab.login(&alice).await;
    let mut credential = client.credential().unwrap();
    client.logout().await.unwrap();
    let other = lab.client().await;
    let refused = refusal_of(other.resume(&mut credential).await);
    assert_eq!(refused.unwrap_err(), ErrorCode::SessionExpired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_without_the_sessions_key_does_not_resume() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &[]).await;
    let (first, _) = lab.login(&alice).await;
    let mut credential = first.credential().unwrap();
    // Someone else's key, with alice's ticket.
    let (other, _) = lab.login(&lab.person("bob", "bob pw", &[]).await).await;
    credential.key = other.credential().unwrap().key;
    let client = lab.client().await;
    let refused = refusal_of(client.resume(&mut credential).await);
    assert_eq!(refused.unwrap_err(), ErrorCode::SessionExpired);
    let record = lab
        .audit_record(|r| r["class_uid"] == 3002 && r["activity_id"] == 3 && r["status"] == "Failure")
        .await;
    assert_eq!(record["status_detail"], "bad_proof");
    assert!(first.is_open(), "alice's own connection is untouched");
}
