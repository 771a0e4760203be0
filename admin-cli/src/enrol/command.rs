//! `rampart enrol`: issue tokens to many people from a CSV file or a directory group, writing
//! one QR image per person and a manifest for enrolment letters. Safe to stop and rerun: a
//! person's QR file and journal line are written before their token is confirmed delivered,
//! and the provisioner replaces tokens that were issued but never delivered. Everyone who gets
//! no token in a run is named with why: already enrolled (with the earlier token's issue and
//! delivery), already in this folder, disabled in the directory, not a person, refused.

use super::output::{Entry, OutputDir};
use super::rows::{BadRow, Row, parse_csv};
use crate::client::{CliError, Client, exit, segment};
use crate::view::{Output, json, say};
use rampart_api::provisioner::{
    ConfirmRequest, ConfirmResponse, EnrolBatch, EnrolBatchResponse, EnrolResult, EnrolRow, GroupMembers,
};
use serde::Serialize;
use std::path::PathBuf;

/// Options of `rampart enrol`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["csv", "group"])))]
pub struct EnrolArgs {
    /// CSV file with a header: `username` (required), `email`, `group` (optional).
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Enrol every enabled member of this directory group.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// Output folder for QR images and the manifest (created; reuse it to resume a run).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Replace tokens people already have (new secrets for everyone not yet in this folder).
    #[arg(long)]
    reissue: bool,
    /// People per request.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=500))]
    batch: u16,
}

/// A row the run refused, for the report.
#[derive(Debug, Serialize)]
struct Refused {
    /// File line (0 for group members).
    line: u64,
    username: String,
    reason: String,
}

/// A person the run gave no token, without it being an error, for the report.
#[derive(Debug, Serialize)]
struct Skipped {
    /// Username, or a directory entry's DN when it has none.
    username: String,
    /// `already_enrolled`, `in_folder`, `disabled`, or a group member's left-out reason
    /// (`not_a_person`, `outside_user_base`, …).
    kind: String,
    /// Why, for people.
    reason: String,
    /// The token the person already holds, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    token_id: Option<String>,
    /// When that token was issued (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_at: Option<i64>,
    /// Who issued it.
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_by: Option<String>,
    /// When its QR code was handed out (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered_at: Option<i64>,
}

impl Skipped {
    fn new(username: &str, kind: &str, reason: String) -> Self {
        Self {
            username: username.to_owned(),
            kind: kind.to_owned(),
            reason,
            token_id: None,
            issued_at: None,
            issued_by: None,
            delivered_at: None,
        }
    }

    /// A batch result the provisioner skipped (already enrolled) or found disabled.
    fn from_result(result: &EnrolResult) -> Self {
        let kind = if result.status == "skipped" {
            "already_enrolled"
        } else {
            result.status.as_str()
        };
        let reason = result.reason.clone().unwrap_or_else(|| kind.replace('_', " "));
        let existing = result.existing.as_ref();
        Self {
            token_id: existing
                .map(|e| e.token_id.clone())
                .or_else(|| result.existing_token.clone()),
            issued_at: existing.map(|e| e.issued_at),
            issued_by: existing.map(|e| e.issued_by.clone()),
            delivered_at: existing.and_then(|e| e.delivered_at),
            ..Self::new(&result.username, kind, reason)
        }
    }
}

/// What the run did.
#[derive(Debug, Serialize)]
struct Summary {
    issued: u64,
    already_enrolled: u64,
    already_in_folder: u64,
    disabled: u64,
    /// Everyone who got no token without an error, by name, with why.
    skipped: Vec<Skipped>,
    refused: Vec<Refused>,
    output_dir: PathBuf,
    manifest_csv: PathBuf,
    manifest_json: PathBuf,
}

/// Runs an enrolment.
pub async fn run(client: &Client, output: Output, args: EnrolArgs) -> Result<(), CliError> {
    let (rows, bad, left_out) = read_source(client, &args).await?;
    let mut out = OutputDir::open(&args.out).map_err(|e| CliError::failure(format!("{}: {e}", args.out.display())))?;

    // A previous run may have stopped after writing QR files but before confirming them.
    let journaled: Vec<String> = rows
        .iter()
        .filter_map(|row| out.entry(&row.username).map(|e| e.token_id.clone()))
        .collect();
    confirm(client, &journaled).await?;

    let mut refused: Vec<Refused> = bad
        .into_iter()
        .map(|b| Refused {
            line: b.line,
            username: String::new(),
            reason: b.reason,
        })
        .collect();
    let (done, todo): (Vec<Row>, Vec<Row>) = rows.into_iter().partition(|row| out.entry(&row.username).is_some());
    let mut skipped = left_out;
    for row in &done {
        if let Some(entry) = out.entry(&row.username) {
            skipped.push(Skipped {
                token_id: Some(entry.token_id.clone()),
                issued_at: Some(entry.issued_at),
                ..Skipped::new(
                    &row.username,
                    "in_folder",
                    format!("already in this folder from an earlier run: {}", entry.qr_file),
                )
            });
        }
    }
    let mut summary = Summary {
        issued: 0,
        already_enrolled: 0,
        already_in_folder: u64::try_from(done.len()).unwrap_or(u64::MAX),
        disabled: 0,
        skipped: Vec::new(),
        refused: Vec::new(),
        output_dir: args.out.clone(),
        manifest_csv: args.out.join("manifest.csv"),
        manifest_json: args.out.join("manifest.json"),
    };

    let progress = crate::view::progress_bar(todo.len(), output, "people");
    for chunk in todo.chunks(usize::from(args.batch)) {
        let batch = EnrolBatch {
            rows: chunk
                .iter()
                .map(|row| EnrolRow {
                    username: row.username.clone(),
                    email: row.email.clone(),
                    group: row.group.clone(),
                })
                .collect(),
            reissue: args.reissue,
        };
        let answer: EnrolBatchResponse = client.post("/v1/enrol/batch", &batch).await?;
        if answer.results.len() != chunk.len() {
            return Err(CliError::failure(
                "the provisioner answered a batch with the wrong number of results",
            ));
        }
        let mut delivered = Vec::new();
        let mut written = Vec::new();
        for (row, result) in chunk.iter().zip(&answer.results) {
            match (result.status.as_str(), &result.issued) {
                ("issued", Some(issued)) => {
                    // The CSV's address first; else the directory's, so letters can be mailed.
                    let entry = Entry {
                        username: issued.username.clone(),
                        display_name: issued.display_name.clone(),
                        email: row.email.clone().or_else(|| result.email.clone()),
                        group: row.group.clone(),
                        token_id: issued.token_id.clone(),
                        issued_at: issued.issued_at,
                        qr_file: String::new(),
                    };
                    written.push((entry, issued.otpauth_uri.as_str()));
                    delivered.push(issued.token_id.clone());
                    summary.issued += 1;
                }
                ("skipped", _) => {
                    summary.already_enrolled += 1;
                    skipped.push(Skipped::from_result(result));
                }
                ("disabled", _) => skipped.push(Skipped::from_result(result)),
                _ => refused.push(Refused {
                    line: row.line,
                    username: row.username.clone(),
                    reason: result.reason.clone().unwrap_or_else(|| "refused".into()),
                }),
            }
        }
        out.write_qr_and_record_all(written)
            .map_err(|e| CliError::failure(format!("{}: {e}", args.out.display())))?;
        progress.inc(u64::try_from(chunk.len()).unwrap_or(0));
        confirm(client, &delivered).await?;
    }
    progress.finish_and_clear();
    out.finish()
        .map_err(|e| CliError::failure(format!("{}: {e}", args.out.display())))?;

    refused.sort_by_key(|r| r.line);
    summary.refused = refused;
    skipped.sort_by(|a, b| a.username.cmp(&b.username));
    // Disabled CSV rows and disabled group members alike.
    summary.disabled = u64::try_from(skipped.iter().filter(|s| s.kind == "disabled").count()).unwrap_or(u64::MAX);
    summary.skipped = skipped;
    report(&summary, output)?;
    if summary.refused.is_empty() {
        Ok(())
    } else {
        Err(CliError {
            message: format!("{} row(s) refused; every other row was enrolled", summary.refused.len()),
            code: exit::PARTIAL,
        })
    }
}

/// The rows to enrol, the CSV's bad rows, and the group members left out (with why).
async fn read_source(client: &Client, args: &EnrolArgs) -> Result<(Vec<Row>, Vec<BadRow>, Vec<Skipped>), CliError> {
    if let Some(path) = &args.csv {
        let file =
            std::fs::File::open(path).map_err(|e| CliError::failure(format!("cannot read {}: {e}", path.display())))?;
        let parsed = parse_csv(file).map_err(|e| CliError::failure(format!("{}: {e}", path.display())))?;
        return Ok((parsed.rows, parsed.bad, Vec::new()));
    }
    let group = args.group.as_deref().unwrap_or_default();
    let members: GroupMembers = client.get(&format!("/v1/directory/groups/{}", segment(group))).await?;
    let left_out = members
        .left_out
        .iter()
        .map(|member| Skipped::new(&member.name, &member.reason_code, member.reason.clone()))
        .collect();
    let rows = members
        .usernames
        .into_iter()
        .map(|username| Row {
            line: 0,
            username,
            email: None,
            group: Some(members.group.clone()),
        })
        .collect();
    Ok((rows, Vec::new(), left_out))
}

async fn confirm(client: &Client, token_ids: &[String]) -> Result<(), CliError> {
    for chunk in token_ids.chunks(rampart_api::provisioner::MAX_BATCH) {
        let _: ConfirmResponse = client
            .post(
                "/v1/enrol/confirm",
                &ConfirmRequest {
                    token_ids: chunk.to_vec(),
                },
            )
            .await?;
    }
    Ok(())
}

fn report(summary: &Summary, output: Output) -> Result<(), CliError> {
    if output == Output::Json {
        return json(summary).map_err(CliError::from);
    }
    say!(
        "Issued {} token(s); {} already enrolled; {} already in this folder; {} disabled in the directory.",
        summary.issued,
        summary.already_enrolled,
        summary.already_in_folder,
        summary.disabled
    );
    say!(
        "QR images in {}; manifest: {} and {}.",
        summary.output_dir.join("qr").display(),
        summary.manifest_csv.display(),
        summary.manifest_json.display()
    );
    if !summary.skipped.is_empty() {
        say!("\nNo token for ({}):", summary.skipped.len());
        for s in &summary.skipped {
            say!("  {}: {}", s.username, s.reason);
        }
    }
    if !summary.refused.is_empty() {
        say!("\nRefused rows:");
        for r in &summary.refused {
            match (r.line, r.username.is_empty()) {
                (0, _) => say!("  {}: {}", r.username, r.reason),
                (line, true) => say!("  line {line}: {}", r.reason),
                (line, false) => say!("  line {line} ({}): {}", r.username, r.reason),
            }
        }
    }
    Ok(())
}
