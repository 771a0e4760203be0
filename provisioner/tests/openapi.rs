//! The OpenAPI document served at `/openapi.json` describes exactly the routes the server
//! answers: every documented operation exists (it is never a 404 or 405), and every operation
//! but the health check demands an API key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use rampart_directory::LocalDirectory;
use rampart_provisioner::{AppState, Provisioner, ProvisionerSettings, router};
use rampart_store::{KeyRing, SqliteStore, Store};
use std::sync::Arc;
use tower::ServiceExt;

async fn app() -> (tempfile::TempDir, axum::Router) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let keys = Arc::new(KeyRing::load_or_create(&dir.path().join("master.key")).unwrap());
    let directory = Arc::new(LocalDirectory::new(store.clone()).unwrap());
    let provisioner = Provisioner::new(store, keys, directory, ProvisionerSettings::default());
    (dir, router(AppState { provisioner }))
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
                .replace("{id}", "1");
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let status = app.clone().oneshot(request).await.unwrap().status();
            if path == "/healthz" {
                assert_eq!(status, StatusCode::OK);
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
