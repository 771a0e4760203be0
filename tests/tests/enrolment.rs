//! Bulk enrolment end to end: `rampart enrol` against a real provisioner over HTTPS, people in
//! a real OpenLDAP, a CSV with malformed rows, reruns that issue nothing, and a run killed with
//! SIGKILL and resumed, after which every person holds exactly one working token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_certs::CertificateAuthority;
use rampart_client::GatewayClient;
use rampart_core::secret::Sensitive;
use rampart_tests::gateway::{GatewayProc, GatewaySpec};
use rampart_tests::provisioner::{ProvisionerProc, secret_of};
use rampart_tests::slapd::{SERVICE_DN, SERVICE_PASSWORD, Slapd, generated_people_ldif, generated_person};
use rampart_tests::{bin, now, oathtool_code, output_text, require_tool};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Bank {
    _slapd: Slapd,
    _dir: tempfile::TempDir,
    gw: GatewayProc,
    prov: ProvisionerProc,
}

fn bank(people: usize) -> Bank {
    let slapd = Slapd::start_with(None, &generated_people_ldif(people), false);
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("bind-password");
    std::fs::write(&password_file, SERVICE_PASSWORD).unwrap();
    let directory = format!(
        "[directory]\nkind = \"ldap\"\nurls = [\"{}\"]\nbind_dn = \"{SERVICE_DN}\"\nbind_password_file = \"{}\"\n\
         user_base = \"ou=people,dc=bank,dc=example\"\ngroup_base = \"ou=groups,dc=bank,dc=example\"\n",
        slapd.url,
        password_file.display()
    );
    let ca = CertificateAuthority::create("Rampart Test").unwrap();
    let gw = GatewayProc::start(
        ca,
        &GatewaySpec {
            directory: &directory,
            ..GatewaySpec::default()
        },
    );
    let prov = ProvisionerProc::start_for(&gw, &directory, "");
    Bank {
        _slapd: slapd,
        _dir: dir,
        gw,
        prov,
    }
}

fn csv_of(range: std::ops::Range<usize>) -> String {
    let mut text = String::from("username,email,group\n");
    for i in range {
        let (uid, _, _) = generated_person(i);
        text.push_str(&format!("{uid},{uid}@bank.example,branch-{}\n", i % 7));
    }
    text
}

fn enrol(prov: &ProvisionerProc, csv: &Path, out: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec![
        "--output",
        "json",
        "enrol",
        "--csv",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let result = prov.rampart(&args);
    let summary =
        serde_json::from_slice(&result.stdout).unwrap_or_else(|_| panic!("no JSON summary: {}", output_text(&result)));
    (result.status.code(), summary)
}

/// Live (pending or active) token ids per username, from the API.
fn live_tokens(prov: &ProvisionerProc) -> HashMap<String, Vec<Value>> {
    let mut by_user: HashMap<String, Vec<Value>> = HashMap::new();
    for token in prov.rampart_json(&["token", "list"]).as_array().unwrap() {
        if matches!(token["state"].as_str(), Some("pending" | "active")) {
            by_user
                .entry(token["username"].as_str().unwrap().to_owned())
                .or_default()
                .push(token.clone());
        }
    }
    by_user
}

fn manifest(out: &Path) -> Vec<Value> {
    serde_json::from_str::<Value>(&std::fs::read_to_string(out.join("manifest.json")).unwrap())
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn seven_hundred_people_from_a_csv_with_five_bad_rows_then_reruns_issue_nothing() {
    let bank = bank(700);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("people.csv");
    let mut text = csv_of(0..700);
    // Five malformed rows among the good ones, at known lines.
    let lines: Vec<&str> = text.lines().collect();
    let mut with_bad: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    with_bad.insert(11, ",nobody@bank.example,staff".into()); // line 12: empty username
    with_bad.insert(101, "user90001,user90001@bank.example,staff,extra".into()); // line 102: four fields
    with_bad.insert(301, "user90002,not-an-address,staff".into()); // line 302: bad email
    with_bad.insert(401, "user00005,again@bank.example,staff".into()); // line 402: duplicate of line 7
    with_bad.insert(601, "ghost,ghost@bank.example,staff".into()); // line 602: not in the directory
    text = with_bad.join("\n") + "\n";
    std::fs::write(&csv, &text).unwrap();

    let out = dir.path().join("letters");
    let (code, summary) = enrol(&bank.prov, &csv, &out, &[]);
    assert_eq!(code, Some(10), "bad rows make the exit code 10: {summary}");
    assert_eq!(summary["issued"], 700, "{summary}");
    let refused: Vec<(u64, String)> = summary["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["reason"].as_str().unwrap().to_owned()))
        .collect();
    let refused_lines: Vec<u64> = refused.iter().map(|(l, _)| *l).collect();
    assert_eq!(refused_lines, [12, 102, 302, 402, 602], "{refused:?}");
    assert!(refused[3].1.contains("line 7"), "{refused:?}");
    assert!(refused[4].1.contains("directory"), "{refused:?}");

    let images = std::fs::read_dir(out.join("qr")).unwrap().count();
    assert_eq!(images, 700);
    let csv_manifest = std::fs::read_to_string(out.join("manifest.csv")).unwrap();
    assert_eq!(csv_manifest.lines().count(), 701);
    assert!(csv_manifest.starts_with("username,display_name,email,group,token_id,issued_at,qr_file\n"));
    let entries = manifest(&out);
    assert_eq!(entries.len(), 700);
    assert!(!csv_manifest.contains("otpauth") && !csv_manifest.contains("secret="));
    let live = live_tokens(&bank.prov);
    assert_eq!(live.len(), 700);
    for entry in &entries {
        let tokens = &live[entry["username"].as_str().unwrap()];
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0]["token_id"], entry["token_id"]);
        assert_eq!(tokens[0]["delivered"], true);
        assert!(out.join(entry["qr_file"].as_str().unwrap()).exists());
    }

    // The same folder again: everyone is already there.
    let (code, again) = enrol(&bank.prov, &csv, &out, &[]);
    assert_eq!(code, Some(10));
    assert_eq!(
        (again["issued"].as_u64(), again["already_in_folder"].as_u64()),
        (Some(0), Some(700)),
        "{again}"
    );
    // A new folder: everyone is already enrolled; nothing is reissued.
    let (_, fresh) = enrol(&bank.prov, &csv, &dir.path().join("other"), &[]);
    assert_eq!(
        (fresh["issued"].as_u64(), fresh["already_enrolled"].as_u64()),
        (Some(0), Some(700)),
        "{fresh}"
    );
    let after = live_tokens(&bank.prov);
    for entry in &entries {
        assert_eq!(
            after[entry["username"].as_str().unwrap()][0]["token_id"],
            entry["token_id"]
        );
    }
    let all = bank.prov.rampart_json(&["token", "list"]);
    assert_eq!(all.as_array().unwrap().len(), 700, "no token was issued twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_mid_way_resumes_and_everyone_holds_one_working_token() {
    require_tool("zbarimg", "zbar-tools");
    let people = 300;
    let bank = bank(people);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("people.csv");
    std::fs::write(&csv, csv_of(0..people)).unwrap();
    let out = dir.path().join("letters");

    let mut child = Command::new(bin("rampart"))
        .args(["enrol", "--batch", "10", "--csv"])
        .arg(&csv)
        .arg("--out")
        .arg(&out)
        .env("RAMPART_URL", &bank.prov.url)
        .env("RAMPART_API_KEY", &bank.prov.admin_key)
        .env("RAMPART_CA", &bank.prov.ca_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal = out.join("journal.jsonl");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let written = std::fs::read_to_string(&journal).map_or(0, |j| j.lines().count());
        if written >= 40 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "the run made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = std::fs::read_to_string(&journal).unwrap().lines().count();
    assert!(before < people, "the run was stopped part-way ({before} written)");

    let (code, summary) = enrol(&bank.prov, &csv, &out, &[]);
    assert_eq!(code, Some(0), "{summary}");
    assert_eq!(
        summary["already_in_folder"].as_u64().unwrap() + summary["issued"].as_u64().unwrap(),
        people as u64
    );

    let entries = manifest(&out);
    assert_eq!(entries.len(), people);
    let live = live_tokens(&bank.prov);
    assert_eq!(live.len(), people);
    for entry in &entries {
        let tokens = &live[entry["username"].as_str().unwrap()];
        assert_eq!(tokens.len(), 1, "exactly one live token for {entry}");
        assert_eq!(
            tokens[0]["token_id"], entry["token_id"],
            "the letter's token is the live one"
        );
        assert_eq!(tokens[0]["delivered"], true);
    }
    // The letters work: the first person of the killed run and the last of the resumed one log
    // in with codes from their QR images.
    for entry in [&entries[0], &entries[people - 1]] {
        let decoded = Command::new("zbarimg")
            .args(["--raw", "-q"])
            .arg(out.join(entry["qr_file"].as_str().unwrap()))
            .output()
            .unwrap();
        let uri = String::from_utf8(decoded.stdout).unwrap();
        let username = entry["username"].as_str().unwrap();
        let index: usize = username.trim_start_matches("user").parse().unwrap();
        let (_, password, _) = generated_person(index);
        let client = GatewayClient::connect(&bank.gw.addr, &bank.gw.ca_pem).await.unwrap();
        let code = oathtool_code(&secret_of(uri.trim_end()), now());
        client
            .login(username, Sensitive::new(password), Sensitive::new(code))
            .await
            .unwrap_or_else(|e| panic!("{username} cannot log in: {e:?}"));
        client.close().await;
    }
}

/// A bank whose `tellers` group lists, beside two enabled people with `mail`, someone already
/// enrolled, a disabled account, a device, an entry outside `user_base` and a dangling DN.
fn tellers_bank() -> Bank {
    use rampart_tests::slapd::BASE;
    let extra = format!(
        "dn: uid=dave,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: dave\ncn: Dave Teller\nsn: Teller\n\
         mail: dave@bank.example\nentryUUID: 6f1c2a4e-0000-4c4c-8a8a-0000000da7e0\n\n\
         dn: uid=erin,ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: erin\ncn: Erin Teller\nsn: Teller\n\
         mail: erin@bank.example\nentryUUID: 6f1c2a4e-0000-4c4c-8a8a-0000000e5170\n\n\
         dn: cn=teller-printer,ou=people,{BASE}\nobjectClass: device\ncn: teller-printer\n\n\
         dn: cn=tellers,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: tellers\n\
         member: uid=dave,ou=people,{BASE}\nmember: uid=erin,ou=people,{BASE}\n\
         member: uid=carol,ou=people,{BASE}\nmember: cn=teller-printer,ou=people,{BASE}\n\
         member: cn=rampart,ou=services,{BASE}\nmember: uid=ghost,ou=people,{BASE}\n\n"
    );
    let slapd = Slapd::start_with(None, &extra, false);
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("bind-password");
    std::fs::write(&password_file, SERVICE_PASSWORD).unwrap();
    let directory = format!(
        "[directory]\nkind = \"ldap\"\nurls = [\"{}\"]\nbind_dn = \"{SERVICE_DN}\"\nbind_password_file = \"{}\"\n\
         user_base = \"ou=people,dc=bank,dc=example\"\ngroup_base = \"ou=groups,dc=bank,dc=example\"\n\
         disabled_when = [{{ attribute = \"employeeType\", equals = \"disabled\" }}]\n",
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
        gw,
        prov,
    }
}

/// The reason given for `name` among the summary's skipped people.
fn skipped_reason(summary: &Value, name: &str) -> String {
    summary["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["username"].as_str().is_some_and(|u| u.contains(name)))
        .unwrap_or_else(|| panic!("{name} is not named among the skipped: {summary}"))["reason"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_run_names_everyone_without_a_token_and_why_and_fills_emails_from_the_directory() {
    let bank = tellers_bank();
    let dir = tempfile::tempdir().unwrap();
    // Erin got her token at the desk last week.
    let erin = bank.prov.rampart_json(&["token", "issue", "erin"]);
    let erin_token = erin["token_id"].as_str().unwrap().to_owned();

    let out = dir.path().join("letters");
    let result = bank.prov.rampart(&[
        "--output",
        "json",
        "enrol",
        "--group",
        "tellers",
        "--out",
        out.to_str().unwrap(),
    ]);
    let summary: Value =
        serde_json::from_slice(&result.stdout).unwrap_or_else(|_| panic!("no JSON summary: {}", output_text(&result)));
    assert_eq!(result.status.code(), Some(0), "nobody was refused: {summary}");
    assert_eq!(summary["issued"], 1, "only Dave gets a token: {summary}");
    assert_eq!(summary["already_enrolled"], 1, "{summary}");
    assert_eq!(summary["disabled"], 1, "{summary}");

    // Everyone the group lists and who got no token is named, with why.
    let erin_reason = skipped_reason(&summary, "erin");
    assert!(erin_reason.contains("already enrolled"), "{erin_reason}");
    assert!(
        erin_reason.contains(&erin_token),
        "names the earlier token: {erin_reason}"
    );
    assert!(
        erin_reason.contains("issued 20"),
        "says when it was issued: {erin_reason}"
    );
    assert!(erin_reason.contains("by admin"), "and by whom: {erin_reason}");
    let erin_entry = summary["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["username"] == "erin")
        .unwrap();
    assert_eq!(erin_entry["kind"], "already_enrolled");
    assert_eq!(erin_entry["token_id"], erin_token.as_str());
    assert!(erin_entry["issued_at"].as_i64().is_some(), "{erin_entry}");
    assert_eq!(skipped_reason(&summary, "carol"), "disabled in the directory");
    assert!(
        skipped_reason(&summary, "teller-printer").contains("not a person"),
        "{summary}"
    );
    assert!(
        skipped_reason(&summary, "cn=rampart").contains("outside user_base"),
        "{summary}"
    );
    assert!(
        skipped_reason(&summary, "ghost").contains("does not exist"),
        "{summary}"
    );
    assert_eq!(summary["skipped"].as_array().unwrap().len(), 5, "{summary}");

    // The manifest has Dave's address from the directory's mail attribute.
    let csv_manifest = std::fs::read_to_string(out.join("manifest.csv")).unwrap();
    let dave_line = csv_manifest
        .lines()
        .find(|l| l.starts_with("dave,"))
        .unwrap_or_else(|| panic!("{csv_manifest}"));
    assert!(dave_line.contains(",dave@bank.example,"), "{dave_line}");
    assert_eq!(manifest(&out)[0]["email"], "dave@bank.example");

    // The text report says the same to a person at the desk.
    let text = bank
        .prov
        .rampart(&["enrol", "--group", "tellers", "--out", out.to_str().unwrap()]);
    let said = output_text(&text);
    println!("{said}");
    assert!(
        said.contains("1 already in this folder; 1 disabled in the directory."),
        "{said}"
    );
    assert!(said.contains("carol: disabled in the directory"), "{said}");
    assert!(
        said.contains(&format!("erin: already enrolled: token {erin_token}")),
        "{said}"
    );
    assert!(
        said.contains("dave: already in this folder from an earlier run: qr/dave.png"),
        "{said}"
    );

    // A CSV naming the disabled person and someone without an address in the file.
    let csv = dir.path().join("people.csv");
    std::fs::write(&csv, "username,email,group\ncarol,,tellers\nalice,,staff\n").unwrap();
    let (code, summary) = enrol(&bank.prov, &csv, &dir.path().join("csv-letters"), &[]);
    assert_eq!(code, Some(0), "{summary}");
    assert_eq!(summary["disabled"], 1, "{summary}");
    assert_eq!(
        skipped_reason(&summary, "carol"),
        "disabled in the directory: no token issued"
    );
    assert_eq!(summary["issued"], 1, "{summary}");
    let none: Vec<Value> = manifest(&dir.path().join("csv-letters"));
    assert_eq!(none[0]["username"], "alice");
    assert_eq!(
        none[0]["email"],
        Value::Null,
        "alice has no mail in the directory: {none:?}"
    );
}
