//! The service desk's pages: find a person (the locked ones listed first), and one person's
//! page that answers "why can't they connect" on one screen: directory standing, tokens and
//! history, their recent sign-in and login attempts with the real reasons, what the policy says
//! about each of their resources now, the gateways and whether they serve, their live
//! sessions — with the token actions their role allows.

use super::page::{Chrome, PageError, render, role_allows, url_encode, when, when_opt};
use super::portal::{SessionRow, TokenOnly, TokenRow};
use super::security::AuditRow;
use super::session::Signed;
use crate::api::{Gated, LostRequest, TokenListQuery};
use crate::http::AppState;
use crate::service::{GatewayHealth, PolicyView, ServiceError, Standing};
use crate::vm_api::VmQuery;
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use rampart_audit::query::Filter;
use rampart_core::access::{Permission, granted_by};
use rampart_core::audit::Class;
use rampart_store::registration::Delivery;
use serde::Deserialize;

/// Login attempts shown on a person's page.
const RECENT_ATTEMPTS: usize = 15;

/// Refuses anyone whose role does not grant `permission`.
pub(super) fn require(signed: &Signed, permission: Permission) -> Result<(), PageError> {
    if role_allows(signed.0.role, permission) {
        Ok(())
    } else {
        tracing::warn!(target: "rampart::console", user = %signed.0.username, permission = ?permission, "console action refused");
        Err(PageError::Forbidden(granted_by(permission)))
    }
}

#[derive(Template)]
#[template(path = "desk.html")]
struct DeskPage {
    chrome: Chrome,
    query: String,
    locked: Vec<TokenRow>,
    locked_people: Vec<String>,
}

/// The query of the find form.
#[derive(Debug, Deserialize)]
pub(super) struct FindQuery {
    #[serde(default)]
    q: String,
}

/// Finds a person by username (straight to their page), and lists the locked tokens.
pub(super) async fn find(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<FindQuery>,
) -> Result<Response, PageError> {
    require(&signed, Permission::Read)?;
    let wanted = query.q.trim();
    if !wanted.is_empty() {
        let encoded = url_encode(wanted);
        return Ok(Redirect::to(&format!("/console/desk/people/{encoded}")).into_response());
    }
    let locked = state
        .provisioner
        .list_tokens(&TokenListQuery {
            locked: true,
            ..TokenListQuery::default()
        })
        .await?;
    let page = DeskPage {
        chrome: Chrome::of(&signed.0),
        query: String::new(),
        locked_people: locked.iter().map(|t| t.username.clone()).collect(),
        locked: locked.iter().map(TokenRow::of).collect(),
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "person.html")]
struct PersonPage {
    chrome: Chrome,
    username: String,
    display_name: String,
    standing: String,
    groups: String,
    tokens: Vec<TokenRow>,
    history: Vec<HistoryRow>,
    attempts: Vec<AuditRow>,
    sessions: Vec<SessionRow>,
    may_manage: bool,
    notice: String,
    /// Why not the policy view: empty when `access` holds the explanations.
    access_note: String,
    access: Vec<AccessRow>,
    gateways: Vec<GatewayRow>,
    codes: Vec<CodeRow>,
    vms: Vec<VmRow>,
}

/// A VM the person holds.
struct VmRow {
    id: String,
    pool: String,
    address: String,
    state: String,
    last_used: String,
    error: String,
}

/// A registration code as the desk sees it (never the code).
struct CodeRow {
    id: String,
    delivery: String,
    issued: String,
    issued_by: String,
    expires: String,
    state: String,
    failures: u32,
}

/// One resource that names the person, as the policy judges it now.
struct AccessRow {
    resource: String,
    allowed: bool,
    reason: String,
    rules: String,
}

/// A gateway as it last reported.
struct GatewayRow {
    id: String,
    address: String,
    health: String,
    serving: bool,
    sessions: u64,
}

struct HistoryRow {
    at: String,
    actor: String,
    action: String,
    detail: String,
}

/// One person's page.
pub(super) async fn person(
    State(state): State<AppState>,
    signed: Signed,
    Path(username): Path<String>,
) -> Result<Response, PageError> {
    require(&signed, Permission::Read)?;
    person_page(&state, &signed, &username, String::new()).await
}

async fn person_page(state: &AppState, signed: &Signed, username: &str, notice: String) -> Result<Response, PageError> {
    let provisioner = &state.provisioner;
    let standing = provisioner.standing(username).await?;
    let info = match provisioner.person(username).await {
        Ok(info) => Some(info),
        Err(ServiceError::NotFound(_)) if standing != Standing::Missing => None,
        Err(err) => return Err(err.into()),
    };
    let (standing_text, groups) = match &standing {
        Standing::Enabled { groups } => ("enabled in the directory", groups.join(", ")),
        Standing::Disabled => ("disabled in the directory: no login succeeds", String::new()),
        Standing::Missing => ("not in the directory", String::new()),
    };
    let attempts = provisioner
        .search_audit(Filter {
            user: Some(username.to_owned()),
            class: Some(Class::Authentication),
            ..Filter::default()
        })
        .await?;
    let (access_note, access) = match &standing {
        Standing::Enabled { groups } => match provisioner.explain_access(username, groups).await {
            PolicyView::NotConfigured => (
                "The console is not given the gateways' policy file ([console] policy_file): ask with `rampart policy \
                 explain` at a gateway."
                    .to_owned(),
                Vec::new(),
            ),
            PolicyView::Unreadable(why) => (why, Vec::new()),
            PolicyView::Explained(list) if list.is_empty() => (
                "No rule of the policy names them or their groups: they have no resources.".to_owned(),
                Vec::new(),
            ),
            PolicyView::Explained(list) => (
                String::new(),
                list.into_iter()
                    .map(|e| AccessRow {
                        resource: e.resource,
                        allowed: e.allowed,
                        reason: e.reason,
                        rules: e
                            .rules
                            .iter()
                            .map(|r| format!("{}: {}", r.rule, r.outcome))
                            .collect::<Vec<_>>()
                            .join("; "),
                    })
                    .collect(),
            ),
        },
        _ => (
            "Not enabled in the directory: no resource opens.".to_owned(),
            Vec::new(),
        ),
    };
    let gateways = provisioner
        .gateways()
        .await?
        .into_iter()
        .map(|(node, health)| GatewayRow {
            id: node.id,
            address: node.address,
            serving: health == GatewayHealth::Serving,
            health: health.describe(),
            sessions: node.sessions,
        })
        .collect();
    let (sessions, codes) = match &info {
        Some(info) => (
            provisioner.live_sessions_of(&info.user_id).await?,
            provisioner.registration_codes_of(&info.user_id).await?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    let vms = provisioner
        .list_vms(&VmQuery {
            user: Some(username.to_owned()),
            ..VmQuery::default()
        })
        .await?;
    let page = PersonPage {
        chrome: Chrome::of(&signed.0),
        username: info
            .as_ref()
            .map_or_else(|| username.to_owned(), |i| i.username.clone()),
        display_name: info.as_ref().map(|i| i.display_name.clone()).unwrap_or_default(),
        standing: standing_text.to_owned(),
        groups,
        tokens: info.iter().flat_map(|i| i.tokens.iter().map(TokenRow::of)).collect(),
        history: info
            .iter()
            .flat_map(|i| i.history.iter().rev())
            .map(|e| HistoryRow {
                at: when(e.at),
                actor: e.actor.clone(),
                action: e.action.clone(),
                detail: e.detail.clone(),
            })
            .collect(),
        attempts: attempts
            .records
            .iter()
            .rev()
            .take(RECENT_ATTEMPTS)
            .map(AuditRow::of)
            .collect(),
        sessions: sessions.iter().map(SessionRow::of).collect(),
        may_manage: role_allows(signed.0.role, Permission::ManageTokens),
        notice,
        access_note,
        access,
        gateways,
        vms: vms
            .into_iter()
            .map(|vm| VmRow {
                last_used: when_opt(vm.last_flow_at),
                error: vm.error.unwrap_or_default(),
                id: vm.id,
                pool: vm.pool,
                address: vm.address,
                state: vm.state,
            })
            .collect(),
        codes: codes
            .iter()
            .map(|c| CodeRow {
                id: c.id.clone(),
                delivery: c.delivery.to_string(),
                issued: when(c.created_at),
                issued_by: c.created_by.clone(),
                expires: when(c.expires_at),
                state: format!("{:?}", c.state).to_lowercase(),
                failures: c.failures,
            })
            .collect(),
    };
    Ok(render(&page))
}

/// Unlocks the person's token (or asks for a second operator's approval under dual control).
pub(super) async fn unlock(
    State(state): State<AppState>,
    signed: Signed,
    Path(username): Path<String>,
    Form(form): Form<TokenOnly>,
) -> Result<Response, PageError> {
    signed.check_form(&form.csrf)?;
    require(&signed, Permission::ManageTokens)?;
    let notice = match state.provisioner.unlock(signed.0.actor(), &username).await? {
        Gated::Done(_) => "Unlocked: the token takes codes again.".to_owned(),
        Gated::AwaitingApproval(request) => format!(
            "Waiting for a second operator's approval: request {} (`rampart token approve {0}`).",
            request.request_id
        ),
    };
    person_page(&state, &signed, &username, notice).await
}

/// The revoke form.
#[derive(Debug, Deserialize)]
pub(super) struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// Revokes the person's live token; their sessions end.
pub(super) async fn revoke(
    State(state): State<AppState>,
    signed: Signed,
    Path(username): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, PageError> {
    signed.check_form(&form.csrf)?;
    require(&signed, Permission::ManageTokens)?;
    state
        .provisioner
        .revoke(signed.0.actor(), &username, form.reason.trim())
        .await?;
    person_page(
        &state,
        &signed,
        &username,
        "Revoked: the token no longer works and its sessions ended.".into(),
    )
    .await
}

/// Reports the person's token lost: it stops working and its sessions end.
pub(super) async fn lost(
    State(state): State<AppState>,
    signed: Signed,
    Path(username): Path<String>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, PageError> {
    signed.check_form(&form.csrf)?;
    require(&signed, Permission::ManageTokens)?;
    let request = LostRequest {
        reason: form.reason.trim().to_owned(),
        ..LostRequest::default()
    };
    state.provisioner.lost(signed.0.actor(), &username, &request).await?;
    let notice = "Marked lost: the token no longer works and its sessions ended. Give a temporary code to keep \
                  them working today, and a registration code for a new authenticator.";
    person_page(&state, &signed, &username, notice.into()).await
}

#[derive(Template)]
#[template(path = "temporary_code.html")]
struct TemporaryCodePage {
    chrome: Chrome,
    username: String,
    code: String,
    expires: String,
}

/// Issues a temporary one-time code, shown this once to read out; under dual control, asks for
/// a second operator's approval instead.
pub(super) async fn temporary_code(
    State(state): State<AppState>,
    signed: Signed,
    Path(username): Path<String>,
    Form(form): Form<TokenOnly>,
) -> Result<Response, PageError> {
    signed.check_form(&form.csrf)?;
    require(&signed, Permission::ManageTokens)?;
    match state.provisioner.temporary_code(signed.0.actor(), &username).await? {
        Gated::Done(code) => Ok(render(&TemporaryCodePage {
            chrome: Chrome::of(&signed.0),
            username,
            code: code.code,
            expires: when(code.expires_at),
        })),
        Gated::AwaitingApproval(request) => {
            let notice = format!(
                "Waiting for a second operator's approval: request {} (`rampart token approve {0}`).",
                request.request_id
            );
            person_page(&state, &signed, &username, notice).await
        }
    }
}

/// The resync form: two consecutive codes the person reads out.
#[derive(Deserialize)]
pub(super) struct ResyncForm {
    #[serde(default)]
    csrf: String,
    first: String,
    second: String,
}

/// Resynchronises the person's token from two consecutive codes.
pub(super) async fn resync(
    State(state): State<AppState>,
    signed: Signed,
    Path(username): Path<String>,
    Form(form): Form<ResyncForm>,
) -> Result<Response, PageError> {
    signed.check_form(&form.csrf)?;
    require(&signed, Permission::ManageTokens)?;
    state
        .provisioner
        .resync(signed.0.actor(), &username, &form.first, &form.second)
        .await?;
    person_page(
        &state,
        &signed,
        &username,
        "Resynchronised: the token follows the phone's clock again.".into(),
    )
    .await
}

/// The registration code form.
#[derive(Debug, Deserialize)]
pub(super) struct RegistrationForm {
    #[serde(default)]
    csrf: String,
    delivery: String,
}

#[derive(Template)]
#[template(path = "registration_code.html")]
struct RegistrationCodePage {
    chrome: Chrome,
    username: String,
    display_name: String,
    code: String,
    delivery: String,
    expires: String,
}

/// Issues a registration code and shows it this once, to read out or put in a letter.
pub(super) async fn registration_code(
    State(state): State<AppState>,
    signed: Signed,
    Path(username): Path<String>,
    Form(form): Form<RegistrationForm>,
) -> Result<Response, PageError> {
    signed.check_form(&form.csrf)?;
    require(&signed, Permission::ManageTokens)?;
    let delivery = Delivery::parse(&form.delivery)
        .ok_or_else(|| ServiceError::Invalid("delivery must be letter, phone or email".into()))?;
    let issued = state
        .provisioner
        .issue_registration_code(signed.0.actor(), &username, delivery, None)
        .await?;
    Ok(render(&RegistrationCodePage {
        chrome: Chrome::of(&signed.0),
        username: issued.username,
        display_name: issued.display_name,
        code: issued.registration_code,
        delivery: issued.delivery.to_string(),
        expires: when(issued.expires_at),
    }))
}
