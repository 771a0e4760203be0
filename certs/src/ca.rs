//! `CertificateAuthority`: the organisation's own CA (ECDSA P-256, path length 0, signs only
//! end-entity certificates). It is created once, saved as `ca.pem` (0644) and `ca.key` (0600),
//! and loaded again to issue gateway, provisioner and device certificates.

use crate::fs::{Access, read_pem_file, write_file};
use crate::pem::{certs_from_pem_in, key_from_pem_in};
use crate::{CertError, Validity};
use rampart_core::secret::Sensitive;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use rustls::crypto::ring::sign::any_ecdsa_type;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// File name of the CA certificate inside a CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key inside a CA directory.
pub const CA_KEY_FILE: &str = "ca.key";

/// The organisation's certificate authority: its certificate and the key that signs with it.
///
/// `Debug` shows the certificate subject only, never the key.
pub struct CertificateAuthority {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    pub(crate) issuer: Issuer<'static, KeyPair>,
}

impl CertificateAuthority {
    /// Creates a new CA named `"<org_name> Rampart CA"`, valid for [`Validity::CA_DAYS`] from now.
    pub fn create(org_name: &str) -> Result<Self, CertError> {
        Self::create_with_validity(org_name, Validity::from_now(Validity::CA_DAYS))
    }

    /// Creates a new CA with an explicit validity period.
    pub fn create_with_validity(org_name: &str, validity: Validity) -> Result<Self, CertError> {
        let org_name = org_name.trim();
        check_org_name(org_name)?;

        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("{org_name} Rampart CA"));
        dn.push(DnType::OrganizationName, org_name);
        params.distinguished_name = dn;
        // Path length 0: this CA signs end-entity certificates only, never another CA.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        validity.apply(&mut params)?;

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.self_signed(&key)?;
        let cert_der = cert.der().clone();
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA saved by [`save`](Self::save) from `dir` (`ca.pem` and `ca.key`).
    ///
    /// Fails if the key does not belong to the certificate or the certificate may not sign
    /// other certificates, so a mismatched pair is caught here rather than at the first TLS
    /// handshake with a certificate it issued.
    pub fn load(dir: &Path) -> Result<Self, CertError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let cert_pem = read_pem_file(&cert_path)?;
        let key_pem = Sensitive::new(read_pem_file(&key_path)?);

        let cert_der = certs_from_pem_in(&cert_pem, Some(&cert_path))?
            .into_iter()
            .next()
            .ok_or_else(|| CertError::NoCertificate(cert_path.clone()))?;
        let key_der = key_from_pem_in(key_pem.expose(), Some(&key_path))?;
        check_key_matches(&cert_der, &key_der, &key_path)?;

        let key = KeyPair::try_from(&key_der).map_err(|e| CertError::Parse {
            what: format!("CA private key {}", key_path.display()),
            reason: e.to_string(),
        })?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key).map_err(|e| CertError::Parse {
            what: format!("CA certificate {}", cert_path.display()),
            reason: e.to_string(),
        })?;
        if !issuer.key_usages().contains(&KeyUsagePurpose::KeyCertSign) {
            return Err(CertError::Parse {
                what: format!("CA certificate {}", cert_path.display()),
                reason: "certificate lacks the keyCertSign key usage; it is not a CA".to_owned(),
            });
        }
        Ok(Self {
            cert_pem,
            cert_der,
            issuer,
        })
    }

    /// Writes `ca.pem` (mode 0644) and `ca.key` (mode 0600) into `dir`, creating `dir` if
    /// needed. Existing files are replaced atomically.
    pub fn save(&self, dir: &Path) -> Result<(), CertError> {
        std::fs::create_dir_all(dir).map_err(|e| CertError::io(dir, e))?;
        let key_pem = Sensitive::new(self.key_pem());
        write_file(&dir.join(CA_KEY_FILE), key_pem.expose().as_bytes(), Access::Private)?;
        write_file(&dir.join(CA_CERT_FILE), self.cert_pem.as_bytes(), Access::Public)
    }

    /// The CA certificate in PEM form: what clients and gateways trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate in DER form, e.g. for [`client_config`](crate::client_config).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA private key in PKCS#8 PEM form. Whoever holds it can issue certificates the
    /// whole organisation trusts: store it with mode 0600 and never log it.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // rcgen's Issuer Debug prints the subject and elides the signing key.
        f.debug_struct("CertificateAuthority")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

fn check_org_name(org_name: &str) -> Result<(), CertError> {
    if org_name.is_empty() {
        return Err(CertError::invalid_name(org_name, "organisation name is empty"));
    }
    if org_name.chars().any(char::is_control) {
        return Err(CertError::invalid_name(
            org_name,
            "organisation name contains control characters",
        ));
    }
    // X.520 ub-common-name is 64 characters and the CN adds " Rampart CA" (11).
    if org_name.chars().count() > 64 - 11 {
        return Err(CertError::invalid_name(
            org_name,
            "organisation name is longer than 53 characters",
        ));
    }
    Ok(())
}

fn check_key_matches(
    cert_der: &CertificateDer<'static>,
    key_der: &PrivateKeyDer<'static>,
    key_path: &Path,
) -> Result<(), CertError> {
    let signing_key = any_ecdsa_type(key_der).map_err(|e| CertError::Parse {
        what: format!("CA private key {}", key_path.display()),
        reason: e.to_string(),
    })?;
    CertifiedKey::new(vec![cert_der.clone()], Arc::clone(&signing_key))
        .keys_match()
        .map_err(|e| CertError::Tls(format!("{}: {e}", key_path.display())))
}
