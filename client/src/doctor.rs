//! `rampart-connect doctor`: checks each step of reaching the gateways — name resolution, a QUIC
//! handshake over UDP, the certificate against the organisation CA, and this computer's clock
//! against the gateway's — and says in plain words what to do about each failure.

use crate::messages::{CLOCK_TOLERANCE_SECS, clock_skew, duration_words};
use crate::{ClientError, GatewayClient};

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

/// Runs every check against every gateway; `now` is this computer's clock, unix seconds.
pub async fn diagnose(gateways: &[String], ca_pem: &str, now: impl Fn() -> i64) -> Vec<Check> {
    let mut checks = Vec::new();
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
                    "{gateway}: its certificate is signed by your organisation's CA"
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
            Err(ClientError::Untrusted { reason, .. }) => {
                checks.push(Check::ok(format!(
                    "{gateway}: the gateway answers over UDP (QUIC handshake)"
                )));
                checks.push(Check::failed(
                    format!("{gateway}: its certificate is not trusted: {reason}"),
                    "The organisation CA in your profile is not the one this gateway uses. Run `rampart-connect \
                     setup` again with a current profile from the service desk. If it works on other networks, \
                     this network may be intercepting the connection: do not log in here."
                        .into(),
                ));
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
