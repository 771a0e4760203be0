//! End to end: a real `rampart-provisioner` whose clock is two minutes ahead of the database's
//! (the `clock_offset_secs` drill setting) says so at start (a warning about the drill, then an
//! `ERROR` from `rampart::clock`), fails `/readyz`, and refuses token issue, resync and temporary
//! codes with 503 and a message naming the offset, the bound and the fix (the `rampart` CLI exits
//! 6 with it), while lists and reports keep working.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rampart_tests::output_text;
use rampart_tests::provisioner::ProvisionerProc;
use std::time::{Duration, Instant};

/// Exit status of `rampart` when the service is unavailable.
const EXIT_UNAVAILABLE: i32 = 6;

/// The first log line containing `text`, waiting up to ten seconds for it.
fn wait_line(prov: &ProvisionerProc, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(line) = prov.log().lines().find(|l| l.contains(text)) {
            return line.to_owned();
        }
        assert!(Instant::now() < deadline, "no {text:?} in the log:\n{}", prov.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The number after `name=` in a log line.
fn field(line: &str, name: &str) -> i64 {
    line.split(&format!("{name}="))
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provisioner_two_minutes_fast_refuses_time_dependent_operations() {
    let dir = rampart_tests::leaks::service_dir();
    let prov = ProvisionerProc::start(
        &dir.path().join("state"),
        &dir.path().join("ca"),
        "",
        "clock_offset_secs = 120",
    );

    // The log says so: the drill, then the clock error with the offset and the bound.
    let drill = wait_line(&prov, "DRILL: settings.clock_offset_secs");
    assert!(drill.contains("WARN"), "{drill}");
    let error = wait_line(
        &prov,
        "the clock is off from the database's by more than the bound: token issue, enrolment, resync and \
         temporary codes are refused",
    );
    assert!(error.contains("ERROR") && error.contains("rampart::clock"), "{error}");
    assert!((119_000..=121_000).contains(&field(&error, "offset_ms")), "{error}");
    assert_eq!(field(&error, "bound_ms"), 3000, "{error}");

    // /readyz fails, without a key and without the offset.
    let (status, ready) = prov.call("GET", "/readyz", None, None).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["ready"], false, "{ready}");
    assert_eq!(ready["checks"][0]["name"], "clock", "{ready}");
    assert_eq!(ready["checks"][0]["ok"], false, "{ready}");

    // Time-dependent operations are refused with the offset, the bound and the fix.
    let key = prov.admin_key.clone();
    for path in [
        "/v1/people/alice/temporary-code",
        "/v1/people/alice/token/resync",
        "/v1/people/alice/token",
    ] {
        let body = serde_json::json!({"first_code": "123456", "second_code": "654321"});
        let (status, answer) = prov.call("POST", path, Some(&key), Some(body)).await;
        assert_eq!(status, 503, "{path}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains("the provisioner's clock is off from the database's by +1")
                && message.contains("(bound ±3000 ms)")
                && message.contains("NTP"),
            "{path}: {message}"
        );
    }
    let out = prov.rampart(&["token", "issue", "alice"]);
    assert_eq!(out.status.code(), Some(EXIT_UNAVAILABLE), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("clock is off from the database's"),
        "{}",
        output_text(&out)
    );

    // Lists and reports still work.
    let (status, tokens) = prov.call("GET", "/v1/tokens", Some(&key), None).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens.as_array().unwrap().is_empty(), "{tokens}");
    let report = prov.rampart_json(&["report"]);
    assert!(report["by_state"].is_object(), "{report}");
}
