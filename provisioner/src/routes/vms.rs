//! Routes for VM pools: pools, inventory, allocations, maintenance, retirement, reclaim and
//! the capacity report.

use crate::api::ApiError;
use crate::auth::Permission;
use crate::http::{ApiFailure, ApiJson, ApiPath, ApiQuery, Operator};
use crate::service::Provisioner;
use crate::vm_api::{
    AddVms, AddVmsResponse, AllocateRequest, CapacityReport, PoolDetail, PoolInfo, PoolRequest, ReassignRequest,
    ReclaimQuery, ReclaimReport, VmInfo, VmQuery, VmReason,
};
use axum::extract::State;
use axum::http::StatusCode;

/// Creates a pool. Needs the admin role.
#[utoipa::path(post, path = "/v1/pools", tag = "vms", request_body = PoolRequest,
    responses((status = 201, body = PoolInfo), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 409, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn create_pool(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiJson(request): ApiJson<PoolRequest>,
) -> Result<(StatusCode, ApiJson<PoolInfo>), ApiFailure> {
    operator.require(Permission::Administer)?;
    Ok((
        StatusCode::CREATED,
        ApiJson(app.create_pool(operator.name(), &request).await?),
    ))
}

/// Every pool with its numbers.
#[utoipa::path(get, path = "/v1/pools", tag = "vms",
    responses((status = 200, body = Vec<PoolInfo>), (status = 401, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn pools(
    State(app): State<Provisioner>,
    operator: Operator,
) -> Result<ApiJson<Vec<PoolInfo>>, ApiFailure> {
    operator.require(Permission::Read)?;
    Ok(ApiJson(app.pools().await?))
}

/// One pool and its VMs.
#[utoipa::path(get, path = "/v1/pools/{pool}", tag = "vms",
    params(("pool" = String, Path, description = "Pool name")),
    responses((status = 200, body = PoolDetail), (status = 401, body = ApiError), (status = 404, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn pool(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(pool): ApiPath<String>,
) -> Result<ApiJson<PoolDetail>, ApiFailure> {
    operator.require(Permission::Read)?;
    Ok(ApiJson(app.pool_detail(&pool).await?))
}

/// Adds VMs to a pool, all or none. Needs the admin role: a VM's address is where the gateway
/// takes its holder (`allocated:` resources), so adding one opens a path into the network.
#[utoipa::path(post, path = "/v1/pools/{pool}/vms", tag = "vms",
    params(("pool" = String, Path, description = "Pool name")), request_body = AddVms,
    responses((status = 201, body = AddVmsResponse), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn add_vms(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(pool): ApiPath<String>,
    ApiJson(request): ApiJson<AddVms>,
) -> Result<(StatusCode, ApiJson<AddVmsResponse>), ApiFailure> {
    operator.require(Permission::Administer)?;
    Ok((
        StatusCode::CREATED,
        ApiJson(app.add_vms(operator.name(), &pool, &request).await?),
    ))
}

/// Gives a VM of the pool to a person.
#[utoipa::path(post, path = "/v1/pools/{pool}/allocations", tag = "vms",
    params(("pool" = String, Path, description = "Pool name")), request_body = AllocateRequest,
    responses((status = 201, body = VmInfo), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 404, body = ApiError),
        (status = 409, description = "No free VM, or the person holds one", body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn allocate(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(pool): ApiPath<String>,
    ApiJson(request): ApiJson<AllocateRequest>,
) -> Result<(StatusCode, ApiJson<VmInfo>), ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    Ok((
        StatusCode::CREATED,
        ApiJson(app.allocate(operator.name(), &pool, &request).await?),
    ))
}

/// VMs by pool, state or holder.
#[utoipa::path(get, path = "/v1/vms", tag = "vms", params(VmQuery),
    responses((status = 200, body = Vec<VmInfo>), (status = 400, body = ApiError), (status = 401, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn list(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiQuery(query): ApiQuery<VmQuery>,
) -> Result<ApiJson<Vec<VmInfo>>, ApiFailure> {
    operator.require(Permission::Read)?;
    Ok(ApiJson(app.list_vms(&query).await?))
}

/// Takes a VM back from its holder.
#[utoipa::path(post, path = "/v1/vms/{vm}/release", tag = "vms",
    params(("vm" = String, Path, description = "VM id")), request_body = VmReason,
    responses((status = 200, body = VmInfo), (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn release(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(vm): ApiPath<String>,
    ApiJson(request): ApiJson<VmReason>,
) -> Result<ApiJson<VmInfo>, ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    Ok(ApiJson(app.release(operator.name(), &vm, &request.reason).await?))
}

/// Gives an allocated VM to another person.
#[utoipa::path(post, path = "/v1/vms/{vm}/reassign", tag = "vms",
    params(("vm" = String, Path, description = "VM id")), request_body = ReassignRequest,
    responses((status = 200, body = VmInfo), (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn reassign(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(vm): ApiPath<String>,
    ApiJson(request): ApiJson<ReassignRequest>,
) -> Result<ApiJson<VmInfo>, ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    Ok(ApiJson(app.reassign(operator.name(), &vm, &request.username).await?))
}

/// Takes a free VM out of service.
#[utoipa::path(post, path = "/v1/vms/{vm}/maintenance", tag = "vms",
    params(("vm" = String, Path, description = "VM id")), request_body = VmReason,
    responses((status = 200, body = VmInfo), (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn maintenance(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(vm): ApiPath<String>,
    ApiJson(request): ApiJson<VmReason>,
) -> Result<ApiJson<VmInfo>, ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    Ok(ApiJson(
        app.maintenance(operator.name(), &vm, false, &request.reason).await?,
    ))
}

/// Puts a VM in maintenance back into service.
#[utoipa::path(post, path = "/v1/vms/{vm}/in-service", tag = "vms",
    params(("vm" = String, Path, description = "VM id")), request_body = VmReason,
    responses((status = 200, body = VmInfo), (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn in_service(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(vm): ApiPath<String>,
    ApiJson(request): ApiJson<VmReason>,
) -> Result<ApiJson<VmInfo>, ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    Ok(ApiJson(
        app.maintenance(operator.name(), &vm, true, &request.reason).await?,
    ))
}

/// Retires a VM nobody holds (running the pool's destroy hook). Needs the admin role.
#[utoipa::path(post, path = "/v1/vms/{vm}/retire", tag = "vms",
    params(("vm" = String, Path, description = "VM id")), request_body = VmReason,
    responses((status = 200, body = VmInfo), (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 409, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn retire(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiPath(vm): ApiPath<String>,
    ApiJson(request): ApiJson<VmReason>,
) -> Result<ApiJson<VmInfo>, ApiFailure> {
    operator.require(Permission::Administer)?;
    Ok(ApiJson(app.retire(operator.name(), &vm, &request.reason).await?))
}

/// Allocated VMs whose holder made no connection for `days` days.
#[utoipa::path(get, path = "/v1/reclaim", tag = "vms", params(ReclaimQuery),
    responses((status = 200, body = Vec<VmInfo>), (status = 400, body = ApiError), (status = 401, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn idle(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiQuery(query): ApiQuery<ReclaimQuery>,
) -> Result<ApiJson<Vec<VmInfo>>, ApiFailure> {
    operator.require(Permission::Read)?;
    Ok(ApiJson(
        app.idle_vms(query.days, query.pool.as_deref(), app.now()).await?,
    ))
}

/// Releases the VMs idle for `days` days: each one still held by the same person and still idle
/// at that moment; the others are reported with the reason.
#[utoipa::path(post, path = "/v1/reclaim", tag = "vms", request_body = ReclaimQuery,
    responses((status = 200, body = ReclaimReport), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn reclaim(
    State(app): State<Provisioner>,
    operator: Operator,
    ApiJson(request): ApiJson<ReclaimQuery>,
) -> Result<ApiJson<ReclaimReport>, ApiFailure> {
    operator.require(Permission::ManageTokens)?;
    Ok(ApiJson(
        app.reclaim(operator.name(), request.days, request.pool.as_deref())
            .await?,
    ))
}

/// Capacity per pool, allocations per day, days until each runs out.
#[utoipa::path(get, path = "/v1/reports/capacity", tag = "vms",
    responses((status = 200, body = CapacityReport), (status = 401, body = ApiError)),
    security(("api_key" = [])))]
pub(super) async fn capacity(
    State(app): State<Provisioner>,
    operator: Operator,
) -> Result<ApiJson<CapacityReport>, ApiFailure> {
    operator.require(Permission::Read)?;
    Ok(ApiJson(app.capacity_report(app.now()).await?))
}
