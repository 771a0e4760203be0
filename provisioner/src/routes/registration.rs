//! Routes for self-service enrolment: the desk issues registration codes (API key); the
//! employee starts and confirms an enrolment with no key, proving themselves with their
//! directory password and registration code, then with the first code of their authenticator.

use crate::api::{
    ApiError, ConfirmEnrolmentRequest, ConfirmedEnrolment, IssuedRegistrationCode, RegistrationCodeRequest,
    StartEnrolmentRequest, StartedEnrolment,
};
use crate::auth::Permission;
use crate::http::{ApiFailure, ApiJson, ApiPath, Operator};
use crate::service::{EnrolmentRefusal, Provisioner, ServiceError};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rampart_core::secret::Sensitive;
use std::net::SocketAddr;

/// Largest body the key-less enrolment routes read.
pub(super) const MAX_BODY: usize = 16 * 1024;

/// The peer, when the server records it.
type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

/// Issues a registration code; the answer is the only time it is shown. Earlier codes of the
/// person stop working.
#[utoipa::path(post, path = "/v1/people/{username}/registration-code", tag = "enrolment",
    params(("username" = String, Path, description = "Username in the directory")),
    request_body = RegistrationCodeRequest,
    responses(
        (status = 201, description = "Issued", body = IssuedRegistrationCode),
        (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, description = "Not in the directory", body = ApiError),
        (status = 503, body = ApiError),
    ),
    security(("api_key" = [])))]
pub(super) async fn issue(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(username): ApiPath<String>,
    ApiJson(request): ApiJson<RegistrationCodeRequest>,
) -> Result<Response, ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    let issued = app
        .issue_registration_code(operator.name(), &username, request.delivery, request.valid_days)
        .await?;
    Ok((StatusCode::CREATED, NO_STORE, ApiJson(issued)).into_response())
}

/// Starts an enrolment with the directory password and a registration code; the answer holds
/// the new authenticator's secret, shown this once. Every refusal is the same 401, after the
/// same delay.
#[utoipa::path(post, path = "/v1/enrolment", tag = "enrolment",
    request_body = StartEnrolmentRequest,
    responses(
        (status = 201, description = "Started: add the account, then confirm", body = StartedEnrolment),
        (status = 400, body = ApiError),
        (status = 401, description = "Username, password or registration code not accepted", body = ApiError),
        (status = 429, description = "Too many starts from this address; `Retry-After` says when to try again", body = ApiError),
        (status = 503, body = ApiError),
    ))]
pub(super) async fn start(
    State(app): State<Provisioner>,
    peer: Peer,
    body: Result<axum::Json<StartEnrolmentRequest>, JsonRejection>,
) -> Result<Response, ApiFailure> {
    // The body holds a password: a malformed one is refused without quoting any of it.
    let axum::Json(request) = body.map_err(|_| invalid_body("username, password and registration_code"))?;
    let password = Sensitive::new(request.password);
    let code = Sensitive::new(request.registration_code);
    let source = peer.map(|Extension(ConnectInfo(addr))| addr);
    match app.start_enrolment(&request.username, &password, &code, source).await {
        Ok(started) => Ok((StatusCode::CREATED, NO_STORE, ApiJson(started)).into_response()),
        Err(refusal) => Ok(refused(refusal)),
    }
}

/// Confirms an enrolment with the first code of the new authenticator: the token is active.
#[utoipa::path(post, path = "/v1/enrolment/{enrolment_id}/confirm", tag = "enrolment",
    params(("enrolment_id" = String, Path, description = "From the start's answer")),
    request_body = ConfirmEnrolmentRequest,
    responses(
        (status = 200, description = "The token is active", body = ConfirmedEnrolment),
        (status = 400, body = ApiError),
        (status = 410, description = "Expired, replaced or spent: start again", body = ApiError),
        (status = 422, description = "Wrong code; tries left in the message", body = ApiError),
        (status = 503, body = ApiError),
    ))]
pub(super) async fn confirm(
    State(app): State<Provisioner>,
    peer: Peer,
    ApiPath(enrolment_id): ApiPath<String>,
    body: Result<axum::Json<ConfirmEnrolmentRequest>, JsonRejection>,
) -> Result<Response, ApiFailure> {
    let axum::Json(request) = body.map_err(|_| invalid_body("username and code"))?;
    let code = Sensitive::new(request.code);
    let source = peer.map(|Extension(ConnectInfo(addr))| addr);
    match app
        .confirm_enrolment(&request.username, &enrolment_id, &code, source)
        .await
    {
        Ok(confirmed) => Ok((StatusCode::OK, ApiJson(confirmed)).into_response()),
        Err(refusal) => Ok(refused(refusal)),
    }
}

/// Answers holding a code or a secret are kept by no cache.
const NO_STORE: [(axum::http::HeaderName, &str); 1] = [(axum::http::header::CACHE_CONTROL, "no-store")];

fn invalid_body(fields: &str) -> ApiFailure {
    ApiFailure(ServiceError::Invalid(format!(
        "the request body must be a JSON object with {fields} as strings"
    )))
}

/// A refusal as its status, stable code and message.
fn refused(refusal: EnrolmentRefusal) -> Response {
    let message = refusal.to_string();
    let (status, code) = match refusal {
        EnrolmentRefusal::Service(e) => return ApiFailure(e).into_response(),
        EnrolmentRefusal::NotAccepted => (StatusCode::UNAUTHORIZED, "not_accepted"),
        EnrolmentRefusal::WrongCode { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "wrong_code"),
        EnrolmentRefusal::Gone => (StatusCode::GONE, "gone"),
        EnrolmentRefusal::Wait { secs } => {
            let body = ApiError {
                error: "rate_limited".to_owned(),
                message,
            };
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(axum::http::header::RETRY_AFTER, secs.to_string())],
                axum::Json(body),
            )
                .into_response();
        }
    };
    let body = ApiError {
        error: code.to_owned(),
        message,
    };
    (status, axum::Json(body)).into_response()
}
