//! Resume tickets bound to the client's key and rotated at every resume, attacked the way a
//! copied `session.json` would be used — against real gateways, slapd, PostgreSQL and
//! `rampart-connect` processes on 127.0.0.1: a ticket with another key resumes nothing, a
//! proof recorded on one connection is worthless on another, the owner's resume replaces the
//! ticket, a copy taken before it ends the session for everyone (on file, with the reason), and
//! of two hosts resuming one session at once through two gateways only one wins.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use quinn::crypto::rustls::QuicClientConfig;
use rampart_client::{ClientError, ClientKey, GatewayClient, ResumeCredential};
use rampart_core::ErrorCode;
use rampart_core::io::{read_frame, write_frame};
use rampart_core::protocol::{ClientMessage, ServerMessage};
use rampart_core::resume_proof::{EXPORTER_LABEL, EXPORTER_LEN};
use rampart_tests::gateway::{GatewayProc, LdapLab, login_person, open_flow, totp_code};
use rampart_tests::pg::SharedStore;
use rampart_tests::slapd::ALICE;
use rampart_tests::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

const POLICY: &str = "[[resource]]\nname = \"app\"\ntarget = \"{echo}\"\nallow_groups = [\"staff\"]\n";
/// The client's exit code for "not logged in, or the session ended".
const EXIT_SESSION: i32 = 5;

/// `rampart-connect login` in `home` against `gw` with a fresh code.
async fn cli_login(gw: &GatewayProc, home: &Path, secret: &str) {
    let ca = home.with_extension("ca.pem");
    std::fs::write(&ca, &gw.ca_pem).unwrap();
    let code = totp_code(secret, 0).await;
    let mut cmd = rampart_connect(home);
    cmd.args(["--gateway", &gw.addr, "--ca"]).arg(&ca).args([
        "login",
        "--user",
        "alice",
        "--password-stdin",
        "--otp",
        code.expose(),
    ]);
    let out = run_with_stdin(cmd, &format!("{}\n", ALICE.password));
    assert!(out.status.success(), "{}", output_text(&out));
}

/// `rampart-connect status`, with the client's own log on at its most detailed, so whatever it
/// might log about the session is in the output the tests search for secrets.
fn status(home: &Path) -> Output {
    rampart_connect(home)
        .env("RUST_LOG", "rampart_client=trace,rampart_connect=trace")
        .arg("status")
        .output()
        .unwrap()
}

fn session_file(home: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(home.join("session.json")).unwrap()).unwrap()
}

/// A copy of `from`'s session folder at `to`, as someone with a moment at the laptop (or a
/// backup, or a synced folder) takes it.
fn copy_home(from: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join("session.json"), to.join("session.json")).unwrap();
    to.to_path_buf()
}

/// Remembers the saved ticket and key for the suite's leak scan, and returns them.
fn remember_ticket(home: &Path) -> [String; 2] {
    let saved = session_file(home);
    let secrets = ["ticket", "key"].map(|field| saved[field].as_str().unwrap().to_owned());
    leaks::remember("ticket", &secrets[0]);
    leaks::remember("client key", &secrets[1]);
    secrets
}

/// Fails if `text` (a client's output) shows any of `secrets`.
fn assert_shows_none(text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "the client printed a ticket or its key"
        );
    }
}

fn resume_records(gw: &GatewayProc) -> Vec<Value> {
    audit_records(&gw.state.join("audit"))
        .into_iter()
        .filter(|r| r["class_uid"] == 3002 && r["activity_name"] == "Authentication Ticket")
        .collect()
}

/// A bare QUIC connection to `gw`, past `Hello`: the control stream and the connection, whose
/// keying material the test exports itself.
async fn raw_control(
    gw: &GatewayProc,
    versions: Vec<u16>,
) -> (quinn::Connection, quinn::SendStream, quinn::RecvStream) {
    let ca = rampart_certs::certs_from_pem(&gw.ca_pem).unwrap();
    let tls = rampart_certs::client_config(ca, &[rampart_core::ALPN]).unwrap();
    let config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(config);
    let connection = endpoint
        .connect(gw.addr.parse().unwrap(), "127.0.0.1")
        .unwrap()
        .await
        .unwrap();
    let (mut send, recv) = connection.open_bi().await.unwrap();
    let hello = ClientMessage::Hello {
        versions,
        client: "resume-ticket-test".into(),
    };
    write_frame(&mut send, &hello).await.unwrap();
    (connection, send, recv)
}

async fn reply(recv: &mut quinn::RecvStream) -> ServerMessage {
    tokio::time::timeout(Duration::from_secs(20), read_frame::<ServerMessage, _>(recv))
        .await
        .expect("the gateway answered in time")
        .unwrap()
        .expect("an answer, not the end of the stream")
}

fn exporter_of(connection: &quinn::Connection) -> [u8; EXPORTER_LEN] {
    let mut exporter = [0u8; EXPORTER_LEN];
    connection
        .export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
        .unwrap();
    exporter
}

/// Before keys, the ticket in `session.json` was a plain bearer: copied to any computer it
/// resumed the session there, with no code, for the session's whole life. Now the ticket is
/// bound to the key made at login; a copy with another key — or one whose key was left out —
/// resumes nothing, and the owner is not disturbed.
#[tokio::test(flavor = "multi_thread")]
async fn a_copied_ticket_without_its_key_resumes_nothing() {
    let lab = LdapLab::start(POLICY, "").await;
    let secret = lab.gw.enrol(ALICE.uuid, ALICE.uid).await;
    let dir = tempfile::tempdir().unwrap();
    let owner = dir.path().join("owner");
    cli_login(&lab.gw, &owner, &secret).await;
    let secrets = remember_ticket(&owner);
    let saved = session_file(&owner);
    assert!(saved["key"].is_string(), "the session file holds the session's key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(owner.join("session.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key is as private as the ticket");
    }

    // The thief's copy carries the ticket but a key of the thief's own.
    let thief = dir.path().join("thief");
    std::fs::create_dir_all(&thief).unwrap();
    let mut copy = saved.clone();
    copy["key"] = serde_json::to_value(ClientKey::generate().unwrap()).unwrap();
    std::fs::write(thief.join("session.json"), serde_json::to_vec(&copy).unwrap()).unwrap();
    let out = status(&thief);
    assert_eq!(out.status.code(), Some(EXIT_SESSION), "{}", output_text(&out));
    assert!(stderr_text(&out).contains("Log in again"), "{}", output_text(&out));
    assert_shows_none(&output_text(&out), &secrets);
    let refused = resume_records(&lab.gw);
    assert!(
        refused
            .iter()
            .any(|r| r["status"] == "Failure" && r["status_detail"] == "bad_proof" && r["user"]["name"] == "alice"),
        "the refusal is on file with its reason: {refused:#?}"
    );

    // Without the key the copy is refused before anything is sent.
    let mut keyless = saved.clone();
    keyless.as_object_mut().unwrap().remove("key");
    std::fs::write(thief.join("session.json"), serde_json::to_vec(&keyless).unwrap()).unwrap();
    let out = status(&thief);
    assert_ne!(out.status.code(), Some(0), "{}", output_text(&out));
    assert!(stderr_text(&out).contains("log in again"), "{}", output_text(&out));

    // The owner goes on, and the session was not ended by the attempts.
    let out = status(&owner);
    assert!(out.status.success(), "{}", output_text(&out));
    let next = remember_ticket(&owner);
    assert_ne!(next[0], secrets[0], "the owner's resume replaced the ticket");
    assert_eq!(next[1], secrets[1], "the key stays the session's for its whole life");
    assert_shows_none(&output_text(&out), &[secrets.as_slice(), next.as_slice()].concat());
}

/// Before keys and rotation, a resume message could be replayed: the same ticket worked on any
/// connection, and nothing but the ticket was asked for. Now the proof is signed over keying
/// material only the connection it was made on exports, so a proof taken from one connection
/// fails on another; and a version 1 client, which knows no keys, is told to update.
#[tokio::test(flavor = "multi_thread")]
async fn a_proof_made_for_one_connection_fails_on_another_and_old_clients_are_told_to_update() {
    let lab = LdapLab::start(POLICY, "").await;
    let secret = lab.gw.enrol(ALICE.uuid, ALICE.uid).await;
    let (owner, _) = login_person(&lab.gw, &ALICE, &secret, 0).await;
    let credential = owner.credential().expect("the login made a credential");
    leaks::remember("ticket", credential.ticket.expose());

    let (first, _first_send, _first_recv) = raw_control(&lab.gw, vec![rampart_core::PROTOCOL_VERSION]).await;
    let proof = credential
        .key
        .prove(&exporter_of(&first), &credential.session_id)
        .unwrap();
    let (_second, mut send, mut recv) = raw_control(&lab.gw, vec![rampart_core::PROTOCOL_VERSION]).await;
    assert!(matches!(
        reply(&mut recv).await,
        ServerMessage::Welcome { version: 2, .. }
    ));
    let replayed = ClientMessage::Resume {
        ticket: credential.ticket.clone(),
        proof,
    };
    write_frame(&mut send, &replayed).await.unwrap();
    match reply(&mut recv).await {
        ServerMessage::Refused { code, .. } => assert_eq!(code, ErrorCode::SessionExpired),
        other => panic!("a proof from another connection resumed the session: {other:?}"),
    }

    // A version 1 client learns at once that it must be updated.
    let (_old, _old_send, mut old_recv) = raw_control(&lab.gw, vec![1]).await;
    match reply(&mut old_recv).await {
        ServerMessage::Refused { code, message, .. } => {
            assert_eq!(code, ErrorCode::UnsupportedVersion);
            assert!(message.contains("update rampart-connect"), "{message}");
        }
        other => panic!("a version 1 client was served: {other:?}"),
    }

    // The owner's own resume, with a proof for its connection, still works.
    let again = GatewayClient::connect(&lab.gw.addr, &lab.gw.ca_pem).await.unwrap();
    let mut mine = credential.clone();
    again.resume(&mut mine).await.expect("the owner resumes");
    leaks::remember("ticket", mine.ticket.expose());
    open_flow(&again, "app", b"still mine").await;
}

/// Before rotation, a copy of `session.json` worked at the same time as its owner for the
/// session's whole life, and nothing on file could tell. Now the owner's resume replaces the
/// ticket (and rewrites `session.json`); when the copy taken before it is used, the gateway
/// sees a replaced ticket, ends the session — the owner's live forward stops too — and the
/// audit trail records why.
#[tokio::test(flavor = "multi_thread")]
async fn the_owners_resume_rotates_the_ticket_and_a_copy_taken_before_it_ends_the_session() {
    let lab = LdapLab::start(POLICY, "session_check_secs = 1").await;
    let secret = lab.gw.enrol(ALICE.uuid, ALICE.uid).await;
    let auditor = lab.gw.operator("audit-1", "auditor").await;
    let dir = tempfile::tempdir().unwrap();
    let owner = dir.path().join("owner");
    cli_login(&lab.gw, &owner, &secret).await;
    let mut secrets = remember_ticket(&owner).to_vec();
    let thief = copy_home(&owner, &dir.path().join("thief"));
    let session_id = session_file(&owner)["session_id"].as_str().unwrap().to_owned();

    // The owner's forward resumes the session: the ticket in her file is replaced.
    let (mut forward, local, log) = start_listening(&owner, &["forward", "127.0.0.1:0=app"], "forwarding ");
    let data = random_bytes(16 * 1024);
    assert!(echo_round_trip(&local, &data) == data, "the forward works");
    secrets.extend(remember_ticket(&owner));
    assert_ne!(
        session_file(&owner)["ticket"],
        session_file(&thief)["ticket"],
        "the owner's resume rotated the ticket"
    );
    // A second process of hers (status) resumes too, and the forward is not disturbed.
    let out = status(&owner);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_shows_none(&output_text(&out), &secrets);
    secrets.extend(remember_ticket(&owner));
    assert!(echo_round_trip(&local, &data) == data, "the forward still works");

    // The thief uses the copy taken before: the session ends for everyone.
    let out = status(&thief);
    assert_eq!(out.status.code(), Some(EXIT_SESSION), "{}", output_text(&out));
    assert!(
        stderr_text(&out).contains("a copy of it was used"),
        "the thief's client says why: {}",
        output_text(&out)
    );
    assert_shows_none(&output_text(&out), &secrets);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, listed) = lab.gw.admin("GET", "/v1/sessions", Some(&auditor)).await;
        assert_eq!(code, 200, "{listed}");
        if !listed.to_string().contains(&session_id) {
            break;
        }
        assert!(Instant::now() < deadline, "the session is still listed: {listed}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The owner's next connection finds the session over, and her forward stops (exit 5) with
    // the reason.
    let _ = std::net::TcpStream::connect(&local).map(|mut s| {
        use std::io::{Read, Write};
        let _ = s.write_all(b"x");
        let _ = s.read(&mut [0u8; 1]);
    });
    let exited = wait_exit(&mut forward, Duration::from_secs(20));
    if exited.is_none() {
        let _ = forward.kill();
    }
    let forward_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(exited.and_then(|s| s.code()), Some(EXIT_SESSION), "{forward_log}");
    assert!(forward_log.contains("a copy of it was used"), "{forward_log}");
    assert_shows_none(&forward_log, &secrets);
    let out = status(&owner);
    assert_eq!(out.status.code(), Some(EXIT_SESSION), "{}", output_text(&out));

    // On file: the refused resume with the replaced ticket names the person and the session.
    let records = resume_records(&lab.gw);
    let stolen: Vec<_> = records
        .iter()
        .filter(|r| r["status_detail"] == "ticket_reused")
        .collect();
    assert_eq!(stolen.len(), 1, "{records:#?}");
    assert_eq!(stolen[0]["status"], "Failure");
    assert_eq!(stolen[0]["user"]["name"], "alice");
    assert_eq!(stolen[0]["user"]["uid"], ALICE.uuid);
    assert!(stolen[0].to_string().contains(&session_id), "{:#?}", stolen[0]);
    let ended = lab.gw.wait_log("session ended", 1, Duration::from_secs(5));
    assert!(
        ended.iter().any(|e| e["reason"] == "ticket_reused"),
        "the gateway log says why the session ended: {ended:#?}"
    );
}

/// Before rotation was one conditional statement, two hosts holding one session could both
/// resume it at the same moment, each through its own gateway. Now the ticket swap is a
/// compare-and-swap in the shared store: exactly one resume wins, the others present a ticket
/// that is already replaced, and the session ends on both gateways.
#[tokio::test(flavor = "multi_thread")]
async fn two_hosts_resuming_one_session_at_once_through_two_gateways_cannot_both_win() {
    let store = SharedStore::start(false).await;
    let table = store.table("");
    let settings = "session_check_secs = 1";
    let lab = LdapLab::start_with_store(POLICY, settings, &table).await;
    let other = lab.another_gateway(settings, None, &table);
    let gateways: [&GatewayProc; 2] = [&lab.gw, &other];
    let secret = lab.gw.enrol(ALICE.uuid, ALICE.uid).await;
    let (owner, _) = login_person(&lab.gw, &ALICE, &secret, 0).await;
    let credential: ResumeCredential = owner.credential().unwrap();
    leaks::remember("ticket", credential.ticket.expose());
    owner.close().await;

    // Connected first, so the resumes leave together.
    let mut clients = Vec::new();
    for i in 0..8 {
        let gw = gateways[i % 2];
        clients.push((i % 2, GatewayClient::connect(&gw.addr, &gw.ca_pem).await.unwrap()));
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(clients.len()));
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|(at, client)| {
            let (barrier, mut credential) = (barrier.clone(), credential.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let result = client.resume(&mut credential).await.map(|_| credential);
                (at, client, result)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut refusals = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (at, client, Ok(credential)) => {
                leaks::remember("ticket", credential.ticket.expose());
                winners.push((at, client, credential));
            }
            (_, _, Err(ClientError::Refused { code, .. })) => refusals.push(code),
            (_, _, Err(other)) => panic!("a resume failed unexpectedly: {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one resume won; refusals {refusals:?}");
    assert!(
        refusals.contains(&ErrorCode::TicketReused),
        "a loser presented a replaced ticket: {refusals:?}"
    );
    assert!(
        refusals
            .iter()
            .all(|c| matches!(c, ErrorCode::TicketReused | ErrorCode::SessionExpired)),
        "{refusals:?}"
    );

    // The race itself is the sign of a copy: the session ends, on the winner's gateway too,
    // and the winner's new ticket resumes nothing.
    let (at, winner, mut won) = winners.pop().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while winner.is_open() {
        assert!(
            Instant::now() < deadline,
            "the winner's connection outlived the session's end"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gw = gateways[1 - at];
    let later = GatewayClient::connect(&gw.addr, &gw.ca_pem).await.unwrap();
    match later.resume(&mut won).await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, ErrorCode::TicketReused),
        other => panic!("the session outlived the race: {other:?}"),
    }
    let reused: usize = gateways
        .iter()
        .map(|gw| {
            resume_records(gw)
                .iter()
                .filter(|r| r["status_detail"] == "ticket_reused")
                .count()
        })
        .sum();
    assert!(reused >= 1, "the reuse is on the audit trail");
}

fn stderr_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
