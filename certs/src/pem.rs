//! PEM loading for rustls: certificate chains and private keys, from files or strings, via
//! `rustls_pki_types::pem::PemObject`. Errors name the file; key material never appears in them.

use crate::CertError;
use crate::fs::read_pem_file;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;

/// Reads every `CERTIFICATE` section of the PEM file at `path`, in order (leaf first for a
/// chain). Fails with [`CertError::NoCertificate`] if there is none.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let text = read_pem_file(path)?;
    certs_from_pem_in(&text, Some(path))
}

/// Reads the first private key (PKCS#8, SEC1 or PKCS#1) of the PEM file at `path`. Fails
/// with [`CertError::NoKey`] if there is none.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let text = read_pem_file(path)?;
    key_from_pem_in(&text, Some(path))
}

/// Parses every `CERTIFICATE` section of a PEM string, in order.
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, CertError> {
    certs_from_pem_in(pem, None)
}

/// Parses the first private key of a PEM string.
pub fn key_from_pem(pem: &str) -> Result<PrivateKeyDer<'static>, CertError> {
    key_from_pem_in(pem, None)
}

/// [`certs_from_pem`], naming `path` (if any) in errors.
pub(crate) fn certs_from_pem_in(text: &str, path: Option<&Path>) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let certs = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| parse_error("certificate PEM", path, &e))?;
    if certs.is_empty() {
        return Err(match path {
            Some(path) => CertError::NoCertificate(path.to_owned()),
            None => parse_error("certificate PEM", None, &pem::Error::NoItemsFound),
        });
    }
    Ok(certs)
}

/// [`key_from_pem`], naming `path` (if any) in errors.
pub(crate) fn key_from_pem_in(text: &str, path: Option<&Path>) -> Result<PrivateKeyDer<'static>, CertError> {
    match PrivateKeyDer::from_pem_slice(text.as_bytes()) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(match path {
            Some(path) => CertError::NoKey(path.to_owned()),
            None => parse_error("private key PEM", None, &pem::Error::NoItemsFound),
        }),
        Err(e) => Err(parse_error("private key PEM", path, &e)),
    }
}

fn parse_error(what: &str, path: Option<&Path>, err: &pem::Error) -> CertError {
    let what = match path {
        Some(path) => format!("{what} in {}", path.display()),
        None => what.to_owned(),
    };
    // `IllegalSectionStart` carries the offending line; for a key file that line could be
    // key material, so describe the error without echoing input.
    let reason = match err {
        pem::Error::NoItemsFound => "no matching PEM section found".to_owned(),
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".to_owned(),
        pem::Error::IllegalSectionStart { .. } => "malformed PEM BEGIN line".to_owned(),
        pem::Error::Base64Decode(_) => "invalid base64 in a PEM section".to_owned(),
        pem::Error::SectionTooLarge => "a PEM section is too large".to_owned(),
        other => other.to_string(),
    };
    CertError::Parse { what, reason }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_is_a_clear_error() {
        assert!(matches!(certs_from_pem(""), Err(CertError::Parse { .. })));
        assert!(matches!(key_from_pem(""), Err(CertError::Parse { .. })));
    }

    #[test]
    fn missing_file_names_the_file() {
        let err = load_certs(Path::new("/nonexistent/rampart/ca.pem")).unwrap_err();
        assert!(matches!(err, CertError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/rampart/ca.pem"));
    }

    #[test]
    fn file_without_key_is_no_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        std::fs::write(&path, "not a key\n").unwrap();
        let err = load_key(&path).unwrap_err();
        assert!(matches!(&err, CertError::NoKey(p) if p == &path), "{err}");
        assert!(matches!(load_certs(&path), Err(CertError::NoCertificate(_))));
    }

    #[test]
    fn broken_pem_does_not_echo_its_content() {
        let text = "-----BEGIN PRIVATE KEY-----\nSECRETSECRET\n";
        let err = key_from_pem(text).unwrap_err().to_string();
        assert!(!err.contains("SECRETSECRET"), "{err}");
    }
}
