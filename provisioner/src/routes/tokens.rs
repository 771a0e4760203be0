//! Routes for one person's token and for token lists.

use crate::api::{
    ApiError, Gated, IssueRequest, IssuedToken, LostRequest, LostResponse, PersonInfo, ReasonRequest, ResetRequestInfo,
    ResyncRequest, TemporaryCode, TokenInfo, TokenListQuery,
};
use crate::auth::Permission;
use crate::http::{ApiFailure, ApiJson, ApiPath, ApiQuery, Operator};
use crate::service::Provisioner;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// `done` with its status, or 202 with the request that waits for a second operator.
fn gated<T: serde::Serialize>(answer: Gated<T>, done: StatusCode) -> Response {
    match answer {
        Gated::AwaitingApproval(request) => (StatusCode::ACCEPTED, ApiJson(request)).into_response(),
        Gated::Done(value) => (done, ApiJson(value)).into_response(),
    }
}

/// Issues a token; the answer is the only time its secret is shown. With dual control on, a
/// reissue for a person who has a token waits for a second operator's approval (202).
#[utoipa::path(post, path = "/v1/people/{username}/token", tag = "tokens",
    params(("username" = String, Path, description = "Username in the directory")),
    request_body = IssueRequest,
    responses(
        (status = 201, description = "Issued", body = IssuedToken),
        (status = 202, description = "A reissue waits for a second operator's approval", body = ResetRequestInfo),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, description = "Not in the directory", body = ApiError),
        (status = 409, description = "Already has a token", body = ApiError),
        (status = 503, description = "The clock is off from the database's, or the store or directory fails", body = ApiError),
    ),
    security(("api_key" = [])))]
pub(super) async fn issue(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(username): ApiPath<String>,
    ApiJson(request): ApiJson<IssueRequest>,
) -> Result<Response, ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    let issued = app
        .issue_token(operator.name(), &username, request.reissue, request.qr)
        .await?;
    Ok(gated(issued, StatusCode::CREATED))
}

/// A person, their tokens and history.
#[utoipa::path(get, path = "/v1/people/{username}", tag = "tokens",
    params(("username" = String, Path, description = "Username")),
    responses((status = 200, body = PersonInfo), (status = 401, body = ApiError), (status = 404, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn person(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(username): ApiPath<String>,
) -> Result<ApiJson<PersonInfo>, ApiFailure> {
    operator.require(Permission::Read)?;
    Ok(ApiJson(app.person(&username).await?))
}

/// Lists tokens.
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens", params(TokenListQuery),
    responses((status = 200, body = Vec<TokenInfo>), (status = 400, body = ApiError), (status = 401, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn list(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiQuery(query): ApiQuery<TokenListQuery>,
) -> Result<ApiJson<Vec<TokenInfo>>, ApiFailure> {
    operator.require(Permission::Read)?;
    Ok(ApiJson(app.list_tokens(&query).await?))
}

/// Revokes the person's token.
#[utoipa::path(post, path = "/v1/people/{username}/token/revoke", tag = "tokens",
    params(("username" = String, Path, description = "Username")),
    request_body = ReasonRequest,
    responses((status = 200, body = TokenInfo), (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn revoke(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(username): ApiPath<String>,
    ApiJson(request): ApiJson<ReasonRequest>,
) -> Result<ApiJson<TokenInfo>, ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    Ok(ApiJson(app.revoke(operator.name(), &username, &request.reason).await?))
}

/// Marks the person's token lost; optionally a temporary code and/or a replacement, which
/// with dual control on wait for a second operator's approval (202, `pending_approval`).
#[utoipa::path(post, path = "/v1/people/{username}/token/lost", tag = "tokens",
    params(("username" = String, Path, description = "Username")),
    request_body = LostRequest,
    responses((status = 200, body = LostResponse),
        (status = 202, description = "Marked lost; the rest waits for a second operator's approval", body = LostResponse), (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError), (status = 503, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn lost(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(username): ApiPath<String>,
    ApiJson(request): ApiJson<LostRequest>,
) -> Result<(StatusCode, ApiJson<LostResponse>), ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    let answer = app.lost(operator.name(), &username, &request).await?;
    let status = if answer.pending_approval.is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, ApiJson(answer)))
}

/// Clears the failure counter of a locked token; with dual control on, the unlock waits for a
/// second operator's approval (202). A token that is not locked is refused with 409 and error
/// `not_locked`: nothing is changed, recorded or asked for.
#[utoipa::path(post, path = "/v1/people/{username}/token/unlock", tag = "tokens",
    params(("username" = String, Path, description = "Username")),
    responses((status = 200, body = TokenInfo),
        (status = 202, description = "Waits for a second operator's approval", body = ResetRequestInfo), (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError),
        (status = 409, description = "No pending or active token, or (error `not_locked`) the token is not locked: nothing changed", body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn unlock(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(username): ApiPath<String>,
) -> Result<Response, ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    Ok(gated(app.unlock(operator.name(), &username).await?, StatusCode::OK))
}

/// Resynchronises a drifting token from two consecutive codes.
#[utoipa::path(post, path = "/v1/people/{username}/token/resync", tag = "tokens",
    params(("username" = String, Path, description = "Username")),
    request_body = ResyncRequest,
    responses((status = 200, body = TokenInfo), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 503, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn resync(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(username): ApiPath<String>,
    ApiJson(request): ApiJson<ResyncRequest>,
) -> Result<ApiJson<TokenInfo>, ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    let token = app
        .resync(operator.name(), &username, &request.first_code, &request.second_code)
        .await?;
    Ok(ApiJson(token))
}

/// Issues a temporary one-time code for the person; with dual control on, it waits for a
/// second operator's approval (202).
#[utoipa::path(post, path = "/v1/people/{username}/temporary-code", tag = "tokens",
    params(("username" = String, Path, description = "Username")),
    responses((status = 201, body = TemporaryCode),
        (status = 202, description = "Waits for a second operator's approval", body = ResetRequestInfo), (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 503, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn temporary_code(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(username): ApiPath<String>,
) -> Result<Response, ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    let code = app.temporary_code(operator.name(), &username).await?;
    Ok(gated(code, StatusCode::CREATED))
}
