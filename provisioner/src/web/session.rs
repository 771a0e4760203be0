//! Who is signed in, read from the session cookie on every request, and the form tokens that
//! make every change come from the console's own pages.

use super::page::PageError;
use crate::http::AppState;
use crate::service::{ConsoleSession, Provisioner};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use std::convert::Infallible;
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

/// The console session's cookie. `__Host-`: only ever set over HTTPS, for this host, path `/`.
pub const SESSION_COOKIE: &str = "__Host-rampart-console";
/// The cookie holding the form token of pages shown before sign-in.
pub const FORM_COOKIE: &str = "__Host-rampart-form";

/// A cookie as the console sets them: `Secure`, `HttpOnly`, `SameSite=Strict`, path `/`,
/// ending with the browser (the session itself ends on the server).
pub fn cookie(name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build((name, value))
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .build()
}

/// A cookie that makes the browser forget `name` (with the same flags, which browsers require
/// of a `__Host-` cookie).
pub fn cleared(name: &'static str) -> Cookie<'static> {
    let mut gone = cookie(name, String::new());
    gone.make_removal();
    gone
}

/// The signed-in person. Pages that need one send everyone else to the sign-in page.
#[derive(Debug, Clone)]
pub struct Signed(pub ConsoleSession);

/// Not signed in: to the sign-in page.
pub struct SignInFirst;

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        Redirect::to("/console/sign-in").into_response()
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match <Self as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(Some(signed)) => Ok(signed),
            Ok(None) => Err(SignInFirst.into_response()),
            Err(never) => match never {},
        }
    }
}

impl OptionalFromRequestParts<AppState> for Signed {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(cookie) = jar.get(SESSION_COOKIE) else {
            return Ok(None);
        };
        let provisioner: &Provisioner = &state.provisioner;
        match provisioner.console_session(cookie.value()).await {
            Ok(found) => {
                if let Some(session) = &found
                    && let Some(actor) = parts.extensions.get::<rampart_audit::http::RequestActor>()
                {
                    actor.set(&session.username);
                }
                Ok(found.map(Self))
            }
            Err(err) => {
                tracing::error!(target: "rampart::console", error = %err, "cannot read a console session");
                Ok(None)
            }
        }
    }
}

impl Signed {
    /// Refuses a form whose token is not this session's.
    pub fn check_form(&self, token: &str) -> Result<(), PageError> {
        if same_token(&self.0.csrf_token, token) {
            Ok(())
        } else {
            tracing::warn!(target: "rampart::console", user = %self.0.username, "form without this session's token refused");
            Err(PageError::StaleForm)
        }
    }
}

/// The form token of a page shown before sign-in: the one in the browser's cookie, or a new
/// one to set.
pub fn form_token(jar: CookieJar) -> Result<(CookieJar, String), PageError> {
    if let Some(existing) = jar.get(FORM_COOKIE).map(|c| c.value().to_owned())
        && existing.len() == 64
    {
        return Ok((jar, existing));
    }
    let token = Provisioner::new_form_token()?;
    Ok((jar.add(cookie(FORM_COOKIE, token.clone())), token))
}

/// Refuses a form posted before sign-in whose token is not the one in its cookie.
pub fn check_form_cookie(jar: &CookieJar, token: &str) -> Result<(), PageError> {
    match jar.get(FORM_COOKIE) {
        Some(cookie) if same_token(cookie.value(), token) => Ok(()),
        _ => {
            tracing::warn!(target: "rampart::console", "form without its cookie's token refused");
            Err(PageError::StaleForm)
        }
    }
}

fn same_token(expected: &str, given: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// The browser's address, when the server records it.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)))
    }
}
