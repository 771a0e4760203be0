//! The session lifecycle as operators and employees see it, against real processes: a real
//! `rampart-gateway`, a real OpenLDAP `slapd`, QUIC from `rampart_client::GatewayClient`, a TCP
//! echo target and the real `rampart` CLI. An operator's kill, a revoked token, the per-person
//! session limit, a logout and directory changes each cut live flows within their bound, and a
//! dropped connection resumes without a new code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use quinn::RecvStream;
use rampart_client::{ClientError, GatewayClient, ResumeCredential};
use rampart_core::ErrorCode;
use rampart_core::secret::Sensitive;
use rampart_store::prelude::*;
use rampart_store::{SqliteStore, TokenState};
use rampart_tests::gateway::{GatewayProc, LdapLab, login_person, open_flow, open_refusal, round_trip, totp_code};
use rampart_tests::slapd::{ALICE, BASE, BOB};
use rampart_tests::{now, output_text, random_bytes};
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `app` for group staff (alice), `payments` for group payments (bob); both reach the echo.
const POLICY: &str = "[[resource]]\nname = \"app\"\ntarget = \"{echo}\"\nallow_groups = [\"staff\"]\n\n\
                      [[resource]]\nname = \"payments\"\ntarget = \"{echo}\"\nallow_groups = [\"payments\"]\n";

/// Asserts the open flow is cut (reset, or its connection closed) within `within`.
async fn assert_flow_cut(recv: &mut RecvStream, within: Duration) {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(within, recv.read(&mut buf)).await {
        Err(_) => panic!("the flow was still open after {within:?}"),
        Ok(Ok(Some(n))) => panic!("the flow carried {n} unexpected bytes instead of ending"),
        Ok(Ok(None)) => panic!("the flow was finished cleanly, not cut"),
        Ok(Err(_)) => {}
    }
}

/// Waits until the QUIC connection is closed; panics after `within`.
async fn assert_closed_within(client: &GatewayClient, within: Duration) {
    let deadline = Instant::now() + within;
    while client.is_open() {
        assert!(
            Instant::now() < deadline,
            "the connection was still open after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What an employee's client reports once the gateway closed the connection.
async fn closed_because(client: &GatewayClient) -> String {
    match client.open("app").await {
        Err(ClientError::ConnectionLost(message)) => message,
        Err(other) => panic!("expected a lost connection, got {other}"),
        Ok(_) => panic!("a stream opened on a closed connection"),
    }
}

/// The refusal of a resume with `credential` (ticket and key) on a new connection.
async fn resume_refusal(gw: &GatewayProc, credential: &ResumeCredential) -> ErrorCode {
    let client = GatewayClient::connect(&gw.addr, &gw.ca_pem).await.unwrap();
    let result = client.resume(&mut credential.clone()).await;
    client.close().await;
    match result {
        Err(ClientError::Refused { code, .. }) => code,
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(grant) => panic!("the ticket still resumed session {}", grant.session_id),
    }
}

/// Ids of the live sessions the admin API lists (optionally one person's).
async fn listed(gw: &GatewayProc, key: &str, user: Option<&str>) -> Vec<String> {
    let path = user.map_or_else(|| "/v1/sessions".to_owned(), |u| format!("/v1/sessions?user={u}"));
    let (status, body) = gw.admin("GET", &path, Some(key)).await;
    assert_eq!(status, 200, "{body}");
    body["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Standard output of a successful CLI run, as JSON.
fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "rampart failed: {}", output_text(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", output_text(out)))
}

#[tokio::test]
async fn operator_kill_cuts_a_live_flow_at_once_and_the_ticket_no_longer_resumes() {
    let lab = LdapLab::start(POLICY, "session_check_secs = 1").await;
    let gw = &lab.gw;
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let helpdesk = gw.operator("desk-1", "helpdesk").await;
    let auditor = gw.operator("audit-1", "auditor").await;
    let (client, grant) = login_person(gw, &ALICE, &secret, 0).await;
    let ticket = client.credential().expect("a login grants a ticket");
    let data = random_bytes(1500);
    let (_send, mut recv) = open_flow(&client, "app", &data).await;

    // The service desk sees who is connected, to what, and how much moved.
    let list = json_of(&gw.cli(&auditor, &["-o", "json", "sessions", "list"]).await);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{list}");
    let seen = &sessions[0];
    assert_eq!(seen["id"], grant.session_id.as_str());
    assert_eq!(seen["user"], "alice");
    assert_eq!(seen["user_id"], ALICE.uuid);
    assert_eq!(seen["resources_used"], serde_json::json!(["app"]));
    assert_eq!(seen["active_flows"], 1);
    assert_eq!(seen["connections"], 1);
    assert_eq!(seen["bytes_to_targets"], data.len());
    assert_eq!(seen["bytes_from_targets"], data.len());

    // An auditor may look but not end sessions (exit 3), and nothing is cut.
    let short_id: String = grant.session_id.chars().take(8).collect();
    let refused = gw.cli(&auditor, &["sessions", "kill", &short_id]).await;
    assert_eq!(refused.status.code(), Some(3), "{}", output_text(&refused));
    assert!(client.is_open(), "a refused kill cut the connection");

    // The service desk kills it with the short id the table shows: cut at once.
    let started = Instant::now();
    let killed = json_of(&gw.cli(&helpdesk, &["-o", "json", "sessions", "kill", &short_id]).await);
    assert_eq!(killed["ended"], serde_json::json!([grant.session_id]));
    let bound = Duration::from_secs(3);
    assert_flow_cut(&mut recv, bound.saturating_sub(started.elapsed())).await;
    assert_closed_within(&client, bound.saturating_sub(started.elapsed())).await;
    let why = closed_because(&client).await;
    assert!(why.contains("admin_kill"), "the employee is told why: {why}");

    assert_eq!(resume_refusal(gw, &ticket).await, ErrorCode::SessionExpired);
    assert!(listed(gw, &auditor, None).await.is_empty());
    let kill = gw
        .log_events()
        .into_iter()
        .find(|e| e["message"] == "session killed by an operator")
        .expect("the kill is logged");
    assert_eq!(kill["actor"], "desk-1", "the log names who killed it: {kill}");
    assert_eq!(kill["session"], grant.session_id.as_str());
    let deadline = Instant::now() + Duration::from_secs(3);
    let flow = loop {
        if let Some(flow) = gw.flow_records().into_iter().find(|f| f["resource"] == "app") {
            break flow;
        }
        assert!(Instant::now() < deadline, "no flow record for the cut flow");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(flow["outcome"], "session_ended", "{flow}");
    assert_eq!(flow["bytes_to_target"], data.len(), "{flow}");

    // A session between connections (laptop asleep) is listed and killed by its id too.
    let (later, later_grant) = login_person(gw, &ALICE, &secret, 1).await;
    later.close().await;
    let killed = json_of(
        &gw.cli(&helpdesk, &["-o", "json", "sessions", "kill", &later_grant.session_id])
            .await,
    );
    assert_eq!(killed["ended"], serde_json::json!([later_grant.session_id]));
    let later_ticket = later.credential().unwrap();
    assert_eq!(resume_refusal(gw, &later_ticket).await, ErrorCode::SessionExpired);
    assert!(!gw.log().contains(&secret), "the seed reached the gateway log");
}

#[tokio::test]
async fn revoked_token_cuts_a_live_flow_within_the_session_check_interval() {
    let lab = LdapLab::start(POLICY, "session_check_secs = 1").await;
    let gw = &lab.gw;
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let auditor = gw.operator("audit-1", "auditor").await;
    let (client, grant) = login_person(gw, &ALICE, &secret, 0).await;
    let ticket = client.credential().expect("a login grants a ticket");
    let (_send, mut recv) = open_flow(&client, "app", b"before the revocation").await;
    assert_eq!(listed(gw, &auditor, None).await, [grant.session_id.as_str()]);

    // What the provisioner's revoke does: the token ends, and the sessions it opened with it.
    let store = SqliteStore::open(&gw.state).await.unwrap();
    let started = Instant::now();
    let at = i64::try_from(now()).unwrap();
    store
        .end_token(
            &format!("tok-{}", ALICE.uuid),
            TokenState::Revoked,
            "desk-1",
            "laptop stolen",
            at,
        )
        .await
        .unwrap();
    store.close().await;

    // session_check_secs = 1, plus 2 s of slack.
    let bound = Duration::from_secs(3);
    assert_flow_cut(&mut recv, bound.saturating_sub(started.elapsed())).await;
    assert_closed_within(&client, bound.saturating_sub(started.elapsed())).await;
    let why = closed_because(&client).await;
    assert!(why.contains("token_revoked"), "the employee is told why: {why}");
    assert!(listed(gw, &auditor, None).await.is_empty());
    assert_eq!(resume_refusal(gw, &ticket).await, ErrorCode::SessionExpired);

    // And the revoked token logs in no more, even with a fresh code.
    let fresh = GatewayClient::connect(&gw.addr, &gw.ca_pem).await.unwrap();
    let result = fresh
        .login(
            "alice",
            Sensitive::new(ALICE.password.into()),
            totp_code(&secret, 1).await,
        )
        .await;
    fresh.close().await;
    match result {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, ErrorCode::InvalidCredentials),
        other => panic!("a revoked token logged in: {other:?}"),
    }
}

#[tokio::test]
async fn dropped_connection_resumes_the_same_session_without_a_new_code() {
    let lab = LdapLab::start(POLICY, "").await;
    let gw = &lab.gw;
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let auditor = gw.operator("audit-1", "auditor").await;
    let (client, grant) = login_person(gw, &ALICE, &secret, 0).await;
    let ticket = client.credential().expect("a login grants a ticket");
    let (send, recv) = open_flow(&client, "app", b"on the first network").await;

    // The laptop changes networks: the connection and its endpoint are gone, no logout.
    drop((send, recv));
    drop(client);

    let again = GatewayClient::connect(&gw.addr, &gw.ca_pem).await.unwrap();
    let mut ticket = ticket;
    let spent = ticket.ticket.clone();
    let resumed = again.resume(&mut ticket).await.expect("the ticket resumes the session");
    assert_eq!(resumed.session_id, grant.session_id, "the same session goes on");
    assert_eq!(resumed.user, "alice");
    assert!(
        resumed.ticket.as_ref().is_some_and(|t| *t != spent) && ticket.ticket != spent,
        "a resume hands out the next ticket"
    );
    let names: Vec<_> = resumed.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["app"]);
    let data = random_bytes(4096);
    let (mut send, mut recv) = open_flow(&again, "app", &data).await;
    send.finish().unwrap();
    assert!(recv.read_to_end(1024).await.unwrap().is_empty());
    assert_eq!(listed(gw, &auditor, Some("alice")).await, [grant.session_id.as_str()]);

    // One code was used, once: one login and one resume, no second code.
    let events = gw.log_events();
    let count = |message: &str| events.iter().filter(|e| e["message"] == message).count();
    assert_eq!(count("login"), 1, "exactly one login with a code");
    assert_eq!(count("session resumed"), 1);
    let store = SqliteStore::open(&gw.state).await.unwrap();
    let token = store
        .token_by_id(&format!("tok-{}", ALICE.uuid))
        .await
        .unwrap()
        .unwrap();
    store.close().await;
    assert_eq!(token.failures, 0);
    assert!(token.last_step.is_some(), "the login's code was recorded");
    again.close().await;
}

/// Sleeps until the wall clock enters the next second (sessions are timed in whole seconds).
async fn next_second() {
    let into = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_millis();
    tokio::time::sleep(Duration::from_millis(u64::from(1000 - into) + 20)).await;
}

#[tokio::test]
async fn a_login_beyond_the_per_person_limit_ends_the_oldest_session_and_logout_ends_one() {
    let lab = LdapLab::start(POLICY, "max_sessions_per_user = 2\nsession_check_secs = 1").await;
    let gw = &lab.gw;
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let auditor = gw.operator("audit-1", "auditor").await;

    // Three logins within one TOTP period: the previous, current and next step, in order.
    let (first, first_grant) = login_person(gw, &ALICE, &secret, -1).await;
    let (_first_send, mut first_recv) = open_flow(&first, "app", b"first laptop").await;
    // The store times sessions in whole seconds; make the first one strictly the oldest.
    next_second().await;
    let (second, second_grant) = login_person(gw, &ALICE, &secret, 0).await;
    let (third, third_grant) = login_person(gw, &ALICE, &secret, 1).await;

    // The third login ended the oldest session: its flow and connection are cut.
    assert_flow_cut(&mut first_recv, Duration::from_secs(3)).await;
    assert_closed_within(&first, Duration::from_secs(3)).await;
    let why = closed_because(&first).await;
    assert!(why.contains("session_limit"), "the employee is told why: {why}");
    assert!(second.is_open() && third.is_open(), "only the oldest session ends");
    let mut live = listed(gw, &auditor, Some("alice")).await;
    live.sort();
    let mut expected = vec![second_grant.session_id.clone(), third_grant.session_id.clone()];
    expected.sort();
    assert_eq!(live, expected);
    let first_ticket = first.credential().unwrap();
    assert_eq!(resume_refusal(gw, &first_ticket).await, ErrorCode::SessionExpired);

    // A logout ends that session only; its ticket no longer resumes.
    second.logout().await.unwrap();
    assert_eq!(
        listed(gw, &auditor, Some("alice")).await,
        [third_grant.session_id.as_str()]
    );
    let second_ticket = second.credential().unwrap();
    assert_eq!(resume_refusal(gw, &second_ticket).await, ErrorCode::SessionExpired);
    assert_eq!(
        open_refusal(&second, "app").await,
        ErrorCode::NotAuthenticated,
        "after a logout the connection carries nothing"
    );
    let (mut send, mut recv) = open_flow(&third, "app", b"the third goes on").await;
    round_trip(&mut send, &mut recv, b"and on").await;
    let reasons: Vec<_> = gw
        .log_events()
        .into_iter()
        .filter(|e| e["message"] == "session ended")
        .map(|e| (e["session"].as_str().unwrap().to_owned(), e["reason"].clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            (first_grant.session_id.clone(), "session_limit".into()),
            (second_grant.session_id.clone(), "logout".into())
        ]
    );
    third.close().await;
}

#[tokio::test]
async fn directory_recheck_ends_sessions_of_disabled_people_and_of_people_who_lost_a_group() {
    let lab = LdapLab::start(POLICY, "session_check_secs = 1\ndirectory_recheck_secs = 1").await;
    let gw = &lab.gw;
    let alice_secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let bob_secret = gw.enrol(BOB.uuid, BOB.uid).await;
    let (alice, _) = login_person(gw, &ALICE, &alice_secret, 0).await;
    let (bob, _) = login_person(gw, &BOB, &bob_secret, 0).await;
    let (_a_send, mut alice_recv) = open_flow(&alice, "app", b"alice at work").await;
    let (mut bob_send, mut bob_recv) = open_flow(&bob, "payments", b"bob at work").await;
    assert_eq!(open_refusal(&bob, "app").await, ErrorCode::Forbidden);

    // Gaining a group changes no session: the next stream decides with the new groups.
    lab.slapd.modify(&format!(
        "dn: cn=staff,ou=groups,{BASE}\nchangetype: modify\nadd: member\nmember: uid=bob,ou=people,{BASE}\n"
    ));
    let refreshed = gw.wait_log("groups refreshed from the directory", 1, Duration::from_secs(5));
    assert_eq!(refreshed[0]["user"], "bob");
    let (mut app_send, mut app_recv) = open_flow(&bob, "app", b"bob joins staff").await;
    round_trip(&mut app_send, &mut app_recv, b"still here").await;
    round_trip(&mut bob_send, &mut bob_recv, b"payments still flows").await;
    assert!(alice.is_open() && bob.is_open());

    // Alice is disabled; bob leaves payments (carol replaces him, so the group keeps a member).
    let started = Instant::now();
    lab.slapd.modify(&format!(
        "dn: uid=alice,ou=people,{BASE}\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n"
    ));
    lab.slapd.modify(&format!(
        "dn: cn=payments,ou=groups,{BASE}\nchangetype: modify\nadd: uniqueMember\n\
         uniqueMember: uid=carol,ou=people,{BASE}\n-\ndelete: uniqueMember\nuniqueMember: uid=bob,ou=people,{BASE}\n"
    ));
    // directory_recheck_secs = 1 and session_check_secs = 1, plus slack for the directory.
    let bound = Duration::from_secs(4);
    assert_flow_cut(&mut alice_recv, bound.saturating_sub(started.elapsed())).await;
    assert_flow_cut(&mut bob_recv, bound.saturating_sub(started.elapsed())).await;
    assert_flow_cut(&mut app_recv, bound.saturating_sub(started.elapsed())).await;
    assert_closed_within(&alice, bound.saturating_sub(started.elapsed())).await;
    assert_closed_within(&bob, bound.saturating_sub(started.elapsed())).await;
    let alice_why = closed_because(&alice).await;
    assert!(alice_why.contains("account_disabled"), "alice is told why: {alice_why}");
    let bob_why = closed_because(&bob).await;
    assert!(bob_why.contains("groups_changed"), "bob is told why: {bob_why}");

    for client in [&alice, &bob] {
        let ticket = client.credential().unwrap();
        assert_eq!(resume_refusal(gw, &ticket).await, ErrorCode::SessionExpired);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_code_sent_a_hundred_times_to_two_gateways_logs_in_exactly_once() {
    // Room for every attempt at once: this is about replay, not admission.
    let room = "max_logins_in_progress = 128\nlogin_queue = 256\nlogin_queue_wait_secs = 60";
    let lab = LdapLab::start("", room).await;
    let secret = lab.gw.enrol(ALICE.uuid, ALICE.uid).await;
    let second = lab.second_gateway(room);
    let code = rampart_tests::oathtool_code(&secret, now());
    let attempts: Vec<_> = (0..100)
        .map(|i| {
            let (addr, ca) = if i % 2 == 0 {
                (lab.gw.addr.clone(), lab.gw.ca_pem.clone())
            } else {
                (second.addr.clone(), second.ca_pem.clone())
            };
            let code = code.clone();
            tokio::spawn(async move {
                let client = GatewayClient::connect(&addr, &ca).await.unwrap();
                let result = client
                    .login("alice", Sensitive::new(ALICE.password.into()), Sensitive::new(code))
                    .await;
                client.close().await;
                result.map(|_| ()).map_err(|e| match e {
                    ClientError::Refused { code, .. } => code,
                    other => panic!("login attempt failed unexpectedly: {other:?}"),
                })
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for attempt in attempts {
        outcomes.push(attempt.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .filter_map(|o| o.err())
            .all(|code| code == ErrorCode::InvalidCredentials),
        "{outcomes:?}"
    );
    // The replays are on file as such, at both gateways together.
    let replays = [&lab.gw, &second]
        .iter()
        .flat_map(|gw| gw.log_events())
        .filter(|e| e["reason"] == "code_replayed")
        .count();
    assert_eq!(replays, 99);
}
