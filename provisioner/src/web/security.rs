//! The security team's pages: the audit trail searched by person, resource, decision and time,
//! paged and exported as CSV; its integrity, stream by stream; flows by resource; and the live
//! sessions on every gateway, each of which can be ended (the gateway holding it closes its
//! tunnels at its next check of the store).

use super::page::{Chrome, PageError, may_search_audit, render, url_encode};
use super::portal::{SessionRow, TokenOnly};
use super::session::Signed;
use crate::http::AppState;
use crate::service::flows_by_resource;
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use rampart_audit::query::{Filter, row};
use rampart_audit::verify::Anchoring;
use rampart_store::EndedBy;
use serde::Deserialize;
use serde_json::Value;

/// Records per page of the audit search.
const PAGE_SIZE: usize = 50;

/// An audit record as a row.
pub(super) struct AuditRow {
    pub(super) time: String,
    pub(super) class: String,
    pub(super) activity: String,
    pub(super) user: String,
    pub(super) source: String,
    pub(super) resource: String,
    pub(super) status: String,
    pub(super) detail: String,
}

impl AuditRow {
    pub(super) fn of(record: &Value) -> Self {
        let [time, class, activity, user, source, resource, status, detail] = row(record);
        Self {
            time,
            class,
            activity,
            user,
            source,
            resource,
            status,
            detail,
        }
    }
}

/// The audit search form, as a query string.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AuditQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    resource: String,
    /// `allowed`, `blocked` or empty for both.
    #[serde(default)]
    decision: String,
    /// `YYYY-MM-DDTHH:MM` (UTC), as a `datetime-local` field sends it.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    page: Option<usize>,
}

impl AuditQuery {
    fn filter(&self) -> Result<Filter, String> {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let allowed = match self.decision.as_str() {
            "" => None,
            "allowed" => Some(true),
            "blocked" => Some(false),
            other => return Err(format!("decision {other:?} is not allowed or blocked")),
        };
        Ok(Filter {
            user: text(&self.user),
            resource: text(&self.resource),
            allowed,
            since_ms: time_ms(&self.from, "from")?,
            until_ms: time_ms(&self.to, "to")?,
            ..Filter::default()
        })
    }

    /// This query's string with another page.
    fn with_page(&self, page: usize) -> String {
        let pairs = [
            ("user", self.user.as_str()),
            ("resource", self.resource.as_str()),
            ("decision", self.decision.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
        ];
        let mut out = String::new();
        for (name, value) in pairs {
            out.push_str(&format!("{name}={}&", url_encode(value)));
        }
        out.push_str(&format!("page={page}"));
        out
    }
}

/// A `datetime-local` value taken as UTC, in Unix milliseconds.
fn time_ms(value: &str, field: &str) -> Result<Option<i64>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let civil: jiff::civil::DateTime = value
        .parse()
        .map_err(|_| format!("{field}: {value:?} is not a date and time like 2026-12-06T09:00"))?;
    let zoned = civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| format!("{field}: {e}"))?;
    Ok(Some(zoned.timestamp().as_millisecond()))
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    user: String,
    resource: String,
    decision: String,
    from: String,
    to: String,
    problem: String,
    rows: Vec<AuditRow>,
    total: usize,
    /// More matched than one search keeps: only the newest `shown` are paged.
    capped: bool,
    shown: usize,
    skipped: u64,
    page: usize,
    pages: usize,
    previous: String,
    next: String,
    export: String,
}

fn require_audit(signed: &Signed) -> Result<(), PageError> {
    if may_search_audit(signed.0.role) {
        Ok(())
    } else {
        Err(PageError::Forbidden("the auditor or admin role"))
    }
}

/// The audit search: newest first, [`PAGE_SIZE`] per page.
pub(super) async fn audit(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<AuditQuery>,
) -> Result<Response, PageError> {
    require_audit(&signed)?;
    let mut page = AuditPage {
        chrome: Chrome::of(&signed.0),
        user: query.user.clone(),
        resource: query.resource.clone(),
        decision: query.decision.clone(),
        from: query.from.clone(),
        to: query.to.clone(),
        problem: String::new(),
        rows: Vec::new(),
        total: 0,
        capped: false,
        shown: 0,
        skipped: 0,
        page: 1,
        pages: 1,
        previous: String::new(),
        next: String::new(),
        export: String::new(),
    };
    let filter = match query.filter() {
        Ok(filter) => filter,
        Err(problem) => {
            page.problem = problem;
            return Ok(render(&page));
        }
    };
    let found = state.provisioner.search_audit(filter).await?;
    let shown = found.records.len();
    let total = found.total;
    let pages = shown.div_ceil(PAGE_SIZE).max(1);
    let number = query.page.unwrap_or(1).clamp(1, pages);
    page.rows = found
        .records
        .iter()
        .rev()
        .skip((number - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .map(AuditRow::of)
        .collect();
    page.total = total;
    page.capped = total > shown;
    page.shown = shown;
    page.skipped = found.skipped;
    page.page = number;
    page.pages = pages;
    if number > 1 {
        page.previous = query.with_page(number - 1);
    }
    if number < pages {
        page.next = query.with_page(number + 1);
    }
    page.export = query.with_page(1);
    Ok(render(&page))
}

/// The same search as CSV, every match, oldest first.
pub(super) async fn audit_csv(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<AuditQuery>,
) -> Result<Response, PageError> {
    require_audit(&signed)?;
    let filter = query.filter().map_err(crate::service::ServiceError::Invalid)?;
    let found = state.provisioner.search_audit(filter).await?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| crate::service::ServiceError::Unavailable(format!("cannot write CSV: {e}"));
    out.write_record([
        "time", "class", "activity", "user", "source", "resource", "status", "detail",
    ])
    .map_err(failed)?;
    for record in &found.records {
        // Outside text (a username as typed at a gateway) is never read as a formula.
        let cells = row(record).map(|cell| rampart_core::text::csv_cell(&cell).into_owned());
        out.write_record(cells).map_err(failed)?;
    }
    let body = out
        .into_inner()
        .map_err(|e| crate::service::ServiceError::Unavailable(format!("cannot write CSV: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"rampart-audit.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// A verified stream as a row.
struct StreamRow {
    stream: String,
    intact: bool,
    verdict: String,
}

#[derive(Template)]
#[template(path = "integrity.html")]
struct IntegrityPage {
    chrome: Chrome,
    streams: Vec<StreamRow>,
    broken: usize,
}

/// Every audit stream verified: intact, or broken and where.
pub(super) async fn integrity(State(state): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    require_audit(&signed)?;
    let reports = state.provisioner.audit_integrity().await?;
    let streams: Vec<StreamRow> = reports
        .iter()
        .map(|report| {
            let s = &report.summary;
            let verdict = match &report.finding {
                Some(finding) => format!("BROKEN: {finding}"),
                None => {
                    let signed = match (s.records, s.checkpoints_verified, s.checkpoints_unchecked) {
                        (0, _, _) => "nothing to sign yet".to_owned(),
                        (_, 0, 0) => "no signed checkpoint yet".to_owned(),
                        (_, 0, n) => format!("{n} checkpoints not checked (no public key)"),
                        (_, n, _) => format!("{n} signed checkpoints verified"),
                    };
                    let anchored = match report.anchoring {
                        Anchoring::Checked { anchors } => format!(", {anchors} anchored in the store"),
                        Anchoring::Unknown => ", not anchored in the store".to_owned(),
                        Anchoring::NotChecked => String::new(),
                    };
                    let tail = match s.unsigned_tail {
                        0 => String::new(),
                        n => format!(", the last {n} records not signed yet"),
                    };
                    format!(
                        "intact: {} files, {} records, {signed}{anchored}{tail}",
                        report.files, s.records
                    )
                }
            };
            StreamRow {
                stream: report.stream.clone(),
                intact: report.finding.is_none(),
                verdict,
            }
        })
        .collect();
    Ok(render(&IntegrityPage {
        chrome: Chrome::of(&signed.0),
        broken: streams.iter().filter(|s| !s.intact).count(),
        streams,
    }))
}

/// The time range of the flows page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct FlowsQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

struct FlowRow {
    resource: String,
    closed: u64,
    failed: u64,
    refused: u64,
    people: usize,
    bytes_in: u64,
    bytes_out: u64,
}

#[derive(Template)]
#[template(path = "flows.html")]
struct FlowsPage {
    chrome: Chrome,
    from: String,
    to: String,
    problem: String,
    rows: Vec<FlowRow>,
}

/// Forwarded connections and refusals per resource, over a time range (default: the last day).
pub(super) async fn flows(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<FlowsQuery>,
) -> Result<Response, PageError> {
    require_audit(&signed)?;
    let mut page = FlowsPage {
        chrome: Chrome::of(&signed.0),
        from: query.from.clone(),
        to: query.to.clone(),
        problem: String::new(),
        rows: Vec::new(),
    };
    let range = time_ms(&query.from, "from").and_then(|from| Ok((from, time_ms(&query.to, "to")?)));
    let (from, to) = match range {
        Ok(range) => range,
        Err(problem) => {
            page.problem = problem;
            return Ok(render(&page));
        }
    };
    let since = from.unwrap_or_else(|| (state.provisioner.now() - 86_400) * 1000);
    let found = state
        .provisioner
        .search_audit(Filter {
            since_ms: Some(since),
            until_ms: to,
            ..Filter::default()
        })
        .await?;
    page.rows = flows_by_resource(&found.records)
        .into_iter()
        .map(|f| FlowRow {
            resource: f.resource,
            closed: f.closed,
            failed: f.failed,
            refused: f.refused,
            people: f.people,
            bytes_in: f.bytes_in,
            bytes_out: f.bytes_out,
        })
        .collect();
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    chrome: Chrome,
    sessions: Vec<SessionRow>,
}

/// Live sessions on every gateway.
pub(super) async fn sessions(State(state): State<AppState>, signed: Signed) -> Result<Response, PageError> {
    if signed.0.role.is_none() {
        return Err(PageError::Forbidden("an operator role"));
    }
    let sessions = state.provisioner.live_sessions().await?;
    Ok(render(&SessionsPage {
        chrome: Chrome::of(&signed.0),
        sessions: sessions.iter().map(SessionRow::of).collect(),
    }))
}

/// Ends a session as this operator: the tunnel closes at the holding gateway's next check.
pub(super) async fn end_session(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<TokenOnly>,
) -> Result<Response, PageError> {
    signed.check_form(&form.csrf)?;
    if signed.0.role.is_none() {
        return Err(PageError::Forbidden("an operator role"));
    }
    state
        .provisioner
        .end_session(&id, &EndedBy::Operator(signed.0.username.clone()))
        .await?;
    Ok(Redirect::to("/console/security/sessions").into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_search_form_becomes_a_filter() {
        let query = AuditQuery {
            user: " alice ".into(),
            decision: "blocked".into(),
            from: "2026-12-06T09:00".into(),
            ..AuditQuery::default()
        };
        let filter = query.filter().unwrap();
        assert_eq!(filter.user.as_deref(), Some("alice"));
        assert_eq!(filter.allowed, Some(false));
        assert_eq!(filter.since_ms, Some(1_796_547_600_000));
        assert_eq!(filter.resource, None);
        let bad = AuditQuery {
            to: "yesterday".into(),
            ..AuditQuery::default()
        };
        assert!(bad.filter().unwrap_err().contains("to: \"yesterday\""));
        assert!(query.with_page(2).ends_with("page=2"));
        assert!(query.with_page(2).contains("user=%20alice%20&"));
    }
}
