//! `rampart token requests|approve|deny|collect`: token resets under dual control. A reset
//! that waits says which command a second operator runs; the operator who asked collects an
//! approved temporary code or replacement, which is shown once, to them.

use crate::client::{CliError, Client, segment};
use crate::view::{Output, Table, json, say, time};
use rampart_api::provisioner::{CollectRequest, CollectedReset, ReasonRequest, ResetRequestInfo};
use std::path::Path;
use std::time::{Duration, Instant};

/// How often `collect --wait` asks whether the request was decided.
const POLL_EVERY: Duration = Duration::from_secs(2);

/// Prints a request that waits for a second operator's approval.
pub fn show_pending(request: &ResetRequestInfo, output: Output) -> Result<(), CliError> {
    if output == Output::Json {
        json(request)?;
        return Ok(());
    }
    say_pending(request);
    Ok(())
}

/// The lines that tell an operator a reset waits, and what happens next.
pub fn say_pending(request: &ResetRequestInfo) {
    let id = &request.request_id;
    say!(
        "{} for {} is waiting for a second operator's approval: rampart token approve {id}\n\
         The request expires at {} unless approved.",
        describe(&request.action),
        request.username,
        time(Some(request.expires_at))
    );
    if request.action != "unlock" {
        say!("Once approved, collect the result (shown once, to you): rampart token collect {id} --wait 300");
    }
}

/// `rampart token requests`.
pub async fn list(client: &Client, output: Output, all: bool) -> Result<(), CliError> {
    let path = if all {
        "/v1/reset-requests?all=true"
    } else {
        "/v1/reset-requests"
    };
    let requests: Vec<ResetRequestInfo> = client.get(path).await?;
    match output {
        Output::Json => json(&requests)?,
        Output::Table => {
            let mut table = Table::new(&[
                "ID",
                "USER",
                "ACTION",
                "REQUESTED BY",
                "REQUESTED",
                "EXPIRES",
                "STATE",
                "DECIDED BY",
                "REASON",
            ]);
            for r in &requests {
                table.row(vec![
                    r.request_id.clone(),
                    r.username.clone(),
                    r.action.clone(),
                    r.requested_by.clone(),
                    time(Some(r.requested_at)),
                    time(Some(r.expires_at)),
                    r.state.clone(),
                    r.decided_by.clone().unwrap_or_else(|| "-".into()),
                    if r.decision_reason.is_empty() {
                        r.reason.clone()
                    } else {
                        format!("{} / {}", r.reason, r.decision_reason)
                    },
                ]);
            }
            table.print(if all {
                "No reset requests."
            } else {
                "No reset requests are waiting."
            });
        }
    }
    Ok(())
}

/// `rampart token approve ID`.
pub async fn approve(client: &Client, output: Output, id: &str) -> Result<(), CliError> {
    let request: ResetRequestInfo = client
        .post(&format!("/v1/reset-requests/{}/approve", segment(id)), &())
        .await?;
    if output == Output::Json {
        json(&request)?;
        return Ok(());
    }
    if request.state == "done" {
        say!(
            "Approved: {} for {}, asked by {}, is carried out.",
            describe(&request.action),
            request.username,
            request.requested_by
        );
    } else {
        say!(
            "Approved: {} for {}, asked by {}. {} can now collect it until {}: rampart token collect {}",
            describe(&request.action),
            request.username,
            request.requested_by,
            request.requested_by,
            time(Some(request.expires_at)),
            request.request_id
        );
    }
    Ok(())
}

/// `rampart token deny ID --reason …`.
pub async fn deny(client: &Client, output: Output, id: &str, reason: String) -> Result<(), CliError> {
    let request: ResetRequestInfo = client
        .post(
            &format!("/v1/reset-requests/{}/deny", segment(id)),
            &ReasonRequest { reason },
        )
        .await?;
    match output {
        Output::Json => json(&request)?,
        Output::Table => say!(
            "Denied: {} for {}, asked by {}. Nothing was changed.",
            describe(&request.action),
            request.username,
            request.requested_by
        ),
    }
    Ok(())
}

/// `rampart token collect ID [--wait SECS] [--qr FILE]`.
pub async fn collect(
    client: &Client,
    output: Output,
    id: &str,
    wait: Option<u64>,
    qr: Option<&Path>,
) -> Result<(), CliError> {
    if let Some(secs) = wait {
        wait_for_decision(client, output, id, Duration::from_secs(secs)).await?;
    }
    let collected: CollectedReset = client
        .post(
            &format!("/v1/reset-requests/{}/collect", segment(id)),
            &CollectRequest { qr: None },
        )
        .await?;
    if let (Some(path), Some(replacement)) = (qr, &collected.replacement) {
        crate::qr_file::write_file(path, &replacement.otpauth_uri)
            .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
    }
    if output == Output::Json {
        json(&collected)?;
        return Ok(());
    }
    let request = &collected.request;
    say!(
        "{} for {}, approved by {}:",
        describe(&request.action),
        request.username,
        request.decided_by.as_deref().unwrap_or("-")
    );
    if let Some(code) = &collected.temporary_code {
        super::show_temp_code(&request.username, code);
    }
    if let Some(replacement) = &collected.replacement {
        say!();
        super::show_issued(replacement, qr, Output::Table)?;
    }
    Ok(())
}

/// Waits until request `id` is no longer pending, or `limit` passes.
async fn wait_for_decision(client: &Client, output: Output, id: &str, limit: Duration) -> Result<(), CliError> {
    let deadline = Instant::now() + limit;
    let mut told = false;
    loop {
        let request: ResetRequestInfo = client.get(&format!("/v1/reset-requests/{}", segment(id))).await?;
        if request.state != "pending" {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CliError {
                message: format!(
                    "request {id} is still waiting for a second operator's approval; collect it later with: \
                     rampart token collect {id}"
                ),
                code: crate::client::exit::CONFLICT,
            });
        }
        if !told && output == Output::Table {
            eprintln!("Waiting for a second operator to approve request {id}…");
            told = true;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// An action as people say it.
fn describe(action: &str) -> &'static str {
    match action {
        "temporary_code" => "A temporary code",
        "replacement" => "A replacement token",
        "temporary_code+replacement" => "A temporary code and a replacement token",
        "unlock" => "An unlock",
        _ => "A token reset",
    }
}
