//! Signing in (directory password and a code from one's token) and out.

use super::page::{Chrome, PageError, render, render_with};
use super::session::{Peer, SESSION_COOKIE, Signed, check_form_cookie, cleared, cookie, form_token};
use crate::http::AppState;
use crate::service::SignInRefusal;
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use rampart_core::secret::Sensitive;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    csrf: String,
    username: String,
    problem: String,
}

/// The sign-in form; someone signed in already goes to their home page.
pub(super) async fn form(signed: Option<Signed>, jar: CookieJar) -> Result<Response, PageError> {
    if signed.is_some() {
        return Ok(Redirect::to("/console/").into_response());
    }
    let (jar, csrf) = form_token(jar)?;
    let page = SignInPage {
        chrome: Chrome::default(),
        csrf,
        username: String::new(),
        problem: String::new(),
    };
    Ok((jar, render(&page)).into_response())
}

/// The posted sign-in form. Deliberately without `Debug`: it holds a password and a code.
#[derive(Deserialize)]
pub(super) struct SignInForm {
    #[serde(default)]
    csrf: String,
    username: String,
    password: String,
    code: String,
}

/// Signs in and sets the session cookie; a refusal shows the form again with why, the
/// username kept, nothing else.
pub(super) async fn submit(
    State(state): State<AppState>,
    Peer(peer): Peer,
    jar: CookieJar,
    Form(form): Form<SignInForm>,
) -> Result<Response, PageError> {
    check_form_cookie(&jar, &form.csrf)?;
    let password = Sensitive::new(form.password);
    let code = Sensitive::new(form.code);
    match state.provisioner.sign_in(&form.username, &password, &code, peer).await {
        Ok(opened) => {
            // A sign-in in a browser that was signed in ends the earlier session.
            if let Some(earlier) = jar.get(SESSION_COOKIE) {
                state.provisioner.end_console_session(earlier.value()).await;
            }
            let jar = jar
                .add(cleared(super::session::FORM_COOKIE))
                .add(cookie(SESSION_COOKIE, opened.cookie.to_string()));
            Ok((jar, Redirect::to("/console/")).into_response())
        }
        Err(SignInRefusal::Service(err)) => Err(PageError::Service(err)),
        Err(refusal) => {
            let status = match refusal {
                SignInRefusal::Wait { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            let page = SignInPage {
                chrome: Chrome::default(),
                csrf: form.csrf,
                username: form.username,
                problem: refusal.to_string(),
            };
            Ok((jar, render_with(status, &page)).into_response())
        }
    }
}

/// The posted sign-out form.
#[derive(Debug, Deserialize)]
pub(super) struct TokenOnly {
    #[serde(default)]
    csrf: String,
}

/// Ends the session here and in the store, and clears the cookie.
pub(super) async fn sign_out(
    State(state): State<AppState>,
    signed: Signed,
    Peer(peer): Peer,
    jar: CookieJar,
    Form(form): Form<TokenOnly>,
) -> Result<Response, PageError> {
    signed.check_form(&form.csrf)?;
    state.provisioner.sign_out(&signed.0, peer).await?;
    let jar = jar.add(cleared(SESSION_COOKIE));
    Ok((jar, Redirect::to("/console/sign-in")).into_response())
}
