//! The web console at `/console/`: employees' self-service enrolment and portal, the service
//! desk's pages and the security team's, served from this binary. Pages are askama templates
//! (escaped by default), forms post back without any script, and every change goes through the
//! same service functions, permissions and audit records as the REST API.
//!
//! Made for the web it runs on: the session cookie is `__Host-`, `Secure`, `HttpOnly` and
//! `SameSite=Strict`; every form carries a token checked against the session (or, before
//! sign-in, against a cookie of its own); a post from another origin is refused; the
//! Content-Security-Policy allows no script at all and only this origin's stylesheet; no page
//! is cached or framed.

mod admin;
mod campaign;
mod desk;
mod enrol;
mod page;
mod portal;
mod readiness;
mod security;
mod session;
mod sign_in;

use crate::http::AppState;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

/// The largest form body the console reads.
const MAX_FORM: usize = 16 * 1024;

/// The console's stylesheet, built into the binary.
const STYLESHEET: &str = include_str!("../../assets/console.css");

/// The console's routes, each answering with the security headers; empty when the console is
/// turned off.
pub fn router(state: &AppState) -> Router<AppState> {
    if !state.provisioner.console().enabled {
        return Router::new();
    }
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(portal::home))
        .route("/console/console.css", get(stylesheet))
        .route("/console/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/console/sign-out", post(sign_in::sign_out))
        .route("/console/enrol", get(enrol::form).post(enrol::start))
        .route("/console/enrol/confirm", post(enrol::confirm))
        .route("/console/me/sessions/{id}/end", post(portal::end_own_session))
        .route("/console/me/lost", post(portal::report_lost))
        .route("/console/me/profile", get(portal::profile))
        .route("/console/desk", get(desk::find))
        .route("/console/desk/campaign", post(campaign::campaign))
        .route("/console/desk/people/{username}", get(desk::person))
        .route("/console/desk/people/{username}/unlock", post(desk::unlock))
        .route("/console/desk/people/{username}/revoke", post(desk::revoke))
        .route("/console/desk/people/{username}/lost", post(desk::lost))
        .route(
            "/console/desk/people/{username}/temporary-code",
            post(desk::temporary_code),
        )
        .route("/console/desk/people/{username}/resync", post(desk::resync))
        .route(
            "/console/desk/people/{username}/registration-code",
            post(desk::registration_code),
        )
        .route("/console/admin", get(admin::page))
        .route("/console/admin/operators/{name}/withdraw", post(admin::withdraw_key))
        .route("/console/admin/keys/rotate", post(admin::rotate))
        .route("/console/security/audit", get(security::audit))
        .route("/console/security/audit.csv", get(security::audit_csv))
        .route("/console/security/integrity", get(security::integrity))
        .route("/console/security/flows", get(security::flows))
        .route("/console/security/sessions", get(security::sessions))
        .route("/console/security/sessions/{id}/end", post(security::end_session))
        .route("/console/readiness", get(readiness::page))
        .route("/console/readiness.csv", get(readiness::csv))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM))
        .layer(axum::middleware::from_fn(guard))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// What every console answer carries: no script, no framing, no caching of pages, and a referrer
/// for this origin only (a browser then sends its real `Origin` with every post, not `null`).
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Refuses a post from another origin, and adds the security headers to every answer.
async fn guard(request: Request, next: Next) -> Response {
    if request.method() == Method::POST && !same_origin(&request) {
        tracing::warn!(target: "rampart::console", path = %request.uri().path(), "post from another origin refused");
        return (StatusCode::FORBIDDEN, "a change must come from the console's own pages").into_response();
    }
    let is_stylesheet = request.uri().path().ends_with(".css");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    if !is_stylesheet {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Whether a post's `Origin` (or, without one, its `Referer`) is this server. Browsers send
/// one of them with every form post; a post with neither is not from a browser page and is
/// still held to the form token.
fn same_origin(request: &Request) -> bool {
    let headers = request.headers();
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let claimed = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|h| h.to_str().ok());
    match claimed {
        None => true,
        Some(origin) => origin
            .strip_prefix("https://")
            .map(|rest| rest.split('/').next().unwrap_or(""))
            .is_some_and(|authority| authority.eq_ignore_ascii_case(host)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::body::Body;

    fn post(headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().method(Method::POST).uri("/console/sign-in");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn posts_from_other_origins_are_told_apart() {
        let host = ("host", "desk.example:8443");
        assert!(same_origin(&post(&[host, ("origin", "https://desk.example:8443")])));
        assert!(same_origin(&post(&[
            host,
            ("referer", "https://desk.example:8443/console/")
        ])));
        assert!(same_origin(&post(&[host])), "no origin: left to the form token");
        assert!(!same_origin(&post(&[host, ("origin", "https://evil.example")])));
        assert!(!same_origin(&post(&[host, ("origin", "http://desk.example:8443")])));
        assert!(!same_origin(&post(&[
            host,
            ("origin", "https://desk.example:8443.evil.example")
        ])));
        assert!(
            !same_origin(&post(&[("origin", "https://desk.example:8443")])),
            "no host"
        );
    }
}
