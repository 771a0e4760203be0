//! The readiness funnel in the console, for the desk and managers: per step how many people
//! reached it and who is stuck there, for everyone or one group, with the same CSV export as
//! the API.

use super::page::{Chrome, PageError, render, url_encode, when_opt};
use super::session::Signed;
use crate::http::AppState;
use crate::service::readiness_csv;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// Stuck people listed per step on the page before "and N more" (the CSV has everyone).
const LISTED: usize = 100;

/// One step's line of the table.
struct StepLine {
    label: String,
    /// People who reached the step; empty for "not started".
    reached: String,
    stuck: u64,
    /// The stuck people shown, with their display names.
    people: Vec<(String, String)>,
    /// Stuck people not shown.
    more: usize,
}

#[derive(Template)]
#[template(path = "readiness.html")]
struct ReadinessPage {
    chrome: Chrome,
    group: String,
    generated: String,
    /// "1 person", "240 people".
    total: String,
    steps: Vec<StepLine>,
    /// The CSV export's address for the same people.
    export: String,
}

/// The group asked for.
#[derive(Debug, Deserialize)]
pub(super) struct GroupQuery {
    #[serde(default)]
    group: String,
}

impl GroupQuery {
    fn group(&self) -> Option<&str> {
        Some(self.group.trim()).filter(|g| !g.is_empty())
    }
}

/// Refuses anyone without an operator role.
fn require_operator(signed: &Signed) -> Result<(), PageError> {
    if signed.0.role.is_some() {
        Ok(())
    } else {
        Err(PageError::Forbidden("an operator role"))
    }
}

/// The funnel page.
pub(super) async fn page(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<GroupQuery>,
) -> Result<Response, PageError> {
    require_operator(&signed)?;
    let report = state.provisioner.readiness(query.group()).await?;
    let names: std::collections::HashMap<&str, &str> = report
        .people
        .iter()
        .map(|p| (p.username.as_str(), p.display_name.as_str()))
        .collect();
    let line = |label: &str, reached: Option<u64>, stuck: &[String]| StepLine {
        label: label.to_owned(),
        reached: reached.map(|n| n.to_string()).unwrap_or_default(),
        stuck: u64::try_from(stuck.len()).unwrap_or(u64::MAX),
        people: stuck
            .iter()
            .take(LISTED)
            .map(|u| (u.clone(), names.get(u.as_str()).copied().unwrap_or_default().to_owned()))
            .collect(),
        more: stuck.len().saturating_sub(LISTED),
    };
    let mut steps = vec![line("not started", None, &report.not_started_people)];
    steps.extend(
        report
            .steps
            .iter()
            .map(|s| line(&s.label, Some(s.reached), &s.stuck_people)),
    );
    let group = query.group().unwrap_or_default().to_owned();
    let page = ReadinessPage {
        chrome: Chrome::of(&signed.0),
        export: format!("/console/readiness.csv?group={}", url_encode(&group)),
        generated: when_opt(Some(report.generated_at)),
        total: match report.people_total {
            1 => "1 person".to_owned(),
            n => format!("{n} people"),
        },
        group,
        steps,
    };
    Ok(render(&page))
}

/// The same people as CSV.
pub(super) async fn csv(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<GroupQuery>,
) -> Result<Response, PageError> {
    require_operator(&signed)?;
    let report = state.provisioner.readiness(query.group()).await?;
    let body = readiness_csv(&report)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"rampart-readiness.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}
