//! Issuing end-entity certificates from the organisation CA: server certificates for gateways
//! and provisioners (EKU serverAuth, DNS and IP SANs) and device certificates (EKU clientAuth).
//! Every certificate gets a fresh ECDSA P-256 key; the key is returned once and never printed.

use crate::fs::{Access, write_file};
use crate::pem::{certs_from_pem, key_from_pem};
use crate::{CertError, CertificateAuthority, Validity};
use rampart_core::secret::Sensitive;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::fmt;
use std::path::Path;

/// Longest device name accepted (X.520 ub-common-name).
const MAX_COMMON_NAME_CHARS: usize = 64;

/// A freshly issued certificate and its private key, both PEM.
///
/// `Debug` prints the certificate but not the key; the key is wiped from memory on drop.
pub struct IssuedCert {
    /// The certificate, PEM-encoded.
    pub cert_pem: String,
    key_pem: Sensitive<String>,
}

impl IssuedCert {
    /// The private key (PKCS#8 PEM). Store it with mode 0600 and never log it.
    pub fn key_pem(&self) -> &str {
        self.key_pem.expose()
    }

    /// Writes the certificate (mode 0644) and the key (mode 0600), each atomically.
    pub fn save(&self, cert_path: &Path, key_path: &Path) -> Result<(), CertError> {
        write_file(key_path, self.key_pem().as_bytes(), Access::Private)?;
        write_file(cert_path, self.cert_pem.as_bytes(), Access::Public)
    }

    /// The certificate as a one-element chain for [`server_config`](crate::server_config).
    pub fn cert_chain(&self) -> Result<Vec<CertificateDer<'static>>, CertError> {
        certs_from_pem(&self.cert_pem)
    }

    /// The private key in the form rustls takes.
    pub fn private_key(&self) -> Result<PrivateKeyDer<'static>, CertError> {
        key_from_pem(self.key_pem())
    }
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl CertificateAuthority {
    /// Issues a server certificate valid for [`Validity::LEAF_DAYS`] from now.
    ///
    /// Each entry of `names` that parses as an IP address becomes an IP SAN, every other
    /// entry a DNS SAN; the first name is also the subject common name. EKU is serverAuth.
    pub fn issue_server(&self, names: &[String]) -> Result<IssuedCert, CertError> {
        self.issue_server_with_validity(names, Validity::from_now(Validity::LEAF_DAYS))
    }

    /// [`issue_server`](Self::issue_server) with an explicit validity period.
    pub fn issue_server_with_validity(&self, names: &[String], validity: Validity) -> Result<IssuedCert, CertError> {
        let first = names
            .first()
            .ok_or_else(|| CertError::invalid_name("", "a server certificate needs at least one name"))?;
        let mut params = leaf_params(first.trim(), validity)?;
        params.subject_alt_names = names
            .iter()
            .map(|name| subject_alt_name(name))
            .collect::<Result<_, _>>()?;
        params.extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth);
        self.sign(&params)
    }

    /// Issues a device (client) certificate named `device_name`, valid for
    /// [`Validity::LEAF_DAYS`] from now. EKU is clientAuth; the name is the common name.
    pub fn issue_client(&self, device_name: &str) -> Result<IssuedCert, CertError> {
        self.issue_client_with_validity(device_name, Validity::from_now(Validity::LEAF_DAYS))
    }

    /// [`issue_client`](Self::issue_client) with an explicit validity period.
    pub fn issue_client_with_validity(&self, device_name: &str, validity: Validity) -> Result<IssuedCert, CertError> {
        let device_name = device_name.trim();
        if device_name.is_empty() {
            return Err(CertError::invalid_name(device_name, "device name is empty"));
        }
        let mut params = leaf_params(device_name, validity)?;
        params.extended_key_usages.push(ExtendedKeyUsagePurpose::ClientAuth);
        self.sign(&params)
    }

    fn sign(&self, params: &CertificateParams) -> Result<IssuedCert, CertError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        // The serial number is derived from the new public key (rcgen's default), so it is
        // unique per certificate without any state.
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: Sensitive::new(key.serialize_pem()),
        })
    }
}

/// Parameters shared by every end-entity certificate.
fn leaf_params(common_name: &str, validity: Validity) -> Result<CertificateParams, CertError> {
    if common_name.chars().any(char::is_control) {
        return Err(CertError::invalid_name(common_name, "name contains control characters"));
    }
    if common_name.chars().count() > MAX_COMMON_NAME_CHARS {
        return Err(CertError::invalid_name(
            common_name,
            "name is longer than 64 characters",
        ));
    }
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    validity.apply(&mut params)?;
    Ok(params)
}

/// An IP SAN for an IP address, a DNS SAN for a valid DNS name, an error otherwise. Uses the
/// same parser as the client's `ServerName`, so every accepted name is one a client can dial.
fn subject_alt_name(name: &str) -> Result<SanType, CertError> {
    let trimmed = name.trim();
    match ServerName::try_from(trimmed) {
        Ok(ServerName::IpAddress(ip)) => Ok(SanType::IpAddress(std::net::IpAddr::from(ip))),
        Ok(ServerName::DnsName(dns)) => {
            let dns = dns.as_ref().to_ascii_lowercase();
            dns.try_into()
                .map(SanType::DnsName)
                .map_err(|e| CertError::invalid_name(name, format!("{e}")))
        }
        Ok(_) | Err(_) => Err(CertError::invalid_name(
            name,
            "neither an IP address nor a valid DNS name",
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn ip_names_become_ip_sans_and_others_dns_sans() {
        assert!(matches!(
            subject_alt_name("127.0.0.1"),
            Ok(SanType::IpAddress(ip)) if ip.is_loopback()
        ));
        assert!(matches!(subject_alt_name("::1"), Ok(SanType::IpAddress(_))));
        assert!(matches!(
            subject_alt_name("Gw1.Example.COM"),
            Ok(SanType::DnsName(n)) if n.as_str() == "gw1.example.com"
        ));
    }

    #[test]
    fn bad_names_are_rejected() {
        for bad in ["", " ", "bad name", "a..b", "under_score!", "x\ny"] {
            assert!(
                matches!(subject_alt_name(bad), Err(CertError::InvalidName { .. })),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn empty_and_control_names_are_rejected_at_issue() {
        let ca = CertificateAuthority::create("Example").unwrap();
        assert!(ca.issue_server(&[]).is_err());
        assert!(ca.issue_client("  ").is_err());
        assert!(ca.issue_client("laptop\u{7}").is_err());
        assert!(ca.issue_client(&"x".repeat(65)).is_err());
        assert!(ca.issue_client("laptop-42").is_ok());
    }
}
