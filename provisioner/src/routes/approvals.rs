//! Routes for token resets under dual control: list and show requests, approve, deny, and
//! collect an approved result (the requester only, once).

use crate::api::{ApiError, CollectRequest, CollectedReset, ReasonRequest, ResetRequestInfo, ResetRequestQuery};
use crate::auth::Permission;
use crate::http::{ApiFailure, ApiJson, ApiPath, ApiQuery, Operator};
use crate::service::Provisioner;
use axum::extract::State;

/// Reset requests: the open ones (pending, or approved and not yet collected), or all.
#[utoipa::path(get, path = "/v1/reset-requests", tag = "approvals", params(ResetRequestQuery),
    responses((status = 200, body = Vec<ResetRequestInfo>), (status = 401, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn list(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiQuery(query): ApiQuery<ResetRequestQuery>,
) -> Result<ApiJson<Vec<ResetRequestInfo>>, ApiFailure> {
    operator.require(Permission::Read)?;
    Ok(ApiJson(app.reset_requests(query.all).await?))
}

/// One reset request.
#[utoipa::path(get, path = "/v1/reset-requests/{id}", tag = "approvals",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = ResetRequestInfo), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 404, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn show(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<ResetRequestInfo>, ApiFailure> {
    operator.require(Permission::Read)?;
    Ok(ApiJson(app.reset_request(&id).await?))
}

/// Approves another operator's pending request before it expires. An unlock is carried out at
/// once; a temporary code or replacement is then collected by the requester.
#[utoipa::path(post, path = "/v1/reset-requests/{id}/approve", tag = "approvals",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = ResetRequestInfo), (status = 401, body = ApiError),
        (status = 403, description = "The role cannot manage tokens, or the operator made the request", body = ApiError),
        (status = 404, body = ApiError),
        (status = 409, description = "Already decided, expired, or the token is no longer live", body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn approve(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<ResetRequestInfo>, ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    Ok(ApiJson(app.approve_reset(operator.name(), &id).await?))
}

/// Denies a request not yet carried out (its requester withdraws it this way).
#[utoipa::path(post, path = "/v1/reset-requests/{id}/deny", tag = "approvals",
    params(("id" = String, Path, description = "Request id")),
    request_body = ReasonRequest,
    responses((status = 200, body = ResetRequestInfo), (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, description = "Already decided", body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn deny(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<ReasonRequest>,
) -> Result<ApiJson<ResetRequestInfo>, ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    Ok(ApiJson(app.deny_reset(operator.name(), &id, &request.reason).await?))
}

/// Collects an approved temporary code or replacement: only the operator who asked, once,
/// before it expires. The answer is the only time the code or the token's secret is shown.
#[utoipa::path(post, path = "/v1/reset-requests/{id}/collect", tag = "approvals",
    params(("id" = String, Path, description = "Request id")),
    request_body = CollectRequest,
    responses((status = 200, body = CollectedReset), (status = 401, body = ApiError),
        (status = 403, description = "The role cannot manage tokens, or another operator made the request", body = ApiError),
        (status = 404, body = ApiError),
        (status = 409, description = "Not approved yet, denied, expired or already collected", body = ApiError),
        (status = 503, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn collect(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<CollectRequest>,
) -> Result<ApiJson<CollectedReset>, ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    Ok(ApiJson(app.collect_reset(operator.name(), &id, request.qr).await?))
}
