//! The desk CLI's results piped into a reader that stops early (`rampart report | head -1`,
//! `| true`): the command ends quietly with status 0. Before, it panicked ("failed printing to
//! stdout: Broken pipe") and exited 101.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_tests::bin;
use rampart_tests::provisioner::ProvisionerProc;
use std::process::{Command, Stdio};

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    rampart_certs::CertificateAuthority::create("Desk Org")
        .unwrap()
        .save(&ca_dir)
        .unwrap();
    let prov = ProvisionerProc::start(&dir.path().join("state"), &ca_dir, "", "");
    for args in [&["report"][..], &["token", "list"], &["operator", "list"]] {
        let mut child = Command::new(bin("rampart"))
            .args(args)
            .env("RAMPART_URL", &prov.url)
            .env("RAMPART_API_KEY", &prov.admin_key)
            .env("RAMPART_CA", &prov.ca_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before anything is written
        let out = child.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "rampart {args:?}: {said}");
        assert!(!said.contains("panicked"), "rampart {args:?}: {said}");
    }
}
