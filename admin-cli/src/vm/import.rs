//! Importing a VM inventory into a pool, in chunks, stopping where a chunk is refused.

use super::inventory::parse_inventory;
use crate::client::{CliError, Client, exit, segment};
use crate::view::out;
use crate::view::{Output, json};
use rampart_api::vms::{AddVms, AddVmsResponse, NewVm};
use std::path::PathBuf;

/// Rows sent per inventory request.
const IMPORT_CHUNK: usize = 500;

/// An import that could not go on (the provisioner unreachable, a key refused): what is in
/// and where to resume, so nothing is added twice or forgotten.
pub(super) fn stopped(e: CliError, line: u64, added: usize) -> CliError {
    CliError {
        message: format!(
            "{}\nstopped at line {line}: {added} VM(s) from earlier lines were added; \
             rows from line {line} on were not (run the import again with those rows)",
            e.message
        ),
        code: e.code,
    }
}

pub(super) async fn import(client: &Client, output: Output, pool: &str, path: &PathBuf) -> Result<(), CliError> {
    let data = std::fs::read(path).map_err(|e| CliError::failure(format!("cannot read {}: {e}", path.display())))?;
    let inventory = parse_inventory(&data).map_err(CliError::failure)?;
    let mut bad = inventory.bad.clone();
    let (mut added, mut provisioning) = (0, 0);
    for chunk in inventory.rows.chunks(IMPORT_CHUNK) {
        let body = AddVms {
            vms: chunk
                .iter()
                .map(|r| NewVm {
                    id: r.id.clone(),
                    address: r.address.clone(),
                })
                .collect(),
        };
        let path = format!("/v1/pools/{}/vms", segment(pool));
        match client.post::<_, AddVmsResponse>(&path, &body).await {
            Ok(done) => {
                added += done.added;
                provisioning += done.provisioning;
            }
            // All or none per request: find the refused rows one by one.
            Err(e) if e.code == exit::CONFLICT => {
                for row in chunk {
                    let one = AddVms {
                        vms: vec![NewVm {
                            id: row.id.clone(),
                            address: row.address.clone(),
                        }],
                    };
                    match client.post::<_, AddVmsResponse>(&path, &one).await {
                        Ok(done) => {
                            added += done.added;
                            provisioning += done.provisioning;
                        }
                        Err(e) if e.code == exit::CONFLICT => bad.push((row.line, e.message)),
                        Err(e) => return Err(stopped(e, row.line, added)),
                    }
                }
            }
            Err(e) => return Err(stopped(e, chunk.first().map_or(0, |r| r.line), added)),
        }
    }
    bad.sort();
    match output {
        Output::Json => json(&serde_json::json!({
            "added": added,
            "provisioning": provisioning,
            "refused": bad.iter().map(|(line, reason)| serde_json::json!({"line": line, "reason": reason})).collect::<Vec<_>>(),
        }))?,
        Output::Table => {
            out!("Added {added} VM(s) to {pool}; {provisioning} wait for their provision hook.");
            for (line, reason) in &bad {
                out!("  line {line}: {reason}");
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(CliError {
            message: format!("{} row(s) refused", bad.len()),
            code: exit::PARTIAL,
        })
    }
}
