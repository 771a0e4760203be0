//! API Activity records for the services' HTTP APIs: a middleware that writes one record per
//! answered call — operator, method, route, path, source and status — and the slot through
//! which a service's API-key extractor names the operator. Health probes and metrics scrapes
//! are machine traffic and are not recorded.

use crate::writer::AuditLog;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rampart_core::audit::{Activity, Actor, AuditEvent, Class, Status};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Paths that are not operator actions.
const NOT_RECORDED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The operator behind a request, filled in by the service's key extractor.
#[derive(Debug, Clone, Default)]
pub struct RequestActor(Arc<Mutex<Option<String>>>);

impl RequestActor {
    /// Names the operator of the request carrying this slot.
    pub fn set(&self, operator: &str) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(operator.to_owned());
    }

    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// What the middleware needs: where to record and which API it is.
#[derive(Debug, Clone)]
pub struct ApiAudit {
    /// The audit log.
    pub log: AuditLog,
    /// `gateway-admin` or `provisioner`.
    pub service: &'static str,
}

/// Middleware (`route_layer(from_fn_with_state(ApiAudit, api_activity))`): records the call
/// after it is answered.
pub async fn api_activity(State(audit): State<ApiAudit>, mut request: Request, next: Next) -> Response {
    if !audit.log.is_enabled() || NOT_RECORDED.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let actor = RequestActor::default();
    request.extensions_mut().insert(actor.clone());
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    // A path holding a bearer handle (a self-service enrolment's id) is recorded as its route
    // only: whoever reads the trail must not be able to act on it.
    let path = match route.as_deref() {
        Some(template) if template.contains("{enrolment_id}") => template.to_owned(),
        _ => request.uri().path().to_owned(),
    };
    let route = route.unwrap_or_else(|| path.clone());
    let source = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let response = next.run(request).await;
    let activity = match method {
        Method::GET | Method::HEAD => Activity::READ,
        Method::DELETE => Activity::DELETE,
        Method::POST => Activity::CREATE,
        _ => Activity::UPDATE,
    };
    let status = response.status();
    let (outcome, message) = if status.is_success() {
        (Status::Success, "API call")
    } else {
        (Status::Failure, "API call refused or failed")
    };
    let operator = actor.get().unwrap_or_else(|| "(no valid API key)".to_owned());
    let mut event = AuditEvent::new(Class::ApiActivity, activity, audit.log.now_ms(), outcome, message)
        .actor(Actor::operator(&operator))
        .api_call(audit.service, method.as_str(), &route, &path)
        .detail(status.as_str());
    if let Some(source) = source {
        event = event.source(source);
    }
    audit.log.record(event);
    response
}

/// Middleware (`layer(from_fn(run_to_completion))`): runs each request in a task of its own, so
/// a client that disconnects or is killed mid-request cannot cancel the handler half-way
/// through a store transaction (leaving SQLite's write lock held until the connection is reused)
/// or before its audit record is written. The client no longer hears the answer; the change
/// still completes or rolls back as a whole.
pub async fn run_to_completion(request: Request, next: Next) -> Response {
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
