//! `rampart-connect doctor`: checks each step of reaching the gateways — name resolution, a QUIC
//! handshake over UDP, the certificate against the organisation CA, and this computer's clock
//! against the gateway's — and says in plain words what to do about each failure. It names the
//! organisation CA it checked with and where that CA came from.

use crate::certificate::CertificateProblem;
use crate::error::exit;
use crate::known::{CA_VARIABLE, CaSource, IGNORED_CA_VARIABLE, Known, Overrides};
use crate::messages::{CLOCK_TOLERANCE_SECS, certificate_problem, clock_skew, duration_words};
use crate::{ClientError, GatewayClient, Home, spread};
use rampart_core::text::printable;

/// `rampart-connect doctor`: the gateways in the order this person's commands try them (the
/// saved session's first), every check with its fix, and exit 1 if any failed.
pub async fn run(home: &Home, overrides: &Overrides) -> Result<u8, ClientError> {
    let known = Known::resolve(overrides, home)?;
    let saved = home.load_session().ok().flatten();
    let gateways = match &saved {
        Some(s) if overrides.gateway.is_none() => {
            println!("Your session is on the gateway at {}.", s.gateway);
            spread::starting_with(Some(&s.gateway), &s.user, &known.all())
        }
        _ => known.order(home.load_profile().ok().flatten().and_then(|p| p.user).as_deref()),
    };
    if std::env::var_os(IGNORED_CA_VARIABLE).is_some_and(|v| !v.is_empty()) {
        println!(
            "[note] {IGNORED_CA_VARIABLE} is set but rampart-connect does not use it; {CA_VARIABLE} or --ca \
             override the profile's CA"
        );
    }
    let checks = diagnose(&gateways, &known.ca_pem, &known.ca_source, unix_now).await;
    for check in &checks {
        match &check.fix {
            None => println!("[ ok ] {}", check.finding),
            Some(fix) => println!("[FAIL] {}\n       fix: {fix}", check.finding),
        }
    }
    if checks.iter().all(|c| c.passed()) {
        println!("Everything needed to connect works.");
        Ok(exit::OK)
    } else {
        Ok(exit::FAILURE)
    }
}

/// This computer's clock, unix seconds.
fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// What to do when the gateway's certificate does not chain to the CA from `source`.
fn untrusted_fix(source: &CaSource) -> String {
    let intercepted = "If it works on other networks, this network may be intercepting the connection: do \
                       not log in here.";
    match source {
        CaSource::CommandLine(_) | CaSource::Environment(_) => format!(
            "The CA given by {} is not the one this gateway uses. Leave it out to use the CA in your \
             profile, or give the organisation CA the service desk names. {intercepted}",
            source.describe()
        ),
        CaSource::Profile(_) | CaSource::SavedSession => format!(
            "The organisation CA in your profile is not the one this gateway uses. Run `rampart-connect \
             setup` again with a current profile from the service desk. {intercepted}"
        ),
    }
}

/// The line naming the CA checked with and its source; a failed check if it is no certificate.
pub fn ca_check(ca_pem: &str, source: &CaSource) -> Check {
    match rampart_certs::describe(ca_pem) {
        Ok(summary) => Check::ok(format!(
            "organisation CA: {}, from {}",
            printable(&summary.subject),
            source.describe()
        )),
        Err(e) => Check::failed(
            format!("the organisation CA from {} cannot be read: {e}", source.describe()),
            match source {
                CaSource::CommandLine(_) | CaSource::Environment(_) => {
                    "Give a PEM certificate file, or leave it out to use the CA in your profile.".to_owned()
                }
                CaSource::Profile(_) | CaSource::SavedSession => {
                    "Run `rampart-connect setup` again with a current profile from the service desk.".to_owned()
                }
            },
        ),
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked, and what was found.
    pub finding: String,
    /// What to do, when it failed.
    pub fix: Option<String>,
}

impl Check {
    fn ok(finding: String) -> Self {
        Self { finding, fix: None }
    }

    fn failed(finding: String, fix: String) -> Self {
        Self {
            finding,
            fix: Some(fix),
        }
    }

    /// Whether the check passed.
    pub fn passed(&self) -> bool {
        self.fix.is_none()
    }
}

/// Runs every check against every gateway with the CA `ca_pem` from `source`, after the line
/// naming that CA; `now` is this computer's clock, unix seconds.
pub async fn diagnose(gateways: &[String], ca_pem: &str, source: &CaSource, now: impl Fn() -> i64) -> Vec<Check> {
    let ca = ca_check(ca_pem, source);
    let mut checks = vec![ca.clone()];
    if !ca.passed() {
        return checks;
    }
    for gateway in gateways {
        let host = gateway
            .strip_prefix('[')
            .and_then(|rest| rest.split_once(']'))
            .map_or_else(
                || gateway.rsplit_once(':').map_or(gateway.as_str(), |(h, _)| h),
                |(h, _)| h,
            );
        match tokio::net::lookup_host(gateway.as_str()).await {
            Ok(mut addrs) => match addrs.next() {
                Some(addr) => checks.push(Check::ok(format!(
                    "{gateway}: the name {host} resolves to {}",
                    addr.ip()
                ))),
                None => {
                    checks.push(no_name(gateway, host, "no address"));
                    continue;
                }
            },
            Err(e) => {
                checks.push(no_name(gateway, host, &e.to_string()));
                continue;
            }
        }
        match GatewayClient::connect(gateway, ca_pem).await {
            Ok(client) => {
                checks.push(Check::ok(format!(
                    "{gateway}: the gateway answers over UDP (QUIC handshake)"
                )));
                checks.push(Check::ok(format!(
                    "{gateway}: its certificate is signed by your organisation's CA, from {}",
                    source.describe()
                )));
                let offset = client.server_time().saturating_sub(now());
                checks.push(match clock_skew(offset) {
                    None => Check::ok(format!(
                        "{gateway}: your clock is within {} of the gateway's (allowed: {CLOCK_TOLERANCE_SECS} s)",
                        duration_words(offset)
                    )),
                    Some(fix) => Check::failed(
                        format!("{gateway}: your clock is {} off the gateway's", duration_words(offset)),
                        fix,
                    ),
                });
                client.close().await;
            }
            Err(ClientError::Untrusted { reason, problem, .. }) => {
                checks.push(Check::ok(format!(
                    "{gateway}: the gateway answers over UDP (QUIC handshake)"
                )));
                match certificate_problem(&problem) {
                    None => checks.push(Check::failed(
                        format!(
                            "{gateway}: its certificate is not trusted by the CA from {}: {reason}",
                            source.describe()
                        ),
                        untrusted_fix(source),
                    )),
                    Some(fix) => {
                        if matches!(problem, CertificateProblem::WrongName { .. }) {
                            // Names are checked only once the CA has vouched for the certificate.
                            checks.push(Check::ok(format!(
                                "{gateway}: its certificate is signed by your organisation's CA, from {}",
                                source.describe()
                            )));
                        }
                        checks.push(Check::failed(format!("{gateway}: {reason}"), fix));
                    }
                }
            }
            Err(e @ (ClientError::Refused { .. } | ClientError::Protocol(_) | ClientError::Busy { .. })) => {
                checks.push(Check::ok(format!(
                    "{gateway}: the gateway answers over UDP (QUIC handshake)"
                )));
                checks.push(Check::failed(
                    format!("{gateway}: the gateway answered but would not talk to this client: {e}"),
                    "If it says busy, wait a minute and try again. Otherwise this rampart-connect may be older or \
                     newer than the gateway: ask the service desk for the current version."
                        .into(),
                ));
            }
            Err(e) => checks.push(Check::failed(
                format!("{gateway}: no QUIC handshake: {e}"),
                "Rampart needs UDP to the gateway's port. Some networks (guest Wi-Fi, hotels, strict firewalls) \
                 block it: try another network or your phone's hotspot. If it fails everywhere, the gateway may \
                 be down: call the service desk."
                    .into(),
            )),
        }
    }
    checks
}

fn no_name(gateway: &str, host: &str, why: &str) -> Check {
    Check::failed(
        format!("{gateway}: the name {host} cannot be resolved ({why})"),
        "Check that you are connected to the internet. If other sites work, the gateway's name in your profile \
         may be wrong: ask the service desk for a current profile."
            .into(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_ca_line_names_the_ca_and_its_source_and_the_fix_fits_the_source() {
        let ca = rampart_certs::CertificateAuthority::create("Test Bank").unwrap();
        let profile = CaSource::Profile(PathBuf::from("/h/profile.json"));
        let line = ca_check(ca.cert_pem(), &profile);
        assert!(line.passed());
        assert!(line.finding.contains("Test Bank"), "{}", line.finding);
        assert!(
            line.finding.ends_with("from your profile (/h/profile.json)"),
            "{}",
            line.finding
        );
        let flag = CaSource::CommandLine(PathBuf::from("/tmp/other.pem"));
        assert!(untrusted_fix(&flag).starts_with("The CA given by --ca /tmp/other.pem is not the one"));
        assert!(untrusted_fix(&profile).contains("rampart-connect setup"));
        let env = CaSource::Environment(PathBuf::from("/tmp/x.pem"));
        let bad = ca_check("not a certificate", &env);
        assert!(!bad.passed());
        assert!(bad.finding.contains("RAMPART_CONNECT_CA=/tmp/x.pem"), "{}", bad.finding);
    }
}
