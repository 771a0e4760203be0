//! Tests of the admin listener: a real HTTPS listener on 127.0.0.1 over a fake backend, called
//! with a reqwest client that trusts only the test CA.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::routes::parse_at;
use super::{AdminServer, ReadyzLimits};
use crate::admin::api::{ApiError, Check, GatewayView, KillResult, PolicyStatus, Readiness, SessionList, SessionView};
use crate::admin::{AdminBackend, AdminError};
use rampart_certs::CertificateAuthority;
use rampart_core::policy::Explanation;
use rampart_store::{OperatorRecord, OperatorRole};
use reqwest::{Method, StatusCode};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

const ADMIN_KEY: &str = "rk_admin_0123456789";
const HELPDESK_KEY: &str = "rk_helpdesk_0123456789";
const AUDITOR_KEY: &str = "rk_auditor_0123456789";
const WITHDRAWN_KEY: &str = "rk_withdrawn_0123456789";
/// Makes the fake's operator lookup fail as if the store were down.
const STORE_DOWN_KEY: &str = "rk_store_down";
const METRICS: &str = "# TYPE rampart_sessions gauge\nrampart_sessions 2\n";

/// What the listener asked of the fake.
#[derive(Debug, Default)]
struct Calls {
    /// `(session id or username, actor)` of each kill.
    kills: Vec<(String, String)>,
    /// `(user, resource, at)` of each explanation.
    explains: Vec<(String, String, Option<i64>)>,
    reloads: usize,
    /// Runs of the readiness checks.
    readiness: usize,
}

#[derive(Debug)]
struct FakeBackend {
    operators: Vec<(&'static str, OperatorRecord)>,
    sessions: Vec<SessionView>,
    ready: AtomicBool,
    policy_valid: AtomicBool,
    calls: Mutex<Calls>,
}

fn operator(name: &str, role: OperatorRole, revoked_at: Option<i64>) -> OperatorRecord {
    OperatorRecord {
        id: format!("op-{name}"),
        name: name.into(),
        role,
        key_hash: vec![0; 32],
        created_at: 1_700_000_000,
        created_by: "init".into(),
        revoked_at,
    }
}

fn session(id: &str, user: &str) -> SessionView {
    SessionView {
        gateway: None,
        id: id.into(),
        user: user.into(),
        user_id: format!("uid-{user}"),
        groups: vec!["staff".into()],
        source: "192.0.2.7:50000".into(),
        since: 1_700_000_000,
        expires_at: 1_700_036_000,
        last_activity: 1_700_000_100,
        connections: 1,
        active_flows: 0,
        resources_used: vec!["wiki".into()],
        bytes_to_targets: 10,
        bytes_from_targets: 20,
    }
}

fn policy_status() -> PolicyStatus {
    PolicyStatus {
        path: "/etc/rampart/policy.toml".into(),
        sha256: "ab".repeat(32),
        loaded_at: 1_700_000_000,
        resources: 3,
        rules: 5,
        rejected: Vec::new(),
        reloaded: None,
    }
}

fn explanation(user: &str, resource: &str, at: Option<i64>) -> Explanation {
    Explanation {
        user: user.into(),
        groups: vec!["staff".into()],
        resource: resource.into(),
        at: at.unwrap_or(1_700_000_000),
        allowed: true,
        decided_by: Some("office-hours".into()),
        reason: "allowed by rule \"office-hours\" (group staff)".into(),
        rules: Vec::new(),
    }
}

impl FakeBackend {
    fn new() -> Self {
        Self {
            // The withdrawn operator is returned as the store has it: the listener must refuse
            // it itself.
            operators: vec![
                (ADMIN_KEY, operator("ada-admin", OperatorRole::Admin, None)),
                (HELPDESK_KEY, operator("hal-helpdesk", OperatorRole::Helpdesk, None)),
                (AUDITOR_KEY, operator("aud-auditor", OperatorRole::Auditor, None)),
                (
                    WITHDRAWN_KEY,
                    operator("old-admin", OperatorRole::Admin, Some(1_700_000_500)),
                ),
            ],
            sessions: vec![session("s-1", "alice"), session("s-2", "bob"), session("s-3", "alice")],
            ready: AtomicBool::new(true),
            policy_valid: AtomicBool::new(true),
            calls: Mutex::new(Calls::default()),
        }
    }
}

impl FakeBackend {
    fn listed(&self, user: Option<&str>) -> Vec<SessionView> {
        self.sessions
            .iter()
            .filter(|s| user.is_none_or(|u| s.user == u))
            .cloned()
            .collect()
    }
}

#[async_trait::async_trait]
impl AdminBackend for FakeBackend {
    async fn operator(&self, api_key: &str) -> Result<Option<OperatorRecord>, AdminError> {
        if api_key == STORE_DOWN_KEY {
            return Err(AdminError::Unavailable("the store cannot be reached".into()));
        }
        Ok(self
            .operators
            .iter()
            .find(|(key, _)| *key == api_key)
            .map(|(_, op)| op.clone()))
    }

    async fn sessions(&self, user: Option<&str>) -> Result<Vec<SessionView>, AdminError> {
        Ok(self.listed(user))
    }

    async fn gateways(&self) -> Result<Vec<GatewayView>, AdminError> {
        Ok(Vec::new())
    }

    async fn kill_session(&self, id: &str, actor: &str) -> Result<KillResult, AdminError> {
        if !self.sessions.iter().any(|s| s.id == id) {
            return Err(AdminError::NotFound(format!("no live session {id}")));
        }
        self.calls.lock().unwrap().kills.push((id.into(), actor.into()));
        Ok(KillResult { ended: vec![id.into()] })
    }

    async fn kill_user(&self, username: &str, actor: &str) -> Result<KillResult, AdminError> {
        if username == "ghost" {
            return Err(AdminError::NotFound(format!("no person {username}")));
        }
        self.calls.lock().unwrap().kills.push((username.into(), actor.into()));
        let ended = self.listed(Some(username)).into_iter().map(|s| s.id).collect();
        Ok(KillResult { ended })
    }

    async fn explain(&self, username: &str, resource: &str, at: Option<i64>) -> Result<Explanation, AdminError> {
        if resource == "directory-down" {
            return Err(AdminError::Unavailable("the directory cannot be reached".into()));
        }
        self.calls
            .lock()
            .unwrap()
            .explains
            .push((username.into(), resource.into(), at));
        Ok(explanation(username, resource, at))
    }

    fn policy_status(&self) -> PolicyStatus {
        policy_status()
    }

    async fn reload_policy(&self) -> Result<PolicyStatus, AdminError> {
        self.calls.lock().unwrap().reloads += 1;
        if self.policy_valid.load(Ordering::SeqCst) {
            Ok(policy_status())
        } else {
            Err(AdminError::Invalid("line 4: unknown field `alow`".into()))
        }
    }

    async fn readiness(&self) -> Readiness {
        self.calls.lock().unwrap().readiness += 1;
        let ready = self.ready.load(Ordering::SeqCst);
        Readiness {
            ready,
            checks: vec![Check {
                name: "store".into(),
                ok: ready,
                detail: Some(if ready {
                    "ok".into()
                } else {
                    "database is locked".into()
                }),
            }],
        }
    }

    fn metrics(&self) -> String {
        METRICS.into()
    }
}

/// A running admin listener and a client for it.
struct Harness {
    base: String,
    http: reqwest::Client,
    backend: Arc<FakeBackend>,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Harness {
    async fn start() -> Self {
        Self::start_with(FakeBackend::new()).await
    }

    async fn start_with(backend: FakeBackend) -> Self {
        Self::start_with_limits(backend, ReadyzLimits::default()).await
    }

    async fn start_with_limits(backend: FakeBackend, limits: ReadyzLimits) -> Self {
        let ca = CertificateAuthority::create("Rampart Test").unwrap();
        let cert = ca.issue_server(&["127.0.0.1".into(), "localhost".into()]).unwrap();
        let backend = Arc::new(backend);
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = AdminServer::bind(
            listen,
            cert.cert_chain().unwrap(),
            cert.private_key().unwrap(),
            backend.clone(),
            rampart_audit::AuditLog::disabled(),
        )
        .unwrap()
        .with_readyz_limits(limits);
        let addr = server.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        let tls = rampart_certs::client_config(vec![ca.cert_der().clone()], &[b"http/1.1"]).unwrap();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap();
        Self {
            base: format!("https://{addr}"),
            http,
            backend,
            stop: Some(stop),
            server,
        }
    }

    fn request(&self, method: Method, path: &str, key: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    async fn call(&self, method: Method, path: &str, key: Option<&str>) -> reqwest::Response {
        self.request(method, path, key).send().await.unwrap()
    }

    /// Calls and expects an error answer with `status` and `code`; returns its message.
    async fn refused(&self, method: Method, path: &str, key: Option<&str>, status: StatusCode, code: &str) -> String {
        let response = self.call(method.clone(), path, key).await;
        assert_eq!(response.status(), status, "{method} {path}");
        let body: ApiError = response.json().await.unwrap();
        assert_eq!(body.error, code, "{method} {path}: {}", body.message);
        body.message
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(std::time::Duration::from_secs(5), self.server)
            .await
            .expect("the listener stops after the shutdown signal");
        result.unwrap().unwrap();
    }
}

/// Every route that needs a key.
fn protected_routes() -> Vec<(Method, &'static str)> {
    vec![
        (Method::GET, "/metrics"),
        (Method::GET, "/v1/sessions"),
        (Method::GET, "/v1/sessions?user=alice"),
        (Method::DELETE, "/v1/sessions/s-1"),
        (Method::DELETE, "/v1/people/alice/sessions"),
        (Method::GET, "/v1/policy"),
        (Method::POST, "/v1/policy/reload"),
        (Method::GET, "/v1/policy/explain?user=alice&resource=wiki"),
    ]
}

#[tokio::test]
async fn health_and_readiness_need_no_key_and_tell_details_only_to_operators() {
    let unlimited = ReadyzLimits {
        ttl: std::time::Duration::ZERO,
        anonymous_per_sec: 1000,
        anonymous_burst: 1000,
    };
    let h = Harness::start_with_limits(FakeBackend::new(), unlimited).await;
    let response = h.call(Method::GET, "/healthz", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "status": "ok" }));

    let response = h.call(Method::GET, "/readyz", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let readiness: Readiness = response.json().await.unwrap();
    assert!(readiness.ready);

    // Without a key: which check fails, never why (the error text named the database's
    // problem to anyone who asked).
    h.backend.ready.store(false, Ordering::SeqCst);
    let response = h.call(Method::GET, "/readyz", None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = response.text().await.unwrap();
    assert!(!text.contains("locked") && !text.contains("detail"), "{text}");
    let readiness: Readiness = serde_json::from_str(&text).unwrap();
    assert!(!readiness.ready);
    assert_eq!(
        (readiness.checks[0].name.as_str(), readiness.checks[0].ok),
        ("store", false)
    );

    // With any operator's key the details stay; a wrong key is refused.
    let response = h.call(Method::GET, "/readyz", Some(AUDITOR_KEY)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let readiness: Readiness = response.json().await.unwrap();
    assert_eq!(readiness.checks[0].detail.as_deref(), Some("database is locked"));
    h.refused(
        Method::GET,
        "/readyz",
        Some("rk_wrong"),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    h.stop().await;
}

#[tokio::test]
async fn readiness_checks_run_once_per_ttl_and_callers_without_a_key_share_a_budget() {
    // Each /readyz used to run the checks (an LDAP search) for every caller, keyless ones
    // included, without limit.
    let limits = ReadyzLimits {
        ttl: std::time::Duration::from_secs(60),
        anonymous_per_sec: 1,
        anonymous_burst: 10,
    };
    let h = Harness::start_with_limits(FakeBackend::new(), limits).await;
    let mut answered = 0;
    let mut limited = 0;
    for _ in 0..100 {
        let response = h.call(Method::GET, "/readyz", None).await;
        match response.status() {
            StatusCode::OK => answered += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(response.headers()["retry-after"], "1");
                let body: ApiError = response.json().await.unwrap();
                assert_eq!(body.error, "rate_limited");
                limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        (10..=15).contains(&answered),
        "answered {answered} of 100 without a key"
    );
    assert_eq!(answered + limited, 100);
    for _ in 0..50 {
        let response = h.call(Method::GET, "/readyz", Some(AUDITOR_KEY)).await;
        assert_eq!(response.status(), StatusCode::OK, "operators are not limited");
    }
    assert_eq!(
        h.backend.calls.lock().unwrap().readiness,
        1,
        "one run of the checks for all"
    );
    h.stop().await;
}

#[tokio::test]
async fn protected_routes_refuse_missing_wrong_and_withdrawn_keys() {
    let h = Harness::start().await;
    for (method, path) in protected_routes() {
        for key in [None, Some("rk_wrong"), Some(WITHDRAWN_KEY), Some("")] {
            let response = h.call(method.clone(), path, key).await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {key:?}"
            );
            assert_eq!(
                response.headers()[reqwest::header::WWW_AUTHENTICATE],
                "Bearer realm=\"rampart\""
            );
            let body: ApiError = response.json().await.unwrap();
            assert_eq!(body.error, "unauthorized");
        }
        // The withdrawn key is refused in X-Api-Key too.
        let response = h
            .request(method.clone(), path, None)
            .header("x-api-key", WITHDRAWN_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} with X-Api-Key"
        );
    }
    {
        let calls = h.backend.calls.lock().unwrap();
        assert!(calls.kills.is_empty() && calls.explains.is_empty() && calls.reloads == 0);
    }
    h.stop().await;
}

#[tokio::test]
async fn auditor_reads_but_cannot_kill_or_reload() {
    let h = Harness::start().await;
    for (method, path) in [
        (Method::DELETE, "/v1/sessions/s-1"),
        (Method::DELETE, "/v1/people/alice/sessions"),
        (Method::POST, "/v1/policy/reload"),
    ] {
        let message = h
            .refused(method, path, Some(AUDITOR_KEY), StatusCode::FORBIDDEN, "forbidden")
            .await;
        assert!(message.contains("auditor"), "{message}");
    }
    for path in [
        "/v1/sessions",
        "/v1/policy",
        "/v1/policy/explain?user=alice&resource=wiki",
        "/metrics",
    ] {
        let response = h.call(Method::GET, path, Some(AUDITOR_KEY)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    // X-Api-Key works as well as Bearer.
    let response = h
        .request(Method::GET, "/v1/sessions", None)
        .header("X-Api-Key", AUDITOR_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    {
        let calls = h.backend.calls.lock().unwrap();
        assert!(calls.kills.is_empty() && calls.reloads == 0);
    }
    h.stop().await;
}

#[tokio::test]
async fn helpdesk_kills_but_only_admin_reloads() {
    let h = Harness::start().await;
    let message = h
        .refused(
            Method::POST,
            "/v1/policy/reload",
            Some(HELPDESK_KEY),
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    assert!(message.contains("helpdesk"), "{message}");

    let response = h.call(Method::POST, "/v1/policy/reload", Some(ADMIN_KEY)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let status: PolicyStatus = response.json().await.unwrap();
    assert_eq!(status, policy_status());

    h.backend.policy_valid.store(false, Ordering::SeqCst);
    let message = h
        .refused(
            Method::POST,
            "/v1/policy/reload",
            Some(ADMIN_KEY),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        )
        .await;
    assert!(message.contains("unknown field `alow`"), "{message}");
    assert_eq!(h.backend.calls.lock().unwrap().reloads, 2);

    let response = h.call(Method::GET, "/v1/policy", Some(HELPDESK_KEY)).await;
    assert_eq!(response.json::<PolicyStatus>().await.unwrap(), policy_status());
    h.stop().await;
}

#[tokio::test]
async fn kills_name_the_operator_as_actor() {
    let h = Harness::start().await;
    let response = h.call(Method::DELETE, "/v1/sessions/s-2", Some(HELPDESK_KEY)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let killed: KillResult = response.json().await.unwrap();
    assert_eq!(killed.ended, vec!["s-2".to_owned()]);

    let response = h
        .call(Method::DELETE, "/v1/people/alice/sessions", Some(ADMIN_KEY))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let killed: KillResult = response.json().await.unwrap();
    assert_eq!(killed.ended, vec!["s-1".to_owned(), "s-3".to_owned()]);

    let kills = h.backend.calls.lock().unwrap().kills.clone();
    assert_eq!(
        kills,
        vec![
            ("s-2".to_owned(), "hal-helpdesk".to_owned()),
            ("alice".to_owned(), "ada-admin".to_owned()),
        ]
    );
    h.stop().await;
}

#[tokio::test]
async fn not_found_answers_carry_a_json_body() {
    let h = Harness::start().await;
    let message = h
        .refused(
            Method::DELETE,
            "/v1/sessions/s-999",
            Some(ADMIN_KEY),
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    assert_eq!(message, "no live session s-999");
    let message = h
        .refused(
            Method::DELETE,
            "/v1/people/ghost/sessions",
            Some(ADMIN_KEY),
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    assert_eq!(message, "no person ghost");
    for key in [None, Some(ADMIN_KEY)] {
        h.refused(Method::GET, "/v1/nothing", key, StatusCode::NOT_FOUND, "not_found")
            .await;
    }
    h.refused(
        Method::GET,
        "/v1/policy/reload",
        Some(ADMIN_KEY),
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid",
    )
    .await;
    // A path that is not valid UTF-8 once decoded is refused, not a panic.
    h.refused(
        Method::DELETE,
        "/v1/sessions/%FF",
        Some(ADMIN_KEY),
        StatusCode::BAD_REQUEST,
        "invalid",
    )
    .await;
    assert!(h.backend.calls.lock().unwrap().kills.is_empty());
    h.stop().await;
}

#[tokio::test]
async fn sessions_filter_by_user() {
    let h = Harness::start().await;
    let all: SessionList = h
        .call(Method::GET, "/v1/sessions", Some(AUDITOR_KEY))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all.sessions.len(), 3);
    let alice: SessionList = h
        .call(Method::GET, "/v1/sessions?user=alice", Some(AUDITOR_KEY))
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<_> = alice.sessions.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["s-1", "s-3"]);
    let blank: SessionList = h
        .call(Method::GET, "/v1/sessions?user=", Some(AUDITOR_KEY))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(blank.sessions.len(), 3);
    h.stop().await;
}

#[tokio::test]
async fn explain_takes_rfc3339_or_unix_seconds() {
    let h = Harness::start().await;
    let explain = |at: Option<&'static str>| {
        let mut query = vec![("user", "alice"), ("resource", "wiki")];
        query.extend(at.map(|at| ("at", at)));
        h.request(Method::GET, "/v1/policy/explain", Some(AUDITOR_KEY))
            .query(&query)
            .send()
    };
    // 2026-11-23T07:30:00Z
    let expected = 1_795_419_000;
    for at in ["2026-11-23T08:30:00+01:00", "2026-11-23T07:30:00Z", "1795419000"] {
        let response = explain(Some(at)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{at}");
        let body: Explanation = response.json().await.unwrap();
        assert_eq!(body, explanation("alice", "wiki", Some(expected)));
    }
    let response = explain(None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // An unencoded `+` (decoded as a space) is still understood.
    let response = h
        .call(
            Method::GET,
            "/v1/policy/explain?user=alice&resource=wiki&at=2026-11-23T08:30:00+01:00",
            Some(AUDITOR_KEY),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let explains = h.backend.calls.lock().unwrap().explains.clone();
    let ats: Vec<_> = explains.iter().map(|(_, _, at)| *at).collect();
    assert_eq!(
        ats,
        [Some(expected), Some(expected), Some(expected), None, Some(expected)]
    );
    assert!(explains.iter().all(|(u, r, _)| u == "alice" && r == "wiki"));

    for at in [
        "tomorrow",
        "2026-11-23T08:30:00",
        "2026-13-40T00:00:00Z",
        "99999999999999999999",
    ] {
        let response = explain(Some(at)).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{at}");
        let body: ApiError = response.json().await.unwrap();
        assert_eq!(body.error, "invalid");
        assert!(
            body.message.contains("RFC 3339") && body.message.contains("unix seconds"),
            "{}",
            body.message
        );
    }
    let message = h
        .refused(
            Method::GET,
            "/v1/policy/explain?resource=wiki",
            Some(AUDITOR_KEY),
            StatusCode::BAD_REQUEST,
            "invalid",
        )
        .await;
    assert!(message.contains("`user`"), "{message}");
    assert_eq!(h.backend.calls.lock().unwrap().explains.len(), 5);
    h.stop().await;
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let h = Harness::start().await;
    let response = h.call(Method::GET, "/metrics", Some(AUDITOR_KEY)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert_eq!(response.text().await.unwrap(), METRICS);
    h.stop().await;
}

#[tokio::test]
async fn backend_outages_are_503() {
    let h = Harness::start().await;
    h.refused(
        Method::GET,
        "/v1/sessions",
        Some(STORE_DOWN_KEY),
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;
    let message = h
        .refused(
            Method::GET,
            "/v1/policy/explain?user=alice&resource=directory-down",
            Some(AUDITOR_KEY),
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        )
        .await;
    assert_eq!(message, "the directory cannot be reached");
    h.stop().await;
}

#[test]
fn at_forms() {
    assert_eq!(parse_at("2026-11-23T08:30:00+01:00").unwrap(), 1_795_419_000);
    assert_eq!(parse_at("2026-11-23T07:30:00Z").unwrap(), 1_795_419_000);
    assert_eq!(parse_at("2026-11-23 08:30:00 01:00").unwrap(), 1_795_419_000);
    assert_eq!(parse_at(" 1795419000 ").unwrap(), 1_795_419_000);
    assert_eq!(parse_at("-1").unwrap(), -1);
    for bad in ["", "-", "now", "2026-11-23", "1e9", "2026-11-23T08:30:00"] {
        assert!(parse_at(bad).is_err(), "{bad}");
    }
}
