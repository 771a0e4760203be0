//! `rampart readiness`: the readiness funnel of everyone, or of one directory group — how many
//! people reached each step (registration code issued, enrolled, profile set up, rehearsal
//! passed, first real connection) and who is stuck where; `--csv FILE` writes the managers'
//! export (the provisioner's CSV, one row per person) to a new owner-only file.

use crate::client::{CliError, Client, segment};
use crate::view::{Output, Table, json, say, time};
use clap::Args;
use rampart_api::provisioner::ReadinessReport;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Stuck people listed per step before "and N more" (the CSV has everyone).
const LISTED: usize = 20;

/// `rampart readiness` arguments.
#[derive(Debug, Args)]
pub struct ReadinessArgs {
    /// Only members of this directory group (default: everyone Rampart knows).
    #[arg(long)]
    group: Option<String>,
    /// Also write the CSV export (one row per person) to this new file, readable by you only.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
}

/// `rampart readiness`.
pub async fn run(client: &Client, output: Output, args: ReadinessArgs) -> Result<(), CliError> {
    let path = match args.group.as_deref().map(str::trim).filter(|g| !g.is_empty()) {
        Some(group) => format!("/v1/readiness?group={}", segment(group)),
        None => "/v1/readiness".to_owned(),
    };
    let report: ReadinessReport = client.get(&path).await?;
    if let Some(file) = &args.csv {
        let body = rampart_api::provisioner::readiness_csv(&report).map_err(|e| CliError::failure(e.to_string()))?;
        write_new_private(file, &body)?;
    }
    if output == Output::Json {
        json(&report)?;
        return Ok(());
    }
    let whom = report
        .group
        .as_deref()
        .map_or_else(|| "everyone".to_owned(), |g| format!("members of {g}"));
    let people = match report.people_total {
        1 => "1 person".to_owned(),
        n => format!("{n} people"),
    };
    say!("Readiness of {whom} on {}: {people}", time(Some(report.generated_at)));
    let mut table = Table::new(&["STEP", "REACHED", "HERE NOW"]);
    table.row(vec![
        "not started".to_owned(),
        String::new(),
        report.not_started.to_string(),
    ]);
    for step in &report.steps {
        table.row(vec![
            step.label.clone(),
            step.reached.to_string(),
            step.stuck.to_string(),
        ]);
    }
    table.print("No one.");
    let mut stuck = vec![("not started", &report.not_started_people)];
    stuck.extend(report.steps.iter().map(|s| (s.label.as_str(), &s.stuck_people)));
    if stuck.iter().any(|(_, people)| !people.is_empty()) {
        say!("\nWho is where (under the furthest step reached, waiting for the next):");
    }
    for (label, people) in stuck {
        if people.is_empty() {
            continue;
        }
        let shown: Vec<&str> = people.iter().take(LISTED).map(String::as_str).collect();
        let more = people.len().saturating_sub(LISTED);
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        say!("  {label} ({}): {}{tail}", people.len(), shown.join(", "));
    }
    if let Some(file) = &args.csv {
        say!("\nCSV written to {} ({} people).", file.display(), report.people.len());
    }
    Ok(())
}

/// Writes `body` to a new file readable by its owner only; an existing file is left alone.
fn write_new_private(path: &Path, body: &[u8]) -> Result<(), CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::failure(format!("{} already exists: name a new file", path.display()))
        } else {
            CliError::failure(format!("cannot write {}: {e}", path.display()))
        }
    })?;
    file.write_all(body)
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))
}
