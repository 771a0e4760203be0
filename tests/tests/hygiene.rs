//! Outside text stays data, end to end: a resource name or an admin API path parameter cannot
//! forge lines or send terminal escapes in the services' text log; directory values cannot
//! become spreadsheet formulas in `manifest.csv` or escape sequences on an operator's terminal;
//! and `rampart enrol` never follows a symbolic link planted in place of its journal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use rampart_certs::CertificateAuthority;
use rampart_client::GatewayClient;
use rampart_core::secret::Sensitive;
use rampart_tests::gateway::{GatewayProc, GatewaySpec, open_refusal};
use rampart_tests::provisioner::ProvisionerProc;
use rampart_tests::slapd::{BASE, SERVICE_DN, SERVICE_PASSWORD, Slapd};
use rampart_tests::{Dev, https_client, now, oathtool_code, output_text};
use std::time::{Duration, Instant};

/// A line that, written raw after a newline, looks like the gateway accepting a login.
const FORGED: &str = "2026-01-01T00:00:00.000000Z  INFO rampart::auth: login accepted user=root";

/// `marker`, a newline, [`FORGED`] and a colour escape: what an attacker sends.
fn hostile(marker: &str) -> String {
    format!("{marker}\n{FORGED}\u{1b}[31m\r")
}

/// Percent-encodes everything but unreserved characters, for a URL path segment.
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Waits until one line of `log()` holds every one of `parts`; returns the log.
fn wait_for(log: impl Fn() -> String, parts: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = log();
        if text.lines().any(|line| parts.iter().all(|part| line.contains(part))) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no line with {parts:?} reached the log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// No line of `log` starts a forged record, no raw escape or carriage return is in it, the
/// forged text shows escaped inside the record that carried it, and `marker`'s record is there.
fn assert_not_forged(log: &str, marker: &str) {
    assert!(!log.contains('\u{1b}'), "a raw escape byte reached the log");
    assert!(!log.contains('\r'), "a raw carriage return reached the log");
    for line in log.lines() {
        assert!(!line.starts_with(FORGED), "a forged line: {line}");
        if line.contains(FORGED) {
            assert!(
                line.contains(&format!("-marker\\u{{a}}{FORGED}\\u{{1b}}[31m\\u{{d}}")),
                "{line}"
            );
        }
    }
    assert!(
        log.lines().any(|l| l.contains(&format!("{marker}\\u{{a}}{FORGED}"))),
        "{marker} is shown escaped:\n{log}"
    );
}

/// The flow log's text line (`rampart::flow`) used to carry a denied stream's resource name as
/// the client sent it, and the admin API's log line the session id from its path: a newline in
/// either started a line of the attacker's choosing and an escape sequence recoloured the
/// operator's terminal. Now every field of every text log line is escaped in the formatter.
#[tokio::test(flavor = "multi_thread")]
async fn outside_strings_cannot_forge_lines_in_the_text_log() {
    let dev = Dev::start(&[]);
    let ca_pem = std::fs::read_to_string(dev.field("ca_cert")).unwrap();
    let client = GatewayClient::connect(&dev.field("gateway"), &ca_pem).await.unwrap();
    client
        .login(
            &dev.field("user"),
            Sensitive::new(dev.field("password")),
            Sensitive::new(oathtool_code(&dev.secret(), now())),
        )
        .await
        .unwrap();

    let resource = hostile("resource-marker");
    let code = open_refusal(&client, &resource).await;
    eprintln!("the hostile resource was refused with {code:?}");
    // The flow log's own line for the denied stream is the one that used to be raw.
    let log = wait_for(|| dev.stderr(), &["rampart::flow", "resource-marker\\u{a}"]);
    assert_not_forged(&log, "resource-marker");

    let id = hostile("path-marker");
    let response = https_client(&ca_pem)
        .delete(format!("{}/v1/sessions/{}", dev.field("admin_url"), path_segment(&id)))
        .bearer_auth(dev.field("admin_api_key"))
        .send()
        .await
        .unwrap();
    eprintln!("the hostile session id was answered with {}", response.status());
    let log = wait_for(|| dev.stderr(), &["rampart::admin", "path-marker\\u{a}"]);
    assert_not_forged(&log, "path-marker");
    assert_not_forged(&log, "resource-marker");
}

/// One organisation: slapd with `people` (LDIF), a gateway and a provisioner on its store.
struct Bank {
    _slapd: Slapd,
    _dir: tempfile::TempDir,
    _gw: GatewayProc,
    prov: ProvisionerProc,
}

fn bank(people: &str) -> Bank {
    let slapd = Slapd::start_with(None, people, false);
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("bind-password");
    std::fs::write(&password_file, SERVICE_PASSWORD).unwrap();
    let directory = format!(
        "[directory]\nkind = \"ldap\"\nurls = [\"{}\"]\nbind_dn = \"{SERVICE_DN}\"\nbind_password_file = \"{}\"\n\
         user_base = \"ou=people,{BASE}\"\ngroup_base = \"ou=groups,{BASE}\"\n",
        slapd.url,
        password_file.display()
    );
    let gw = GatewayProc::start(
        CertificateAuthority::create("Rampart Test").unwrap(),
        &GatewaySpec {
            directory: &directory,
            ..GatewaySpec::default()
        },
    );
    let prov = ProvisionerProc::start_for(&gw, &directory, "");
    Bank {
        _slapd: slapd,
        _dir: dir,
        _gw: gw,
        prov,
    }
}

const FORMULA: &str = "=HYPERLINK(\"http://x\",\"y\")";
const ESCAPES: &str = "\u{1b}[2J\u{1b}[31mEve\u{7}";

/// Mallory's display name is a spreadsheet formula, Eve's clears the screen and recolours it;
/// both are in the group `letters`.
fn hostile_people() -> String {
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let person = |uid: &str, i: usize, cn: &str| {
        format!(
            "dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn:: {}\nsn: Example\n\
             entryUUID: 00000000-0000-4000-8000-00000000a{i:03}\n\n",
            b64(cn)
        )
    };
    format!(
        "{}{}dn: cn=letters,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: letters\n\
         member: uid=mallory,ou=people,{BASE}\nmember: uid=eve,ou=people,{BASE}\n\n",
        person("mallory", 1, FORMULA),
        person("eve", 2, ESCAPES)
    )
}

/// Directory values used to reach `manifest.csv` as they were, so `=HYPERLINK(…)` ran as a
/// formula when the service desk opened it, and `rampart token show` printed a display name's
/// escape sequences raw to the operator's terminal (tables turned them into `?`, other lines
/// not at all). A symbolic link planted as the output folder's `journal.jsonl` was followed, so
/// enrolment read, appended to and could cut another file.
#[tokio::test(flavor = "multi_thread")]
async fn directory_values_stay_inert_in_the_manifest_and_on_the_terminal() {
    let bank = bank(&hostile_people());
    let dir = tempfile::tempdir().unwrap();

    // A symlink in place of the journal: refused, and the file it points at is untouched.
    let trap = dir.path().join("trap");
    std::fs::create_dir(&trap).unwrap();
    let victim = dir.path().join("victim.conf");
    let original = "setting = 1\nunterminated last line";
    std::fs::write(&victim, original).unwrap();
    std::os::unix::fs::symlink(&victim, trap.join("journal.jsonl")).unwrap();
    let refused = bank
        .prov
        .rampart(&["enrol", "--group", "letters", "--out", trap.to_str().unwrap()]);
    let text = output_text(&refused);
    assert!(!refused.status.success(), "{text}");
    assert!(
        text.contains("refusing journal.jsonl: it is a symbolic link"),
        "a clear error: {text}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), original);

    let out = dir.path().join("letters");
    let enrolled = bank
        .prov
        .rampart(&["enrol", "--group", "letters", "--out", out.to_str().unwrap()]);
    let text = output_text(&enrolled);
    assert!(enrolled.status.success(), "{text}");
    let csv = std::fs::read_to_string(out.join("manifest.csv")).unwrap();
    let mallory = csv.lines().find(|l| l.starts_with("mallory,")).expect(&csv);
    let cell = mallory.strip_prefix("mallory,").unwrap();
    assert!(
        cell.starts_with("\"'=HYPERLINK("),
        "the cell starts with a quote: {mallory}"
    );
    assert!(!csv.contains('\u{1b}'), "{csv:?}");

    for args in [&["token", "show", "eve"][..], &["token", "list"][..]] {
        let shown = bank.prov.rampart(args);
        let stdout = String::from_utf8_lossy(&shown.stdout);
        assert!(shown.status.success(), "{}", output_text(&shown));
        assert!(
            !stdout.contains('\u{1b}') && !stdout.contains('\u{7}'),
            "{args:?}: {stdout:?}"
        );
        assert!(
            stdout.contains("\\u{1b}[2J\\u{1b}[31mEve\\u{7}"),
            "{args:?} shows it escaped: {stdout}"
        );
    }
}
