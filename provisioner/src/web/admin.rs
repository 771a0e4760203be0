//! The administrators' page: the API keys scripts use (who holds one, withdraw it) and the
//! seed-sealing keys (how many tokens each seals, rotate). Administrators only.

use super::page::{Chrome, PageError, render, role_allows, when, when_opt};
use super::portal::TokenOnly;
use super::session::Signed;
use crate::http::AppState;
use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use rampart_core::access::{Permission, granted_by};

struct OperatorRow {
    name: String,
    role: String,
    created: String,
    created_by: String,
    withdrawn: String,
    active: bool,
}

struct KeyRow {
    id: u32,
    current: bool,
    tokens: u64,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    chrome: Chrome,
    operators: Vec<OperatorRow>,
    keys: Vec<KeyRow>,
    notice: String,
}

fn require_admin(signed: &Signed) -> Result<(), PageError> {
    if role_allows(signed.0.role, Permission::Administer) {
        Ok(())
    } else {
        tracing::warn!(target: "rampart::console", user = %signed.0.username, "administration refused");
        Err(PageError::Forbidden(granted_by(Permission::Administer)))
    }
}

/// API keys and sealing keys.
pub(super) async fn page(State(state): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    require_admin(&signed)?;
    admin_page(&state, &signed, String::new()).await
}

async fn admin_page(state: &AppState, signed: &Signed, notice: String) -> Result<Response, PageError> {
    let provisioner = &state.provisioner;
    let operators = provisioner.list_operators().await?;
    let keys = provisioner.keys_info().await?;
    Ok(render(&AdminPage {
        chrome: Chrome::of(&signed.0),
        operators: operators
            .into_iter()
            .map(|o| OperatorRow {
                active: o.revoked_at.is_none(),
                withdrawn: when_opt(o.revoked_at),
                created: when(o.created_at),
                name: o.name,
                role: o.role,
                created_by: o.created_by,
            })
            .collect(),
        keys: keys
            .keys
            .into_iter()
            .map(|k| KeyRow {
                id: k.id,
                current: k.current,
                tokens: k.tokens,
            })
            .collect(),
        notice,
    }))
}

/// Withdraws an operator's API key.
pub(super) async fn withdraw_key(
    State(state): State<AppState>,
    signed: Signed,
    Path(name): Path<String>,
    Form(form): Form<TokenOnly>,
) -> Result<Response, PageError> {
    signed.check_form(&form.csrf)?;
    require_admin(&signed)?;
    state.provisioner.revoke_operator(signed.0.actor(), &name).await?;
    admin_page(&state, &signed, format!("The API key of {name} no longer works.")).await
}

/// Rotates the seed-sealing key: a new key seals every seed again.
pub(super) async fn rotate(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<TokenOnly>,
) -> Result<Response, PageError> {
    signed.check_form(&form.csrf)?;
    require_admin(&signed)?;
    let rotated = state.provisioner.rotate_keys(signed.0.actor()).await?;
    let failed = if rotated.failed.is_empty() {
        String::new()
    } else {
        format!(
            " {} tokens could not be opened: {}.",
            rotated.failed.len(),
            rotated.failed.join(", ")
        )
    };
    let notice = format!(
        "Key {} now seals new tokens; tokens sealed again under it: {}.{failed}",
        rotated.new_key, rotated.resealed
    );
    admin_page(&state, &signed, notice).await
}
