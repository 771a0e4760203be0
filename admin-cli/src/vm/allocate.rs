//! Allocations: one person, or many (a group or a CSV) a few at a time with a progress bar
//! and a per-row report.

use crate::client::{CliError, Client, exit, segment};
use crate::view::out;
use crate::view::{Output, json};
use futures::StreamExt;
use rampart_api::vms::{AllocateRequest, VmInfo};
use serde::Serialize;

/// Allocation requests in flight during a bulk run.
const ALLOCATIONS_IN_FLIGHT: usize = 8;

pub(super) async fn allocate_one(
    client: &Client,
    pool: &str,
    user: &str,
    vm: Option<String>,
    allow_second: bool,
) -> Result<VmInfo, CliError> {
    client
        .post(
            &format!("/v1/pools/{}/allocations", segment(pool)),
            &AllocateRequest {
                username: user.to_owned(),
                vm,
                allow_second,
            },
        )
        .await
}

/// One row of a bulk run's report.
#[derive(Debug, Serialize)]
pub(super) struct RowResult {
    line: u64,
    username: String,
    vm: Option<String>,
    error: Option<String>,
}

pub(super) async fn allocate_many(
    client: &Client,
    output: Output,
    pool: &str,
    people: Vec<(u64, String)>,
    bad: Vec<(u64, String, String)>,
    allow_second: bool,
) -> Result<(), CliError> {
    let bar = crate::view::progress_bar(people.len(), output, "people");
    let mut results: Vec<RowResult> = futures::stream::iter(people)
        .map(|(line, username)| {
            let bar = bar.clone();
            async move {
                let outcome = allocate_one(client, pool, &username, None, allow_second).await;
                bar.inc(1);
                match outcome {
                    Ok(vm) => RowResult {
                        line,
                        username,
                        vm: Some(vm.id),
                        error: None,
                    },
                    Err(e) => RowResult {
                        line,
                        username,
                        vm: None,
                        error: Some(e.message),
                    },
                }
            }
        })
        .buffer_unordered(ALLOCATIONS_IN_FLIGHT)
        .collect()
        .await;
    bar.finish_and_clear();
    results.extend(bad.into_iter().map(|(line, username, reason)| RowResult {
        line,
        username,
        vm: None,
        error: Some(reason),
    }));
    results.sort_by(|a, b| (a.line, &a.username).cmp(&(b.line, &b.username)));
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    match output {
        Output::Json => json(&results)?,
        Output::Table => {
            out!(
                "Allocated {} VM(s) in {pool}; {failed} refused.",
                results.len() - failed
            );
            for r in results.iter().filter(|r| r.error.is_some()) {
                let error = r.error.as_deref().unwrap_or("");
                match (r.line, r.username.is_empty()) {
                    (0, _) => out!("  {}: {error}", r.username),
                    (line, true) => out!("  line {line}: {error}"),
                    (line, false) => out!("  line {line} ({}): {error}", r.username),
                }
            }
        }
    }
    if failed > 0 {
        return Err(CliError {
            message: format!("{failed} of {} people got no VM", results.len()),
            code: exit::PARTIAL,
        });
    }
    Ok(())
}
