//! The REST API's routes and its OpenAPI document, built together (utoipa-axum) so the
//! document served at `/openapi.json` always matches the routes.

mod admin;
mod approvals;
mod enrol;
mod readiness;
mod registration;
mod tokens;
mod vms;

use crate::api::{Health, Readiness, ReadinessCheck};
use crate::http::{ApiFailure, AppState, Operator};
use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rampart_audit::http::{ApiAudit, api_activity};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Rampart provisioner", description = "Tokens, enrolment, operators and keys for the service desk."),
    modifiers(&ApiKeyAuth),
    tags(
        (name = "tokens", description = "One person's token"),
        (name = "approvals", description = "Token resets waiting for a second operator's approval"),
        (name = "enrolment", description = "Bulk enrolment, registration codes and self-service enrolment"),
        (name = "reports", description = "Reports"),
        (name = "readiness", description = "The readiness funnel and the rehearsals employees' clients report"),
        (name = "operators", description = "Operators and API keys"),
        (name = "keys", description = "Seed-sealing keys"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Liveness: answers without a key.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok".into() })
}

/// Readiness: 503 while the latest clock check found this provisioner's clock off from the
/// database's (token issue, enrolment, resync and temporary codes are then refused). The
/// check is the latest background comparison, never a new one. Without a key it names the
/// check and its outcome only; with an operator's key (any role) it says why; a wrong key is
/// 401.
#[utoipa::path(get, path = "/readyz", tag = "health",
    security((), ("api_key" = [])),
    responses((status = 200, body = Readiness), (status = 503, body = Readiness), (status = 401, body = crate::api::ApiError)))]
async fn readyz(State(state): State<AppState>, request: Request) -> Result<Response, ApiFailure> {
    let (mut parts, _) = request.into_parts();
    let keyed = parts.headers.contains_key(header::AUTHORIZATION) || parts.headers.contains_key("x-api-key");
    if keyed {
        Operator::from_request_parts(&mut parts, &state).await?;
    }
    let check = state.provisioner.clock_check();
    let (ok, detail) = match check.latest() {
        None => (true, "not compared with the database's clock yet"),
        Some(reading) if reading.in_bounds => (true, "within the bound of the database's clock"),
        Some(_) => (
            false,
            "off from the database's clock beyond the bound: token issue, enrolment, resync and temporary codes are refused",
        ),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut checks = vec![ReadinessCheck {
        name: "clock".into(),
        ok,
        detail: keyed.then(|| detail.into()),
    }];
    // A drill's shifted clock is listed while it is on, so it cannot stay on unnoticed.
    let drill_secs = state.provisioner.clock().drill_offset_secs();
    if drill_secs != 0 {
        checks.push(ReadinessCheck {
            name: "clock_drill".into(),
            ok: true,
            detail: keyed.then(|| {
                format!("DRILL: settings.clock_offset_secs shifts this provisioner's clock by {drill_secs:+} s")
            }),
        });
    }
    Ok((status, axum::Json(Readiness { ready: ok, checks })).into_response())
}

/// The router with every route, plus `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let audit = ApiAudit {
        log: state.provisioner.audit().clone(),
        service: "provisioner",
    };
    let (router, document) = api_router().split_for_parts();
    let document = std::sync::Arc::new(document);
    router
        .merge(crate::web::router(&state))
        .route(
            "/openapi.json",
            get(move || {
                let document = document.clone();
                async move { axum::Json((*document).clone()) }
            }),
        )
        .route_layer(axum::middleware::from_fn_with_state(audit, api_activity))
        .layer(axum::middleware::from_fn(rampart_audit::http::run_to_completion))
        .with_state(state)
}

/// The OpenAPI document of [`router`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().into_openapi()
}

fn api_router() -> OpenApiRouter<AppState> {
    // The routes anyone may call carry a small body at most: a username, a password, a code.
    let self_service = OpenApiRouter::new()
        .routes(routes!(registration::start))
        .routes(routes!(registration::confirm))
        .layer(axum::extract::DefaultBodyLimit::max(registration::MAX_BODY));
    // Reported by an employee's client with its gateway session's ticket, no key.
    let rehearsals = OpenApiRouter::new()
        .routes(routes!(readiness::rehearse))
        .layer(axum::extract::DefaultBodyLimit::max(readiness::MAX_BODY));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(self_service)
        .merge(rehearsals)
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(admin::whoami))
        .routes(routes!(admin::report))
        .routes(routes!(admin::list_operators, admin::create_operator))
        .routes(routes!(admin::revoke_operator))
        .routes(routes!(admin::keys))
        .routes(routes!(admin::rotate))
        .routes(routes!(admin::retire_key))
        .routes(routes!(tokens::issue))
        .routes(routes!(tokens::person))
        .routes(routes!(tokens::list))
        .routes(routes!(tokens::revoke))
        .routes(routes!(tokens::lost))
        .routes(routes!(tokens::unlock))
        .routes(routes!(tokens::resync))
        .routes(routes!(tokens::temporary_code))
        .routes(routes!(approvals::list))
        .routes(routes!(approvals::show))
        .routes(routes!(approvals::approve))
        .routes(routes!(approvals::deny))
        .routes(routes!(approvals::collect))
        .routes(routes!(enrol::batch))
        .routes(routes!(enrol::confirm))
        .routes(routes!(enrol::group))
        .routes(routes!(registration::issue))
        .routes(routes!(vms::pools, vms::create_pool))
        .routes(routes!(vms::pool))
        .routes(routes!(vms::add_vms))
        .routes(routes!(vms::allocate))
        .routes(routes!(vms::list))
        .routes(routes!(vms::release))
        .routes(routes!(vms::reassign))
        .routes(routes!(vms::maintenance))
        .routes(routes!(vms::in_service))
        .routes(routes!(vms::retire))
        .routes(routes!(vms::idle, vms::reclaim))
        .routes(routes!(vms::capacity))
        .routes(routes!(readiness::report))
        .routes(routes!(readiness::csv))
}
