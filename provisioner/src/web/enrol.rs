//! Self-service enrolment in the browser: directory password and registration code, then the
//! new authenticator's QR code (shown on this one page, never again), then its first code.

use super::page::{Chrome, PageError, render, render_with, when};
use super::session::{Peer, check_form_cookie, form_token};
use crate::http::AppState;
use crate::service::EnrolmentRefusal;
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use rampart_core::secret::Sensitive;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "enrol.html")]
struct EnrolPage {
    chrome: Chrome,
    csrf: String,
    username: String,
    problem: String,
}

#[derive(Template)]
#[template(path = "enrol_confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    csrf: String,
    username: String,
    enrolment_id: String,
    issuer: String,
    /// The QR code, an SVG document drawn here from the otpauth URI (no outside input).
    qr_svg: String,
    secret: String,
    confirm_before: String,
    problem: String,
}

#[derive(Template)]
#[template(path = "enrol_done.html")]
struct DonePage {
    chrome: Chrome,
    username: String,
}

/// The first form: username, directory password, registration code.
pub(super) async fn form(jar: CookieJar) -> Result<Response, PageError> {
    let (jar, csrf) = form_token(jar)?;
    let page = EnrolPage {
        chrome: Chrome::default(),
        csrf,
        username: String::new(),
        problem: String::new(),
    };
    Ok((jar, render(&page)).into_response())
}

/// The posted first form. Without `Debug`: it holds a password and a registration code.
#[derive(Deserialize)]
pub(super) struct StartForm {
    #[serde(default)]
    csrf: String,
    username: String,
    password: String,
    registration_code: String,
}

/// Starts the enrolment and shows the QR code with the confirmation form.
pub(super) async fn start(
    State(state): State<AppState>,
    Peer(peer): Peer,
    jar: CookieJar,
    Form(form): Form<StartForm>,
) -> Result<Response, PageError> {
    check_form_cookie(&jar, &form.csrf)?;
    let password = Sensitive::new(form.password);
    let code = Sensitive::new(form.registration_code);
    match state
        .provisioner
        .start_enrolment(&form.username, &password, &code, peer)
        .await
    {
        Ok(started) => {
            let page = ConfirmPage {
                chrome: Chrome::default(),
                csrf: form.csrf,
                username: started.username.clone(),
                enrolment_id: started.enrolment_id.clone(),
                issuer: started.issuer.clone(),
                qr_svg: started.qr_svg.clone().unwrap_or_default(),
                secret: started.secret.clone(),
                confirm_before: when(started.confirm_before),
                problem: String::new(),
            };
            Ok(render(&page))
        }
        Err(EnrolmentRefusal::Service(err)) => Err(PageError::Service(err)),
        Err(refusal) => {
            let status = match refusal {
                EnrolmentRefusal::Wait { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            let page = EnrolPage {
                chrome: Chrome::default(),
                csrf: form.csrf,
                username: form.username,
                problem: refusal.to_string(),
            };
            Ok(render_with(status, &page))
        }
    }
}

/// The posted confirmation.
#[derive(Deserialize)]
pub(super) struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    username: String,
    enrolment_id: String,
    code: String,
}

/// Confirms with the first code. A wrong code shows the confirmation form again without the QR
/// code (the secret is not shown twice): the person types the next code of the account they
/// added, or starts again.
pub(super) async fn confirm(
    State(state): State<AppState>,
    Peer(peer): Peer,
    jar: CookieJar,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PageError> {
    check_form_cookie(&jar, &form.csrf)?;
    let code = Sensitive::new(form.code);
    match state
        .provisioner
        .confirm_enrolment(&form.username, &form.enrolment_id, &code, peer)
        .await
    {
        Ok(confirmed) => Ok(render(&DonePage {
            chrome: Chrome::default(),
            username: confirmed.username,
        })),
        Err(EnrolmentRefusal::Service(err)) => Err(PageError::Service(err)),
        Err(EnrolmentRefusal::Gone | EnrolmentRefusal::NotAccepted | EnrolmentRefusal::Wait { .. }) => {
            let page = EnrolPage {
                chrome: Chrome::default(),
                csrf: form.csrf,
                username: form.username,
                problem: EnrolmentRefusal::Gone.to_string(),
            };
            Ok(render_with(StatusCode::GONE, &page))
        }
        Err(refusal @ EnrolmentRefusal::WrongCode { .. }) => {
            let page = ConfirmPage {
                chrome: Chrome::default(),
                csrf: form.csrf,
                username: form.username,
                enrolment_id: form.enrolment_id,
                issuer: String::new(),
                qr_svg: String::new(),
                secret: String::new(),
                confirm_before: String::new(),
                problem: refusal.to_string(),
            };
            Ok(render_with(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}
