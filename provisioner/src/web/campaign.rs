//! An enrolment campaign from the desk's page: a registration code for every enabled member of
//! a directory group, answered as one CSV file to download.

use super::desk::require;
use super::page::{PageError, when};
use super::session::Signed;
use crate::http::AppState;
use crate::service::ServiceError;
use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use rampart_core::access::Permission;
use rampart_store::registration::Delivery;
use serde::Deserialize;

/// The campaign form: a directory group and how the codes travel.
#[derive(Debug, Deserialize)]
pub(super) struct CampaignForm {
    #[serde(default)]
    csrf: String,
    group: String,
    delivery: String,
}

/// An enrolment campaign: a registration code for every enabled member of a directory group,
/// answered as a CSV file to download (for letters or a mail merge; the codes are in it and
/// nowhere else). Everyone who got no code is a row too, with why.
pub(super) async fn campaign(
    State(state): State<AppState>,
    signed: Signed,
    Form(form): Form<CampaignForm>,
) -> Result<Response, PageError> {
    signed.check_form(&form.csrf)?;
    require(&signed, Permission::ManageTokens)?;
    let delivery = Delivery::parse(&form.delivery)
        .ok_or_else(|| ServiceError::Invalid("delivery must be letter, phone or email".into()))?;
    let provisioner = &state.provisioner;
    let members = provisioner.group_members(&form.group).await?;
    let failed = |e: csv::Error| ServiceError::Unavailable(format!("cannot write CSV: {e}"));
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "username",
        "display_name",
        "registration_code",
        "expires",
        "delivery",
        "note",
    ])
    .map_err(failed)?;
    let mut issued = 0usize;
    for username in &members.usernames {
        match provisioner
            .issue_registration_code(signed.0.actor(), username, delivery, None)
            .await
        {
            Ok(code) => {
                issued += 1;
                out.write_record([
                    cell(&code.username),
                    cell(&code.display_name),
                    code.registration_code.clone(),
                    when(code.expires_at),
                    code.delivery.to_string(),
                    String::new(),
                ])
                .map_err(failed)?;
            }
            // Keep going: the codes already issued are in this file only, and the earlier
            // codes of those people no longer work.
            Err(ServiceError::Unavailable(why)) => {
                tracing::error!(target: "rampart::console", user = %username, error = %why, "no registration code issued");
                out.write_record([
                    cell(username),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    "not issued: the service was unavailable; issue this one again".to_owned(),
                ])
                .map_err(failed)?;
            }
            Err(refused) => out
                .write_record([
                    cell(username),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    cell(&refused.to_string()),
                ])
                .map_err(failed)?,
        }
    }
    for left in &members.left_out {
        out.write_record([
            cell(&left.name),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            cell(&left.reason),
        ])
        .map_err(failed)?;
    }
    let body = out
        .into_inner()
        .map_err(|e| ServiceError::Unavailable(format!("cannot write CSV: {e}")))?;
    tracing::info!(
        target: "rampart::console", operator = signed.0.actor(), group = %members.group, issued,
        without = members.usernames.len() - issued + members.left_out.len(), "registration codes issued for a group"
    );
    let file = format!(
        "attachment; filename=\"registration-codes-{}.csv\"",
        members
            .group
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
    );
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, file),
        ],
        body,
    )
        .into_response())
}

/// Outside text for a CSV cell, never read as a formula by a spreadsheet.
fn cell(text: &str) -> String {
    rampart_core::text::csv_cell(text).into_owned()
}
