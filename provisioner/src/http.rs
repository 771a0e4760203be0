//! HTTP plumbing shared by every route: the authenticated operator extractor (API key in
//! `Authorization: Bearer` or `X-Api-Key`), JSON bodies whose rejections are API errors, and
//! the mapping of service errors onto status codes with a JSON body.

use crate::api::ApiError;
use crate::auth::{Permission, allows};
use crate::service::{Provisioner, ServiceError};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use rampart_store::OperatorRecord;

/// Shared state of the HTTP server.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The operations.
    pub provisioner: Provisioner,
}

impl FromRef<AppState> for Provisioner {
    fn from_ref(state: &AppState) -> Self {
        state.provisioner.clone()
    }
}

/// An error answer.
#[derive(Debug)]
pub struct ApiFailure(pub ServiceError);

impl From<ServiceError> for ApiFailure {
    fn from(err: ServiceError) -> Self {
        Self(err)
    }
}

impl From<JsonRejection> for ApiFailure {
    fn from(rejection: JsonRejection) -> Self {
        Self(ServiceError::Invalid(format!(
            "request body: {}",
            rejection.body_text()
        )))
    }
}

impl From<PathRejection> for ApiFailure {
    fn from(rejection: PathRejection) -> Self {
        Self(ServiceError::Invalid(format!("path: {}", rejection.body_text())))
    }
}

impl From<QueryRejection> for ApiFailure {
    fn from(rejection: QueryRejection) -> Self {
        Self(ServiceError::Invalid(format!("query: {}", rejection.body_text())))
    }
}

/// The HTTP status of a service error, for the API and the console alike.
pub(crate) fn status_of(err: &ServiceError) -> StatusCode {
    match err {
        ServiceError::Unauthorized => StatusCode::UNAUTHORIZED,
        ServiceError::Forbidden { .. } | ServiceError::NotPermitted(_) => StatusCode::FORBIDDEN,
        ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
        ServiceError::Conflict(_) | ServiceError::NotLocked(_) => StatusCode::CONFLICT,
        ServiceError::Invalid(_) => StatusCode::BAD_REQUEST,
        ServiceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ServiceError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(target: "rampart::provisioner", error = %self.0, "request failed");
        }
        let body = ApiError {
            error: self.0.code().to_owned(),
            message: self.0.to_string(),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let ServiceError::TooMany(secs) = &self.0
            && let Ok(value) = axum::http::HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"rampart\""),
            );
        }
        response
    }
}

/// A JSON body; malformed bodies are answered with an [`ApiError`].
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiFailure))]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A path parameter; malformed ones are answered with an [`ApiError`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiFailure))]
pub struct ApiPath<T>(pub T);

/// Query parameters; malformed ones are answered with an [`ApiError`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiFailure))]
pub struct ApiQuery<T>(pub T);

/// The operator whose API key came with the request.
#[derive(Debug, Clone)]
pub struct Operator(pub OperatorRecord);

impl Operator {
    /// The operator's name, recorded as the actor of changes.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Refuses with 403 unless the operator's role grants `permission`.
    pub fn require(&self, permission: Permission) -> Result<&Self, ApiFailure> {
        if allows(self.0.role, permission) {
            Ok(self)
        } else {
            tracing::warn!(
                target: "rampart::provisioner", operator = %self.0.name, role = %self.0.role,
                permission = ?permission, "operator refused"
            );
            Err(ApiFailure(ServiceError::Forbidden {
                role: self.0.role.as_str().to_owned(),
                needs: rampart_core::access::granted_by(permission),
            }))
        }
    }
}

impl<S> FromRequestParts<S> for Operator
where
    S: Send + Sync,
    Provisioner: FromRef<S>,
{
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let headers = &parts.headers;
        let bearer = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
        let key = bearer.or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
        let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) else {
            return Err(ApiFailure(ServiceError::Unauthorized));
        };
        let provisioner = Provisioner::from_ref(state);
        match provisioner.authenticate(key).await {
            Ok(operator) => {
                if let Some(actor) = parts.extensions.get::<rampart_audit::http::RequestActor>() {
                    actor.set(&operator.name);
                }
                Ok(Self(operator))
            }
            Err(ServiceError::Unauthorized) => {
                tracing::warn!(target: "rampart::provisioner", path = %parts.uri.path(), "unknown or withdrawn API key");
                Err(ApiFailure(ServiceError::Unauthorized))
            }
            Err(other) => Err(ApiFailure(other)),
        }
    }
}
