//! Self-service enrolment against a real slapd, provisioner and gateway: the desk issues a
//! registration code, the employee sets up the profile line, enrols at a real terminal
//! (`rampart-connect enrol`: password, code, the QR code and key shown once, the first code from
//! an independent generator) and then logs in. Refusals say the same thing whatever was wrong,
//! wrong tries spend the code, and the secret is never shown again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_tests::gateway::LdapLab;
use rampart_tests::provisioner::ProvisionerProc;
use rampart_tests::slapd::{ALICE, BOB};
use rampart_tests::terminal::Terminal;
use rampart_tests::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const POLICY: &str = "[[resource]]\nname = \"echo\"\ntarget = \"{echo}\"\nallow_groups = [\"staff\"]\n";

fn connect(home: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(bin("rampart-connect"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("RAMPART_PASSWORD")
        .env_remove("RAMPART_CA")
        .env_remove("RAMPART_CONNECT_CA")
        .env_remove("RAMPART_GATEWAY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// The desk's registration code for `user`, remembered for the leak scan.
fn registration_code(prov: &ProvisionerProc, user: &str) -> String {
    let issued = prov.rampart_json(&["token", "registration-code", user, "--by", "letter"]);
    let code = issued["registration_code"].as_str().unwrap().to_owned();
    leaks::remember("registration code", &code);
    code
}

#[tokio::test(flavor = "multi_thread")]
async fn an_employee_enrols_at_a_terminal_with_a_registration_code_then_logs_in() {
    let lab = LdapLab::start(POLICY, "").await;
    let prov = ProvisionerProc::start_for(&lab.gw, &lab.directory, "");
    let code = registration_code(&prov, "alice");
    let shown = prov.rampart(&["token", "registration-code", "bob", "--by", "phone"]);
    assert!(shown.status.success(), "{}", output_text(&shown));
    assert!(output_text(&shown).contains("shown only now"));

    let made = prov.rampart(&[
        "profile",
        "create",
        "--gateway",
        &lab.gw.addr,
        "--user",
        "alice",
        "--enrol-url",
        &prov.url,
    ]);
    assert!(made.status.success(), "{}", output_text(&made));
    let line = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    let home_dir = tempfile::tempdir().unwrap();
    let home = home_dir.path().join("home");
    let setup = connect(&home, &["setup", &line], "");
    assert!(setup.status.success(), "{}", output_text(&setup));

    let terminal = Terminal::start(
        home_dir.path(),
        &format!("{} --home {} enrol", bin("rampart-connect").display(), home.display()),
    );
    let limit = Duration::from_secs(20);
    terminal.wait_for("Password:", limit);
    terminal.type_line(ALICE.password);
    terminal.wait_for("Registration code", limit);
    terminal.type_line(&code.to_lowercase());
    let screen = terminal.wait_for("Code the app shows now:", limit);
    assert!(
        screen.contains('█') || screen.contains('▀'),
        "a QR code is drawn: {screen}"
    );
    let key: String = screen
        .lines()
        .find_map(|l| l.split("type this key into the app: ").nth(1))
        .expect("the key is shown")
        .split_whitespace()
        .collect();
    leaks::remember("enrolled seed", &key);
    let qr_file = home.join("enrolment-qr.svg");
    assert!(qr_file.exists(), "the QR code is saved until confirmed");
    // A wrong first code is refused with the tries left; the right one confirms.
    terminal.type_line("000000");
    terminal.wait_for("tries left", limit);
    terminal.type_line(&oathtool_code(&key, now()));
    let screen = terminal.wait_for("EXIT=", limit);
    assert!(screen.contains("enrolled and active for alice"), "{screen}");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(!screen.contains(ALICE.password), "the password was echoed: {screen}");
    assert!(!qr_file.exists(), "the QR file is removed once confirmed");

    // The token is the person's active one; the desk's view never shows the secret.
    let (status, person) = prov.call("GET", "/v1/people/alice", Some(&prov.admin_key), None).await;
    assert_eq!(status, 200, "{person}");
    assert_eq!(person["tokens"][0]["state"], "active", "{person}");
    assert!(!person.to_string().contains(&key));
    let history: Vec<&str> = person["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        history.contains(&"registration_code_issued") && history.contains(&"enrolled"),
        "{history:?}"
    );

    // Logging in works with the next code (the confirming one is used).
    let next = oathtool_code(&key, now() + 30);
    let login = connect(
        &home,
        &["login", "--password-stdin", "--otp", &next],
        &format!("{}\n", ALICE.password),
    );
    assert!(login.status.success(), "{}", output_text(&login));
    assert!(output_text(&login).contains("Logged in as alice"));

    // The code worked once: enrolling again with it is refused.
    let (status, again) = prov
        .call(
            "POST",
            "/v1/enrolment",
            None,
            Some(json!({"username": "alice", "password": ALICE.password, "registration_code": code})),
        )
        .await;
    assert_eq!(
        (status, again["error"].as_str()),
        (401, Some("not_accepted")),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_tell_nothing_and_wrong_tries_spend_the_code() {
    let lab = LdapLab::start(POLICY, "").await;
    let prov = ProvisionerProc::start_for(&lab.gw, &lab.directory, "enrolment_failure_delay_ms = 300");
    let code = registration_code(&prov, "bob");
    let start = |username: &str, password: &str, code: &str| json!({"username": username, "password": password, "registration_code": code});
    let mut answers: Vec<(u16, Value)> = Vec::new();
    let mut timings = Vec::new();
    for body in [
        start("bob", "wrong-password", &code),
        start("nobody", BOB.password, &code),
        start("bob", BOB.password, "AAAA-BBBB-CCCC-DDDD"),
        start("bob", BOB.password, "not a code"),
        start("alice", ALICE.password, &code),
    ] {
        let began = Instant::now();
        answers.push(prov.call("POST", "/v1/enrolment", None, Some(body)).await);
        timings.push(began.elapsed());
    }
    let first = &answers[0];
    assert_eq!(first.0, 401, "{answers:?}");
    for answer in &answers {
        assert_eq!(answer, first, "every refusal reads the same");
    }
    assert!(timings.iter().all(|t| *t >= Duration::from_millis(300)), "{timings:?}");
    let said = first.1.to_string();
    assert!(!said.contains("password is wrong") && !said.contains(BOB.password));

    // Wrong codes are not counted (anyone knowing a username could otherwise spend the code):
    // bob's code still works after many of them.
    for _ in 0..6 {
        let (status, _) = prov
            .call(
                "POST",
                "/v1/enrolment",
                None,
                Some(start("bob", BOB.password, "ZZZZ-ZZZZ-ZZZZ-ZZZZ")),
            )
            .await;
        assert_eq!(status, 401);
    }
    // Wrong passwords with the right code are: the first one above and four more spend it.
    for _ in 0..4 {
        let (status, _) = prov
            .call("POST", "/v1/enrolment", None, Some(start("bob", "still-wrong", &code)))
            .await;
        assert_eq!(status, 401);
    }
    let (status, spent) = prov
        .call("POST", "/v1/enrolment", None, Some(start("bob", BOB.password, &code)))
        .await;
    assert_eq!(status, 401, "the right code after five wrong passwords: {spent}");
    let (_, person) = prov.call("GET", "/v1/people/bob", Some(&prov.admin_key), None).await;
    assert!(person.to_string().contains("registration_code_spent"), "{person}");

    // A new code works, and the started enrolment's secret is in that answer only.
    let code = registration_code(&prov, "bob");
    let (status, started) = prov
        .call("POST", "/v1/enrolment", None, Some(start("bob", BOB.password, &code)))
        .await;
    assert_eq!(status, 201, "{started}");
    let secret = started["secret"].as_str().unwrap().to_owned();
    leaks::remember("enrolled seed", &secret);
    let id = started["enrolment_id"].as_str().unwrap();
    let (status, confirmed) = prov
        .call(
            "POST",
            &format!("/v1/enrolment/{id}/confirm"),
            None,
            Some(json!({"username": "bob", "code": oathtool_code(&secret, now())})),
        )
        .await;
    assert_eq!(status, 200, "{confirmed}");
    let (_, person) = prov.call("GET", "/v1/people/bob", Some(&prov.admin_key), None).await;
    assert!(!person.to_string().contains(&secret), "the secret is never shown again");
    let (status, again) = prov
        .call(
            "POST",
            &format!("/v1/enrolment/{id}/confirm"),
            None,
            Some(json!({"username": "bob", "code": oathtool_code(&secret, now() + 30)})),
        )
        .await;
    assert_eq!((status, again["error"].as_str()), (410, Some("gone")), "{again}");
    // The provisioner's log never holds a code or the secret.
    let log = prov.log();
    assert!(!log.contains(&secret) && !log.contains(&code), "leaked into the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_gets_codes_in_a_private_file_and_everyone_left_out_is_named() {
    let lab = LdapLab::start(POLICY, "").await;
    let prov = ProvisionerProc::start_for(&lab.gw, &lab.directory, "");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("codes.csv");
    let file_arg = file.display().to_string();
    let args = [
        "token",
        "registration-codes",
        "--group",
        "staff",
        "--by",
        "letter",
        "--out",
        &file_arg,
    ];
    let run = prov.rampart(&args);
    assert!(run.status.success(), "{}", output_text(&run));
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(said.contains("Registration codes for 1 people"), "{said}");
    assert!(
        said.contains("No code for (1):") && said.contains("carol"),
        "disabled carol is named: {said}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("username,display_name,registration_code,delivery,expires")
    );
    let alice: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!((alice[0], alice[3]), ("alice", "letter"), "{text}");
    let code = alice[2].to_owned();
    leaks::remember("registration code", &code);
    assert!(!said.contains(&code), "the codes are in the file only");

    // The code from the file opens alice's enrolment.
    let (status, started) = prov
        .call(
            "POST",
            "/v1/enrolment",
            None,
            Some(json!({"username": "alice", "password": ALICE.password, "registration_code": code})),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    leaks::remember("enrolled seed", started["secret"].as_str().unwrap());

    // The file is never overwritten: a second run asks for a new one and issues nothing.
    let again = prov.rampart(&args);
    assert_eq!(again.status.code(), Some(1), "{}", output_text(&again));
    assert!(output_text(&again).contains("exists"));
}

/// With dual control on token resets, a registration code would let one operator hand out what
/// needs two: it is refused for a person who holds a token, and given to one who never had one.
#[tokio::test(flavor = "multi_thread")]
async fn dual_control_refuses_a_code_for_someone_who_holds_a_token() {
    let lab = LdapLab::start(POLICY, "").await;
    let directory = format!("{}\n[dual_control]\ntoken_resets = true\n", lab.directory);
    let prov = ProvisionerProc::start_for(&lab.gw, &directory, "");
    let secret = lab.gw.enrol(ALICE.uuid, ALICE.uid).await;
    leaks::remember("seed", &secret);
    let refused = prov.rampart(&["token", "registration-code", "alice", "--by", "phone"]);
    assert_eq!(refused.status.code(), Some(5), "{}", output_text(&refused));
    assert!(
        output_text(&refused).contains("dual control is on"),
        "{}",
        output_text(&refused)
    );
    let bob = prov.rampart(&["-o", "json", "token", "registration-code", "bob", "--by", "phone"]);
    assert!(bob.status.success(), "{}", output_text(&bob));
    let issued: Value = serde_json::from_slice(&bob.stdout).unwrap();
    leaks::remember("registration code", issued["registration_code"].as_str().unwrap());
}
