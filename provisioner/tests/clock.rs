//! The clock check in process, with a real SQLite store: a provisioner whose clock is two
//! minutes ahead of the database's refuses token issue, enrolment, resync and temporary codes
//! with 503 and a message naming the offset, the bound and the fix, changes nothing, says so on
//! `/readyz`, and keeps lists, people and reports working; one whose clock agrees does them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use rampart_core::clock::Clock;
use rampart_core::totp::TotpParams;
use rampart_directory::LocalDirectory;
use rampart_provisioner::api::{EnrolBatch, EnrolRow, LostRequest, TokenListQuery};
use rampart_provisioner::{AppState, Provisioner, ProvisionerSettings, ServiceError, router};
use rampart_store::{KeyRing, OperatorRole, SqliteStore, Store, TokenRecord, TokenState, UserRecord};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

fn key_ring() -> Arc<KeyRing> {
    Arc::new(KeyRing::from_keys([(1, &[0x42u8; 32])]).unwrap())
}

/// A store holding alice with the pending token `t1`, and an admin API key.
async fn store(dir: &std::path::Path) -> (Arc<dyn Store>, String) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir).await.unwrap());
    store
        .upsert_user(&UserRecord {
            id: "u-alice".into(),
            username: "alice".into(),
            display_name: "Alice".into(),
            password_hash: None,
            enabled: true,
            groups: vec!["staff".into()],
            created_at: 0,
        })
        .await
        .unwrap();
    store
        .insert_token(&TokenRecord::pending(
            "t1".into(),
            "u-alice".into(),
            TotpParams::default(),
            key_ring().seal("t1", b"12345678901234567890").unwrap(),
            0,
        ))
        .await
        .unwrap();
    let (operator, key) = rampart_provisioner::service::new_operator("admin", OperatorRole::Admin, "test", 0).unwrap();
    store.insert_operator(&operator).await.unwrap();
    (store, key)
}

/// A provisioner over `store` whose clock is `offset_secs` off the system's.
fn provisioner(store: &Arc<dyn Store>, offset_secs: i64) -> Provisioner {
    let directory = Arc::new(LocalDirectory::new(store.clone()).unwrap());
    Provisioner::new(
        store.clone(),
        key_ring(),
        directory,
        ProvisionerSettings::default(),
        Clock::shifted(offset_secs),
    )
}

/// `(status, body)` of one call; `key` `None` sends none.
async fn call(app: &axum::Router, key: Option<&str>, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// The refusal every time-dependent operation gets while the clock is two minutes fast.
fn assert_clock_refusal(result: Result<impl std::fmt::Debug, ServiceError>, what: &str) {
    match result {
        Err(ServiceError::Unavailable(message)) => {
            assert!(message.starts_with(&format!("cannot {what} while")), "{message}");
            assert!(
                message.contains("the provisioner's clock is off from the database's by +1"),
                "{message}"
            );
            assert!(message.contains("(bound ±3000 ms)"), "{message}");
            assert!(message.contains("NTP"), "{message}");
        }
        other => panic!("{what}: {other:?}"),
    }
}

#[tokio::test]
async fn a_provisioner_two_minutes_fast_refuses_what_depends_on_the_time_and_lists_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let (store, key) = store(dir.path()).await;
    let fast = provisioner(&store, 120);

    // Until the first check the clock is unknown, which holds nothing back.
    assert_eq!(fast.clock_check().latest(), None);
    let reading = fast.check_clock().await.unwrap();
    assert!(!reading.in_bounds, "{reading:?}");
    assert!((119_000..=121_000).contains(&reading.offset_ms), "{reading:?}");

    assert_clock_refusal(fast.issue("desk", "alice", true, None).await, "issue a token");
    assert_clock_refusal(fast.temporary_code("desk", "alice").await, "issue a temporary code");
    assert_clock_refusal(
        fast.resync("desk", "alice", "123456", "654321").await,
        "resynchronise a token",
    );
    let batch = EnrolBatch {
        rows: vec![EnrolRow {
            username: "alice".into(),
            email: None,
            group: None,
        }],
        reissue: false,
    };
    assert_clock_refusal(fast.enrol_batch("desk", &batch).await, "enrol people (issue tokens)");
    let lost = LostRequest {
        reason: "left on a train".into(),
        temporary_code: true,
        replacement: false,
        qr: None,
    };
    assert_clock_refusal(fast.lost("desk", "alice", &lost).await, "issue a temporary code");

    // Nothing changed, and what does not depend on the time still works.
    let before = store.token_by_id("t1").await.unwrap().unwrap();
    assert_eq!(before.state, TokenState::Pending, "the lost report changed nothing");
    let tokens = fast.list_tokens(&TokenListQuery::default()).await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].token_id, "t1");
    let person = fast.person("alice").await.unwrap();
    assert_eq!(person.tokens.len(), 1);
    assert_eq!(fast.report(None).await.unwrap().by_state.get("pending"), Some(&1));

    // Over HTTP: 503 with the same message, and /readyz says the clock is off.
    let app = router(AppState {
        provisioner: fast.clone(),
    });
    for (path, body) in [
        ("/v1/people/alice/token", "{}"),
        ("/v1/people/alice/temporary-code", ""),
        (
            "/v1/people/alice/token/resync",
            r#"{"first_code":"123456","second_code":"654321"}"#,
        ),
        ("/v1/enrol/batch", r#"{"rows":[{"username":"alice"}]}"#),
    ] {
        let (status, error) = call(&app, Some(&key), "POST", path, body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {error}");
        assert_eq!(error["error"], "unavailable", "{path}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("clock is off from the database's"),
            "{path}: {message}"
        );
    }
    let (status, tokens) = call(&app, Some(&key), "GET", "/v1/tokens", "").await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens.as_array().unwrap().len(), 1);
    let (status, report) = call(&app, Some(&key), "GET", "/v1/reports/tokens", "").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let (status, ready) = call(&app, None, "GET", "/readyz", "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["ready"], false, "{ready}");
    assert_eq!(ready["checks"][0]["name"], "clock", "{ready}");
    assert_eq!(ready["checks"][0]["ok"], false, "{ready}");
    assert!(
        !ready.to_string().contains("120"),
        "no offset for callers without a key: {ready}"
    );
    // An operator sees that a drill shifted the clock, for as long as it does.
    let (_, ready) = call(&app, Some(&key), "GET", "/readyz", "").await;
    assert_eq!(ready["checks"][1]["name"], "clock_drill", "{ready}");
    assert!(
        ready["checks"][1]["detail"].as_str().unwrap().contains("+120 s"),
        "{ready}"
    );

    // A provisioner whose clock agrees with the database's does the same on the same store.
    let right = provisioner(&store, 0);
    let app = router(AppState {
        provisioner: right.clone(),
    });
    let (status, ready) = call(&app, None, "GET", "/readyz", "").await;
    assert_eq!(status, StatusCode::OK, "not compared yet: {ready}");
    let reading = right.check_clock().await.unwrap();
    assert!(reading.in_bounds, "{reading:?}");
    let (status, ready) = call(&app, None, "GET", "/readyz", "").await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["checks"][0]["ok"], true, "{ready}");
    assert_eq!(ready["checks"].as_array().unwrap().len(), 1, "no drill: {ready}");
    let (status, code) = call(&app, Some(&key), "POST", "/v1/people/alice/temporary-code", "").await;
    assert_eq!(status, StatusCode::CREATED, "{code}");
    match right.resync("desk", "alice", "123456", "654321").await {
        Err(ServiceError::Invalid(message)) => assert!(message.contains("not consecutive codes"), "{message}"),
        other => panic!("the codes are checked, not refused for the clock: {other:?}"),
    }
}
