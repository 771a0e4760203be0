//! Key rotations at the same moment, end to end: several `rampart keys rotate` run at once
//! against two real `rampart-provisioner` processes sharing one store, with the seal keys in
//! the one-host `master.key` file and with the keys in the store. Every call's report must
//! agree with the keys afterwards — one current key, no key claimed by two calls, a refused
//! call naming a key that another call made — and every token must still log in at a real
//! gateway reading the same keys.
//!
//! The old behaviour: each rotation read `master.key`, appended "its" next id and renamed its
//! copy over the file, without a lock. Two at once both reported "Key 2 is now current", only
//! the last rename's key 2 survived, and seeds the other call had re-sealed under its own key
//! 2 could never be opened again (the gateway refused those people's logins).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_tests::gateway::{LdapLab, login_person};
use rampart_tests::provisioner::{ProvisionerProc, secret_of};
use rampart_tests::slapd::{ALICE, BOB, Person};
use rampart_tests::{bin, output_text};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Rotations started at once in each round, spread over the two provisioners.
const ROTATIONS: usize = 8;
/// Rounds of rotations at once (the race shows in some rounds, not every one).
const ROUNDS: usize = 3;

/// A second provisioner process on a config of its own, killed when dropped.
struct SecondNode {
    child: Child,
    url: String,
    log_file: PathBuf,
}

impl SecondNode {
    /// Runs `rampart-provisioner run --config CONFIG` and waits until it serves.
    fn start(config: &Path) -> Self {
        let log_file = config.with_extension("log");
        let child = Command::new(bin("rampart-provisioner"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_file).unwrap())
            .spawn()
            .unwrap();
        let mut node = Self {
            child,
            url: String::new(),
            log_file,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = std::fs::read_to_string(&node.log_file).unwrap_or_default();
            if let Some(addr) = log
                .lines()
                .find(|l| l.contains("provisioner serving HTTPS"))
                .and_then(|l| l.split("listen=").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
            {
                node.url = format!("https://{addr}");
                return node;
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                panic!("the second provisioner exited with {status}: {log}");
            }
            assert!(Instant::now() < deadline, "the second provisioner did not start: {log}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for SecondNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rampart ARGS` against the provisioner at `url`.
fn rampart(url: &str, prov: &ProvisionerProc, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("rampart"));
    cmd.args(args)
        .env("RAMPART_URL", url)
        .env("RAMPART_API_KEY", &prov.admin_key)
        .env("RAMPART_CA", &prov.ca_file)
        .env_remove("RAMPART_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Issues a token to `person` through the API; returns its secret.
async fn issue(prov: &ProvisionerProc, person: &Person) -> String {
    let (status, issued) = prov
        .call(
            "POST",
            &format!("/v1/people/{}/token", person.uid),
            Some(&prov.admin_key),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    secret_of(issued["otpauth_uri"].as_str().unwrap())
}

/// What the calls said, rotation by rotation.
struct Reports {
    /// The key each successful call made current.
    made: Vec<u32>,
    /// Refused calls: the key each says another node added at the same time.
    refused: Vec<u32>,
}

/// Starts [`ROTATIONS`] `rampart keys rotate` at once, alternating between `urls`, and sorts
/// their answers. A call that neither succeeds nor is refused for a concurrent rotation fails
/// the test.
fn rotate_at_once(prov: &ProvisionerProc, urls: &[&str]) -> Reports {
    let children: Vec<Child> = (0..ROTATIONS)
        .map(|i| {
            rampart(urls[i % urls.len()], prov, &["--output", "json", "keys", "rotate"])
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let mut reports = Reports {
        made: Vec::new(),
        refused: Vec::new(),
    };
    for out in &outputs {
        let said = output_text(out);
        if out.status.success() {
            let report: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(report["failed"], json!([]), "{said}");
            reports
                .made
                .push(u32::try_from(report["new_key"].as_u64().unwrap()).unwrap());
            continue;
        }
        // The store's answer to two nodes adding the same key id: conflict (exit 5).
        assert_eq!(out.status.code(), Some(5), "{said}");
        let id = said
            .split("another node added seal key ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("not a concurrent rotation: {said}"));
        reports.refused.push(id);
    }
    reports
}

/// `rampart keys list` through `url`: the ids and the current one.
fn keys(prov: &ProvisionerProc, url: &str) -> (Vec<u32>, Vec<u32>) {
    let out = rampart(url, prov, &["--output", "json", "keys", "list"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys = listed["keys"].as_array().unwrap();
    let id = |k: &Value| u32::try_from(k["id"].as_u64().unwrap()).unwrap();
    let ids = keys.iter().map(id).collect();
    let current = keys.iter().filter(|k| k["current"] == true).map(id).collect();
    (ids, current)
}

/// What every report must agree with: the keys both nodes list afterwards.
fn assert_reports_agree(prov: &ProvisionerProc, urls: &[&str], reports: &Reports) {
    let made: BTreeSet<u32> = reports.made.iter().copied().collect();
    assert_eq!(
        made.len(),
        reports.made.len(),
        "two calls claimed to have made the same key: {:?}",
        reports.made
    );
    assert!(!made.is_empty(), "no rotation succeeded");
    let (ids, current) = keys(prov, urls[0]);
    assert_eq!(
        keys(prov, urls[1]),
        (ids.clone(), current.clone()),
        "both nodes list the same keys"
    );
    assert_eq!(current.len(), 1, "exactly one current key: {ids:?} {current:?}");
    assert_eq!(
        Some(&current[0]),
        made.last(),
        "the newest key a call made is the current one"
    );
    for id in made.iter().chain(&reports.refused) {
        assert!(ids.contains(id), "key {id} was reported but is not there: {ids:?}");
    }
    for id in &reports.refused {
        assert!(
            made.contains(id),
            "a refusal names key {id}, which no call made: {made:?}"
        );
    }
}

/// Logs `person` in at the gateway with a code of the current step.
async fn logs_in(lab: &LdapLab, person: &Person, secret: &str) {
    let (client, _) = login_person(&lab.gw, person, secret, 0).await;
    client.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotations_at_once_on_one_key_file_each_add_a_key_and_every_token_still_logs_in() {
    let lab = LdapLab::start("", "").await;
    let prov = ProvisionerProc::start_for(&lab.gw, &lab.directory, "");
    // A second provisioner on the same host and state folder: the same SQLite store and the
    // same `master.key`, with an audit stream of its own.
    let second_config = prov.state.join("provisioner-b.toml");
    std::fs::write(
        &second_config,
        format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \".\"\ncert = \"tls/provisioner.pem\"\nkey = \"tls/provisioner.key\"\n\n\
             [audit]\nstream = \"provisioner.b\"\n\n{}\n",
            lab.directory
        ),
    )
    .unwrap();
    let second = SecondNode::start(&second_config);
    let alice = issue(&prov, &ALICE).await;
    let bob = issue(&prov, &BOB).await;

    let urls = [prov.url.as_str(), second.url.as_str()];
    for round in 1..=ROUNDS {
        let reports = rotate_at_once(&prov, &urls);
        // Under the file's lock the rotations follow each other: each adds a key of its own.
        assert_eq!(reports.refused, Vec::<u32>::new());
        assert_reports_agree(&prov, &urls, &reports);
        let (ids, _) = keys(&prov, urls[0]);
        let added = u32::try_from(round * ROTATIONS).unwrap();
        assert_eq!(ids, (1..=1 + added).collect::<Vec<u32>>(), "no key lost");
    }

    // The gateway opens every seed, whichever call re-sealed it last.
    logs_in(&lab, &ALICE, &alice).await;
    logs_in(&lab, &BOB, &bob).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotations_at_once_with_the_keys_in_the_store_leave_one_current_key_and_every_token_logs_in() {
    // The key-encryption key every node holds; the store is a SQLite file all of them open.
    let shared = tempfile::tempdir().unwrap();
    let kek = shared.path().join("kek");
    let made = Command::new(bin("rampart-provisioner"))
        .args(["keys", "new-kek", "--out"])
        .arg(&kek)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", output_text(&made));
    let store_dir = shared.path().join("store");
    std::fs::create_dir_all(&store_dir).unwrap();
    let url = format!("sqlite:{}", store_dir.display());
    let table = format!("url = \"{url}\"\nkek_file = \"{}\"\n", kek.display());
    let lab = LdapLab::start_with_store("", "", &table).await;

    let ca_dir = lab.gw.dir.path().join("ca");
    lab.gw.ca.save(&ca_dir).unwrap();
    let first_state = shared.path().join("prov-a");
    let prov = ProvisionerProc::start_with_store(&first_state, &ca_dir, &lab.directory, "", Some((&url, &kek)));
    // The second node joins the store as `init` sets it up (its own state folder, no new
    // operator), then runs on its own config.
    let second_state = shared.path().join("prov-b");
    std::fs::create_dir_all(&second_state).unwrap();
    let second_config = second_state.join("provisioner.toml");
    std::fs::write(
        &second_config,
        format!(
            "listen = \"127.0.0.1:0\"\nstate_dir = \".\"\ncert = \"tls/provisioner.pem\"\nkey = \"tls/provisioner.key\"\n\n\
             [store]\n{table}\n{}\n",
            lab.directory
        ),
    )
    .unwrap();
    let init = Command::new(bin("rampart-provisioner"))
        .args(["init", "--json", "--state-dir"])
        .arg(&second_state)
        .arg("--ca-dir")
        .arg(&ca_dir)
        .arg("--store-url")
        .arg(&url)
        .arg("--kek-file")
        .arg(&kek)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", output_text(&init));
    let second = SecondNode::start(&second_config);
    let alice = issue(&prov, &ALICE).await;
    let bob = issue(&prov, &BOB).await;

    let urls = [prov.url.as_str(), second.url.as_str()];
    for _ in 0..ROUNDS {
        // Each rotation inserts the next id; of calls racing for one id exactly one inserts it
        // and the others are told which key is current — no two reports claim one key.
        let reports = rotate_at_once(&prov, &urls);
        assert_reports_agree(&prov, &urls, &reports);
    }

    logs_in(&lab, &ALICE, &alice).await;
    logs_in(&lab, &BOB, &bob).await;
}
