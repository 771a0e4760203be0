//! The HTTP surface in process: the OpenAPI document served at `/openapi.json` describes
//! exactly the routes the server answers (every documented operation exists and, but the health
//! checks, demands an API key), bad input gets a JSON error that names the problem, and VM pools
//! and inventory need an admin key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use rampart_directory::LocalDirectory;
use rampart_provisioner::{AppState, Provisioner, ProvisionerSettings, router};
use rampart_store::{KeyRing, SqliteStore, Store};
use std::sync::Arc;
use tower::ServiceExt;

async fn app() -> (tempfile::TempDir, axum::Router) {
    let (dir, app, _) = app_with_admin().await;
    (dir, app)
}

/// The router and an admin API key.
async fn app_with_admin() -> (tempfile::TempDir, axum::Router, String) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let (operator, key) =
        rampart_provisioner::service::new_operator("admin", rampart_store::OperatorRole::Admin, "test", 0).unwrap();
    store.insert_operator(&operator).await.unwrap();
    let keys = Arc::new(KeyRing::load_or_create(&dir.path().join("master.key")).unwrap());
    let directory = Arc::new(LocalDirectory::new(store.clone()).unwrap());
    let provisioner = Provisioner::new(
        store,
        keys,
        directory,
        ProvisionerSettings::default(),
        rampart_core::clock::Clock::system(),
    );
    (dir, router(AppState { provisioner }), key)
}

#[tokio::test]
async fn bad_input_gets_a_json_error_naming_the_problem() {
    let (_dir, app, key) = app_with_admin().await;
    let too_many: Vec<serde_json::Value> = (0..501)
        .map(|i| serde_json::json!({"username": format!("u{i}")}))
        .collect();
    let cases: [(&str, &str, String, StatusCode, &str); 6] = [
        (
            "POST",
            "/v1/operators",
            "{not json".into(),
            StatusCode::BAD_REQUEST,
            "request body",
        ),
        (
            "POST",
            "/v1/operators",
            r#"{"name":"x","role":"root"}"#.into(),
            StatusCode::BAD_REQUEST,
            "role must be",
        ),
        (
            "POST",
            "/v1/operators",
            r#"{"name":"a b","role":"auditor"}"#.into(),
            StatusCode::BAD_REQUEST,
            "operator names",
        ),
        (
            "GET",
            "/v1/tokens?state=sleeping",
            String::new(),
            StatusCode::BAD_REQUEST,
            "state must be",
        ),
        (
            "POST",
            "/v1/people/nobody/token",
            "{}".into(),
            StatusCode::NOT_FOUND,
            "no enabled person",
        ),
        (
            "POST",
            "/v1/enrol/batch",
            serde_json::json!({"rows": too_many}).to_string(),
            StatusCode::BAD_REQUEST,
            "at most 500",
        ),
    ];
    for (method, path, body, status, says) in cases {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let error: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(
            error["message"].as_str().unwrap().contains(says),
            "{method} {path}: {error}"
        );
        assert!(error["error"].is_string());
    }
    // Nothing was created by the refused requests.
    let request = Request::get("/v1/operators")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let bytes = axum::body::to_bytes(app.oneshot(request).await.unwrap().into_body(), 1 << 20)
        .await
        .unwrap();
    let operators: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(operators.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn every_documented_operation_is_served_and_guarded() {
    let (_dir, app) = app().await;
    let response = app
        .clone()
        .oneshot(Request::get("/openapi.json").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let document: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(document, serde_json::to_value(rampart_provisioner::openapi()).unwrap());
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));

    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in ["get", "post", "delete", "put", "patch"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let concrete = path
                .replace("{username}", "alice")
                .replace("{group}", "staff")
                .replace("{name}", "x")
                .replace("{id}", "1")
                .replace("{enrolment_id}", "e1");
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let status = app.clone().oneshot(request).await.unwrap().status();
            if path == "/healthz" || path == "/readyz" {
                assert_eq!(status, StatusCode::OK);
            } else if path.starts_with("/v1/enrolment") {
                // Self-service enrolment: the employee has no key and proves themselves in the
                // body; an empty one is refused as malformed, and no key is documented.
                assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path} without a key");
                assert!(
                    item[method].get("security").is_none(),
                    "{method} {path} asks for no key"
                );
            } else {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} without a key");
            }
        }
    }
    assert!(operations >= 19, "only {operations} operations documented");
    let unknown = app
        .oneshot(Request::get("/v1/nothing-here").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_dual_control_routes_and_their_waiting_answers_are_documented() {
    let document = serde_json::to_value(rampart_provisioner::openapi()).unwrap();
    let paths = &document["paths"];
    for (path, method) in [
        ("/v1/reset-requests", "get"),
        ("/v1/reset-requests/{id}", "get"),
        ("/v1/reset-requests/{id}/approve", "post"),
        ("/v1/reset-requests/{id}/deny", "post"),
        ("/v1/reset-requests/{id}/collect", "post"),
    ] {
        let operation = &paths[path][method];
        assert_eq!(operation["tags"][0], "approvals", "{method} {path}: {operation}");
    }
    // A reset that waits for a second operator answers 202 with the request.
    for path in [
        "/v1/people/{username}/token",
        "/v1/people/{username}/token/lost",
        "/v1/people/{username}/token/unlock",
        "/v1/people/{username}/temporary-code",
    ] {
        let waiting = &paths[path]["post"]["responses"]["202"];
        assert!(waiting.is_object(), "{path} documents no 202 answer");
    }
    // An unlock of a token that is not locked has its own error code.
    let refused = &paths["/v1/people/{username}/token/unlock"]["post"]["responses"]["409"];
    assert!(
        refused["description"]
            .as_str()
            .unwrap_or_default()
            .contains("not_locked"),
        "{refused}"
    );
    assert_eq!(
        paths["/v1/reset-requests/{id}/approve"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ResetRequestInfo"
    );
}

/// `(status, body)` of one authorised call.
async fn call(app: &axum::Router, key: &str, method: &str, path: &str, body: &str) -> (StatusCode, serde_json::Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn bad_vm_input_is_refused_with_every_problem_and_changes_nothing() {
    let (_dir, app, key) = app_with_admin().await;
    let (status, body) = call(
        &app,
        &key,
        "POST",
        "/v1/pools",
        r#"{"name":"bad name/","ports":[0],"capacity":0,"hook_timeout_secs":0,"provision_hook":" "}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["message"].as_str().unwrap();
    for problem in ["name", "ports", "capacity", "hook_timeout_secs", "provision_hook"] {
        assert!(message.contains(problem), "{problem} missing from: {message}");
    }
    let (_, pools) = call(&app, &key, "GET", "/v1/pools", "").await;
    assert_eq!(pools.as_array().unwrap().len(), 0, "nothing created");

    let (status, _) = call(
        &app,
        &key,
        "POST",
        "/v1/pools",
        r#"{"name":"desktops","ports":[3389],"capacity":5}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = call(
        &app,
        &key,
        "POST",
        "/v1/pools/desktops/vms",
        r#"{"vms":[{"id":"vm1","address":"10.0.0.1"},{"id":"vm 2","address":"bad host"}]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("vms[1]"), "{body}");
    let (status, _) = call(
        &app,
        &key,
        "POST",
        "/v1/pools/nosuch/vms",
        r#"{"vms":[{"id":"x","address":"10.0.0.9"}]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &app,
        &key,
        "POST",
        "/v1/pools/desktops/vms",
        r#"{"vms":[{"id":"vm1","address":"10.0.0.1"}]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = call(
        &app,
        &key,
        "POST",
        "/v1/pools/desktops/vms",
        r#"{"vms":[{"id":"vm3","address":"10.0.0.3"},{"id":"vm1","address":"10.0.0.1"}]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, vms) = call(&app, &key, "GET", "/v1/vms", "").await;
    let ids: Vec<&str> = vms
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["vm1"], "a refused batch adds none of its rows");
    let (status, body) = call(&app, &key, "GET", "/v1/vms?state=broken", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = call(
        &app,
        &key,
        "POST",
        "/v1/pools/nosuch/allocations",
        r#"{"username":"alice"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&app, &key, "POST", "/v1/vms/nosuch/release", "{}").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn only_an_admin_adds_vms_or_creates_pools_and_the_help_desk_keeps_the_rest() {
    let (_dir, app, admin) = app_with_admin().await;
    let (status, created) = call(
        &app,
        &admin,
        "POST",
        "/v1/operators",
        r#"{"name":"desk-1","role":"helpdesk"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let desk = created["api_key"].as_str().unwrap().to_owned();
    let pool = r#"{"name":"desktops","ports":[3389],"capacity":5}"#;
    let (status, body) = call(&app, &desk, "POST", "/v1/pools", pool).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, _) = call(&app, &admin, "POST", "/v1/pools", pool).await;
    assert_eq!(status, StatusCode::CREATED);

    // An address in the inventory is where `allocated:` resources lead: the help desk cannot
    // add one, neither one VM nor an import batch, and nothing is added.
    for body in [
        r#"{"vms":[{"id":"vm9","address":"10.0.0.99"}]}"#,
        r#"{"vms":[{"id":"vm8","address":"db.internal"},{"id":"vm9","address":"127.0.0.1"}]}"#,
    ] {
        let (status, answer) = call(&app, &desk, "POST", "/v1/pools/desktops/vms", body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        assert_eq!(answer["error"], "forbidden", "{answer}");
    }
    let (status, vms) = call(&app, &desk, "GET", "/v1/vms", "").await;
    assert_eq!((status, vms), (StatusCode::OK, serde_json::json!([])), "nothing added");
    let (_, pools) = call(&app, &admin, "GET", "/v1/pools", "").await;
    assert_eq!(pools.as_array().unwrap().len(), 1, "{pools}");

    // An admin adds; the help desk still takes VMs out of service and back, but not retires.
    let (status, _) = call(
        &app,
        &admin,
        "POST",
        "/v1/pools/desktops/vms",
        r#"{"vms":[{"id":"vm1","address":"10.0.0.1"}]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    for action in ["maintenance", "in-service"] {
        let (status, body) = call(&app, &desk, "POST", &format!("/v1/vms/vm1/{action}"), "{}").await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
    }
    let (status, _) = call(&app, &desk, "POST", "/v1/vms/vm1/retire", "{}").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, vms) = call(&app, &desk, "GET", "/v1/vms", "").await;
    assert_eq!(vms[0]["state"], "free", "{vms}");
}
