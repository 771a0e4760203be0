//! End to end: the profile and the organisation CA as an employee meets them — a profile line
//! cut short when copied is called cut short, with its length and what to do; the client trusts
//! its profile's CA whatever `RAMPART_CA` (the service desk's variable) says, takes another only
//! from `--ca` or `RAMPART_CONNECT_CA`, and `doctor` names the CA it used and where from.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_tests::gateway::LdapLab;
use rampart_tests::slapd::ALICE;
use rampart_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `rampart profile create` for `gateway` and the CA in `ca_file`: the one-line form.
fn profile_line(gateway: &str, ca_file: &Path) -> String {
    let out = Command::new(bin("rampart"))
        .arg("--ca")
        .arg(ca_file)
        .args(["profile", "create", "--user", "alice", "--organisation", "Test Bank"])
        .args(["--gateway", gateway])
        .env_remove("RAMPART_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn login(mut cmd: Command, secret: &str) -> Output {
    cmd.args(["login", "--password-stdin", "--otp", &oathtool_code(secret, now())]);
    run_with_stdin(cmd, &format!("{}\n", ALICE.password))
}

/// A CA the gateway does not use, written to `dir`.
fn other_ca(dir: &Path) -> PathBuf {
    let ca = rampart_certs::CertificateAuthority::create("Someone Else").unwrap();
    let path = dir.join("other-ca.pem");
    std::fs::write(&path, ca.cert_pem()).unwrap();
    path
}

#[test]
fn a_profile_line_cut_short_says_so_with_its_length_and_to_copy_all_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("org-ca.pem");
    std::fs::write(
        &ca,
        rampart_certs::CertificateAuthority::create("Test Bank")
            .unwrap()
            .cert_pem(),
    )
    .unwrap();
    let line = profile_line("gw.bank.example:4433", &ca);
    assert!(line.len() > 600, "{line}");
    let home = dir.path().join("home");

    // Pasted as an argument, and through standard input, cut at character 438.
    let cut = &line[..438];
    let by_argument = rampart_connect(&home).args(["setup", cut]).output().unwrap();
    let mut stdin = rampart_connect(&home);
    stdin.args(["setup", "-"]);
    let by_stdin = run_with_stdin(stdin, &format!("{cut}\n"));
    for out in [by_argument, by_stdin] {
        assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains(
                "This profile line is cut short (438 characters): copy the whole line from your enrolment \
                 letter or e-mail and try again."
            ),
            "{said}"
        );
        assert!(!said.contains("EOF") && !said.contains("column"), "{said}");
    }
    assert!(!home.join("profile.json").exists(), "nothing saved");

    // Cut one character past a group of four of the encoded part, where it does not even decode.
    let end = "rampart-profile:".len() + 421;
    let out = rampart_connect(&home).args(["setup", &line[..end]]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("cut short ({end} characters)")),
        "{}",
        output_text(&out)
    );

    // The whole line works.
    let out = rampart_connect(&home).args(["setup", &line]).output().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn rampart_ca_does_not_replace_the_profiles_ca_and_doctor_names_the_ca_used() {
    let lab = LdapLab::start("", "").await;
    let secret = lab.gw.enrol(ALICE.uuid, ALICE.uid).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("org-ca.pem");
    std::fs::write(&good, &lab.gw.ca_pem).unwrap();
    let wrong = other_ca(dir.path());
    let home = dir.path().join("home");
    let out = rampart_connect(&home)
        .args(["setup", &profile_line(&lab.gw.addr, &good)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));

    // A desk agent's shell exports the desk CLI's RAMPART_CA, pointing at another CA: the
    // client keeps its profile's.
    let mut cmd = rampart_connect(&home);
    cmd.env("RAMPART_CA", &wrong);
    let out = login(cmd, &secret);
    assert!(out.status.success(), "{}", output_text(&out));
    let out = rampart_connect(&home)
        .env("RAMPART_CA", &wrong)
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    let profile = home.join("profile.json");
    assert!(
        said.contains("[ ok ] organisation CA: ")
            && said.contains(&format!("from your profile ({})", profile.display())),
        "{said}"
    );
    assert!(
        said.contains("[note] RAMPART_CA is set but rampart-connect does not use it; RAMPART_CONNECT_CA or --ca override the profile's CA"),
        "{said}"
    );
    assert!(
        said.contains("its certificate is signed by your organisation's CA, from your profile"),
        "{said}"
    );

    // Without RAMPART_CA, no note.
    let out = rampart_connect(&home).arg("doctor").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("[note]"));

    // --ca names the wrong CA: doctor says it used --ca, and that the gateway does not chain to it.
    let out = rampart_connect(&home)
        .arg("--ca")
        .arg(&wrong)
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    let flag = format!("--ca {}", wrong.display());
    assert!(
        said.contains("organisation CA: ") && said.contains("Someone Else"),
        "{said}"
    );
    assert!(said.contains(&format!("from {flag}")), "{said}");
    assert!(
        said.contains(&format!(
            "[FAIL] {}: its certificate is not trusted by the CA from {flag}",
            lab.gw.addr
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "fix: The CA given by {flag} is not the one this gateway uses. Leave it out"
        )),
        "{said}"
    );

    // So does the client's own variable.
    let out = rampart_connect(&home)
        .env("RAMPART_CONNECT_CA", &wrong)
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!(
            "not trusted by the CA from RAMPART_CONNECT_CA={}",
            wrong.display()
        )),
        "{said}"
    );
}
