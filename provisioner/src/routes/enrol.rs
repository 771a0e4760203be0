//! Routes for bulk enrolment: issue a batch, confirm delivery, list a group's members.

use crate::api::{ApiError, ConfirmRequest, ConfirmResponse, EnrolBatch, EnrolBatchResponse, GroupMembers};
use crate::auth::Permission;
use crate::http::{ApiFailure, ApiJson, ApiPath, Operator};
use crate::service::Provisioner;
use axum::extract::State;

/// Issues undelivered tokens for a batch of people (at most 500 rows).
#[utoipa::path(post, path = "/v1/enrol/batch", tag = "enrolment", request_body = EnrolBatch,
    responses((status = 200, body = EnrolBatchResponse), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 503, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn batch(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiJson(batch): ApiJson<EnrolBatch>,
) -> Result<ApiJson<EnrolBatchResponse>, ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    let results = app.enrol_batch(operator.name(), &batch).await?;
    Ok(ApiJson(EnrolBatchResponse { results }))
}

/// Marks tokens delivered once their QR codes are written.
#[utoipa::path(post, path = "/v1/enrol/confirm", tag = "enrolment", request_body = ConfirmRequest,
    responses((status = 200, body = ConfirmResponse), (status = 401, body = ApiError), (status = 403, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn confirm(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiJson(request): ApiJson<ConfirmRequest>,
) -> Result<ApiJson<ConfirmResponse>, ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    let confirmed = app.confirm_delivery(operator.name(), &request.token_ids).await?;
    Ok(ApiJson(ConfirmResponse { confirmed }))
}

/// Enabled members of a directory group.
#[utoipa::path(get, path = "/v1/directory/groups/{group}", tag = "enrolment",
    params(("group" = String, Path, description = "Group name")),
    responses((status = 200, body = GroupMembers), (status = 401, body = ApiError), (status = 404, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn group(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(group): ApiPath<String>,
) -> Result<ApiJson<GroupMembers>, ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    Ok(ApiJson(app.group_members(&group).await?))
}
