//! The gateway's admin side against real processes: policy reloads (file watch, SIGHUP, the
//! `rampart policy reload` command) as employees' streams feel them, `rampart policy explain`
//! with groups from a real OpenLDAP `slapd`, and `/metrics` parsed as Prometheus scrapes it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use prometheus_parse::{Sample, Scrape, Value as MetricValue};
use rampart_client::{ClientError, GatewayClient};
use rampart_core::ErrorCode;
use rampart_core::secret::Sensitive;
use rampart_tests::gateway::{GatewayProc, LdapLab, login_person, open_flow, open_refusal, round_trip};
use rampart_tests::slapd::ALICE;
use rampart_tests::{now, oathtool_code, output_text, random_bytes};
use serde_json::Value;
use std::time::{Duration, Instant};

/// `app` for group staff; `payments` for group payments.
const ALLOW: &str = "[[resource]]\nname = \"app\"\ntarget = \"{echo}\"\nallow_groups = [\"staff\"]\n\n\
                     [[resource]]\nname = \"payments\"\ntarget = \"{echo}\"\nallow_groups = [\"payments\"]\n";

/// The same resources, `app` now only for a group nobody is in.
const DENY: &str = "[[resource]]\nname = \"app\"\ntarget = \"{echo}\"\nallow_groups = [\"nobody\"]\n\n\
                    [[resource]]\nname = \"payments\"\ntarget = \"{echo}\"\nallow_groups = [\"payments\"]\n";

/// An edit with three problems at once: a rule naming an unknown resource, an impossible window
/// and an unknown time zone.
const INVALID: &str = "[[resource]]\nname = \"app\"\ntarget = \"{echo}\"\nallow_groups = [\"staff\"]\n\n\
                       [[rule]]\nname = \"broken\"\nresources = [\"no-such-resource\"]\ngroups = [\"staff\"]\n\
                       time_zone = \"Mars/Olympus_Mons\"\nwindows = [\"Mon-Fri 25:00-26:00\"]\n";

/// Where each problem of [`INVALID`] is reported.
const INVALID_AT: [&str; 3] = [
    "rule[0] \"broken\".resources: unknown resource \"no-such-resource\"",
    "rule[0] \"broken\".windows[0]",
    "rule[0] \"broken\".time_zone",
];

fn sha256_hex(text: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

/// Standard output of a successful CLI run, as JSON.
fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "rampart failed: {}", output_text(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", output_text(out)))
}

/// Asserts every problem of [`INVALID`] is in `problems`, and nothing else.
fn assert_invalid_problems(problems: &[String]) {
    assert_eq!(problems.len(), INVALID_AT.len(), "{problems:?}");
    for at in INVALID_AT {
        assert!(problems.iter().any(|p| p.starts_with(at)), "{at} missing: {problems:?}");
    }
}

/// `GET /v1/policy`.
async fn policy_status(gw: &GatewayProc, key: &str) -> Value {
    let (status, body) = gw.admin("GET", "/v1/policy", Some(key)).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits (up to `within`) until a new stream to `resource` is refused; returns the refusal.
/// Streams opened meanwhile are finished at once.
async fn wait_refused(client: &GatewayClient, resource: &str, within: Duration) -> ErrorCode {
    let deadline = Instant::now() + within;
    loop {
        match client.open(resource).await {
            Err(ClientError::Refused { code, .. }) => return code,
            Err(other) => panic!("{resource}: {other}"),
            Ok((mut send, _recv)) => {
                let _ = send.finish();
            }
        }
        assert!(Instant::now() < deadline, "{resource} still opened after {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `policy reloaded` events of the policy holder (not of the admin route).
fn reloads(gw: &GatewayProc) -> Vec<Value> {
    gw.log_events()
        .into_iter()
        .filter(|e| e["message"] == "policy reloaded" && e["path"].is_string())
        .collect()
}

/// Waits until the policy holder logged `count` successful reloads.
async fn wait_reloads(gw: &GatewayProc, count: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let found = reloads(gw);
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {count} reloads within {within:?}:\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn policy_file_edits_apply_to_new_streams_and_an_invalid_edit_changes_nothing() {
    let lab = LdapLab::start(ALLOW, "policy_check_secs = 1").await;
    let gw = &lab.gw;
    let (allow, deny, invalid) = (lab.policy(ALLOW), lab.policy(DENY), lab.policy(INVALID));
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let auditor = gw.operator("audit-1", "auditor").await;
    let before = policy_status(gw, &auditor).await;
    assert_eq!(before["sha256"], sha256_hex(&allow));
    assert_eq!(before["rejected"], serde_json::json!([]));

    let (client, grant) = login_person(gw, &ALICE, &secret, 0).await;
    let (mut send, mut recv) = open_flow(&client, "app", b"first flow").await;

    // An invalid edit: every problem is reported and logged, the policy in force stays.
    gw.write_policy(&invalid);
    let logged = gw.wait_log(
        "policy edit rejected; the previous policy stays in force",
        INVALID_AT.len(),
        Duration::from_secs(3),
    );
    let logged: Vec<String> = logged
        .iter()
        .map(|e| e["problem"].as_str().unwrap().to_owned())
        .collect();
    assert_invalid_problems(&logged);
    let status = policy_status(gw, &auditor).await;
    assert_eq!(status["sha256"], sha256_hex(&allow), "the policy in force is unchanged");
    assert_eq!(status["resources"], 2);
    let rejected: Vec<String> = serde_json::from_value(status["rejected"].clone()).unwrap();
    assert_invalid_problems(&rejected);
    let (mut send2, mut recv2) = open_flow(&client, "app", b"decisions unchanged").await;
    send2.finish().unwrap();
    assert!(recv2.read_to_end(64).await.unwrap().is_empty());

    // A valid edit denying app: new streams are refused within policy_check_secs + 2 s…
    gw.write_policy(&deny);
    assert_eq!(
        wait_refused(&client, "app", Duration::from_secs(3)).await,
        ErrorCode::Forbidden
    );
    // …while the session and even the flow opened before go on.
    round_trip(&mut send, &mut recv, b"the old flow still carries bytes").await;
    assert!(client.is_open());
    let (code, sessions) = gw.admin("GET", "/v1/sessions", Some(&auditor)).await;
    assert_eq!(code, 200);
    assert_eq!(sessions["sessions"][0]["id"], grant.session_id.as_str());
    assert_eq!(sessions["sessions"][0]["active_flows"], 1);
    let status = policy_status(gw, &auditor).await;
    assert_eq!(status["sha256"], sha256_hex(&deny));
    assert_eq!(status["rejected"], serde_json::json!([]));
    let reloaded = reloads(gw);
    assert_eq!(reloaded.len(), 1, "{reloaded:?}");
    assert_eq!(reloaded[0]["sha256"], sha256_hex(&deny));

    // The rejected file was parsed once, not at every check.
    let (_, text) = gw.metrics_text(Some(&auditor)).await;
    let scrape = parse_metrics(&text);
    assert_eq!(
        metric(
            &scrape,
            "rampart_gateway_policy_reloads_total",
            &[("result", "rejected")]
        ),
        1.0
    );
    assert_eq!(
        metric(&scrape, "rampart_gateway_policy_reloads_total", &[("result", "ok")]),
        1.0
    );
    client.close().await;
}

#[tokio::test]
async fn sighup_and_the_reload_command_apply_edits_and_report_every_problem() {
    // The file is not watched in this test's time: only SIGHUP and operators reload it.
    let lab = LdapLab::start(ALLOW, "policy_check_secs = 3600").await;
    let gw = &lab.gw;
    let (allow, deny, invalid) = (lab.policy(ALLOW), lab.policy(DENY), lab.policy(INVALID));
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let admin = gw.operator("admin-1", "admin").await;
    let helpdesk = gw.operator("desk-1", "helpdesk").await;
    let (client, _) = login_person(gw, &ALICE, &secret, 0).await;

    gw.write_policy(&deny);
    let (mut send, mut recv) = open_flow(&client, "app", b"not reloaded yet").await;
    gw.hangup();
    gw.wait_log("SIGHUP: reloading the policy", 1, Duration::from_secs(5));
    let reloaded = wait_reloads(gw, 1, Duration::from_secs(5)).await;
    assert_eq!(reloaded[0]["sha256"], sha256_hex(&deny));
    assert_eq!(open_refusal(&client, "app").await, ErrorCode::Forbidden);
    round_trip(&mut send, &mut recv, b"the flow from before goes on").await;

    // An invalid file: only an admin may reload; the answer lists every problem, exit 1.
    gw.write_policy(&invalid);
    let refused = gw.cli(&helpdesk, &["policy", "reload"]).await;
    assert_eq!(refused.status.code(), Some(3), "{}", output_text(&refused));
    let out = gw.cli(&admin, &["policy", "reload"]).await;
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("did not reload"), "{text}");
    for at in INVALID_AT {
        assert!(text.contains(at), "{at} missing: {text}");
    }
    let status = json_of(&gw.cli(&helpdesk, &["-o", "json", "policy", "status"]).await);
    assert_eq!(status["sha256"], sha256_hex(&deny), "the policy in force is unchanged");
    let rejected: Vec<String> = serde_json::from_value(status["rejected"].clone()).unwrap();
    assert_invalid_problems(&rejected);
    assert_eq!(open_refusal(&client, "app").await, ErrorCode::Forbidden);

    // A valid file again: the reload command applies it and says what is in force.
    gw.write_policy(&allow);
    let status = json_of(&gw.cli(&admin, &["-o", "json", "policy", "reload"]).await);
    assert_eq!(status["sha256"], sha256_hex(&allow));
    assert_eq!(status["rejected"], serde_json::json!([]));
    assert_eq!(status["resources"], 2);
    let (mut send2, mut recv2) = open_flow(&client, "app", b"allowed again").await;
    send2.finish().unwrap();
    assert!(recv2.read_to_end(64).await.unwrap().is_empty());

    let (_, text) = gw.metrics_text(Some(&admin)).await;
    let scrape = parse_metrics(&text);
    assert_eq!(
        metric(&scrape, "rampart_gateway_policy_reloads_total", &[("result", "ok")]),
        2.0
    );
    assert_eq!(
        metric(
            &scrape,
            "rampart_gateway_policy_reloads_total",
            &[("result", "rejected")]
        ),
        1.0
    );
    client.close().await;
}

/// A typo in [`ALLOW`]: `alow_groups` for `allow_groups`.
fn typo(policy: &str) -> String {
    policy.replacen("allow_groups", "alow_groups", 1)
}

/// `rampart policy status` as a person reads it, and its JSON.
async fn status_text_and_json(gw: &GatewayProc, key: &str) -> (String, Value) {
    let out = gw.cli(key, &["policy", "status"]).await;
    assert!(out.status.success(), "{}", output_text(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    (text, json_of(&gw.cli(key, &["-o", "json", "policy", "status"]).await))
}

/// Asserts the status shows the typo refused and `in_force` still in force.
async fn assert_typo_refused(gw: &GatewayProc, key: &str, in_force: &str) {
    let (text, status) = status_text_and_json(gw, key).await;
    assert!(text.contains("changed but refused"), "{text}");
    assert!(text.contains("alow_groups"), "{text}");
    assert_eq!(
        status["sha256"],
        sha256_hex(in_force),
        "the policy in force is unchanged"
    );
    let rejected: Vec<String> = serde_json::from_value(status["rejected"].clone()).unwrap();
    assert!(rejected.iter().any(|p| p.contains("alow_groups")), "{rejected:?}");
}

/// Asserts the status (CLI and `GET /v1/policy`) shows `in_force` and no refused edit.
async fn assert_status_clean(gw: &GatewayProc, key: &str, in_force: &str) {
    let (text, status) = status_text_and_json(gw, key).await;
    assert!(!text.contains("refused"), "{text}");
    assert_eq!(status["sha256"], sha256_hex(in_force));
    assert_eq!(status["rejected"], serde_json::json!([]));
    let api = policy_status(gw, key).await;
    assert_eq!(api["rejected"], serde_json::json!([]), "{api}");
    assert_eq!(api["sha256"], sha256_hex(in_force));
}

#[tokio::test]
async fn an_undone_typo_noticed_by_the_file_watch_leaves_no_refused_edit_behind() {
    let lab = LdapLab::start(ALLOW, "policy_check_secs = 1").await;
    let gw = &lab.gw;
    let allow = lab.policy(ALLOW);
    let admin = gw.operator("admin-1", "admin").await;

    gw.write_policy(&typo(&allow));
    gw.wait_log(
        "policy edit rejected; the previous policy stays in force",
        1,
        Duration::from_secs(5),
    );
    assert_typo_refused(gw, &admin, &allow).await;

    // The original back: the watch sees the file is the policy in force; nothing refused is left.
    gw.write_policy(&allow);
    gw.wait_log(
        "policy file is the policy in force again; the refused edit is forgotten",
        1,
        Duration::from_secs(5),
    );
    assert_status_clean(gw, &admin, &allow).await;
    assert!(reloads(gw).is_empty(), "nothing was reloaded: {:?}", reloads(gw));

    // And a reload now says so.
    let out = gw.cli(&admin, &["policy", "reload"]).await;
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Policy unchanged: the file is the policy in force."),
        "{text}"
    );
    assert!(!text.contains("reloaded") && !text.contains("refused"), "{text}");
}

#[tokio::test]
async fn an_undone_typo_then_reload_says_unchanged_and_clears_the_refused_edit() {
    // The file is not watched in this test's time: only operators reload it.
    let lab = LdapLab::start(ALLOW, "policy_check_secs = 3600").await;
    let gw = &lab.gw;
    let (allow, deny) = (lab.policy(ALLOW), lab.policy(DENY));
    let admin = gw.operator("admin-1", "admin").await;

    gw.write_policy(&typo(&allow));
    let out = gw.cli(&admin, &["policy", "reload"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(output_text(&out).contains("alow_groups"), "{}", output_text(&out));
    assert_typo_refused(gw, &admin, &allow).await;

    // The original back and an operator's reload: nothing to load, and nothing refused left.
    gw.write_policy(&allow);
    let out = gw.cli(&admin, &["policy", "reload"]).await;
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Policy unchanged: the file is the policy in force."),
        "{text}"
    );
    assert!(!text.contains("reloaded") && !text.contains("refused"), "{text}");
    assert_status_clean(gw, &admin, &allow).await;
    assert!(reloads(gw).is_empty(), "nothing was reloaded: {:?}", reloads(gw));

    // A real edit is reported as reloaded, once; the same file again as unchanged.
    gw.write_policy(&deny);
    let reload = json_of(&gw.cli(&admin, &["-o", "json", "policy", "reload"]).await);
    assert_eq!(reload["reloaded"], true, "{reload}");
    assert_eq!(reload["sha256"], sha256_hex(&deny));
    let out = gw.cli(&admin, &["policy", "reload"]).await;
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Policy unchanged"), "{text}");
    let reload = json_of(&gw.cli(&admin, &["-o", "json", "policy", "reload"]).await);
    assert_eq!(reload["reloaded"], false, "{reload}");
    assert_eq!(reloads(gw).len(), 1, "{:?}", reloads(gw));
    // `GET /v1/policy` is a status, not a reload's answer.
    assert!(policy_status(gw, &admin).await.get("reloaded").is_none());
}

/// `app` only through an office-hours rule for staff, in Zurich time.
const OFFICE_HOURS: &str = "[[resource]]\nname = \"app\"\ntarget = \"{echo}\"\n\n\
                            [[rule]]\nname = \"staff-office-hours\"\nresources = [\"app\"]\ngroups = [\"staff\"]\n\
                            time_zone = \"Europe/Zurich\"\nwindows = [\"Mon-Fri 07:00-20:00\"]\n";

#[tokio::test]
async fn policy_explain_answers_with_directory_groups_and_the_deciding_rule() {
    let lab = LdapLab::start(OFFICE_HOURS, "").await;
    let gw = &lab.gw;
    let auditor = gw.operator("audit-1", "auditor").await;
    let explain = |user: &'static str, at: &'static str| {
        let key = auditor.clone();
        async move {
            gw.cli(
                &key,
                &[
                    "-o",
                    "json",
                    "policy",
                    "explain",
                    "--user",
                    user,
                    "--resource",
                    "app",
                    "--at",
                    at,
                ],
            )
            .await
        }
    };

    // Monday 08:30 in Zurich: inside the window.
    let monday = json_of(&explain("alice", "2026-11-23T08:30:00+01:00").await);
    assert_eq!(monday["allowed"], true, "{monday}");
    assert_eq!(monday["decided_by"], "staff-office-hours");
    assert_eq!(monday["at"], 1_795_419_000);
    assert_eq!(
        monday["groups"],
        serde_json::json!(["staff", "vpn-users"]),
        "groups come from LDAP"
    );
    assert_eq!(monday["reason"], "allowed by rule \"staff-office-hours\" (group staff)");
    assert_eq!(monday["rules"][0]["in_window"], true);

    // Sunday: the same rule names alice, but it is outside its hours.
    let sunday = json_of(&explain("alice", "2026-11-22T10:00:00+01:00").await);
    assert_eq!(sunday["allowed"], false, "{sunday}");
    assert_eq!(sunday["decided_by"], "staff-office-hours");
    let reason = sunday["reason"].as_str().unwrap();
    assert!(
        reason.contains("outside the hours of rule \"staff-office-hours\"")
            && reason.contains("Mon-Fri 07:00-20:00 Europe/Zurich"),
        "{reason}"
    );
    assert_eq!(sunday["rules"][0]["outcome"], "outside its hours");
    assert_eq!(sunday["rules"][0]["names_person"], "group staff");

    // Bob is in payments only: no rule names him, at any time.
    let bob = json_of(&explain("bob", "2026-11-23T08:30:00+01:00").await);
    assert_eq!(bob["allowed"], false, "{bob}");
    assert_eq!(bob["decided_by"], Value::Null);
    assert!(bob["reason"].as_str().unwrap().contains("names bob"), "{bob}");
    let rules = bob["rules"].as_array().unwrap();
    assert!(
        !rules.is_empty() && rules.iter().all(|r| r["names_person"].is_null()),
        "{bob}"
    );

    // Someone the directory does not know, or disables, cannot log in at all: exit 4.
    for nobody in ["mallory", "carol"] {
        let out = explain(nobody, "2026-11-23T08:30:00+01:00").await;
        assert_eq!(out.status.code(), Some(4), "{nobody}: {}", output_text(&out));
        assert!(output_text(&out).contains("cannot log in"), "{}", output_text(&out));
    }

    // The table a person reads leads with the verdict.
    let table = gw
        .cli(
            &auditor,
            &[
                "policy",
                "explain",
                "--user",
                "alice",
                "--resource",
                "app",
                "--at",
                "1795419000",
            ],
        )
        .await;
    let text = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(table.status.success(), "{}", output_text(&table));
    assert!(text.starts_with("ALLOWED alice → app"), "{text}");
    assert!(text.contains("Decided by: staff-office-hours"), "{text}");
}

/// Parses an exposition as Prometheus does. `prometheus-parse` reads the OpenMetrics text as
/// is: it ignores `# EOF` and `# UNIT`, and since OpenMetrics types a counter by its name
/// without `_total`, counters come back untyped (their values are right).
fn parse_metrics(text: &str) -> Scrape {
    assert!(text.ends_with("# EOF\n"), "an OpenMetrics exposition ends with # EOF");
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("the exposition parses")
}

fn labelled<'a>(scrape: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    scrape.samples.iter().find(|s| {
        s.metric == name && s.labels.len() == labels.len() && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
    })
}

/// The value of a counter, gauge or untyped sample; 0 when the series does not exist yet.
fn metric(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    match labelled(scrape, name, labels).map(|s| &s.value) {
        None => 0.0,
        Some(MetricValue::Counter(v) | MetricValue::Gauge(v) | MetricValue::Untyped(v)) => *v,
        Some(other) => panic!("{name} is not a single value: {other:?}"),
    }
}

#[tokio::test]
async fn metrics_count_logins_flows_and_bytes_and_need_a_key() {
    let lab = LdapLab::start(ALLOW, "").await;
    let gw = &lab.gw;
    let secret = gw.enrol(ALICE.uuid, ALICE.uid).await;
    let auditor = gw.operator("audit-1", "auditor").await;

    // Health answers anyone; metrics only a key.
    for path in ["/healthz", "/readyz"] {
        let (status, body) = gw.admin("GET", path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, ready) = gw.admin("GET", "/readyz", None).await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(gw.metrics_text(None).await.0, 401);
    assert_eq!(gw.metrics_text(Some("rk_not-a-key")).await.0, 401);
    let response = rampart_tests::https_client(&gw.ca_pem)
        .get(format!("{}/metrics", gw.admin_url))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let before = parse_metrics(&response.text().await.unwrap());

    // One wrong code, one login, one allowed flow of N bytes, one denied stream.
    let client = GatewayClient::connect(&gw.addr, &gw.ca_pem).await.unwrap();
    let t = now();
    let valid: Vec<String> = [t - 30, t, t + 30]
        .iter()
        .map(|&at| oathtool_code(&secret, at))
        .collect();
    let wrong = (0..1000u32)
        .map(|n| format!("{n:06}"))
        .find(|c| !valid.contains(c))
        .unwrap();
    let refused = client
        .login("alice", Sensitive::new(ALICE.password.into()), Sensitive::new(wrong))
        .await;
    assert!(
        matches!(
            refused,
            Err(ClientError::Refused {
                code: ErrorCode::InvalidCredentials,
                ..
            })
        ),
        "{refused:?}"
    );
    client
        .login(
            "alice",
            Sensitive::new(ALICE.password.into()),
            Sensitive::new(oathtool_code(&secret, now())),
        )
        .await
        .unwrap();
    let data = random_bytes(50_000);
    let (mut send, mut recv) = open_flow(&client, "app", &data).await;
    send.finish().unwrap();
    assert!(recv.read_to_end(64).await.unwrap().is_empty());
    assert_eq!(open_refusal(&client, "payments").await, ErrorCode::Forbidden);

    let (status, text) = gw.metrics_text(Some(&auditor)).await;
    assert_eq!(status, 200);
    let after = parse_metrics(&text);
    let delta = |name: &str, labels: &[(&str, &str)]| metric(&after, name, labels) - metric(&before, name, labels);
    let logins = "rampart_gateway_logins_total";
    let failure = [("kind", "login"), ("result", "failure"), ("reason", "wrong_code")];
    assert_eq!(delta(logins, &failure), 1.0, "{text}");
    let success = [("kind", "login"), ("result", "success"), ("reason", "")];
    assert_eq!(delta(logins, &success), 1.0, "{text}");
    let flows = "rampart_gateway_flows_total";
    assert_eq!(
        delta(flows, &[("resource", "app"), ("decision", "allow")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        delta(flows, &[("resource", "payments"), ("decision", "deny")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        delta(flows, &[("resource", "app"), ("decision", "deny")]),
        0.0,
        "{text}"
    );
    let refused_streams = "rampart_gateway_refused_streams_total";
    assert_eq!(delta(refused_streams, &[("reason", "not_allowed")]), 1.0, "{text}");
    #[allow(clippy::cast_precision_loss)] // 50 000 is exact in an f64
    let n = data.len() as f64;
    let bytes = "rampart_gateway_bytes_total";
    assert!(delta(bytes, &[("direction", "to_target")]) >= n, "{text}");
    assert!(delta(bytes, &[("direction", "from_target")]) >= n, "{text}");
    assert_eq!(
        delta("rampart_gateway_login_duration_seconds_count", &[]),
        2.0,
        "{text}"
    );
    let histogram = labelled(&after, "rampart_gateway_login_duration_seconds", &[]).expect("the login histogram");
    let MetricValue::Histogram(buckets) = &histogram.value else {
        panic!("login_duration_seconds is not a histogram: {histogram:?}")
    };
    let all = buckets
        .iter()
        .find(|b| b.less_than.is_infinite())
        .expect("a +Inf bucket");
    assert!(all.count >= 2.0, "{buckets:?}");
    assert_eq!(metric(&after, "rampart_gateway_sessions_active", &[]), 1.0, "{text}");
    assert_eq!(metric(&after, "rampart_gateway_flows_active", &[]), 0.0, "{text}");
    client.close().await;
}
