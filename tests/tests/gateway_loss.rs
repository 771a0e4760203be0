//! End to end: two gateways of one organisation (one store), people whose profiles list both
//! are spread over them by their stable choice (not everyone on the profile's first), and when
//! one gateway is killed with SIGKILL its people's forwards resume the same session on the other
//! with their tickets — no new code — while the other gateway's people notice nothing. Real
//! `rampart-gateway`, `rampart-connect`, `rampart` and slapd processes on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_client::spread;
use rampart_tests::gateway::{GatewayProc, LdapLab};
use rampart_tests::slapd::{generated_people_ldif, generated_person};
use rampart_tests::*;
use rampart_tests::{rampart_connect as connect, start_listening};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Generated people in the directory; enough that both gateways are someone's first choice
/// whatever ports the gateways get (all on one: 2 × 2⁻¹⁶).
const PEOPLE: usize = 16;
/// How long a forward may take to carry a new connection after its gateway was killed: the
/// client gives a silent link up after 10 s, then resumes on the other gateway at once.
const FAIL_OVER_BOUND: Duration = Duration::from_secs(15);

/// One person with a client home set up from a profile listing `gateways` in that order.
struct Person {
    uid: String,
    password: String,
    secret: String,
    home: PathBuf,
}

async fn person(lab: &LdapLab, dir: &Path, index: usize, gateways: &[&str]) -> Person {
    let (uid, password, uuid) = generated_person(index);
    leaks::remember("password", &password);
    let secret = lab.gw.enrol(&uuid, &uid).await;
    let ca = dir.join("org-ca.pem");
    std::fs::write(&ca, &lab.gw.ca_pem).unwrap();
    let mut create = Command::new(bin("rampart"));
    create
        .arg("--ca")
        .arg(&ca)
        .args(["profile", "create", "--user", &uid, "--organisation", "Test Bank"]);
    for gateway in gateways {
        create.args(["--gateway", gateway]);
    }
    let out = create.env_remove("RAMPART_URL").output().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let line = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let home = dir.join(&uid);
    let out = connect(&home).args(["setup", &line]).output().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    Person {
        uid,
        password,
        secret,
        home,
    }
}

fn login(person: &Person) -> Output {
    let mut cmd = connect(&person.home);
    cmd.args([
        "login",
        "--password-stdin",
        "--otp",
        &oathtool_code(&person.secret, now()),
    ]);
    run_with_stdin(cmd, &format!("{}\n", person.password))
}

/// `gw`'s log events with `message` for `uid`.
fn events(gw: &GatewayProc, message: &str, uid: &str) -> Vec<Value> {
    gw.log_events()
        .into_iter()
        .filter(|e| e["message"] == message && e["user"] == uid)
        .collect()
}

/// The one session `uid` logged in to at `gw`, and that no other gateway saw a login of theirs.
fn session_at(gw: &GatewayProc, elsewhere: &GatewayProc, uid: &str) -> String {
    let logins = events(gw, "login", uid);
    assert_eq!(logins.len(), 1, "{uid} logs in once, at {}", gw.addr);
    assert!(
        events(elsewhere, "login", uid).is_empty(),
        "{uid} logged in at {}",
        elsewhere.addr
    );
    logins[0]["session"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn people_spread_over_two_gateways_and_a_killed_gateways_people_resume_on_the_other_without_a_code() {
    let users: Vec<String> = (0..PEOPLE).map(|i| format!("\"{}\"", generated_person(i).0)).collect();
    let policy = format!(
        "[[resource]]\nname = \"echo\"\ntarget = \"{{echo}}\"\nallow_users = [{}]\n",
        users.join(", ")
    );
    let mut lab = LdapLab::start_with_people(&policy, "", &generated_people_ldif(PEOPLE)).await;
    let mut b = lab.second_gateway("");
    let a_addr = lab.gw.addr.clone();
    let both = [a_addr.clone(), b.addr.clone()];
    // Someone whose own choice is A and someone whose own choice is B.
    let first_choice = |i: usize| spread::order(&generated_person(i).0, &both)[0].clone();
    let on_a = (0..PEOPLE).find(|i| first_choice(*i) == a_addr).unwrap();
    let on_b = (0..PEOPLE).find(|i| first_choice(*i) == b.addr).unwrap();

    // Each gets a profile that lists the *other* gateway first: people go to their own
    // gateway, not to whichever the profile happens to name first.
    let dir = tempfile::tempdir().unwrap();
    let anna = person(&lab, dir.path(), on_a, &[&b.addr, &a_addr]).await;
    let bert = person(&lab, dir.path(), on_b, &[&a_addr, &b.addr]).await;
    for (who, gateway) in [(&anna, &a_addr), (&bert, &b.addr)] {
        let out = login(who);
        assert!(out.status.success(), "{}", output_text(&out));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains(&format!("(through {gateway})")), "{}: {said}", who.uid);
    }
    let anna_session = session_at(&lab.gw, &b, &anna.uid);
    let bert_session = session_at(&b, &lab.gw, &bert.uid);

    // Both carry data through their own gateway.
    let (mut anna_fwd, anna_local, anna_log) =
        start_listening(&anna.home, &["forward", "127.0.0.1:0=echo"], "forwarding ");
    let (mut bert_fwd, bert_local, bert_log) =
        start_listening(&bert.home, &["forward", "127.0.0.1:0=echo"], "forwarding ");
    let data = random_bytes(64 * 1024);
    assert!(echo_round_trip(&anna_local, &data) == data, "anna before the kill");
    assert!(echo_round_trip(&bert_local, &data) == data, "bert before the kill");

    // Gateway A dies without a word.
    lab.gw.kill9();
    let killed = Instant::now();

    // Anna's forward keeps working: a new connection goes through B on her session.
    let back = echo_round_trip(&anna_local, &data);
    let took = killed.elapsed();
    let anna_said = std::fs::read_to_string(&anna_log).unwrap();
    assert!(back == data, "anna after the kill ({took:?}): {anna_said}");
    assert!(took < FAIL_OVER_BOUND, "anna's forward took {took:?} to move");
    println!(
        "a new connection through anna's forward went through B {} ms after A was killed",
        took.as_millis()
    );
    assert!(
        anna_said.contains(&format!("reconnected to the gateway at {}", b.addr)),
        "{anna_said}"
    );
    assert!(
        anna_fwd.try_wait().unwrap().is_none(),
        "anna's forward stopped: {anna_said}"
    );
    // The same session, resumed with its ticket: no login, so no code, at B.
    let resumed = events(&b, "session resumed", &anna.uid);
    assert!(!resumed.is_empty(), "no resume of anna's session at B:\n{}", b.log());
    assert!(
        resumed.iter().all(|e| e["session"] == anna_session.as_str()),
        "B resumed another session: {resumed:?}"
    );
    assert!(events(&b, "login", &anna.uid).is_empty(), "anna logged in again at B");
    assert!(echo_round_trip(&anna_local, &data) == data, "anna again");

    // Bert, on B all along, noticed nothing.
    let began = Instant::now();
    assert!(echo_round_trip(&bert_local, &data) == data, "bert after the kill");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "bert waited {:?}",
        began.elapsed()
    );
    let bert_said = std::fs::read_to_string(&bert_log).unwrap();
    assert!(
        !bert_said.contains("reconnected"),
        "bert's link was remade: {bert_said}"
    );
    assert_eq!(session_at(&b, &lab.gw, &bert.uid), bert_session);

    // Anna's status names the gateway her session is on now, at once.
    let began = Instant::now();
    let out = connect(&anna.home).arg("status").output().unwrap();
    let said = output_text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(&format!("(through {})", b.addr)), "{said}");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "status took {:?}",
        began.elapsed()
    );

    let _ = anna_fwd.kill();
    let _ = anna_fwd.wait();
    let _ = bert_fwd.kill();
    let _ = bert_fwd.wait();
    b.stop();
}
