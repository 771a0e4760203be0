//! End to end: the audit trail anchored in the store, against a real `rampart-gateway` process
//! and its SQLite store. Every checkpoint's head is recorded in the store, so `rampart audit
//! verify --store-url` names a stream whose last records were cut off while the service was
//! stopped, a stream deleted whole, and a file rewritten with recomputed hashes and no
//! checkpoints; a gateway or provisioner restarted after a cut records a chain gap before
//! anything else. Both services anchor at every checkpoint interval and at a clean stop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_core::audit::{GENESIS, seal};
use rampart_store::Store;
use rampart_tests::gateway::{GatewayProc, GatewaySpec};
use rampart_tests::provisioner::ProvisionerProc;
use rampart_tests::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A gateway with an operator whose API calls fill its audit stream.
struct Site {
    gw: GatewayProc,
    key: String,
}

impl Site {
    async fn start() -> Self {
        let gw = GatewayProc::start(GatewayProc::new_ca(), &GatewaySpec::default());
        let key = gw.operator("security", "auditor").await;
        Self { gw, key }
    }

    /// `n` operator API calls: one audit record each.
    async fn calls(&self, n: usize) {
        for _ in 0..n {
            let (status, _) = self.gw.admin("GET", "/v1/sessions", Some(&self.key)).await;
            assert_eq!(status, 200);
        }
    }

    fn audit_dir(&self) -> PathBuf {
        self.gw.state.join("audit")
    }

    /// The gateway stream's files, oldest first.
    fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.audit_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.starts_with("gateway-") && name.ends_with(".jsonl")
            })
            .collect();
        files.sort();
        files
    }

    /// `rampart audit verify` with the public key, and the store when `with_store`.
    fn verify(&self, with_store: bool, extra: &[&str]) -> Output {
        let mut cmd = Command::new(bin("rampart"));
        cmd.args(["audit", "verify"])
            .arg(self.audit_dir())
            .arg("--public-key")
            .arg(self.gw.state.join("audit-signing.pub"))
            .args(extra)
            .env_remove(rampart_store::URL_ENV)
            .stdin(Stdio::null());
        if with_store {
            cmd.arg("--store-url")
                .arg(format!("sqlite:{}", self.gw.state.display()));
        }
        cmd.output().unwrap()
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tail_cut_while_stopped_fails_verify_and_the_restarted_gateway_records_a_chain_gap() {
    let mut site = Site::start().await;
    site.calls(6).await;
    site.gw.stop();
    let clean = site.verify(true, &[]);
    assert!(clean.status.success(), "{}", output_text(&clean));
    let said = output_text(&clean);
    assert!(
        said.contains("gateway: intact") && said.contains("checkpoints anchored in the store"),
        "{said}"
    );

    // While the gateway is stopped, its last three records (the closing checkpoint with them)
    // are cut off the newest file at a line's end.
    let newest = site.files().pop().unwrap();
    let mut kept = lines(&newest);
    let last_seq = |line: &str| serde_json::from_str::<Value>(line).unwrap()["seq"].as_u64().unwrap();
    let anchored = last_seq(kept.last().unwrap());
    kept.truncate(kept.len() - 3);
    let end = last_seq(kept.last().unwrap());
    write_lines(&newest, &kept);

    // The old behaviour: the chain alone cannot tell a cut tail from a trail that ended, and
    // `verify` said "intact" with exit 0. Without the store it still can only say so, and
    // says that it did not check.
    let blind = site.verify(false, &[]);
    assert!(blind.status.success(), "{}", output_text(&blind));
    assert!(
        output_text(&blind).contains("anchors not checked"),
        "{}",
        output_text(&blind)
    );
    // With the store, the cut is named: the stream, the last record left and the ones missing.
    let cut = site.verify(true, &[]);
    assert_eq!(cut.status.code(), Some(8), "{}", output_text(&cut));
    let said = output_text(&cut);
    assert!(said.contains("gateway: BROKEN at"), "{said}");
    assert!(
        said.contains(&format!(
            "cut: the files end at record {end} but the store anchored record {anchored}"
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!("records {} to {anchored} are missing", end + 1)),
        "{said}"
    );

    // The old behaviour: a restarted writer continued the chain from the cut as if nothing
    // had happened. Now it records the gap, loudly, before anything else.
    site.gw.restart();
    let log = site.gw.log();
    assert!(log.contains("AUDIT CHAIN GAP"), "{log}");
    let records = audit_records(&site.audit_dir());
    let gaps: Vec<&Value> = records.iter().filter(|r| r["status_detail"] == "chain_gap").collect();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["seq"], anchored + 1);
    assert_eq!(gaps[0]["unmapped"]["gap"], "cut");
    assert_eq!(gaps[0]["unmapped"]["files_end_seq"], end);
    assert_eq!(gaps[0]["unmapped"]["anchored_seq"], anchored);
    assert_eq!(gaps[0]["severity_id"], 5);
    site.calls(2).await;
    site.gw.stop();
    // The missing records stay missing: later checkpoints do not sign over the cut.
    let after = site.verify(true, &[]);
    assert_eq!(after.status.code(), Some(8), "{}", output_text(&after));
    assert!(
        output_text(&after).contains(&format!("missing: records {} to {anchored} are not there", end + 1)),
        "{}",
        output_text(&after)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rewritten_file_and_a_deleted_stream_fail_verify() {
    let mut site = Site::start().await;
    site.calls(5).await;
    site.gw.stop();
    assert!(site.verify(true, &["--require-signed-tail"]).status.success());

    // One record removed and the file rewritten with recomputed hashes and no checkpoints:
    // a consistent chain that nobody without the signing key could have signed.
    let file = site.files().pop().unwrap();
    let mut prev = GENESIS.to_owned();
    let mut rewritten = Vec::new();
    let originals: Vec<Value> = lines(&file)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &Value| r.get("checkpoint").is_none())
        .collect();
    let mut bodies: Vec<Value> = originals
        .into_iter()
        .skip(1)
        .map(|mut record| {
            let body = record.as_object_mut().unwrap();
            for field in ["seq", "prev_hash", "hash"] {
                body.remove(field);
            }
            record
        })
        .collect();
    let mut reseal = |bodies: &[Value], rewritten: &mut Vec<String>| {
        for body in &bodies[rewritten.len()..] {
            let sealed = seal(rewritten.len() as u64, &prev, body).unwrap();
            prev = sealed.hash;
            rewritten.push(String::from_utf8(sealed.line).unwrap().trim_end().to_owned());
        }
    };
    reseal(&bodies, &mut rewritten);
    write_lines(&file, &rewritten);
    let anchored = 5; // records 0 to 4, then the closing checkpoint

    // The old behaviour: with no checkpoint left there was no signature to fail, and verify
    // said "intact" with exit 0 even with the public key.
    let blind = site.verify(false, &[]);
    assert!(blind.status.success(), "{}", output_text(&blind));
    // Records after the last checkpoint fail when a signed tail is required ...
    let unsigned = site.verify(false, &["--require-signed-tail"]);
    assert_eq!(unsigned.status.code(), Some(8), "{}", output_text(&unsigned));
    assert!(
        output_text(&unsigned).contains("unsigned: records 0 to"),
        "{}",
        output_text(&unsigned)
    );
    // ... and the store's anchors name the rewrite either way: shorter than the trail was, it
    // ends before the anchored checkpoint ...
    let cut = site.verify(true, &[]);
    assert_eq!(cut.status.code(), Some(8), "{}", output_text(&cut));
    let said = output_text(&cut);
    assert!(
        said.contains(&format!(
            "gateway: BROKEN at {} line 4 (record 3): cut: the files end at record 3 but the store anchored record {anchored}",
            file.display()
        )),
        "{said}"
    );
    // ... and padded to its old length, it holds another record under the anchored number.
    while bodies.len() <= anchored {
        bodies.push(bodies[bodies.len() - 1].clone());
    }
    reseal(&bodies, &mut rewritten);
    write_lines(&file, &rewritten);
    let replaced = site.verify(true, &[]);
    assert_eq!(replaced.status.code(), Some(8), "{}", output_text(&replaced));
    let said = output_text(&replaced);
    assert!(
        said.contains(&format!(
            "gateway: BROKEN at {} line 6 (record {anchored}): replaced: it is not the record the store anchored",
            file.display()
        )),
        "{said}"
    );

    // The whole stream deleted: the old behaviour was "no audit files" for an empty folder,
    // or silence about the missing stream beside others. The store knows the stream.
    for file in site.files() {
        std::fs::remove_file(file).unwrap();
    }
    std::fs::write(site.audit_dir().join("other-0000000000000000.jsonl"), "").unwrap();
    let deleted = site.verify(true, &[]);
    assert_eq!(deleted.status.code(), Some(8), "{}", output_text(&deleted));
    let said = output_text(&deleted);
    assert!(
        said.contains("gateway: BROKEN: deleted: no file of this stream is left but the store anchored its record"),
        "{said}"
    );
    let json = Command::new(bin("rampart"))
        .args(["-o", "json", "audit", "verify"])
        .arg(site.audit_dir())
        .arg("--public-key")
        .arg(site.gw.state.join("audit-signing.pub"))
        .arg("--store-url")
        .arg(format!("sqlite:{}", site.gw.state.display()))
        .env_remove(rampart_store::URL_ENV)
        .output()
        .unwrap();
    let reports: Vec<Value> = serde_json::from_slice(&json.stdout).unwrap();
    let gateway = reports.iter().find(|r| r["stream"] == "gateway").unwrap();
    assert_eq!(gateway["problem"]["kind"], "deleted");
    assert_eq!(gateway["files"], 0);
}

/// Every record of `stream` in `dir`, in chain order.
fn stream_records(dir: &Path, stream: &str) -> Vec<Value> {
    let mut records: Vec<Value> = audit_records(dir)
        .into_iter()
        .filter(|r| r["metadata"]["log_name"] == stream)
        .collect();
    records.sort_by_key(|r| r["seq"].as_u64().unwrap());
    records
}

/// The newest head the store anchored for `stream`, if any.
async fn anchored_head(store: &dyn Store, stream: &str) -> Option<u64> {
    store
        .audit_streams()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.stream == stream)
        .and_then(|s| s.head)
        .map(|head| head.seq)
}

/// `rampart audit verify` on `state`'s audit folder with its public key and its store.
fn verify_with_store(state: &Path, extra: &[&str]) -> Output {
    Command::new(bin("rampart"))
        .args(["audit", "verify"])
        .arg(state.join("audit"))
        .arg("--public-key")
        .arg(state.join("audit-signing.pub"))
        .arg("--store-url")
        .arg(format!("sqlite:{}", state.display()))
        .args(extra)
        .env_remove(rampart_store::URL_ENV)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The old behaviour: neither service told anything outside its files how far its stream had
/// reached, so nothing could tell a cut tail from a trail that ended. Now both services anchor
/// their stream in the store: while running, at every checkpoint interval; at a clean stop,
/// with the closing checkpoint; and a provisioner restarted after a cut records the gap.
#[tokio::test(flavor = "multi_thread")]
async fn both_services_anchor_their_streams_at_the_interval_and_at_a_clean_stop() {
    // A checkpoint every second while records are written (an `[audit]` table appended to
    // each service's config).
    const AUDIT: &str = "[audit]\ncheckpoint_secs = 1\n";
    let mut gw = GatewayProc::start(
        GatewayProc::new_ca(),
        &GatewaySpec {
            directory: AUDIT,
            ..GatewaySpec::default()
        },
    );
    // The provisioner first: `init` refuses a store that has operators already.
    let mut prov = ProvisionerProc::start_for(&gw, AUDIT, "");
    let auditor = gw.operator("security", "auditor").await;
    for _ in 0..3 {
        assert_eq!(gw.admin("GET", "/v1/sessions", Some(&auditor)).await.0, 200);
        let (status, body) = prov.call("GET", "/v1/keys", Some(&prov.admin_key), None).await;
        assert_eq!(status, 200, "{body}");
    }
    let (store, _) = gw.open_store().await;
    let audit_dir = gw.state.join("audit");

    // While both run, an interval checkpoint covers the calls and its head reaches the store.
    let deadline = Instant::now() + Duration::from_secs(30);
    for stream in ["gateway", "provisioner"] {
        loop {
            let head = anchored_head(store.as_ref(), stream).await;
            let covered = head.map_or(0, |head| {
                stream_records(&audit_dir, stream)
                    .iter()
                    .filter(|r| r["class_uid"] == 6003 && r["seq"].as_u64().unwrap() < head)
                    .count()
            });
            if covered >= 3 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{stream}: no checkpoint over its API records anchored while running (head {head:?})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // A clean stop ends each stream with a checkpoint, and that is the head the store holds.
    gw.stop();
    prov.stop();
    for stream in ["gateway", "provisioner"] {
        let records = stream_records(&audit_dir, stream);
        let last = records.last().unwrap();
        assert!(last.get("checkpoint").is_some(), "{stream} ends with {last}");
        assert_eq!(
            anchored_head(store.as_ref(), stream).await,
            last["seq"].as_u64(),
            "{stream}"
        );
    }
    let intact = verify_with_store(&gw.state, &["--require-signed-tail"]);
    assert!(intact.status.success(), "{}", output_text(&intact));
    let said = output_text(&intact);
    for stream in ["gateway", "provisioner"] {
        assert!(said.contains(&format!("{stream}: intact")), "{said}");
    }
    assert!(!said.contains("not anchored"), "{said}");

    // The provisioner's last two records cut off while it is stopped: named by `verify` ...
    let newest = std::fs::read_dir(&audit_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("provisioner-") && name.ends_with(".jsonl")
        })
        .max()
        .unwrap();
    let mut kept = lines(&newest);
    let anchored = serde_json::from_str::<Value>(kept.last().unwrap()).unwrap()["seq"]
        .as_u64()
        .unwrap();
    kept.truncate(kept.len() - 2);
    write_lines(&newest, &kept);
    let cut = verify_with_store(&gw.state, &[]);
    assert_eq!(cut.status.code(), Some(8), "{}", output_text(&cut));
    let said = output_text(&cut);
    assert!(said.contains("gateway: intact"), "{said}");
    assert!(
        said.contains("provisioner: BROKEN at")
            && said.contains(&format!("records {} to {anchored} are missing", anchored - 1)),
        "{said}"
    );
    // ... and recorded as a chain gap by the restarted provisioner, before anything else.
    prov.restart();
    assert!(prov.log().contains("AUDIT CHAIN GAP"), "{}", prov.log());
    let records = stream_records(&audit_dir, "provisioner");
    let gap = records.iter().find(|r| r["status_detail"] == "chain_gap").unwrap();
    assert_eq!(gap["seq"], anchored + 1);
    assert_eq!(gap["unmapped"]["files_end_seq"], anchored - 2);
    assert_eq!(gap["unmapped"]["anchored_seq"], anchored);
}
