//! `check-config` of the gateway and the provisioner finds every problem that would stop `run`
//! (missing and mismatched files, unreadable secrets, a policy with several faults, values out
//! of range) at once, each line naming its setting, and exits 78; `run` refuses the same
//! config the same way; a config `check-config` accepts also starts, and its log written to a
//! file carries no terminal colour codes.
//!
//! Before, `check-config` read only the config and the policy: with `cert`, `key` and
//! `bind_password_file` pointing at missing files it said "ok", and `run` then failed on the
//! first of them with a message that did not say which setting was wrong and said the
//! operating system's error twice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_certs::CertificateAuthority;
use rampart_tests::bin;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const GOOD_POLICY: &str = "[[resource]]\nname = 'intranet'\ntarget = '127.0.0.1:9'\nallow_groups = ['staff']\n";

fn gateway(args: &[&str], config: &Path) -> Output {
    Command::new(bin("rampart-gateway"))
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The error lines of standard error (warnings left out), without the `error: ` each starts
/// with.
fn errors(out: &Output) -> Vec<String> {
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .filter(|l| !l.contains("warning: "))
        .map(|l| {
            assert!(l.contains("error: "), "every line is an error: {text}");
            l.split_once("error: ").unwrap().1.to_owned()
        })
        .collect()
}

/// The setting each problem names: the text before its first `: `.
fn settings(problems: &[String]) -> Vec<&str> {
    problems.iter().map(|p| p.split(": ").next().unwrap()).collect()
}

fn save_pair(ca: &CertificateAuthority, dir: &Path, name: &str) {
    ca.issue_server(&["127.0.0.1".into()])
        .unwrap()
        .save(&dir.join(format!("{name}.pem")), &dir.join(format!("{name}.key")))
        .unwrap();
}

#[test]
fn gateway_check_config_reports_every_problem_at_once_and_an_accepted_config_starts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = CertificateAuthority::create("Check Org").unwrap();
    save_pair(&ca, d, "a");
    save_pair(&ca, d, "b");
    // A policy with three faults of different kinds: all three must be reported.
    std::fs::write(
        d.join("policy.toml"),
        "[[resource]]\nname = 'intranet'\ntarget = '127.0.0.1:9'\nallowed_groups = ['staff']\n\
         [[rule]]\nname = 'office'\nresources = ['wiki']\ngroups = ['staff']\ntime_zone = 'UTC'\n\
         windows = ['Mon-Fry 08:00-18:00']\n",
    )
    .unwrap();
    let config = d.join("gateway.toml");
    std::fs::write(
        &config,
        "listen = '127.0.0.1:0'\nstate_dir = 'state'\ncert = 'gw/gateway.pem'\nkey = 'gw/gateway.key'\n\
         policy = 'policy.toml'\n[settings]\nmax_token_failures = 0\n\
         [directory]\nkind = 'ldap'\nurls = ['ldaps://127.0.0.1:1']\nca_file = 'a.key'\nbind_dn = 'cn=svc'\n\
         bind_password_file = 'secrets/bind.pw'\nuser_base = 'dc=x'\ngroup_base = 'dc=x'\n",
    )
    .unwrap();

    let check = gateway(&["check-config"], &config);
    assert_eq!(check.status.code(), Some(78), "{check:?}");
    assert!(check.stdout.is_empty(), "no \"ok\" on a config with problems");
    let problems = errors(&check);
    let named = settings(&problems);
    for setting in ["cert", "key", "directory.ca_file", "directory.bind_password_file"] {
        assert!(named.contains(&setting), "{setting} is named: {problems:#?}");
    }
    assert!(
        problems.iter().any(|p| p.contains("settings.max_token_failures")),
        "{problems:#?}"
    );
    let policy: Vec<&String> = problems.iter().filter(|p| p.starts_with("policy: ")).collect();
    assert_eq!(
        policy.len(),
        3,
        "unknown field, unknown resource and bad day at once: {problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("cert: ") && p.contains("gw/gateway.pem"))
    );
    for p in &problems {
        assert!(p.matches("No such file").count() <= 1, "said once: {p}");
    }
    // `run` refuses the same config with the same list and starts nothing.
    let run = gateway(&["run"], &config);
    assert_eq!(run.status.code(), Some(78), "{run:?}");
    assert_eq!(errors(&run), problems);
    assert!(!d.join("state").exists(), "nothing was created");
    // A mistyped state folder would have started a new, empty store.
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("state_dir: ") && p.contains("does not exist")),
        "{problems:#?}"
    );
    std::fs::create_dir(d.join("state")).unwrap();

    // A key that belongs to another certificate.
    std::fs::write(d.join("policy.toml"), GOOD_POLICY).unwrap();
    std::fs::write(
        &config,
        "listen = '127.0.0.1:0'\nstate_dir = 'state'\ncert = 'a.pem'\nkey = 'b.key'\npolicy = 'policy.toml'\n",
    )
    .unwrap();
    let check = gateway(&["check-config"], &config);
    assert_eq!(check.status.code(), Some(78), "{check:?}");
    let problems = errors(&check);
    assert_eq!(settings(&problems), ["key"], "{problems:#?}");
    assert!(
        problems[0].contains("does not belong to the certificate"),
        "{problems:#?}"
    );

    // On the provisioner's host the organisation CA is in the state folder: a certificate from
    // another CA (a dev one) is named, since every client would refuse it.
    std::fs::create_dir(d.join("state").join("ca")).unwrap();
    let other = CertificateAuthority::create("Dev Org").unwrap();
    std::fs::write(d.join("state").join("ca").join("ca.pem"), other.cert_pem()).unwrap();
    std::fs::write(
        &config,
        "listen = '127.0.0.1:0'\nstate_dir = 'state'\ncert = 'a.pem'\nkey = 'a.key'\npolicy = 'policy.toml'\n",
    )
    .unwrap();
    let check = gateway(&["check-config"], &config);
    assert_eq!(check.status.code(), Some(78), "{check:?}");
    let problems = errors(&check);
    assert_eq!(settings(&problems), ["cert"], "{problems:#?}");
    assert!(
        problems[0].contains("not accepted under the organisation CA"),
        "{problems:#?}"
    );
    std::fs::write(d.join("state").join("ca").join("ca.pem"), ca.cert_pem()).unwrap();

    // The right key: accepted, and it starts.
    std::fs::write(
        &config,
        "listen = '127.0.0.1:0'\nstate_dir = 'state'\ncert = 'a.pem'\nkey = 'a.key'\npolicy = 'policy.toml'\n",
    )
    .unwrap();
    let check = gateway(&["check-config"], &config);
    assert!(check.status.success(), "{check:?}");
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        format!("{}: ok", config.display())
    );
    let log = d.join("gateway.log");
    let mut child = Command::new(bin("rampart-gateway"))
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let text = wait_for(&log, "gateway ready", &mut child);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes in a log written to a file: {text:?}"
    );
}

#[test]
fn provisioner_check_config_reports_every_problem_at_once_and_an_initialised_one_starts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = CertificateAuthority::create("Check Org").unwrap();
    save_pair(&ca, d, "a");
    std::fs::create_dir(d.join("state")).unwrap();
    let config = d.join("provisioner.toml");
    std::fs::write(
        &config,
        "listen = '127.0.0.1:0'\nstate_dir = 'state'\ncert = 'tls/provisioner.pem'\nkey = 'a.pem'\n\
         [settings]\nmax_token_failures = 0\n\
         [store]\nkek_file = 'keys/kek.hex'\n\
         [directory]\nkind = 'ldap'\nurls = ['ldap://127.0.0.1:1']\nbind_dn = 'cn=svc'\n\
         bind_password_env = 'RAMPART_TEST_UNSET_PASSWORD'\nuser_base = 'dc=x'\ngroup_base = 'dc=x'\n",
    )
    .unwrap();
    let check = Command::new(bin("rampart-provisioner"))
        .args(["check-config", "--config"])
        .arg(&config)
        .env_remove("RAMPART_KEK")
        .env_remove("RAMPART_TEST_UNSET_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(78), "{check:?}");
    let problems = errors(&check);
    let named = settings(&problems);
    for setting in ["cert", "key", "store.kek_file", "directory.bind_password_env"] {
        assert!(named.contains(&setting), "{setting} is named: {problems:#?}");
    }
    assert!(
        problems.iter().any(|p| p.contains("settings.max_token_failures")),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("key: ") && p.contains("no private key")),
        "a certificate given as the key: {problems:#?}"
    );

    // Without a key-encryption key the state folder must hold master.key.
    std::fs::write(
        &config,
        "listen = '127.0.0.1:0'\nstate_dir = 'state'\ncert = 'a.pem'\nkey = 'a.key'\n",
    )
    .unwrap();
    let check = Command::new(bin("rampart-provisioner"))
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("RAMPART_KEK")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(78), "{check:?}");
    let problems = errors(&check);
    assert_eq!(settings(&problems), ["state_dir"], "{problems:#?}");
    assert!(problems[0].contains("rampart-provisioner init"), "{problems:#?}");

    // An initialised provisioner: accepted, and it starts.
    let init = Command::new(bin("rampart-provisioner"))
        .args([
            "init",
            "--listen",
            "127.0.0.1:0",
            "--organisation",
            "Bank",
            "--dns-name",
        ])
        .args(["provisioner.bank.example", "--state-dir"])
        .arg(d.join("p"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    // `init` leads on to the gateway's certificate, with the CA it just made.
    let said = String::from_utf8_lossy(&init.stdout);
    let ca_dir = d.join("p").join("ca");
    assert!(
        said.contains(&format!("rampart cert issue --ca-dir {}", ca_dir.display())),
        "{said}"
    );
    // The CA carries the organisation's name (employees see it in `doctor`), and the server
    // certificate is made out to the name clients dial, not to localhost.
    let read = |path: &Path| rampart_certs::describe(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ca_cert = read(&ca_dir.join("ca.pem"));
    assert!(ca_cert.subject.contains("Bank"), "{}", ca_cert.subject);
    let server = read(&d.join("p").join("tls").join("provisioner.pem"));
    assert_eq!(server.subject, "CN=provisioner.bank.example");
    assert_eq!(server.dns_names[0], "provisioner.bank.example");
    let config = d.join("p").join("provisioner.toml");
    // Authenticator apps show the organisation too.
    assert!(
        std::fs::read_to_string(&config).unwrap().contains("issuer = \"Bank\""),
        "the issuer is the organisation"
    );
    let check = Command::new(bin("rampart-provisioner"))
        .args(["check-config", "--config"])
        .arg(&config)
        .env_remove("RAMPART_KEK")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    let log = d.join("provisioner.log");
    let mut child = Command::new(bin("rampart-provisioner"))
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("RAMPART_KEK")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let text = wait_for(&log, "provisioner serving HTTPS", &mut child);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes in a log written to a file: {text:?}"
    );
}

/// The log once it contains `line`; fails if the process exits first.
fn wait_for(log: &Path, line: &str, child: &mut std::process::Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(line) {
            return text;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("exited with {status} before {line:?}: {text}");
        }
        assert!(Instant::now() < deadline, "no {line:?} within 30 s: {text}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `check-config` asks the directory itself: a refused service account and a base that does not
/// exist are named by their settings (they once passed as "ok" and every login then failed);
/// cleartext LDAP and a missing rule for disabled accounts are warned about.
#[test]
fn check_config_asks_the_directory_and_names_the_setting_at_fault() {
    use rampart_tests::slapd::{BASE, SERVICE_DN, SERVICE_PASSWORD, Slapd};
    let slapd = Slapd::start(None, "");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = CertificateAuthority::create("Check Org").unwrap();
    save_pair(&ca, d, "a");
    std::fs::write(d.join("policy.toml"), GOOD_POLICY).unwrap();
    std::fs::create_dir(d.join("state")).unwrap();
    let config = d.join("gateway.toml");
    let write = |password: &str, user_base: &str, disabled_rule: bool| {
        std::fs::write(d.join("bind.pw"), format!("{password}\n")).unwrap();
        let rule = if disabled_rule {
            "[[directory.disabled_when]]\nattribute = 'employeeType'\nequals = 'disabled'\n"
        } else {
            ""
        };
        std::fs::write(
            &config,
            format!(
                "listen = '127.0.0.1:0'\nstate_dir = 'state'\ncert = 'a.pem'\nkey = 'a.key'\npolicy = 'policy.toml'\n\
                 [directory]\nkind = 'ldap'\nurls = ['{url}']\nbind_dn = '{SERVICE_DN}'\nbind_password_file = 'bind.pw'\n\
                 user_base = '{user_base}'\ngroup_base = 'ou=groups,{BASE}'\nconnect_timeout_secs = 2\n{rule}",
                url = slapd.url
            ),
        )
        .unwrap();
    };

    write("not-the-password", &format!("ou=people,{BASE}"), true);
    let check = gateway(&["check-config"], &config);
    assert_eq!(check.status.code(), Some(78), "{check:?}");
    let said = String::from_utf8_lossy(&check.stderr);
    assert!(
        said.contains("error: directory.bind_dn: ") && said.contains("could not bind"),
        "{said}"
    );
    assert!(!said.contains("not-the-password"), "the password is never said");

    write(SERVICE_PASSWORD, &format!("ou=peeple,{BASE}"), true);
    let check = gateway(&["check-config"], &config);
    assert_eq!(check.status.code(), Some(78), "{check:?}");
    let said = String::from_utf8_lossy(&check.stderr);
    assert!(
        said.contains("error: directory.user_base: ") && said.contains("does not exist"),
        "{said}"
    );

    // With another file missing too, the directory is still asked: both at once.
    std::fs::rename(d.join("a.pem"), d.join("a.pem.away")).unwrap();
    let check = gateway(&["check-config"], &config);
    let said = String::from_utf8_lossy(&check.stderr);
    assert!(
        said.contains("error: cert: ") && said.contains("error: directory.user_base: "),
        "{said}"
    );
    std::fs::rename(d.join("a.pem.away"), d.join("a.pem")).unwrap();

    write(SERVICE_PASSWORD, &format!("ou=people,{BASE}"), false);
    let check = gateway(&["check-config"], &config);
    assert!(check.status.success(), "{check:?}");
    let said = String::from_utf8_lossy(&check.stderr);
    assert!(
        said.contains("warning: directory.urls: ldap:// without starttls"),
        "{said}"
    );
    assert!(said.contains("warning: directory.disabled_when: no rule"), "{said}");
    assert!(String::from_utf8_lossy(&check.stdout).ends_with(": ok\n"));
}
