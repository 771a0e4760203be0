//! `rampart profile create` run as the real binary: a gateway's own certificate given as the
//! CA is refused (a profile made with it trusts no gateway), the organisation CA makes a line
//! `rampart-connect setup` takes, and the enrolment address goes into it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_certs::CertificateAuthority;
use rampart_core::profile::Profile;
use std::process::{Command, Output};

fn create(ca: &std::path::Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("--ca")
        .arg(ca)
        .args([
            "profile",
            "create",
            "--gateway",
            "gw1.bank.example:4433",
            "--user",
            "alice",
        ])
        .args(extra)
        .env_remove("RAMPART_CA")
        .output()
        .unwrap()
}

#[test]
fn a_server_certificate_is_refused_as_the_ca_and_the_enrolment_address_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::create("Bank").unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let (gw_cert, gw_key) = (dir.path().join("gateway.pem"), dir.path().join("gateway.key"));
    ca.issue_server(&["gw1.bank.example".into()])
        .unwrap()
        .save(&gw_cert, &gw_key)
        .unwrap();

    let refused = create(&gw_cert, &[]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("not the organisation CA") && said.contains("gw1.bank.example"),
        "{said}"
    );
    assert!(refused.stdout.is_empty());

    let bad_url = create(&ca_file, &["--enrol-url", "http://prov:8443"]);
    assert_eq!(bad_url.status.code(), Some(1), "{bad_url:?}");

    let made = create(&ca_file, &["--enrol-url", "https://prov.bank.example:8443/"]);
    assert!(made.status.success(), "{made:?}");
    let line = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    let profile = Profile::parse(&line).unwrap();
    assert_eq!(profile.enrol_url.as_deref(), Some("https://prov.bank.example:8443"));
    assert_eq!(profile.ca_pem, ca.cert_pem());
}
