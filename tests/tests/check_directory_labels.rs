//! `rampart-gateway check-directory` says the same things with the same labels whichever
//! directory answers and whatever it finds: the first line is `user:` and the second `found:`
//! for an LDAP person, an unknown name, a disabled account and a person of the local
//! directory. Real `rampart-gateway` binaries, real slapd.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_tests::gateway::{GatewayProc, GatewaySpec, LdapLab};
use rampart_tests::slapd::{ALICE, CAROL};
use rampart_tests::{bin, run_with_stdin};
use std::process::{Command, Stdio};

const POLICY: &str = "[[resource]]\nname = \"app\"\ntarget = \"{echo}\"\nallow_groups = [\"staff\"]\n";

/// The output's labels, in order.
fn labels(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.split_once(':').map(|(label, _)| label.to_owned()))
        .collect()
}

fn check_without_password(gw: &GatewayProc, user: &str) -> std::process::Output {
    Command::new(bin("rampart-gateway"))
        .args(["check-directory", "--no-password", "--user", user, "--config"])
        .arg(gw.config_path())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_check_directory_output_starts_with_the_same_labels() {
    let lab = LdapLab::start(POLICY, "").await;
    let with_password = |user: &str, password: &str| {
        let mut cmd = Command::new(bin("rampart-gateway"));
        cmd.args(["check-directory", "--password-stdin", "--user", user, "--config"])
            .arg(lab.gw.config_path());
        run_with_stdin(cmd, &format!("{password}\n"))
    };
    let found = with_password(ALICE.uid, ALICE.password);
    assert!(found.status.success());
    assert_eq!(
        labels(&found.stdout),
        ["user", "found", "dn", "stable id", "groups", "enabled", "password"]
    );
    let unknown = check_without_password(&lab.gw, "nobody");
    assert!(!unknown.status.success());
    assert_eq!(labels(&unknown.stdout), ["user", "found"]);
    let disabled = with_password(CAROL.uid, "wrong");
    assert!(!disabled.status.success());
    let text = String::from_utf8_lossy(&disabled.stdout).into_owned();
    assert!(text.contains("enabled:   no (disabled in the directory)"), "{text}");
    assert!(!text.contains(CAROL.password), "{text}");

    // The local directory: the same labels, in the same order, without the LDAP-only `dn`.
    let local = GatewayProc::start(GatewayProc::new_ca(), &GatewaySpec::default());
    local.enrol("local-0001", "dora").await;
    let dora = check_without_password(&local, "dora");
    assert!(
        dora.status.success(),
        "{}{}",
        String::from_utf8_lossy(&dora.stdout),
        String::from_utf8_lossy(&dora.stderr)
    );
    assert_eq!(
        labels(&dora.stdout),
        ["user", "found", "stable id", "groups", "enabled"]
    );
    let nobody = check_without_password(&local, "nobody");
    assert!(!nobody.status.success());
    assert_eq!(labels(&nobody.stdout), ["user", "found"]);
}
