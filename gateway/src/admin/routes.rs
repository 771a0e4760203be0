//! The admin API's routes and HTTP plumbing: the operator extractor (API key in
//! `Authorization: Bearer` or `X-Api-Key`), role checks, and admin errors as JSON answers.

use crate::admin::api::{ApiError, GatewayList, KillResult, PolicyStatus, Readiness, SessionList};
use crate::admin::readiness::{AnonymousBudget, ReadinessCache, without_details};
use crate::admin::{AdminBackend, AdminError, ReadyzLimits};
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use rampart_audit::AuditLog;
use rampart_audit::http::{ApiAudit, RequestActor, api_activity};
use rampart_core::access::{Permission, allows};
use rampart_core::policy::Explanation;
use rampart_store::OperatorRecord;
use serde::Deserialize;
use std::sync::Arc;

/// Log target of the admin listener.
const TARGET: &str = "rampart::admin";
/// `prometheus-client` writes the OpenMetrics text format (a superset Prometheus scrapes).
const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Largest request body accepted (no route takes one).
const BODY_LIMIT: usize = 16 * 1024;

/// Shared state of the admin routes.
#[derive(Debug, Clone)]
pub(super) struct AdminState {
    /// The running gateway.
    pub(super) backend: Arc<dyn AdminBackend>,
    /// The latest readiness checks.
    readiness: Arc<ReadinessCache>,
    /// `/readyz` answers left for callers without a key.
    anonymous: Arc<AnonymousBudget>,
}

/// Every admin route, with 404/405 answers as JSON error bodies.
pub(super) fn router(backend: Arc<dyn AdminBackend>, audit: AuditLog, limits: ReadyzLimits) -> Router {
    let audit = ApiAudit {
        log: audit,
        service: "gateway-admin",
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/sessions", get(sessions))
        .route("/v1/gateways", get(gateways))
        .route("/v1/sessions/{id}", delete(kill_session))
        .route("/v1/people/{username}/sessions", delete(kill_user))
        .route("/v1/policy", get(policy))
        .route("/v1/policy/reload", post(reload_policy))
        .route("/v1/policy/explain", get(explain))
        .route_layer(middleware::from_fn_with_state(audit, api_activity))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(rampart_audit::http::run_to_completion))
        .with_state(AdminState {
            backend,
            readiness: Arc::new(ReadinessCache::new(limits.ttl)),
            anonymous: Arc::new(AnonymousBudget::new(limits.anonymous_per_sec, limits.anonymous_burst)),
        })
}

/// An error answer: status code plus an [`ApiError`] body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AdminFailure {
    /// No, unknown or withdrawn API key (401).
    Unauthorized,
    /// The key's role does not grant the route's permission (403).
    Forbidden {
        /// The operator's role.
        role: String,
        /// The roles that may, in words.
        needs: &'static str,
    },
    /// No such session, person or route (404).
    NotFound(String),
    /// The request is malformed (400).
    Invalid(String),
    /// The policy file on disk is invalid; the old policy stays (422).
    Unprocessable(String),
    /// The HTTP method is not served on this path (405).
    MethodNotAllowed(String),
    /// A service the gateway needs is down (503).
    Unavailable(String),
    /// Too many requests without a key; retry in a second (429).
    TooManyRequests,
}

impl From<AdminError> for AdminFailure {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::NotFound(message) => Self::NotFound(message),
            AdminError::Invalid(message) => Self::Invalid(message),
            AdminError::Unavailable(message) => Self::Unavailable(message),
        }
    }
}

impl From<PathRejection> for AdminFailure {
    fn from(rejection: PathRejection) -> Self {
        Self::Invalid(format!("path: {}", rejection.body_text()))
    }
}

impl From<QueryRejection> for AdminFailure {
    fn from(rejection: QueryRejection) -> Self {
        Self::Invalid(format!("query: {}", rejection.body_text()))
    }
}

impl AdminFailure {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden { .. } => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Invalid(_) | Self::Unprocessable(_) | Self::MethodNotAllowed(_) => "invalid",
            Self::Unavailable(_) => "unavailable",
            Self::TooManyRequests => "rate_limited",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Unauthorized => "a valid API key is required".to_owned(),
            Self::Forbidden { role, needs } => format!("the {role} role cannot do this: it needs {needs}"),
            Self::TooManyRequests => "too many requests without an API key; retry in a second".to_owned(),
            Self::NotFound(message)
            | Self::Invalid(message)
            | Self::Unprocessable(message)
            | Self::MethodNotAllowed(message)
            | Self::Unavailable(message) => message.clone(),
        }
    }
}

impl IntoResponse for AdminFailure {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ApiError {
            error: self.code().to_owned(),
            message: self.message(),
        };
        if let Self::Unavailable(message) = &self {
            tracing::error!(target: TARGET, error = %message, "admin request failed");
        }
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"rampart\""),
            );
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// A path parameter; malformed ones are answered with an [`ApiError`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AdminFailure))]
struct ApiPath<T>(T);

/// Query parameters; malformed ones are answered with an [`ApiError`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AdminFailure))]
struct ApiQuery<T>(T);

/// The operator whose API key came with the request.
#[derive(Debug, Clone)]
struct Operator(OperatorRecord);

impl Operator {
    /// The operator's name, recorded as the actor of kills.
    fn name(&self) -> &str {
        &self.0.name
    }

    /// Refuses with 403 unless the operator's role grants `permission`.
    fn require(&self, permission: Permission) -> Result<&Self, AdminFailure> {
        if allows(self.0.role, permission) {
            Ok(self)
        } else {
            tracing::warn!(
                target: TARGET, operator = %self.0.name, role = %self.0.role, permission = ?permission,
                "operator refused"
            );
            Err(AdminFailure::Forbidden {
                role: self.0.role.as_str().to_owned(),
                needs: rampart_core::access::granted_by(permission),
            })
        }
    }
}

/// The API key of a request: `Authorization: Bearer KEY`, else `X-Api-Key: KEY`.
fn api_key(parts: &Parts) -> Option<&str> {
    let headers = &parts.headers;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(rest)
        });
    let key = bearer.or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
    key.map(str::trim).filter(|k| !k.is_empty())
}

impl FromRequestParts<AdminState> for Operator {
    type Rejection = AdminFailure;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, Self::Rejection> {
        let Some(key) = api_key(parts) else {
            return Err(AdminFailure::Unauthorized);
        };
        match state.backend.operator(key).await? {
            Some(operator) if operator.revoked_at.is_none() => {
                if let Some(actor) = parts.extensions.get::<RequestActor>() {
                    actor.set(&operator.name);
                }
                Ok(Self(operator))
            }
            _ => {
                tracing::warn!(target: TARGET, path = %parts.uri.path(), "unknown or withdrawn API key");
                Err(AdminFailure::Unauthorized)
            }
        }
    }
}

/// Liveness: answers without a key.
async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: store, directory, policy and clock checks, 503 unless all pass. The checks run
/// at most once per ttl whoever asks. Without a key it answers within a shared budget per
/// second and names the checks without their details; with an operator key (any role) the
/// details are included; a wrong key is 401.
async fn readyz(State(state): State<AdminState>, request: Request) -> Result<Response, AdminFailure> {
    let (mut parts, _) = request.into_parts();
    let operator = match api_key(&parts) {
        Some(_) => Some(Operator::from_request_parts(&mut parts, &state).await?),
        None => None,
    };
    if operator.is_none() && !state.anonymous.take() {
        return Err(AdminFailure::TooManyRequests);
    }
    let backend = state.backend.clone();
    let readiness = state.readiness.get(async move { backend.readiness().await }).await;
    let readiness = match operator {
        Some(_) => readiness,
        None => without_details(readiness),
    };
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, axum::Json::<Readiness>(readiness)).into_response())
}

/// Prometheus metrics.
async fn metrics(State(state): State<AdminState>, operator: Operator) -> Result<Response, AdminFailure> {
    operator.require(Permission::Read)?;
    let body = state.backend.metrics();
    Ok(([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body).into_response())
}

/// Query of `GET /v1/sessions`.
#[derive(Debug, Deserialize)]
struct SessionsQuery {
    /// Only this person's sessions.
    user: Option<String>,
}

/// Live sessions, optionally one person's.
async fn sessions(
    State(state): State<AdminState>,
    operator: Operator,
    ApiQuery(query): ApiQuery<SessionsQuery>,
) -> Result<axum::Json<SessionList>, AdminFailure> {
    operator.require(Permission::Read)?;
    let user = query.user.as_deref().map(str::trim).filter(|u| !u.is_empty());
    Ok(axum::Json(SessionList {
        sessions: state.backend.sessions(user).await?,
    }))
}

/// Every gateway sharing the store.
async fn gateways(
    State(state): State<AdminState>,
    operator: Operator,
) -> Result<axum::Json<GatewayList>, AdminFailure> {
    operator.require(Permission::Read)?;
    Ok(axum::Json(GatewayList {
        gateways: state.backend.gateways().await?,
    }))
}

/// Ends one session.
async fn kill_session(
    State(state): State<AdminState>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<KillResult>, AdminFailure> {
    operator.require(Permission::ManageTokens)?;
    let result = state.backend.kill_session(&id, operator.name()).await;
    log_kill(operator.name(), &format!("session {id}"), &result);
    Ok(axum::Json(result?))
}

/// Ends every live session of one person.
async fn kill_user(
    State(state): State<AdminState>,
    operator: Operator,
    ApiPath(username): ApiPath<String>,
) -> Result<axum::Json<KillResult>, AdminFailure> {
    operator.require(Permission::ManageTokens)?;
    let result = state.backend.kill_user(&username, operator.name()).await;
    log_kill(operator.name(), &format!("sessions of {username}"), &result);
    Ok(axum::Json(result?))
}

/// Records who ended what (never the key).
fn log_kill(operator: &str, what: &str, result: &Result<KillResult, AdminError>) {
    match result {
        Ok(killed) => {
            tracing::info!(target: TARGET, operator = %operator, subject = %what, ended = ?killed.ended, "sessions ended");
        }
        Err(err) => {
            tracing::info!(target: TARGET, operator = %operator, subject = %what, error = %err, "kill failed");
        }
    }
}

/// The policy in force.
async fn policy(State(state): State<AdminState>, operator: Operator) -> Result<axum::Json<PolicyStatus>, AdminFailure> {
    operator.require(Permission::Read)?;
    Ok(axum::Json(state.backend.policy_status()))
}

/// Re-reads the policy file; an invalid file is 422 with its problems (the old policy stays).
async fn reload_policy(
    State(state): State<AdminState>,
    operator: Operator,
) -> Result<axum::Json<PolicyStatus>, AdminFailure> {
    operator.require(Permission::Administer)?;
    match state.backend.reload_policy().await {
        Ok(status) => {
            if status.reloaded == Some(false) {
                tracing::info!(
                    target: TARGET, operator = %operator.name(), sha256 = %status.sha256,
                    "policy reload: the file is the policy in force, nothing changed"
                );
            } else {
                tracing::info!(
                    target: TARGET, operator = %operator.name(), sha256 = %status.sha256, resources = status.resources,
                    rules = status.rules, "policy reloaded"
                );
            }
            Ok(axum::Json(status))
        }
        Err(AdminError::Invalid(problems)) => {
            tracing::info!(target: TARGET, operator = %operator.name(), problems = %problems, "policy reload rejected");
            Err(AdminFailure::Unprocessable(problems))
        }
        Err(other) => Err(other.into()),
    }
}

/// Query of `GET /v1/policy/explain`.
#[derive(Debug, Deserialize)]
struct ExplainQuery {
    /// The person.
    user: Option<String>,
    /// The resource's name.
    resource: Option<String>,
    /// When (RFC 3339 or unix seconds); now when absent.
    at: Option<String>,
}

/// Why a person may or may not open a resource.
async fn explain(
    State(state): State<AdminState>,
    operator: Operator,
    ApiQuery(query): ApiQuery<ExplainQuery>,
) -> Result<axum::Json<Explanation>, AdminFailure> {
    operator.require(Permission::Read)?;
    let user = required(query.user.as_deref(), "user")?;
    let resource = required(query.resource.as_deref(), "resource")?;
    let at = match query.at.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        Some(text) => Some(parse_at(text)?),
        None => None,
    };
    Ok(axum::Json(state.backend.explain(user, resource, at).await?))
}

/// A query parameter that must be present and non-blank.
fn required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, AdminFailure> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| AdminFailure::Invalid(format!("query parameter `{name}` is required")))
}

/// `at` as unix seconds: RFC 3339 with an offset (`2026-11-23T08:30:00+01:00`,
/// `2026-11-23T07:30:00Z`) or unix seconds (`1795419000`).
pub(super) fn parse_at(text: &str) -> Result<i64, AdminFailure> {
    let invalid = || {
        let shown: String = text.chars().take(64).collect();
        AdminFailure::Invalid(format!(
            "`at` must be an RFC 3339 time with an offset (e.g. 2026-11-23T08:30:00+01:00 or \
             2026-11-23T07:30:00Z) or unix seconds, not {shown:?}"
        ))
    };
    let text = text.trim();
    if !text.is_empty()
        && text
            .strip_prefix('-')
            .unwrap_or(text)
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        let seconds: i64 = text.parse().map_err(|_| invalid())?;
        return jiff::Timestamp::from_second(seconds)
            .map(|ts| ts.as_second())
            .map_err(|_| invalid());
    }
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(ts.as_second());
    }
    // An unencoded `+` in a query string arrives as a space: `08:30:00 01:00`.
    if let Some((time, offset)) = text.rsplit_once(' ')
        && let Ok(ts) = format!("{time}+{offset}").parse::<jiff::Timestamp>()
    {
        return Ok(ts.as_second());
    }
    Err(invalid())
}

/// Unknown paths.
async fn no_route(method: Method, uri: Uri) -> AdminFailure {
    AdminFailure::NotFound(format!("no route for {method} {}", uri.path()))
}

/// Known paths with another method.
async fn wrong_method(method: Method, uri: Uri) -> AdminFailure {
    AdminFailure::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
