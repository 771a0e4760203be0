//! `rampart token …`: one person's token — issue (the only time its secret is shown: URI,
//! terminal QR code, PNG/SVG file), list, show, revoke, lost, unlock, resync, temporary code;
//! and the resets that wait for a second operator's approval (`approvals`).

mod approvals;
mod registration;
mod registration_bulk;

use crate::client::{CliError, Client, segment};
use crate::view::out;
use crate::view::{Output, Table, json, say, time};
use clap::Subcommand;
use rampart_api::provisioner::{
    Gated, IssueRequest, IssuedToken, LostRequest, LostResponse, PersonInfo, ReasonRequest, ResyncRequest,
    TemporaryCode, TokenInfo,
};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Token commands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token to a person in the directory and show its QR code once.
    Issue {
        /// Username.
        user: String,
        /// Replace the person's current token (it is revoked).
        #[arg(long)]
        reissue: bool,
        /// Also write the QR code to this file (.png or .svg).
        #[arg(long, value_name = "FILE")]
        qr: Option<PathBuf>,
    },
    /// List tokens.
    List {
        /// Only this state (pending, active, revoked, lost, expired).
        #[arg(long)]
        state: Option<String>,
        /// Only members of this group.
        #[arg(long)]
        group: Option<String>,
        /// Only this person.
        #[arg(long)]
        user: Option<String>,
        /// Only locked tokens.
        #[arg(long)]
        locked: bool,
    },
    /// Show a person's tokens and their history.
    Show {
        /// Username.
        user: String,
    },
    /// Revoke a person's token.
    Revoke {
        /// Username.
        user: String,
        /// Why (kept in the history), e.g. a ticket number.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Report a person's token lost; optionally give a temporary code or a replacement.
    Lost {
        /// Username.
        user: String,
        /// Why (kept in the history).
        #[arg(long, default_value = "")]
        reason: String,
        /// Issue a temporary one-time code to use instead of a token code.
        #[arg(long)]
        temporary_code: bool,
        /// Issue a replacement token now.
        #[arg(long)]
        replacement: bool,
        /// Write the replacement's QR code to this file (.png or .svg).
        #[arg(long, value_name = "FILE", requires = "replacement")]
        qr: Option<PathBuf>,
    },
    /// Clear the failure counter of a locked token.
    Unlock {
        /// Username.
        user: String,
    },
    /// Resynchronise a drifting token from two consecutive codes.
    Resync {
        /// Username.
        user: String,
        /// A code from the person's authenticator.
        first_code: String,
        /// The next code it shows.
        second_code: String,
    },
    /// Issue a registration code for self-service enrolment (`rampart-connect enrol`): shown
    /// once; earlier codes of the person stop working.
    RegistrationCode {
        /// Username.
        user: String,
        /// How it reaches the person.
        #[arg(long, value_enum)]
        by: registration::By,
        /// Days it works (1 to 90; default: the provisioner's `registration_code_days`).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Registration codes for every enabled member of a directory group or every row of a CSV
    /// file (`username` column), written to a new file readable by you only; earlier codes of
    /// these people stop working.
    #[command(group = clap::ArgGroup::new("people").required(true))]
    RegistrationCodes {
        /// The directory group.
        #[arg(long, group = "people")]
        group: Option<String>,
        /// A CSV file with a `username` column.
        #[arg(long, group = "people", value_name = "FILE")]
        csv: Option<PathBuf>,
        /// How they reach the people.
        #[arg(long, value_enum)]
        by: registration::By,
        /// Days they work (1 to 90; default: the provisioner's `registration_code_days`).
        #[arg(long)]
        days: Option<u32>,
        /// The CSV file to write (must not exist): username, display_name, registration_code,
        /// delivery, expires.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Issue a temporary one-time code (replaces any unused earlier one).
    TempCode {
        /// Username.
        user: String,
    },
    /// List token resets waiting for a second operator's approval.
    Requests {
        /// Also decided, carried out and expired requests.
        #[arg(long)]
        all: bool,
    },
    /// Approve another operator's token reset (a temporary code, a replacement, an unlock).
    Approve {
        /// Request id, from `rampart token requests`.
        id: String,
    },
    /// Deny a token reset (or withdraw your own).
    Deny {
        /// Request id.
        id: String,
        /// Why (kept in the history).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Collect the temporary code or replacement of your approved request (shown once).
    Collect {
        /// Request id.
        id: String,
        /// Wait up to this many seconds for the approval.
        #[arg(long, value_name = "SECS")]
        wait: Option<u64>,
        /// Write a replacement's QR code to this file (.png or .svg).
        #[arg(long, value_name = "FILE")]
        qr: Option<PathBuf>,
    },
}

/// Runs a token command.
pub async fn run(client: &Client, output: Output, command: TokenCommand) -> Result<(), CliError> {
    match command {
        TokenCommand::Issue { user, reissue, qr } => {
            check_qr_path(qr.as_deref())?;
            let issued: Gated<IssuedToken> = client
                .post(
                    &format!("/v1/people/{}/token", segment(&user)),
                    &IssueRequest { reissue, qr: None },
                )
                .await?;
            match issued {
                Gated::Done(issued) => show_issued(&issued, qr.as_deref(), output)?,
                Gated::AwaitingApproval(request) => approvals::show_pending(&request, output)?,
            }
        }
        TokenCommand::List {
            state,
            group,
            user,
            locked,
        } => {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in [("state", state), ("group", group), ("user", user)] {
                if let Some(value) = value {
                    query.append_pair(name, &value);
                }
            }
            if locked {
                query.append_pair("locked", "true");
            }
            let tokens: Vec<TokenInfo> = client.get(&format!("/v1/tokens?{}", query.finish())).await?;
            match output {
                Output::Json => json(&tokens)?,
                Output::Table => token_table(&tokens).print("No tokens match."),
            }
        }
        TokenCommand::Show { user } => {
            let person: PersonInfo = client.get(&format!("/v1/people/{}", segment(&user))).await?;
            match output {
                Output::Json => json(&person)?,
                Output::Table => show_person(&person),
            }
        }
        TokenCommand::Revoke { user, reason } => {
            let token: TokenInfo = client
                .post(
                    &format!("/v1/people/{}/token/revoke", segment(&user)),
                    &ReasonRequest { reason },
                )
                .await?;
            changed(&token, "revoked", output)?;
        }
        TokenCommand::Lost {
            user,
            reason,
            temporary_code,
            replacement,
            qr,
        } => {
            check_qr_path(qr.as_deref())?;
            let request = LostRequest {
                reason,
                temporary_code,
                replacement,
                qr: None,
            };
            let answer: LostResponse = client
                .post(&format!("/v1/people/{}/token/lost", segment(&user)), &request)
                .await?;
            show_lost(&user, &answer, qr.as_deref(), output)?;
        }
        TokenCommand::Unlock { user } => {
            let token: Gated<TokenInfo> = client
                .post(&format!("/v1/people/{}/token/unlock", segment(&user)), &())
                .await?;
            match token {
                Gated::Done(token) => changed(&token, "unlocked", output)?,
                Gated::AwaitingApproval(request) => approvals::show_pending(&request, output)?,
            }
        }
        TokenCommand::Resync {
            user,
            first_code,
            second_code,
        } => {
            let token: TokenInfo = client
                .post(
                    &format!("/v1/people/{}/token/resync", segment(&user)),
                    &ResyncRequest {
                        first_code,
                        second_code,
                    },
                )
                .await?;
            changed(&token, "resynchronised", output)?;
        }
        TokenCommand::TempCode { user } => {
            let code: Gated<TemporaryCode> = client
                .post(&format!("/v1/people/{}/temporary-code", segment(&user)), &())
                .await?;
            match (code, output) {
                (Gated::Done(code), Output::Json) => json(&code)?,
                (Gated::Done(code), Output::Table) => show_temp_code(&user, &code),
                (Gated::AwaitingApproval(request), _) => approvals::show_pending(&request, output)?,
            }
        }
        TokenCommand::RegistrationCode { user, by, days } => {
            registration::issue(client, output, &user, by, days).await?;
        }
        TokenCommand::RegistrationCodes {
            group,
            csv,
            by,
            days,
            out,
        } => {
            let source = match (&group, &csv) {
                (Some(group), _) => registration_bulk::Source::Group(group),
                (None, Some(csv)) => registration_bulk::Source::Csv(csv),
                (None, None) => return Err(CliError::failure("give --group or --csv")),
            };
            registration_bulk::issue(client, output, source, by, days, &out).await?;
        }
        TokenCommand::Requests { all } => approvals::list(client, output, all).await?,
        TokenCommand::Approve { id } => approvals::approve(client, output, &id).await?,
        TokenCommand::Deny { id, reason } => approvals::deny(client, output, &id, reason).await?,
        TokenCommand::Collect { id, wait, qr } => {
            check_qr_path(qr.as_deref())?;
            approvals::collect(client, output, &id, wait, qr.as_deref()).await?;
        }
    }
    Ok(())
}

fn check_qr_path(path: Option<&Path>) -> Result<(), CliError> {
    let Some(path) = path else { return Ok(()) };
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("png" | "svg")) {
        return Err(CliError::failure(format!(
            "{}: the QR file must end in .png or .svg",
            path.display()
        )));
    }
    Ok(())
}

fn show_issued(issued: &IssuedToken, qr: Option<&Path>, output: Output) -> Result<(), CliError> {
    if let Some(path) = qr {
        crate::qr_file::write_file(path, &issued.otpauth_uri)
            .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
    }
    match output {
        Output::Json => json(issued)?,
        Output::Table => {
            say!(
                "Token {} issued to {} ({}).",
                issued.token_id,
                issued.username,
                issued.display_name
            );
            if let Some(old) = &issued.replaced {
                say!("It replaces token {old}, which is now revoked.");
            }
            say!(
                "\nThis is the only time the token's secret is shown.\n  {}",
                issued.otpauth_uri
            );
            if let Some(path) = qr {
                say!("QR code written to {}.", path.display());
            }
            if std::io::stdout().is_terminal()
                && let Ok(code) = rampart_core::qr::terminal(&issued.otpauth_uri)
            {
                out!("\nScan with an authenticator app:\n{code}");
            }
            say!("The token becomes active when its first code is used to log in.");
        }
    }
    Ok(())
}

fn show_lost(user: &str, answer: &LostResponse, qr: Option<&Path>, output: Output) -> Result<(), CliError> {
    if let (Some(path), Some(replacement)) = (qr, &answer.replacement) {
        crate::qr_file::write_file(path, &replacement.otpauth_uri)
            .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
    }
    if output == Output::Json {
        json(answer)?;
        return Ok(());
    }
    match &answer.lost_token {
        Some(token) => say!("Token {token} of {user} is marked lost and no longer works."),
        None => say!("{user} had no working token."),
    }
    if let Some(code) = &answer.temporary_code {
        show_temp_code(user, code);
    }
    if let Some(replacement) = &answer.replacement {
        say!();
        show_issued(replacement, qr, Output::Table)?;
    }
    if let Some(request) = &answer.pending_approval {
        approvals::say_pending(request);
    }
    Ok(())
}

fn show_temp_code(user: &str, code: &TemporaryCode) {
    say!(
        "Temporary code for {user}: {}\nIt works once, instead of a token code, until {}.",
        code.code,
        time(Some(code.expires_at))
    );
}

fn changed(token: &TokenInfo, what: &str, output: Output) -> Result<(), CliError> {
    match output {
        Output::Json => json(token)?,
        Output::Table => say!(
            "Token {} of {} {what}; it is now {}{}.",
            token.token_id,
            token.username,
            token.state,
            if token.locked { " (locked)" } else { "" }
        ),
    }
    Ok(())
}

/// The token list as a table.
pub fn token_table(tokens: &[TokenInfo]) -> Table {
    let mut table = Table::new(&["USER", "NAME", "STATE", "FAILURES", "ISSUED", "LAST USED", "TOKEN"]);
    for t in tokens {
        let mut state = t.state.clone();
        if t.locked {
            state.push_str(" (locked)");
        } else if !t.delivered && (t.state == "pending" || t.state == "active") {
            state.push_str(" (undelivered)");
        }
        table.row(vec![
            t.username.clone(),
            t.display_name.clone(),
            state,
            t.failures.to_string(),
            time(Some(t.issued_at)),
            time(t.last_used_at),
            t.token_id.clone(),
        ]);
    }
    table
}

fn show_person(person: &PersonInfo) {
    say!(
        "{} ({})\n  id      {}\n  groups  {}\n",
        person.username,
        person.display_name,
        person.user_id,
        if person.groups.is_empty() {
            "-".to_owned()
        } else {
            person.groups.join(", ")
        }
    );
    token_table(&person.tokens).print("No tokens.");
    say!();
    let mut history = Table::new(&["WHEN", "WHO", "WHAT", "TOKEN", "DETAIL"]);
    for event in &person.history {
        history.row(vec![
            time(Some(event.at)),
            event.actor.clone(),
            event.action.clone(),
            event.token_id.clone().unwrap_or_default(),
            event.detail.clone(),
        ]);
    }
    history.print("No history.");
}
