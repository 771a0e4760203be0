//! Routes for operators, seed-sealing keys, reports and the caller's identity.

use crate::api::{
    ApiError, CreatedOperator, KeysInfo, NewOperator, OperatorInfo, ReportQuery, RotateResponse, TokenReport, WhoAmI,
};
use crate::auth::Permission;
use crate::http::{ApiFailure, ApiJson, ApiPath, ApiQuery, Operator};
use crate::service::Provisioner;
use axum::extract::State;
use axum::http::StatusCode;

/// Who the API key belongs to.
#[utoipa::path(get, path = "/v1/whoami", tag = "operators",
    responses((status = 200, body = WhoAmI), (status = 401, body = ApiError)), security(("api_key" = [])))]
pub(super) async fn whoami(operator: Operator) -> ApiJson<WhoAmI> {
    ApiJson(WhoAmI {
        name: operator.0.name.clone(),
        role: operator.0.role.as_str().into(),
    })
}

/// The token report.
#[utoipa::path(get, path = "/v1/reports/tokens", tag = "reports", params(ReportQuery),
    responses((status = 200, body = TokenReport), (status = 401, body = ApiError)), security(("api_key" = [])))]
pub(super) async fn report(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiQuery(query): ApiQuery<ReportQuery>,
) -> Result<ApiJson<TokenReport>, ApiFailure> {
    operator.require(Permission::Read)?;
    Ok(ApiJson(app.report(query.pending_days).await?))
}

/// Every operator.
#[utoipa::path(get, path = "/v1/operators", tag = "operators",
    responses((status = 200, body = Vec<OperatorInfo>), (status = 401, body = ApiError), (status = 403, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn list_operators(
    State(app): State<Provisioner>,
    operator: Operator,
) -> Result<ApiJson<Vec<OperatorInfo>>, ApiFailure> {
    operator.require(Permission::Administer)?;
    Ok(ApiJson(app.list_operators().await?))
}

/// Creates an operator; the answer holds its API key, shown only once.
#[utoipa::path(post, path = "/v1/operators", tag = "operators", request_body = NewOperator,
    responses((status = 201, body = CreatedOperator), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 409, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn create_operator(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiJson(request): ApiJson<NewOperator>,
) -> Result<(StatusCode, ApiJson<CreatedOperator>), ApiFailure> {
    operator.require(Permission::Administer)?;
    let created = app
        .create_operator(operator.name(), &request.name, &request.role)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(created)))
}

/// Withdraws an operator's API key.
#[utoipa::path(delete, path = "/v1/operators/{name}", tag = "operators",
    params(("name" = String, Path, description = "Operator name")),
    responses((status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn revoke_operator(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiFailure> {
    operator.require(Permission::Administer)?;
    app.revoke_operator(operator.name(), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The seed-sealing keys.
#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    responses((status = 200, body = KeysInfo), (status = 401, body = ApiError), (status = 403, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn keys(State(app): State<Provisioner>, operator: Operator) -> Result<ApiJson<KeysInfo>, ApiFailure> {
    operator.require(Permission::Administer)?;
    Ok(ApiJson(app.keys_info().await?))
}

/// Adds a new sealing key and re-seals every seed under it.
#[utoipa::path(post, path = "/v1/keys/rotate", tag = "keys",
    responses((status = 200, body = RotateResponse), (status = 401, body = ApiError), (status = 403, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn rotate(
    State(app): State<Provisioner>,
    operator: Operator,
) -> Result<ApiJson<RotateResponse>, ApiFailure> {
    operator.require(Permission::Administer)?;
    Ok(ApiJson(app.rotate_keys(operator.name()).await?))
}

/// Removes a key that seals nothing.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys",
    params(("id" = u32, Path, description = "Key id")),
    responses((status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError),
        (status = 409, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn retire_key(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(id): ApiPath<u32>,
) -> Result<StatusCode, ApiFailure> {
    operator.require(Permission::Administer)?;
    app.retire_key(operator.name(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
