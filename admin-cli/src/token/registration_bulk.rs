//! `rampart token registration-codes --group G | --csv FILE --by letter --out codes.csv`: a
//! registration code for each person of a directory group or a CSV file, written to a new CSV
//! file readable by its owner only (for letters or a mail merge); everyone who got no code is
//! named with the reason.

use super::registration::By;
use crate::client::{CliError, Client, exit, segment};
use crate::enrol::rows::parse_csv;
use crate::view::{Output, json, out};
use rampart_api::provisioner::{GroupMembers, IssuedRegistrationCode, RegistrationCodeRequest};
use rampart_core::text::{csv_cell, printable, utc_minute};
use std::io::Write;
use std::path::Path;

/// Who gets a code.
pub enum Source<'a> {
    /// The enabled members of a directory group.
    Group(&'a str),
    /// The `username` column of a CSV file.
    Csv(&'a Path),
}

/// Someone who got no code, and why.
#[derive(Debug, serde::Serialize)]
struct NoCode {
    name: String,
    reason: String,
}

/// Issues the codes and writes them to `out_file`.
pub async fn issue(
    client: &Client,
    output: Output,
    source: Source<'_>,
    by: By,
    days: Option<u32>,
    out_file: &Path,
) -> Result<(), CliError> {
    // Checked before any code is issued: a code that cannot be written is a code lost.
    if out_file.exists() {
        return Err(CliError::failure(format!(
            "{} exists: give a new file (codes from an earlier run stay valid until replaced)",
            out_file.display()
        )));
    }
    let (usernames, mut no_code) = people(client, source).await?;
    let request = RegistrationCodeRequest {
        delivery: by.into(),
        valid_days: days,
    };
    let mut issued = Vec::with_capacity(usernames.len());
    for username in &usernames {
        let path = format!("/v1/people/{}/registration-code", segment(username));
        match client.post::<_, IssuedRegistrationCode>(&path, &request).await {
            Ok(code) => issued.push(code),
            // This person's refusal (not in the directory, dual control, a bad name): the rest go on.
            Err(e) if matches!(e.code, exit::NOT_FOUND | exit::CONFLICT | exit::FAILURE) => no_code.push(NoCode {
                name: username.clone(),
                reason: e.message.clone(),
            }),
            Err(e) => {
                // Stop at an outage; what was issued so far is written, and said.
                write_codes(out_file, &issued)?;
                return Err(CliError::failure(format!(
                    "stopped after {} code(s), written to {}: {e}",
                    issued.len(),
                    out_file.display()
                )));
            }
        }
    }
    write_codes(out_file, &issued)?;
    match output {
        Output::Json => json(&serde_json::json!({
            "file": out_file,
            "issued": issued.iter().map(|c| &c.username).collect::<Vec<_>>(),
            "no_code": no_code,
        }))?,
        Output::Table => {
            out!(
                "Registration codes for {} people written to {} (readable by you only: it holds the codes; print or \
                 send the letters, then delete it). Earlier codes of these people no longer work.",
                issued.len(),
                out_file.display()
            );
            if !no_code.is_empty() {
                out!("No code for ({}):", no_code.len());
                for person in &no_code {
                    out!("  {}: {}", printable(&person.name), printable(&person.reason));
                }
            }
        }
    }
    Ok(())
}

/// The usernames to issue to, and the people left out with why.
async fn people(client: &Client, source: Source<'_>) -> Result<(Vec<String>, Vec<NoCode>), CliError> {
    match source {
        Source::Group(group) => {
            let members: GroupMembers = client.get(&format!("/v1/directory/groups/{}", segment(group))).await?;
            let left_out = members
                .left_out
                .into_iter()
                .map(|m| NoCode {
                    name: m.name,
                    reason: m.reason,
                })
                .collect();
            Ok((members.usernames, left_out))
        }
        Source::Csv(path) => {
            let file = std::fs::File::open(path)
                .map_err(|e| CliError::failure(format!("cannot read {}: {e}", path.display())))?;
            let parsed = parse_csv(file).map_err(|e| CliError::failure(format!("{}: {e}", path.display())))?;
            let bad = parsed.bad.into_iter().map(|b| NoCode {
                name: format!("line {}", b.line),
                reason: b.reason,
            });
            Ok((parsed.rows.into_iter().map(|r| r.username).collect(), bad.collect()))
        }
    }
}

/// Writes the codes to a new file, owner-only, each cell kept from being a formula.
fn write_codes(path: &Path, codes: &[IssuedRegistrationCode]) -> Result<(), CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
    let mut text = String::from("username,display_name,registration_code,delivery,expires\n");
    for code in codes {
        let cells = [
            code.username.clone(),
            code.display_name.clone(),
            code.registration_code.clone(),
            code.delivery.to_string(),
            utc_minute(code.expires_at),
        ];
        let row: Vec<String> = cells.iter().map(|c| quote(&csv_cell(c))).collect();
        text.push_str(&row.join(","));
        text.push('\n');
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn quote(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}
