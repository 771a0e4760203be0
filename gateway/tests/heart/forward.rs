//! Forwarding: what a logged-in person may open and what they are told when they may not —
//! by policy, by the hours of a rule on the moved clock, by session age, by VM allocation, by
//! a target that refuses or never answers — and the flow record each stream leaves.

use crate::harness::{Lab, echo_through, open_refusal, random_bytes};
use jiff::Zoned;
use jiff::civil::Weekday;
use rampart_core::ErrorCode;
use std::time::Duration;

const POLICY: &str = r#"
[[resource]]
name = "echo"
target = "{echo}"
allow_groups = ["staff"]

[[resource]]
name = "payroll"
target = "{echo}"
allow_users = ["bob"]

[[resource]]
name = "office"
target = "{echo}"

[[rule]]
name = "office-hours"
resources = ["office"]
groups = ["staff"]
time_zone = "Europe/Zurich"
windows = ["Mon-Fri 08:00-18:00"]

[[resource]]
name = "fresh"
target = "{echo}"

[[rule]]
name = "fresh-sessions"
resources = ["fresh"]
groups = ["staff"]
max_session_age = "1m"

[[resource]]
name = "desktop"
target = "allocated:desks:{echo_port}"
allow_groups = ["staff"]

[[resource]]
name = "down"
target = "{closed}"
allow_groups = ["staff"]
"#;

/// A Wednesday in Zurich at `time` (`HH:MM:SS`), as unix milliseconds.
fn wednesday_in_zurich(time: &str) -> i64 {
    let at: Zoned = format!("2026-12-02T{time}[Europe/Zurich]").parse().unwrap();
    assert_eq!(at.weekday(), Weekday::Wednesday);
    at.timestamp().as_millisecond()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_resource_carries_bytes_both_ways_and_leaves_a_flow_record() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    let (client, grant) = lab.login(&alice).await;
    let data = random_bytes(100_003);
    let (mut send, mut recv) = echo_through(&client, "echo", &data).await;
    send.finish().unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(5), recv.read_to_end(1 << 20))
        .await
        .expect("the stream ended in time")
        .unwrap();
    assert!(rest.is_empty(), "the echo sent nothing more");
    let record = lab.flow_record(|r| r["resource"] == "echo").await;
    assert_eq!(record["session_id"], grant.session_id.as_str());
    assert_eq!(record["user"], "alice");
    assert_eq!(record["user_id"], alice.id.as_str());
    assert_eq!(record["target"], lab.echo());
    assert_eq!(record["decision"], "allow");
    assert_eq!(record["outcome"], "closed");
    assert_eq!(record["bytes_to_target"], data.len());
    assert_eq!(record["bytes_from_target"], data.len());
    let closed = lab
        .audit_record(|r| r["class_uid"] == 4001 && r["activity_id"] == 2)
        .await;
    assert_eq!(closed["traffic"]["bytes_out"], data.len());
    assert_eq!(closed["traffic"]["bytes_in"], data.len());
    drop(client);
    let mut lab = lab;
    lab.stop().await;
    assert_eq!(lab.flow_records().len(), 1, "one stream, one flow record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_the_policy_does_not_give_is_forbidden_and_recorded_as_denied() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    let (client, grant) = lab.login(&alice).await;
    assert_eq!(open_refusal(&client, "payroll").await, ErrorCode::Forbidden);
    let record = lab.flow_record(|r| r["resource"] == "payroll").await;
    assert_eq!(record["session_id"], grant.session_id.as_str());
    assert_eq!(record["decision"], "deny");
    assert_eq!(record["outcome"], "not_allowed");
    assert_eq!(record["bytes_to_target"], 0);
    assert_eq!(record["bytes_from_target"], 0);
    let decision = lab
        .audit_record(|r| r["class_uid"] == 3003 && r["disposition"] == "Blocked")
        .await;
    assert_eq!(decision["dst_endpoint"]["svc_name"], "payroll");
    assert_eq!(decision["status_detail"], "not_allowed");
    echo_through(&client, "echo", b"the connection goes on").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_the_policy_does_not_name_is_unknown() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    let (client, _) = lab.login(&alice).await;
    assert_eq!(open_refusal(&client, "nosuch").await, ErrorCode::UnknownResource);
    let record = lab.flow_record(|r| r["resource"] == "nosuch").await;
    assert_eq!(record["decision"], "deny");
    assert_eq!(record["outcome"], "unknown_resource");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windowed_resource_closes_at_the_end_of_its_hours() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    lab.set_time_ms(wednesday_in_zurich("17:59:59"));
    let (client, _) = lab.login(&alice).await;
    echo_through(&client, "office", b"last second of the day").await;
    lab.advance(Duration::from_secs(1));
    assert_eq!(open_refusal(&client, "office").await, ErrorCode::OutsideHours);
    let record = lab.flow_record(|r| r["outcome"] == "outside_hours").await;
    assert_eq!(record["resource"], "office");
    assert_eq!(record["decision"], "deny");
    echo_through(&client, "echo", b"other resources stay open").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windowed_resource_opens_at_the_start_of_its_hours() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    lab.set_time_ms(wednesday_in_zurich("07:59:59"));
    let (client, grant) = lab.login(&alice).await;
    assert!(
        grant.resources.iter().any(|r| r.name == "office"),
        "the grant lists a resource with hours"
    );
    assert_eq!(open_refusal(&client, "office").await, ErrorCode::OutsideHours);
    lab.advance(Duration::from_secs(1));
    echo_through(&client, "office", b"first second of the day").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_with_a_session_age_stops_serving_an_old_session() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    let (client, _) = lab.login(&alice).await;
    lab.advance(Duration::from_secs(59));
    echo_through(&client, "fresh", b"young session").await;
    lab.advance(Duration::from_secs(2));
    assert_eq!(open_refusal(&client, "fresh").await, ErrorCode::SessionTooOld);
    let record = lab.flow_record(|r| r["outcome"] == "session_too_old").await;
    assert_eq!(record["resource"], "fresh");
    echo_through(&client, "echo", b"rules without an age still serve").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allocated_target_reaches_the_holders_vm_and_nobody_elses() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    let bob = lab.person("bob", "bob pw", &["staff"]).await;
    lab.vm_for(&bob, "desks", lab.echo_port()).await;

    let (alice_client, _) = lab.login(&alice).await;
    assert_eq!(
        open_refusal(&alice_client, "desktop").await,
        ErrorCode::NoVmAllocated,
        "bob's VM is not alice's"
    );
    let refused = lab
        .flow_record(|r| r["resource"] == "desktop" && r["user"] == "alice")
        .await;
    assert_eq!(refused["outcome"], "no_vm_allocated");

    let (bob_client, _) = lab.login(&bob).await;
    let (send, recv) = echo_through(&bob_client, "desktop", b"my desktop").await;
    drop((send, recv));
    let record = lab
        .flow_record(|r| r["resource"] == "desktop" && r["user"] == "bob")
        .await;
    assert_eq!(record["decision"], "allow");
    assert_eq!(record["vm"], "desks-1");
    assert_eq!(record["target"], lab.echo());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_refuses_is_told_as_target_refused() {
    let lab = Lab::start(POLICY, |_| {}).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    let (client, _) = lab.login(&alice).await;
    assert_eq!(open_refusal(&client, "down").await, ErrorCode::TargetRefused);
    let record = lab.flow_record(|r| r["resource"] == "down").await;
    assert_eq!(record["decision"], "allow", "the policy allowed it");
    assert_eq!(record["outcome"], "target_refused");
    assert_eq!(record["target"], lab.closed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_never_answers_is_told_as_target_timeout() {
    let policy = r#"
[[resource]]
name = "silent"
target = "{silent}"
allow_users = ["alice"]
"#;
    let lab = Lab::start(policy, |s| s.connect_timeout_secs = 1).await;
    let alice = lab.person("alice", "alice pw", &[]).await;
    let (client, _) = lab.login(&alice).await;
    assert_eq!(open_refusal(&client, "silent").await, ErrorCode::TargetTimeout);
    let record = lab.flow_record(|r| r["resource"] == "silent").await;
    assert_eq!(record["outcome"], "target_timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_per_connection_limit_are_refused() {
    let lab = Lab::start(POLICY, |s| s.max_streams_per_connection = 1).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    let (client, _) = lab.login(&alice).await;
    let open = echo_through(&client, "echo", b"one").await;
    assert_eq!(open_refusal(&client, "echo").await, ErrorCode::TooManyStreams);
    drop(open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_may_hold_many_flows_at_once_up_to_the_limit() {
    // The stream credit starts small and grows as flows open; every flow up to the limit is
    // served at once, held open together, and the one past it is refused.
    let lab = Lab::start(POLICY, |s| s.max_streams_per_connection = 150).await;
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    let (client, _) = lab.login(&alice).await;
    let mut held = Vec::new();
    for i in 0..150u32 {
        let opened = tokio::time::timeout(Duration::from_secs(5), echo_through(&client, "echo", &i.to_be_bytes()))
            .await
            .unwrap_or_else(|_| panic!("flow {i} waited for stream credit"));
        held.push(opened);
    }
    assert_eq!(open_refusal(&client, "echo").await, ErrorCode::TooManyStreams);
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_and_audit_records_carry_the_gateways_clock() {
    let lab = Lab::start(POLICY, |_| {}).await;
    // A moment no host clock shows: whatever the records say comes from the given clock.
    let at_ms = 1_900_000_000_000;
    lab.set_time_ms(at_ms);
    let alice = lab.person("alice", "alice pw", &["staff"]).await;
    let (client, _) = lab.login(&alice).await;
    let login = lab
        .audit_record(|r| r["class_uid"] == 3002 && r["activity_id"] == 1 && r["status"] == "Success")
        .await;
    assert_eq!(login["time"], at_ms, "{login}");
    let (mut send, mut recv) = echo_through(&client, "echo", b"ping").await;
    lab.advance(Duration::from_secs(2));
    send.finish().unwrap();
    tokio::time::timeout(Duration::from_secs(5), recv.read_to_end(1 << 10))
        .await
        .expect("the stream ended in time")
        .unwrap();
    let record = lab.flow_record(|r| r["resource"] == "echo").await;
    assert_eq!(record["start"], "2030-03-17T17:46:40.000Z", "{record}");
    assert_eq!(record["end"], "2030-03-17T17:46:42.000Z", "{record}");
    let closed = lab
        .audit_record(|r| r["class_uid"] == 4001 && r["activity_id"] == 2)
        .await;
    assert_eq!(closed["time"], at_ms + 2_000, "{closed}");
}
