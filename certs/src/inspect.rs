//! Reading a certificate back: subject, issuer, names, validity and purpose, for `rampart cert
//! show` and for reporting what was just issued. Only public certificate data is parsed here.

use crate::CertError;
use crate::pem::certs_from_pem;
use rustls_pki_types::CertificateDer;
use std::net::IpAddr;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// What a certificate says about itself. Text fields come from the certificate as written;
/// escape them before showing them on a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// Subject distinguished name, e.g. `CN=gw2.bank.example`.
    pub subject: String,
    /// Issuer distinguished name, e.g. `CN=Bank Rampart CA, O=Bank`.
    pub issuer: String,
    /// DNS names of the subject alternative name extension, in order.
    pub dns_names: Vec<String>,
    /// IP addresses of the subject alternative name extension, in order.
    pub ip_addresses: Vec<IpAddr>,
    /// First instant of validity, Unix seconds.
    pub not_before: i64,
    /// Last instant of validity, Unix seconds.
    pub not_after: i64,
    /// Serial number as colon-separated hex bytes.
    pub serial: String,
    /// `basicConstraints CA:true`: the certificate may sign others.
    pub is_ca: bool,
    /// Extended key usage serverAuth (a gateway or provisioner certificate).
    pub server_auth: bool,
    /// Extended key usage clientAuth (a device certificate).
    pub client_auth: bool,
}

/// Describes the first certificate of a PEM text.
pub fn describe(pem: &str) -> Result<CertSummary, CertError> {
    let der = certs_from_pem(pem)?
        .into_iter()
        .next()
        .ok_or_else(|| parse_error("no certificate in the PEM text"))?;
    describe_der(&der)
}

/// Describes one DER-encoded certificate.
pub fn describe_der(der: &CertificateDer<'_>) -> Result<CertSummary, CertError> {
    let (rest, cert) = X509Certificate::from_der(der.as_ref()).map_err(|e| parse_error(&e.to_string()))?;
    if !rest.is_empty() {
        return Err(parse_error("trailing data after the certificate"));
    }
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    let san = cert
        .subject_alternative_name()
        .map_err(|e| parse_error(&format!("subject alternative names: {e}")))?;
    for name in san.iter().flat_map(|ext| ext.value.general_names.iter()) {
        match name {
            GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
            GeneralName::IPAddress(octets) => {
                if let Some(ip) = ip_from_octets(octets) {
                    ip_addresses.push(ip);
                }
            }
            _ => {}
        }
    }
    let eku = cert
        .extended_key_usage()
        .map_err(|e| parse_error(&format!("extended key usage: {e}")))?;
    let (server_auth, client_auth) = eku.map_or((false, false), |ext| (ext.value.server_auth, ext.value.client_auth));
    Ok(CertSummary {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        dns_names,
        ip_addresses,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        serial: cert.raw_serial_as_string(),
        is_ca: cert.is_ca(),
        server_auth,
        client_auth,
    })
}

impl CertSummary {
    /// Every subject alternative name as text: DNS names first, then IP addresses.
    pub fn names(&self) -> Vec<String> {
        self.dns_names
            .iter()
            .cloned()
            .chain(self.ip_addresses.iter().map(IpAddr::to_string))
            .collect()
    }
}

fn ip_from_octets(octets: &[u8]) -> Option<IpAddr> {
    match octets.len() {
        4 => <[u8; 4]>::try_from(octets).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(octets).ok().map(IpAddr::from),
        _ => None,
    }
}

fn parse_error(reason: &str) -> CertError {
    CertError::Parse {
        what: "certificate".to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::{CertificateAuthority, Validity};
    use std::time::{Duration, SystemTime};

    #[test]
    fn issued_server_certificate_is_described() {
        let ca = CertificateAuthority::create("Example Corp").unwrap();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let names = vec!["GW2.example.com".to_owned(), "10.0.0.12".to_owned(), "::1".to_owned()];
        let issued = ca.issue_server_with_validity(&names, Validity::new(start, 30)).unwrap();
        let summary = describe(&issued.cert_pem).unwrap();
        assert_eq!(summary.subject, "CN=GW2.example.com");
        assert_eq!(summary.issuer, "CN=Example Corp Rampart CA, O=Example Corp");
        assert_eq!(summary.dns_names, vec!["gw2.example.com".to_owned()]);
        assert_eq!(
            summary.names(),
            vec!["gw2.example.com".to_owned(), "10.0.0.12".to_owned(), "::1".to_owned()]
        );
        assert_eq!(summary.not_before, 1_700_000_000);
        assert_eq!(summary.not_after, 1_700_000_000 + 30 * 86_400);
        assert!(summary.server_auth && !summary.client_auth && !summary.is_ca);

        let ca_summary = describe(ca.cert_pem()).unwrap();
        assert!(ca_summary.is_ca);
        assert_eq!(ca_summary.subject, ca_summary.issuer);
        assert!(ca_summary.names().is_empty());
    }

    #[test]
    fn device_certificate_is_client_auth() {
        let ca = CertificateAuthority::create("Example Corp").unwrap();
        let summary = describe(&ca.issue_client("laptop-42").unwrap().cert_pem).unwrap();
        assert!(summary.client_auth && !summary.server_auth);
    }

    #[test]
    fn garbage_is_a_parse_error() {
        assert!(matches!(describe(""), Err(CertError::Parse { .. })));
        let pem = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
        assert!(matches!(describe(pem), Err(CertError::Parse { .. })));
    }
}
