//! The employee's own page: their token, their sessions (end one), their connection profile
//! to download (or its `setup` line to paste), and "I lost my phone",
//! which marks the token lost and ends its sessions at once, as the desk's lost-token flow
//! does; the desk then helps with a temporary code or a replacement (which dual control may
//! have a second operator approve).

use super::page::{Chrome, PageError, render, when, when_opt};
use super::session::{Peer, Signed};
use crate::api::{LostRequest, TokenInfo};
use crate::http::AppState;
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use rampart_store::readiness::Rehearsal;
use rampart_store::{EndedBy, SessionRecord};
use serde::Deserialize;

/// A token as a row.
pub(super) struct TokenRow {
    pub(super) token_id: String,
    pub(super) state: String,
    pub(super) locked: bool,
    pub(super) failures: u32,
    pub(super) issued: String,
    pub(super) last_used: String,
}

impl TokenRow {
    pub(super) fn of(info: &TokenInfo) -> Self {
        Self {
            token_id: info.token_id.clone(),
            state: info.state.clone(),
            locked: info.locked,
            failures: info.failures,
            issued: when(info.issued_at),
            last_used: when_opt(info.last_used_at),
        }
    }
}

/// A gateway session as a row.
pub(super) struct SessionRow {
    pub(super) id: String,
    pub(super) short_id: String,
    pub(super) username: String,
    pub(super) source: String,
    pub(super) gateway: String,
    pub(super) started: String,
    pub(super) last_seen: String,
}

impl SessionRow {
    pub(super) fn of(session: &SessionRecord) -> Self {
        Self {
            id: session.id.clone(),
            short_id: session.id.chars().take(8).collect(),
            username: session.username.clone(),
            source: session.source.clone(),
            gateway: session.gateway_id.clone().unwrap_or_default(),
            started: when(session.created_at),
            last_seen: when_opt(session.last_seen_at),
        }
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    display_name: String,
    tokens: Vec<TokenRow>,
    sessions: Vec<SessionRow>,
    notice: String,
    /// `rampart-connect setup …` with the profile line; empty when the console has no profile.
    setup_line: String,
    /// The latest rehearsal in words; empty when there was none.
    rehearsal: String,
    rehearsal_passed: bool,
    /// The resources that did not open at it, with why.
    rehearsal_failures: Vec<String>,
}

/// The signed-in person's own page.
pub(super) async fn home(State(state): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    render_home(&state, &signed, String::new()).await
}

async fn render_home(state: &AppState, signed: &Signed, notice: String) -> Result<Response, PageError> {
    let provisioner = &state.provisioner;
    let person = provisioner.person(&signed.0.username).await?;
    let sessions = provisioner.live_sessions_of(&signed.0.user_id).await?;
    let profile = provisioner.profile_for(&signed.0.username).await?;
    let rehearsal = provisioner.latest_rehearsal(&signed.0.user_id).await?;
    let page = HomePage {
        chrome: Chrome::of(&signed.0),
        display_name: person.display_name,
        tokens: person.tokens.iter().map(TokenRow::of).collect(),
        sessions: sessions.iter().map(SessionRow::of).collect(),
        notice,
        setup_line: profile
            .map(|p| format!("rampart-connect setup {}", p.to_line()))
            .unwrap_or_default(),
        rehearsal: rehearsal.as_ref().map_or_else(String::new, |r| {
            if r.passed() {
                format!(
                    "Passed on {}: all {} of your resources opened.",
                    when(r.at),
                    r.checks.len()
                )
            } else {
                format!(
                    "Not passed on {}: {} of {} resources did not open.",
                    when(r.at),
                    r.failed(),
                    r.checks.len()
                )
            }
        }),
        rehearsal_passed: rehearsal.as_ref().is_some_and(Rehearsal::passed),
        rehearsal_failures: rehearsal
            .iter()
            .flat_map(|r| r.checks.iter().filter(|c| !c.ok))
            .map(|c| format!("{}: {}", c.resource, c.reason.as_deref().unwrap_or("did not open")))
            .collect(),
    };
    Ok(render(&page))
}

/// The person's connection profile as a file for `rampart-connect setup`.
pub(super) async fn profile(State(state): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    let Some(profile) = state.provisioner.profile_for(&signed.0.username).await? else {
        return Err(crate::service::ServiceError::NotFound(
            "this console has no connection profile to offer: ask the service desk for yours".into(),
        )
        .into());
    };
    let body = serde_json::to_vec_pretty(&profile)
        .map_err(|e| crate::service::ServiceError::Unavailable(format!("cannot write the profile: {e}")))?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/json"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"rampart-profile.json\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// A form that carries only its token.
#[derive(Debug, Deserialize)]
pub(super) struct TokenOnly {
    #[serde(default)]
    pub(super) csrf: String,
}

/// Ends one of the person's own sessions (as a logout).
pub(super) async fn end_own_session(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<TokenOnly>,
) -> Result<Response, PageError> {
    signed.check_form(&form.csrf)?;
    let provisioner = &state.provisioner;
    let own = provisioner.live_sessions_of(&signed.0.user_id).await?;
    if !own.iter().any(|s| s.id == id) {
        return Err(crate::service::ServiceError::NotFound("you have no live session with that id".into()).into());
    }
    provisioner
        .end_session(&id, &EndedBy::Person(signed.0.username.clone()))
        .await?;
    Ok(Redirect::to("/console/").into_response())
}

/// Reports the person's token lost: it stops working now and its sessions end.
pub(super) async fn report_lost(
    State(state): State<AppState>,
    signed: Signed,
    Peer(_): Peer,
    Form(form): Form<TokenOnly>,
) -> Result<Response, PageError> {
    signed.check_form(&form.csrf)?;
    let request = LostRequest {
        reason: "reported by the person in the console".into(),
        ..LostRequest::default()
    };
    let username = signed.0.username.clone();
    state.provisioner.lost(&username, &username, &request).await?;
    render_home(
        &state,
        &signed,
        "Your token is marked lost and no longer works; its sessions have ended. Call the service desk: they \
         will give you a temporary code or a new token."
            .into(),
    )
    .await
}
