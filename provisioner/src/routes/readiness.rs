//! Routes of the readiness funnel: the desk and managers read it (API key, any role) as JSON or
//! CSV; an employee's `rampart-connect doctor --rehearse` reports a rehearsal with no key,
//! proving itself with its gateway session's ticket (`Authorization: Session TICKET`).

use crate::api::{ApiError, ReadinessQuery, ReadinessReport, RehearsalRecorded, RehearsalReport};
use crate::auth::Permission;
use crate::http::{ApiFailure, ApiJson, ApiQuery, Operator};
use crate::service::{Provisioner, ServiceError, readiness_csv};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_core::secret::Sensitive;
use std::net::SocketAddr;

/// Largest rehearsal report read (a few hundred resources with reasons).
pub(super) const MAX_BODY: usize = 64 * 1024;

/// The funnel: per step, how many people reached it and who is stuck there; every person's
/// steps.
#[utoipa::path(get, path = "/v1/readiness", tag = "readiness", params(ReadinessQuery),
    responses((status = 200, body = ReadinessReport), (status = 401, body = ApiError), (status = 503, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn report(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiQuery(query): ApiQuery<ReadinessQuery>,
) -> Result<ApiJson<ReadinessReport>, ApiFailure> {
    operator.require(Permission::Read)?;
    Ok(ApiJson(app.readiness(query.group.as_deref()).await?))
}

/// The funnel as CSV for managers: one row per person with the furthest step and each step's
/// time (ISO 8601, UTC).
#[utoipa::path(get, path = "/v1/readiness.csv", tag = "readiness", params(ReadinessQuery),
    responses((status = 200, description = "CSV", content_type = "text/csv"), (status = 401, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn csv(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiQuery(query): ApiQuery<ReadinessQuery>,
) -> Result<Response, ApiFailure> {
    operator.require(Permission::Read)?;
    let report = app.readiness(query.group.as_deref()).await?;
    Ok(csv_response(readiness_csv(&report)?))
}

/// A CSV body as a download named `rampart-readiness.csv`.
fn csv_response(body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"rampart-readiness.csv\"",
            ),
        ],
        body,
    )
        .into_response()
}

/// Records a rehearsal for the person whose live gateway session the ticket in
/// `Authorization: Session TICKET` belongs to. Passed when at least one resource was tried and
/// every one opened.
#[utoipa::path(post, path = "/v1/rehearsals", tag = "readiness",
    request_body = RehearsalReport,
    responses(
        (status = 201, description = "Recorded", body = RehearsalRecorded),
        (status = 400, body = ApiError),
        (status = 401, description = "No live session for this ticket: log in again", body = ApiError),
        (status = 429, description = "Too many reports from this address; `Retry-After` says when to try again", body = ApiError),
        (status = 503, body = ApiError),
    ))]
pub(super) async fn rehearse(
    State(app): State<Provisioner>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<axum::Json<RehearsalReport>, JsonRejection>,
) -> Result<Response, ApiFailure> {
    let ticket = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Session "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| Sensitive::new(t.to_owned()));
    let Some(ticket) = ticket else {
        return Ok(not_in_session());
    };
    let axum::Json(report) = body.map_err(|_| {
        ApiFailure(ServiceError::Invalid(
            "the request body must be a JSON object with resources: a list of {resource, ok, reason}".into(),
        ))
    })?;
    let source = peer.map(|Extension(ConnectInfo(addr))| addr);
    match app.record_rehearsal(&ticket, report.resources, source).await? {
        Some(recorded) => Ok((StatusCode::CREATED, ApiJson(recorded)).into_response()),
        None => Ok(not_in_session()),
    }
}

fn not_in_session() -> Response {
    let body = ApiError {
        error: "not_logged_in".to_owned(),
        message: "no live session: log in again with `rampart-connect login`, then rehearse".to_owned(),
    };
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}
