//! End to end: a gateway whose clock is two minutes ahead of the database's refuses every login
//! with "try again" before any code is checked, and says so in its log, `/readyz` and
//! `/metrics`; once its clock is right again, it is ready and the very code it refused logs in
//! (nothing was spent or counted) — against a real gateway, slapd and `rampart-connect`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_store::SqliteStore;
use rampart_store::prelude::*;
use rampart_tests::gateway::{GatewayProc, LdapLab};
use rampart_tests::slapd::ALICE;
use rampart_tests::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// Exit status of `rampart-connect` when the gateway says "try again later".
const EXIT_TRY_LATER: i32 = 6;

/// `rampart-connect login` as alice against `gw`, the password on standard input.
fn login(gw: &GatewayProc, home: &Path, code: &str) -> Output {
    let ca = home.with_extension("ca.pem");
    std::fs::write(&ca, &gw.ca_pem).unwrap();
    let mut cmd = Command::new(bin("rampart-connect"));
    cmd.arg("--gateway")
        .arg(&gw.addr)
        .arg("--ca")
        .arg(&ca)
        .arg("--home")
        .arg(home)
        .args(["login", "--user", ALICE.uid, "--otp", code, "--password-stdin"])
        .env_remove("RAMPART_GATEWAY")
        .env_remove("RAMPART_CA")
        .env_remove("RAMPART_PASSWORD");
    run_with_stdin(cmd, &format!("{}\n", ALICE.password))
}

/// The `clock` check of a `/readyz` answer.
fn clock_check(ready: &Value) -> Value {
    ready["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == "clock"))
        .cloned()
        .unwrap_or_else(|| panic!("no clock check in {ready}"))
}

/// The value of the single sample `name` (no labels) in a metrics text.
fn gauge(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_two_minutes_fast_refuses_logins_until_its_clock_is_right() {
    let mut lab = LdapLab::start("", "clock_offset_secs = 120").await;
    let secret = lab.gw.enrol(ALICE.uuid, ALICE.uid).await;
    let monitor = lab.gw.operator("monitor", "auditor").await;
    let dir = tempfile::tempdir().unwrap();

    // The log says so, at start, with the offset and the bound.
    let said = lab.gw.wait_log(
        "the clock is off from the database's by more than the bound: logins are refused",
        1,
        Duration::from_secs(10),
    );
    assert_eq!(said[0]["level"], "ERROR", "{}", said[0]);
    assert_eq!(said[0]["target"], "rampart::clock", "{}", said[0]);
    let offset = said[0]["offset_ms"].as_i64().unwrap();
    assert!((119_000..=121_000).contains(&offset), "{}", said[0]);
    assert_eq!(said[0]["bound_ms"], 3000, "{}", said[0]);

    // /readyz fails and names the offset and the bound to an operator.
    let (status, ready) = lab.gw.admin("GET", "/readyz", Some(&monitor)).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["ready"], false, "{ready}");
    let clock = clock_check(&ready);
    assert_eq!(clock["ok"], false, "{clock}");
    let detail = clock["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("+1") && detail.contains("beyond the bound of ±3000 ms"),
        "{detail}"
    );

    // /metrics: out of bounds, two minutes ahead.
    let (status, text) = lab.gw.metrics_text(Some(&monitor)).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\nrampart_clock_in_bounds 0\n"), "{text}");
    let metric_offset = gauge(&text, "rampart_clock_offset_ms");
    assert!((119_000.0..=121_000.0).contains(&metric_offset), "{text}");

    // Right password, right code — for real time and for the gateway's (fast) time: both are
    // refused with "try again", not as wrong credentials.
    let code_now = oathtool_code(&secret, now());
    let code_fast = oathtool_code(&secret, now() + 120);
    for (code, home) in [(&code_now, "now"), (&code_fast, "fast")] {
        let out = login(&lab.gw, &dir.path().join(home), code);
        assert_eq!(out.status.code(), Some(EXIT_TRY_LATER), "{}", output_text(&out));
        let shown = String::from_utf8_lossy(&out.stderr);
        assert!(shown.contains("Try again in a minute"), "{shown}");
        assert!(!shown.contains("not accepted"), "{shown}");
    }
    let refused: Vec<Value> = audit_records(&lab.gw.state.join("audit"))
        .into_iter()
        .filter(|r| r["class_uid"] == 3002 && r["status"] == "Failure")
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused.iter().all(|r| r["status_detail"] == "clock_skew"),
        "{refused:?}"
    );
    let auth_log = lab
        .gw
        .log_events()
        .into_iter()
        .filter(|e| e["target"] == "rampart::auth" && e["reason"] == "clock_skew")
        .count();
    assert_eq!(auth_log, 2, "{}", lab.gw.log());
    let (_, text) = lab.gw.metrics_text(Some(&monitor)).await;
    let by_reason = metric_sum(
        &text,
        "rampart_gateway_logins_total",
        &[("kind", "login"), ("result", "error"), ("reason", "clock_skew")],
    );
    assert!((by_reason - 2.0).abs() < f64::EPSILON, "{text}");

    // Nothing was spent or counted on the token.
    let store = SqliteStore::open(&lab.gw.state).await.unwrap();
    let token = store.live_token_for_user(ALICE.uuid).await.unwrap().unwrap();
    store.close().await;
    assert_eq!(token.failures, 0);
    assert_eq!(token.last_step, None);

    // The clock is set right: ready, in bounds, and the code refused above logs in.
    let config = std::fs::read_to_string(lab.gw.config_path()).unwrap();
    assert!(config.contains("clock_offset_secs = 120"));
    std::fs::write(
        lab.gw.config_path(),
        config.replace("clock_offset_secs = 120", "clock_offset_secs = 0"),
    )
    .unwrap();
    lab.gw.restart();
    let agreed = lab
        .gw
        .wait_log("the clock agrees with the database's", 1, Duration::from_secs(10));
    assert_eq!(agreed[0]["target"], "rampart::clock", "{}", agreed[0]);
    let (status, ready) = lab.gw.admin("GET", "/readyz", None).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(clock_check(&ready)["ok"], true, "{ready}");
    let (_, text) = lab.gw.metrics_text(Some(&monitor)).await;
    assert!(text.contains("\nrampart_clock_in_bounds 1\n"), "{text}");
    assert!(gauge(&text, "rampart_clock_offset_ms").abs() < 1_000.0, "{text}");
    let out = login(&lab.gw, &dir.path().join("now"), &code_now);
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(!lab.gw.log().contains("clock is off"), "{}", lab.gw.log());
}
