//! `rampart cert issue|show`: a server certificate from the organisation CA for another gateway
//! or provisioner (so clients whose profile holds that CA trust it with no change), and a
//! certificate file read back. Works on local files only; the private key is never printed.

use crate::client::{CliError, exit};
use crate::view::out;
use crate::view::{Output, json, time};
use clap::Subcommand;
use rampart_certs::{CA_CERT_FILE, CA_KEY_FILE, CertError, CertSummary, CertificateAuthority, MAX_DAYS, Validity};
use rampart_core::text::printable;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

const SECONDS_PER_DAY: i64 = 86_400;

/// Certificate subcommands.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Issue a server certificate (for a gateway or a provisioner) from the organisation CA.
    ///
    /// Writes the certificate (mode 0644) and a new private key (mode 0600), refuses to replace
    /// existing files unless --force is given, and prints the `cert = ...` and `key = ...`
    /// lines for gateway.toml. The key is never printed.
    Issue(IssueArgs),
    /// Show a certificate file: subject, names, issuer, validity, purpose.
    Show {
        /// A PEM certificate file, e.g. gateway.pem (every certificate in it is shown).
        file: PathBuf,
    },
}

/// `rampart cert issue` arguments.
#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// The CA folder, holding ca.pem and ca.key (`rampart-provisioner init` makes STATE_DIR/ca).
    #[arg(long, value_name = "DIR")]
    ca_dir: PathBuf,
    /// A DNS name or IP address clients use to reach the server; repeat for each. The first
    /// is also the certificate's subject name.
    #[arg(long = "name", required = true, value_name = "DNS_NAME|IP")]
    names: Vec<String>,
    /// Where to write the certificate (PEM), e.g. /etc/rampart/gw2.pem.
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// Where to write the private key (PEM, readable by its owner only), e.g. /etc/rampart/gw2.key.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// How many days the certificate is valid.
    #[arg(long, value_name = "N", default_value_t = Validity::LEAF_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_DAYS)))]
    days: u32,
    /// Replace the certificate and key files if they exist.
    #[arg(long)]
    force: bool,
}

/// Runs a certificate subcommand.
pub fn run(output: Output, command: CertCommand) -> Result<(), CliError> {
    match command {
        CertCommand::Issue(args) => issue(output, args),
        CertCommand::Show { file } => show(output, &file),
    }
}

fn issue(output: Output, args: IssueArgs) -> Result<(), CliError> {
    let names = unique_names(&args.names);
    let ca = load_ca(&args.ca_dir)?;
    let ca_summary = rampart_certs::describe(ca.cert_pem()).map_err(|e| {
        CliError::failure(format!(
            "cannot read the CA certificate in {}: {e}",
            args.ca_dir.display()
        ))
    })?;
    let issued = ca
        .issue_server_with_validity(&names, Validity::from_now(args.days))
        .map_err(|e| CliError::failure(format!("cannot issue the certificate: {e}")))?;

    let cert = output_path(&args.cert, "--cert")?;
    let key = output_path(&args.key, "--key")?;
    if cert == key {
        return Err(CliError::failure(format!(
            "--cert and --key are the same file {}; give two files, e.g. gw2.pem and gw2.key",
            cert.display()
        )));
    }
    protect_ca(&args.ca_dir, &[&cert, &key])?;
    if !args.force {
        refuse_existing(&[&cert, &key])?;
    }
    issued.save(&cert, &key).map_err(|e| match e {
        CertError::Io { path, cause } => CliError::failure(format!("cannot write {}: {cause}", path.display())),
        other => CliError::failure(format!("cannot write the certificate and key: {other}")),
    })?;

    let summary = rampart_certs::describe(&issued.cert_pem)
        .map_err(|e| CliError::failure(format!("cannot read back {}: {e}", cert.display())))?;
    let ca_dir = absolute(&args.ca_dir);
    if summary.not_after > ca_summary.not_after {
        eprintln!(
            "warning: the CA itself expires on {}, before this certificate; clients refuse the server from then on",
            time(Some(ca_summary.not_after))
        );
    }
    let settings = format!("cert = {}\nkey = {}", toml_string(&cert), toml_string(&key));
    match output {
        Output::Json => json(&serde_json::json!({
            "cert": cert,
            "key": key,
            "names": summary.names(),
            "subject": summary.subject,
            "issuer": summary.issuer,
            "ca_dir": ca_dir,
            "not_before": summary.not_before,
            "not_after": summary.not_after,
            "config": settings,
        }))?,
        Output::Table => {
            let now = jiff::Timestamp::now().as_second();
            out!(
                "Issued a server certificate from the CA {}",
                printable(&ca_summary.subject)
            );
            out!("  names        {}", printable(&summary.names().join(", ")));
            out!(
                "  valid until  {} ({})",
                time(Some(summary.not_after)),
                remaining(summary.not_after, now)
            );
            out!("  certificate  {}", cert.display());
            out!(
                "  key          {}  (mode 0600; keep it secret, never mail it)",
                key.display()
            );
            out!("  CA folder    {}", ca_dir.display());
            out!();
            out!("In gateway.toml (or provisioner.toml):");
            for line in settings.lines() {
                out!("  {line}");
            }
            out!();
            out!("The server must be reached under one of these names. Clients whose profile holds this CA");
            out!("trust it as they are; list it with `rampart profile create --gateway NAME:PORT ...`.");
        }
    }
    Ok(())
}

fn show(output: Output, file: &Path) -> Result<(), CliError> {
    let ders = rampart_certs::load_certs(file).map_err(|e| match e {
        CertError::Io { cause, .. } => CliError::failure(format!("cannot read {}: {cause}", file.display())),
        other => CliError::failure(other.to_string()),
    })?;
    let summaries = ders
        .iter()
        .map(|der| {
            rampart_certs::describe_der(der)
                .map(|summary| (summary, sha256(der.as_ref())))
                .map_err(|e| CliError::failure(format!("{}: {e}", file.display())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    match output {
        Output::Json => {
            let certificates: Vec<_> = summaries
                .iter()
                .map(|(s, fingerprint)| {
                    serde_json::json!({
                        "subject": s.subject,
                        "issuer": s.issuer,
                        "dns_names": s.dns_names,
                        "ip_addresses": s.ip_addresses,
                        "not_before": s.not_before,
                        "not_after": s.not_after,
                        "serial": s.serial,
                        "is_ca": s.is_ca,
                        "server_auth": s.server_auth,
                        "client_auth": s.client_auth,
                        "sha256": fingerprint,
                    })
                })
                .collect();
            json(&serde_json::json!({"file": file, "certificates": certificates}))?;
        }
        Output::Table => {
            let now = jiff::Timestamp::now().as_second();
            let count = summaries.len();
            for (i, (summary, fingerprint)) in summaries.iter().enumerate() {
                if count > 1 {
                    if i > 0 {
                        out!();
                    }
                    out!("certificate {} of {count}", i + 1);
                }
                out!("{}", describe_text(summary, fingerprint, now).trim_end_matches('\n'));
            }
        }
    }
    Ok(())
}

/// The table form of one certificate; outside text is escaped.
fn describe_text(s: &CertSummary, fingerprint: &str, now: i64) -> String {
    let names = s.names();
    let names = if names.is_empty() {
        "-".to_owned()
    } else {
        names.join(", ")
    };
    let mut purposes = Vec::new();
    if s.is_ca {
        purposes.push("CA (signs certificates)");
    }
    if s.server_auth {
        purposes.push("server (gateway or provisioner)");
    }
    if s.client_auth {
        purposes.push("client (device)");
    }
    let purpose = if purposes.is_empty() {
        "-".to_owned()
    } else {
        purposes.join(", ")
    };
    let state = if now < s.not_before {
        "NOT YET VALID".to_owned()
    } else if now > s.not_after {
        format!("EXPIRED {} ago", days_text(now - s.not_after))
    } else {
        remaining(s.not_after, now)
    };
    format!(
        "  subject      {}\n  names        {}\n  issuer       {}\n  valid from   {}\n  valid until  {} ({state})\n  \
         purpose      {purpose}\n  serial       {}\n  sha-256      {fingerprint}\n",
        printable(&s.subject),
        printable(&names),
        printable(&s.issuer),
        time(Some(s.not_before)),
        time(Some(s.not_after)),
        printable(&s.serial),
    )
}

/// Loads the CA, with errors that name the folder and the file at fault.
fn load_ca(dir: &Path) -> Result<CertificateAuthority, CliError> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(CliError::failure(format!(
                "the CA folder {} (--ca-dir) does not exist; give the folder holding {CA_CERT_FILE} and \
                 {CA_KEY_FILE} (`rampart-provisioner init` makes it in STATE_DIR/ca)",
                dir.display()
            )));
        }
        Err(e) => {
            return Err(CliError::failure(format!(
                "cannot open the CA folder {} (--ca-dir): {e}",
                dir.display()
            )));
        }
        Ok(meta) if !meta.is_dir() => {
            return Err(CliError::failure(format!(
                "--ca-dir {} is not a folder; give the folder holding {CA_CERT_FILE} and {CA_KEY_FILE}",
                dir.display()
            )));
        }
        Ok(_) => {}
    }
    CertificateAuthority::load(dir).map_err(|e| match e {
        CertError::Io { path, cause } => {
            let (what, file) = if path.file_name().is_some_and(|n| n == CA_KEY_FILE) {
                ("CA key", CA_KEY_FILE)
            } else {
                ("CA certificate", CA_CERT_FILE)
            };
            let hint = if cause.kind() == ErrorKind::PermissionDenied {
                " (it is readable by its owner only: run this as that user)"
            } else {
                ""
            };
            CliError::failure(format!(
                "cannot read the {what} {file} in {}: {cause}{hint}",
                dir.display()
            ))
        }
        other => CliError::failure(format!("cannot use the CA in {}: {other}", dir.display())),
    })
}

/// The names in order, trimmed, each once (DNS names compare without case).
fn unique_names(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let name = name.trim();
        if !out.iter().any(|seen| seen.eq_ignore_ascii_case(name)) {
            out.push(name.to_owned());
        }
    }
    out
}

/// `path` made absolute, checked to be a file name in an existing folder.
fn output_path(path: &Path, flag: &str) -> Result<PathBuf, CliError> {
    let path = absolute(path);
    if path.is_dir() {
        return Err(CliError::failure(format!(
            "{flag} {} is a folder; give a file name in it",
            path.display()
        )));
    }
    match path.parent() {
        Some(parent) if parent.is_dir() => Ok(path),
        Some(parent) => Err(CliError::failure(format!(
            "the folder {} for {flag} does not exist",
            parent.display()
        ))),
        None => Err(CliError::failure(format!(
            "{flag} {} is not a file name",
            path.display()
        ))),
    }
}

/// Refuses outputs that are the CA's own files: `--force` must never replace the CA key.
fn protect_ca(ca_dir: &Path, outputs: &[&Path]) -> Result<(), CliError> {
    let Ok(ca_dir) = ca_dir.canonicalize() else {
        return Ok(());
    };
    let ca_files = [ca_dir.join(CA_CERT_FILE), ca_dir.join(CA_KEY_FILE)];
    for output in outputs {
        let resolved = match (output.parent().map(Path::canonicalize), output.file_name()) {
            (Some(Ok(parent)), Some(name)) => parent.join(name),
            _ => continue,
        };
        if ca_files.contains(&resolved) {
            return Err(CliError::failure(format!(
                "{} is the CA's own file; write the server certificate and key elsewhere",
                output.display()
            )));
        }
    }
    Ok(())
}

/// Fails, naming them, if any of the outputs exists.
fn refuse_existing(outputs: &[&Path]) -> Result<(), CliError> {
    let existing: Vec<String> = outputs
        .iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .map(|p| p.display().to_string())
        .collect();
    if existing.is_empty() {
        return Ok(());
    }
    let (list, verb, pronoun) = match existing.as_slice() {
        [one] => (one.clone(), "exists", "it"),
        many => (many.join(" and "), "exist", "them"),
    };
    Err(CliError {
        message: format!("{list} already {verb}; nothing written (pass --force to replace {pronoun})"),
        code: exit::CONFLICT,
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// A path as a TOML string value, quoted and escaped.
fn toml_string(path: &Path) -> String {
    toml::Value::String(path.to_string_lossy().into_owned()).to_string()
}

/// `in 364 days` and the like.
fn remaining(not_after: i64, now: i64) -> String {
    format!("in {}", days_text(not_after - now))
}

/// Whole days, rounded (a certificate issued for 365 days, backdated an hour, reads `365 days`).
fn days_text(seconds: i64) -> String {
    if seconds < SECONDS_PER_DAY {
        return "less than a day".to_owned();
    }
    match (seconds + SECONDS_PER_DAY / 2) / SECONDS_PER_DAY {
        1 => "1 day".to_owned(),
        days => format!("{days} days"),
    }
}

/// SHA-256 of the DER certificate, colon-separated upper-case hex (as `openssl x509 -fingerprint`).
fn sha256(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_deduplicated() {
        let names = ["gw2.test", " GW2.test ", "127.0.0.1", "127.0.0.1"].map(str::to_owned);
        assert_eq!(
            unique_names(&names),
            vec!["gw2.test".to_owned(), "127.0.0.1".to_owned()]
        );
    }

    #[test]
    fn toml_lines_are_quoted() {
        assert_eq!(
            toml_string(Path::new("/etc/rampart/gw2.pem")),
            "\"/etc/rampart/gw2.pem\""
        );
        let quoted = toml_string(Path::new("/tmp/a\"b\\c.pem"));
        let parsed: toml::Value = toml::from_str(&format!("cert = {quoted}")).unwrap_or(toml::Value::Boolean(false));
        assert_eq!(
            parsed.get("cert").and_then(toml::Value::as_str),
            Some("/tmp/a\"b\\c.pem")
        );
    }

    #[test]
    fn days_read_plainly() {
        assert_eq!(remaining(100, 0), "in less than a day");
        assert_eq!(remaining(SECONDS_PER_DAY * 365, 0), "in 365 days");
        assert_eq!(days_text(SECONDS_PER_DAY + 5), "1 day");
        assert_eq!(days_text(SECONDS_PER_DAY * 365 - 3600), "365 days");
    }
}
