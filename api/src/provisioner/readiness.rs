//! Readiness: the `/readyz` answer, the readiness funnel (per step and per person) with its CSV
//! export for managers, and the rehearsals employees' clients report.

use rampart_core::text::csv_cell;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReadinessCheck {
    /// `clock`: this provisioner's clock against the database's.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Plain words (never the offset: that is in the log and in the refusals operators get);
    /// only for callers with an operator key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Answer to `/readyz` (200 when every check passes, 503 otherwise); the gateway's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// All checks passed.
    pub ready: bool,
    /// Each check.
    pub checks: Vec<ReadinessCheck>,
}

/// One step of the readiness funnel: how many people reached it and who stopped there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StepCount {
    /// Stable name: `code_issued`, `enrolled`, `profile_set_up`, `rehearsal_passed`,
    /// `first_connection`.
    pub step: String,
    /// The step in words.
    pub label: String,
    /// People who reached at least this step (a later step implies the earlier ones).
    pub reached: u64,
    /// People whose furthest step this is: waiting for the next one.
    pub stuck: u64,
    /// Their usernames, sorted.
    pub stuck_people: Vec<String>,
}

/// One person's steps towards their first real connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReadinessPerson {
    /// Normalised username.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Directory groups, sorted.
    pub groups: Vec<String>,
    /// The furthest step reached (stable name), absent when not started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub furthest_step: Option<String>,
    /// First registration code, unix seconds.
    #[serde(default)]
    pub code_issued_at: Option<i64>,
    /// First token activation, unix seconds.
    #[serde(default)]
    pub enrolled_at: Option<i64>,
    /// First gateway session, unix seconds.
    #[serde(default)]
    pub profile_set_up_at: Option<i64>,
    /// First passed rehearsal, unix seconds.
    #[serde(default)]
    pub rehearsal_passed_at: Option<i64>,
    /// First login after the passed rehearsal (not the rehearsal's own), unix seconds.
    #[serde(default)]
    pub first_connection_at: Option<i64>,
}

/// The readiness funnel of everyone the store knows, or of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReadinessReport {
    /// The group asked for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// When the report was made, unix seconds.
    pub generated_at: i64,
    /// People counted.
    pub people_total: u64,
    /// People who reached no step yet.
    pub not_started: u64,
    /// Their usernames, sorted.
    pub not_started_people: Vec<String>,
    /// Each step in order.
    pub steps: Vec<StepCount>,
    /// Everyone counted, by username.
    pub people: Vec<ReadinessPerson>,
}

/// One resource a rehearsal tried to open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RehearsedResource {
    /// The resource's name.
    pub resource: String,
    /// Whether the gateway connected to it.
    pub ok: bool,
    /// Why not, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A rehearsal's outcome, reported by `rampart-connect doctor --rehearse` with the session's
/// ticket in `Authorization: Session TICKET`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RehearsalReport {
    /// Each resource tried.
    pub resources: Vec<RehearsedResource>,
}

/// A recorded rehearsal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RehearsalRecorded {
    /// The rehearsal's id.
    pub rehearsal_id: String,
    /// Whose session it ran in.
    pub username: String,
    /// At least one resource, and every one opened.
    pub passed: bool,
    /// Resources tried.
    pub resources: u64,
    /// Resources that did not open.
    pub failed: u64,
}

/// Whose readiness to report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadinessQuery {
    /// Only members of this directory group (default: everyone the store knows).
    pub group: Option<String>,
}

/// The funnel's steps by stable name, in order: the CSV's step columns.
const STEPS: [&str; 5] = [
    "code_issued",
    "enrolled",
    "profile_set_up",
    "rehearsal_passed",
    "first_connection",
];

impl ReadinessPerson {
    /// When the person reached each of the funnel's steps, in the order of their stable names
    /// (`code_issued`, `enrolled`, `profile_set_up`, `rehearsal_passed`, `first_connection`).
    pub fn step_times(&self) -> [Option<i64>; 5] {
        [
            self.code_issued_at,
            self.enrolled_at,
            self.profile_set_up_at,
            self.rehearsal_passed_at,
            self.first_connection_at,
        ]
    }
}

/// Why the CSV export could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot write CSV: {0}")]
pub struct CsvError(#[from] csv::Error);

/// The report as CSV for managers: one row per person (username, display name, groups, the
/// furthest step in words, and each step's time in ISO 8601 UTC, empty when not reached), every
/// cell kept from becoming a spreadsheet formula. The words for each step are the report's own.
pub fn readiness_csv(report: &ReadinessReport) -> Result<Vec<u8>, CsvError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["username", "display_name", "groups", "furthest_step"];
    header.extend(STEPS);
    out.write_record(&header)?;
    for person in &report.people {
        // The report's words for the step; its stable name if the report lists no such step.
        let furthest = match person.furthest_step.as_deref() {
            None => "not started",
            Some(name) => report
                .steps
                .iter()
                .find(|step| step.step == name)
                .map_or(name, |step| step.label.as_str()),
        };
        let groups = person.groups.join(" ");
        let mut record: Vec<String> = [
            person.username.as_str(),
            person.display_name.as_str(),
            groups.as_str(),
            furthest,
        ]
        .iter()
        .map(|cell| csv_cell(cell).into_owned())
        .collect();
        record.extend(person.step_times().map(|at| at.map(iso).unwrap_or_default()));
        out.write_record(&record)?;
    }
    out.into_inner().map_err(|e| CsvError(e.into_error().into()))
}

/// `unix` as `2026-03-01T09:30:00Z`.
fn iso(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map_or_else(|_| unix.to_string(), |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}
