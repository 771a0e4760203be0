//! `rampart-connect doctor --rehearse`: a dress rehearsal before the first real working day.
//! With the saved session it opens each of the person's resources (their allocated VM too)
//! through the gateway, as `forward` would for one connection — a resource passes when the
//! gateway says it connected to it — says how each went in plain words, and reports the
//! outcome to the provisioner at the profile's address, proving who it is with the session's
//! ticket. The service desk's readiness funnel moves the person to "rehearsal passed" only when
//! every resource opened.

use crate::error::exit;
use crate::known::{Overrides, ca_override};
use crate::messages::{Context, explain};
use crate::resume::{Resumed, resume_on_any};
use crate::{ClientError, Home};
use rampart_core::text::printable;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One resource's outcome, as the provisioner records it.
#[derive(Debug, Serialize)]
struct Tried {
    resource: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize)]
struct Report<'a> {
    resources: &'a [Tried],
}

#[derive(Deserialize)]
struct Recorded {
    passed: bool,
}

#[derive(Deserialize)]
struct Refusal {
    message: String,
}

/// `rampart-connect doctor --rehearse`: the report to the provisioner trusts the CA of `--ca`,
/// else `RAMPART_CONNECT_CA`, else the profile's.
pub async fn run(home: &Home, overrides: &Overrides) -> Result<u8, ClientError> {
    let ca = ca_override(overrides)?;
    rehearse(home, ca).await
}

/// Runs the rehearsal; the exit code: 0 only when every resource opened and the result was
/// recorded.
pub async fn rehearse(home: &Home, ca_override: Option<String>) -> Result<u8, ClientError> {
    let Some(saved) = home.load_session()? else {
        println!(
            "You are not logged in, so nothing can be rehearsed. Log in first with `rampart-connect login`, then run `rampart-connect doctor --rehearse` again."
        );
        return Ok(exit::SESSION);
    };
    let mut credential = saved.credential()?;
    let Resumed { gateway, client, grant } = resume_on_any(home, &saved, &mut credential).await?;
    println!(
        "Rehearsing as {} through {gateway}: opening each of your resources.",
        printable(&grant.user)
    );
    let mut tried = Vec::with_capacity(grant.resources.len());
    for resource in &grant.resources {
        let outcome = match client.open(&resource.name).await {
            Ok((mut send, recv)) => {
                // Opened: the gateway connected to it. Nothing is sent; the connection ends here.
                let _ = send.finish();
                drop(recv);
                None
            }
            Err(e) => {
                let context = Context {
                    resource: Some(&resource.name),
                    hours: resource.hours.as_deref(),
                    ..Context::default()
                };
                Some(explain(&e, context))
            }
        };
        match &outcome {
            None => println!("[ ok ] {}", printable(&resource.name)),
            Some(reason) => println!("[FAIL] {}: {reason}", printable(&resource.name)),
        }
        tried.push(Tried {
            resource: resource.name.clone(),
            ok: outcome.is_none(),
            reason: outcome,
        });
    }
    client.close().await;
    let failed = tried.iter().filter(|t| !t.ok).count();
    let all_opened = !tried.is_empty() && failed == 0;
    if tried.is_empty() {
        println!("No resources are open to you yet, so there is nothing to rehearse; ask the service desk.");
    } else if all_opened {
        println!("All {} of your resources opened.", tried.len());
    } else {
        println!(
            "{failed} of your {} resources did not open; the service desk can see which.",
            tried.len()
        );
    }
    let reported = report(home, &credential.session_id, &tried, ca_override).await;
    match &reported {
        Ok(true) => println!("The result was reported to the service desk: rehearsal passed."),
        Ok(false) => println!("The result was reported to the service desk: rehearsal not passed yet."),
        Err(why) => println!("The result was not reported to the service desk: {why}"),
    }
    Ok(if !all_opened {
        exit::RESOURCE
    } else if reported.is_err() {
        exit::FAILURE
    } else {
        exit::OK
    })
}

/// Sends the outcome to the provisioner at the profile's address with the session's newest
/// ticket; whether it recorded a pass, or why it was not reported, in words.
async fn report(home: &Home, session_id: &str, tried: &[Tried], ca_override: Option<String>) -> Result<bool, String> {
    let profile = home.load_profile().map_err(|e| e.to_string())?.ok_or_else(|| {
        "no profile is set up here; run `rampart-connect setup` with the profile from the service desk".to_owned()
    })?;
    let url = profile.enrol_url.as_deref().map(|u| u.trim().trim_end_matches('/')).filter(|u| !u.is_empty()).ok_or_else(|| {
        "your profile does not name the service desk's provisioner (its enrolment address); ask the service desk for a \
         profile that carries it (`rampart profile create --enrol-url https://HOST:PORT`), set it up again with \
         `rampart-connect setup`, then rehearse again"
            .to_owned()
    })?;
    if !url.starts_with("https://") {
        return Err(format!(
            "the profile's provisioner address {} is not an https:// address",
            printable(url)
        ));
    }
    let http = client(&ca_override.unwrap_or(profile.ca_pem))?;
    // Under the session's lock: no other process replaces the ticket while the provisioner
    // checks it.
    let _lock = home.lock_session().await.map_err(|e| e.to_string())?;
    let ticket = match home.load_session().map_err(|e| e.to_string())? {
        Some(saved) if saved.session_id == session_id => saved.ticket,
        _ => return Err("the saved session changed while rehearsing (a new login?); rehearse again".to_owned()),
    };
    let response = http
        .post(format!("{url}/v1/rehearsals"))
        .header(reqwest::header::AUTHORIZATION, format!("Session {}", ticket.expose()))
        .json(&Report { resources: tried })
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot reach the provisioner at {url} ({}); rehearse again later",
                chain(&e)
            )
        })?;
    let status = response.status();
    if status.is_success() {
        let recorded: Recorded = response
            .json()
            .await
            .map_err(|e| format!("unexpected answer from the provisioner: {e}"))?;
        return Ok(recorded.passed);
    }
    let message = response.json::<Refusal>().await.map_or_else(
        |_| format!("the provisioner answered {status}"),
        |r| printable(&r.message),
    );
    Err(message)
}

fn client(ca_pem: &str) -> Result<reqwest::Client, String> {
    let roots =
        rampart_certs::certs_from_pem(ca_pem).map_err(|e| format!("the organisation CA cannot be read: {e}"))?;
    let tls = rampart_certs::client_config(roots, &[b"http/1.1"]).map_err(|e| format!("TLS configuration: {e}"))?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        // A redirect would carry the ticket elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| format!("cannot build the HTTPS client: {e}"))
}

/// An error with its causes, for "cannot reach".
fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}
