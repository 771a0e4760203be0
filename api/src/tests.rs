//! The wire shapes: representative bodies serialise to the exact JSON the services and the CLI
//! exchange, and read back unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::gateway::{PolicyStatus, SessionList, SessionView};
use crate::provisioner::{
    Delivery, EnrolResult, Gated, IssueRequest, IssuedRegistrationCode, IssuedToken, QrFormat, ReadinessPerson,
    ReadinessReport, RegistrationCodeRequest, ResetRequestInfo, StepCount, readiness_csv,
};
use crate::vms::{AllocateRequest, PoolInfo, VmInfo};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// `value` serialises to exactly `expected`, and `expected` reads back into a value that
/// serialises the same.
fn round_trip<T: Serialize + DeserializeOwned>(value: &T, expected: &Value) {
    assert_eq!(&serde_json::to_value(value).unwrap(), expected);
    let back: T = serde_json::from_value(expected.clone()).unwrap();
    assert_eq!(&serde_json::to_value(&back).unwrap(), expected);
}

fn issued_token() -> IssuedToken {
    IssuedToken {
        token_id: "tok-1".into(),
        username: "alice".into(),
        display_name: "Alice Example".into(),
        user_id: "uid-1".into(),
        otpauth_uri: "otpauth://totp/Rampart:alice?issuer=Rampart".into(),
        issuer: "Rampart".into(),
        issued_at: 1_772_357_400,
        replaced: None,
        qr_svg: None,
        qr_png_base64: Some("iVBOR".into()),
    }
}

#[test]
fn issued_token_skips_absent_images_but_keeps_null_replacement() {
    round_trip(
        &issued_token(),
        &json!({
            "token_id": "tok-1",
            "username": "alice",
            "display_name": "Alice Example",
            "user_id": "uid-1",
            "otpauth_uri": "otpauth://totp/Rampart:alice?issuer=Rampart",
            "issuer": "Rampart",
            "issued_at": 1_772_357_400,
            "replaced": null,
            "qr_png_base64": "iVBOR",
        }),
    );
}

#[test]
fn requests_default_missing_fields_and_name_formats_in_lowercase() {
    let request: IssueRequest = serde_json::from_value(json!({})).unwrap();
    assert!(!request.reissue && request.qr.is_none());
    round_trip(
        &IssueRequest {
            reissue: true,
            qr: Some(QrFormat::Png),
        },
        &json!({"reissue": true, "qr": "png"}),
    );
    round_trip(
        &RegistrationCodeRequest {
            delivery: Delivery::Letter,
            valid_days: Some(14),
        },
        &json!({"delivery": "letter", "valid_days": 14}),
    );
}

#[test]
fn registration_codes_stay_out_of_debug() {
    let issued = IssuedRegistrationCode {
        username: "alice".into(),
        display_name: "Alice".into(),
        code_id: "rc-1".into(),
        registration_code: "ABCD-EFGH-JKMN-PQRS".into(),
        delivery: Delivery::Phone,
        expires_at: 10,
    };
    assert!(!format!("{issued:?}").contains("ABCD"));
    round_trip(
        &issued,
        &json!({
            "username": "alice",
            "display_name": "Alice",
            "code_id": "rc-1",
            "registration_code": "ABCD-EFGH-JKMN-PQRS",
            "delivery": "phone",
            "expires_at": 10,
        }),
    );
}

#[test]
fn gated_answers_are_untagged() {
    let pending = ResetRequestInfo {
        request_id: "rr-1".into(),
        username: "alice".into(),
        user_id: "uid-1".into(),
        action: "unlock".into(),
        token_id: Some("tok-1".into()),
        reason: "ticket 42".into(),
        requested_by: "desk".into(),
        requested_at: 1,
        expires_at: 2,
        state: "pending".into(),
        decided_by: None,
        decided_at: None,
        decision_reason: String::new(),
        completed_at: None,
    };
    let held: Gated<IssuedToken> = Gated::AwaitingApproval(Box::new(pending));
    let value = serde_json::to_value(&held).unwrap();
    assert_eq!(value["request_id"], "rr-1");
    assert_eq!(value["decision_reason"], "");
    assert_eq!(value["decided_by"], Value::Null);
    let done: Gated<IssuedToken> = Gated::Done(issued_token());
    assert_eq!(serde_json::to_value(&done).unwrap()["token_id"], "tok-1");
}

#[test]
fn enrol_results_read_with_only_the_required_fields() {
    let result: EnrolResult = serde_json::from_value(json!({"username": "bob", "status": "disabled"})).unwrap();
    assert_eq!(result.status, "disabled");
    assert!(result.issued.is_none() && result.existing.is_none() && result.email.is_none());
}

#[test]
fn vm_requests_refuse_unknown_fields() {
    let allocate: AllocateRequest = serde_json::from_value(json!({"username": "alice"})).unwrap();
    assert!(allocate.vm.is_none() && !allocate.allow_second);
    let typo = serde_json::from_value::<AllocateRequest>(json!({"username": "alice", "allow_seconds": true}));
    assert!(typo.is_err());
    round_trip(
        &VmInfo {
            id: "vm-1".into(),
            pool: "desktops".into(),
            address: "10.0.0.5".into(),
            state: "allocated".into(),
            holder: Some("alice".into()),
            allocated_at: Some(5),
            last_flow_at: None,
            error: None,
            hook_output: None,
            updated_at: 6,
        },
        &json!({
            "id": "vm-1", "pool": "desktops", "address": "10.0.0.5", "state": "allocated",
            "holder": "alice", "allocated_at": 5, "last_flow_at": null, "error": null,
            "hook_output": null, "updated_at": 6,
        }),
    );
    let pool: PoolInfo = serde_json::from_value(json!({
        "name": "desktops", "description": "", "ports": [3389], "capacity": 4, "hooks": ["reset"],
        "hook_timeout_secs": 300, "provisioning": 0, "free": 3, "allocated": 1, "maintenance": 0, "retired": 0,
    }))
    .unwrap();
    assert_eq!(pool.ports, [3389]);
}

#[test]
fn gateway_bodies_keep_their_names() {
    round_trip(
        &SessionList {
            sessions: vec![SessionView {
                id: "s-1".into(),
                gateway: None,
                user: "alice".into(),
                user_id: "uid-1".into(),
                groups: vec!["staff".into()],
                source: "192.0.2.1:50000".into(),
                since: 1,
                expires_at: 2,
                last_activity: 3,
                connections: 1,
                active_flows: 0,
                resources_used: vec!["wiki".into()],
                bytes_to_targets: 10,
                bytes_from_targets: 20,
            }],
        },
        &json!({"sessions": [{
            "id": "s-1", "gateway": null, "user": "alice", "user_id": "uid-1", "groups": ["staff"],
            "source": "192.0.2.1:50000", "since": 1, "expires_at": 2, "last_activity": 3,
            "connections": 1, "active_flows": 0, "resources_used": ["wiki"],
            "bytes_to_targets": 10, "bytes_from_targets": 20,
        }]}),
    );
    let status = PolicyStatus {
        path: "/etc/rampart/policy.toml".into(),
        sha256: "ab".into(),
        loaded_at: 1,
        resources: 2,
        rules: 3,
        rejected: Vec::new(),
        reloaded: None,
    };
    let value = serde_json::to_value(&status).unwrap();
    assert!(value.get("reloaded").is_none(), "skipped outside a reload's answer");
    round_trip(&status, &value);
}

fn person(username: &str, display_name: &str, enrolled: Option<i64>, connected: Option<i64>) -> ReadinessPerson {
    ReadinessPerson {
        username: username.into(),
        display_name: display_name.into(),
        groups: vec!["branch-7".into(), "staff".into()],
        furthest_step: connected
            .map(|_| "first_connection")
            .or(enrolled.map(|_| "enrolled"))
            .map(str::to_owned),
        code_issued_at: None,
        enrolled_at: enrolled,
        profile_set_up_at: None,
        rehearsal_passed_at: None,
        first_connection_at: connected,
    }
}

#[test]
fn the_csv_has_a_row_per_person_with_iso_times_and_no_formulas() {
    let step = |step: &str, label: &str| StepCount {
        step: step.into(),
        label: label.into(),
        reached: 1,
        stuck: 0,
        stuck_people: Vec::new(),
    };
    let report = ReadinessReport {
        group: Some("branch-7".into()),
        generated_at: 1_772_500_000,
        people_total: 2,
        not_started: 1,
        not_started_people: vec!["bob".into()],
        steps: vec![
            step("code_issued", "registration code issued"),
            step("enrolled", "enrolled"),
            step("profile_set_up", "profile set up"),
            step("rehearsal_passed", "rehearsal passed"),
            step("first_connection", "first real connection"),
        ],
        people: vec![
            person("alice", "Alice Example", Some(1_772_357_400), Some(1_772_443_800)),
            person("bob", "=HYPERLINK(\"x\")", None, None),
        ],
    };
    let text = String::from_utf8(readiness_csv(&report).unwrap()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "username,display_name,groups,furthest_step,code_issued,enrolled,profile_set_up,rehearsal_passed,first_connection"
    );
    assert_eq!(
        lines[1],
        "alice,Alice Example,branch-7 staff,first real connection,,2026-03-01T09:30:00Z,,,2026-03-02T09:30:00Z"
    );
    assert_eq!(
        lines[2],
        "bob,\"'=HYPERLINK(\"\"x\"\")\",branch-7 staff,not started,,,,,"
    );
    assert_eq!(lines.len(), 3);
}
