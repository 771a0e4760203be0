//! `rampart profile create`: the connection profile the service desk hands an employee — one
//! JSON file or one pasteable line — so `rampart-connect setup` is their only set-up step.

use crate::client::CliError;
use crate::view::out;
use crate::view::{Output, json};
use clap::Subcommand;
use rampart_core::profile::{PROFILE_VERSION, Profile};
use std::path::{Path, PathBuf};

/// Profile subcommands.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Write a profile: the gateways to try in order, the organisation CA (`--ca`), and
    /// optionally the person's username and the resources to forward. Prints the one-line form.
    Create {
        /// A gateway, HOST:PORT; repeat for fail-over, first choice first.
        #[arg(long = "gateway", required = true, value_name = "HOST:PORT")]
        gateways: Vec<String>,
        /// The person's username.
        #[arg(long)]
        user: Option<String>,
        /// A forward the client starts by default, LOCAL_ADDR=RESOURCE; repeatable.
        #[arg(long = "forward", value_name = "LOCAL_ADDR=RESOURCE")]
        forwards: Vec<String>,
        /// The organisation's name, shown to the person.
        #[arg(long, default_value = "")]
        organisation: String,
        /// The provisioner's address for self-service enrolment (`rampart-connect enrol`),
        /// https://HOST:PORT.
        #[arg(long, value_name = "URL")]
        enrol_url: Option<String>,
        /// Also write the profile as a JSON file here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Runs a profile subcommand; `ca` is the organisation CA (`--ca` / `RAMPART_CA`).
pub fn run(output: Output, ca: Option<&Path>, command: ProfileCommand) -> Result<(), CliError> {
    let ProfileCommand::Create {
        gateways,
        user,
        forwards,
        organisation,
        enrol_url,
        out,
    } = command;
    let ca = ca.ok_or_else(|| {
        CliError::failure("pass --ca (or RAMPART_CA) with the organisation CA certificate the gateways chain to")
    })?;
    let ca_pem = std::fs::read_to_string(ca)
        .map_err(|e| CliError::failure(format!("cannot read the CA certificate {}: {e}", ca.display())))?;
    // A gateway's own certificate given as the CA makes a profile no gateway can satisfy.
    match rampart_certs::describe(&ca_pem) {
        Ok(summary) if !summary.is_ca => {
            return Err(CliError::failure(format!(
                "{} holds {}'s own certificate, not the organisation CA: give ca.pem from the CA folder \
                 (`rampart cert show FILE` tells them apart)",
                ca.display(),
                rampart_core::text::printable(&summary.subject)
            )));
        }
        Ok(_) => {}
        Err(e) => {
            return Err(CliError::failure(format!(
                "{} is not a CA certificate: {e}",
                ca.display()
            )));
        }
    }
    let mut profile = build(organisation, gateways, ca_pem, user, forwards)?;
    if let Some(url) = enrol_url {
        let url = url.trim().trim_end_matches('/').to_owned();
        if !url.starts_with("https://") {
            return Err(CliError::failure(format!("--enrol-url {url}: not an https:// address")));
        }
        profile.enrol_url = Some(url);
    }
    let line = profile.to_line();
    if let Some(path) = &out {
        let text = serde_json::to_string_pretty(&profile).map_err(|e| CliError::failure(e.to_string()))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
    }
    match output {
        Output::Json => json(&serde_json::json!({"line": line, "profile": profile, "file": out}))?,
        Output::Table => {
            if let Some(path) = &out {
                out!("Profile written to {}. The same as one line:", path.display());
            }
            out!("{line}");
        }
    }
    Ok(())
}

/// A checked profile.
pub fn build(
    organisation: String,
    gateways: Vec<String>,
    ca_pem: String,
    user: Option<String>,
    forwards: Vec<String>,
) -> Result<Profile, CliError> {
    let profile = Profile {
        version: PROFILE_VERSION,
        organisation,
        gateways,
        ca_pem,
        user,
        forwards,
        enrol_url: None,
    };
    let problems = profile.problems();
    if problems.is_empty() {
        Ok(profile)
    } else {
        Err(CliError::failure(format!(
            "cannot make this profile: {}",
            problems.join("; ")
        )))
    }
}
