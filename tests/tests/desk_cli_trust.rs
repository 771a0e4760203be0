//! The desk CLI's trust and file messages against a real provisioner: a CA file that did not
//! sign the provisioner's certificate is named, said to be the wrong one, and exits 7 (not 6,
//! "unavailable"); a missing CA file is named once with its OS error once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_certs::CertificateAuthority;
use rampart_tests::provisioner::ProvisionerProc;
use rampart_tests::{bin, output_text};
use std::process::{Command, Output, Stdio};

/// `rampart ARGS` against `prov` with `RAMPART_CA` set to `ca` (the flags in `args` win).
fn rampart_with_ca(prov: &ProvisionerProc, ca: &std::path::Path, args: &[&str]) -> Output {
    Command::new(bin("rampart"))
        .args(args)
        .env("RAMPART_URL", &prov.url)
        .env("RAMPART_API_KEY", &prov.admin_key)
        .env("RAMPART_CA", ca)
        .env_remove("RAMPART_LOG_FORMAT")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_wrong_ca_is_named_and_said_not_to_have_signed_the_provisioners_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    CertificateAuthority::create("Rampart Test")
        .unwrap()
        .save(&ca_dir)
        .unwrap();
    let prov = ProvisionerProc::start(&dir.path().join("state"), &ca_dir, "", "");

    // Another organisation's CA, as a desk agent with the wrong file would have.
    let other_dir = dir.path().join("other-ca");
    CertificateAuthority::create("Someone Else")
        .unwrap()
        .save(&other_dir)
        .unwrap();
    let wrong = other_dir.join("ca.pem");

    for (how, out) in [
        ("RAMPART_CA", rampart_with_ca(&prov, &wrong, &["token", "list"])),
        (
            "--ca",
            rampart_with_ca(
                &prov,
                &prov.ca_file,
                &["--ca", wrong.to_str().unwrap(), "token", "list"],
            ),
        ),
    ] {
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(7), "a trust failure exits 7: {text}");
        assert!(
            text.contains(&format!(
                "the provisioner at {} presented a certificate not signed by the CA in {}",
                prov.url,
                wrong.display()
            )),
            "the message names the server and the CA file: {text}"
        );
        assert!(
            text.contains(&format!("(from {how})")),
            "and where the file was named: {text}"
        );
        assert!(
            !text.contains("cannot reach"),
            "a trust failure is not an unreachable server: {text}"
        );
        assert_eq!(text.matches(&prov.url).count(), 1, "the URL is said once: {text}");
    }

    // The right CA still works.
    let out = rampart_with_ca(&prov, &prov.ca_file, &["token", "list"]);
    assert!(out.status.success(), "{}", output_text(&out));
}

#[test]
fn a_missing_ca_file_is_named_once_with_its_os_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let out = Command::new(bin("rampart"))
        .args(["--ca", missing.to_str().unwrap(), "token", "list"])
        .env("RAMPART_URL", "https://127.0.0.1:9")
        .env("RAMPART_API_KEY", "not-a-real-key")
        .env_remove("RAMPART_CA")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(
        text.matches(missing.to_str().unwrap()).count(),
        1,
        "the path is said once: {text}"
    );
    assert_eq!(
        text.matches("No such file or directory").count(),
        1,
        "the OS error is said once: {text}"
    );
    assert!(text.contains("--ca"), "it says which setting named the file: {text}");

    // A sibling: `rampart profile` reading the same missing CA file.
    let out = Command::new(bin("rampart"))
        .args([
            "--ca",
            missing.to_str().unwrap(),
            "profile",
            "create",
            "--gateway",
            "gw.bank.example:4433",
        ])
        .env_remove("RAMPART_CA")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert_eq!(
        text.matches(missing.to_str().unwrap()).count(),
        1,
        "the path is said once: {text}"
    );
    assert_eq!(
        text.matches("No such file or directory").count(),
        1,
        "the OS error is said once: {text}"
    );
}
