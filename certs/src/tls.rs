//! rustls configurations for Rampart: TLS 1.3 only, the ring provider chosen explicitly, 0-RTT
//! off on both sides, ALPN required, and clients that trust only the organisation CA.

use crate::CertError;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// Builds the server side of a Rampart TLS 1.3 connection.
///
/// * Only TLS 1.3 is offered; a TLS 1.2 client gets a `protocol_version` alert.
/// * No client certificate is requested (users authenticate inside the protocol).
/// * `max_early_data_size` is 0, i.e. 0-RTT is refused. Early data has no replay protection
///   across connections (RFC 8446 §8): an attacker who records a client's first flight can
///   replay it, and a replayed login or forwarding request must never be processed twice.
/// * `alpn` must be non-empty (Rampart uses `b"rampart/1"`); a client offering none of these
///   protocols is refused.
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: &[&[u8]],
) -> Result<ServerConfig, CertError> {
    check_alpn(alpn)?;
    if cert_chain.is_empty() {
        return Err(CertError::Tls("server certificate chain is empty".to_owned()));
    }
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(cert_chain, key)?;
    config.max_early_data_size = 0;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Builds the client side of a Rampart TLS 1.3 connection.
///
/// The server certificate is verified against `ca_certs` only: the organisation CA(s) from the
/// client profile, never the operating system's roots, so a certificate from a public CA for
/// the gateway's name is still rejected. Early data is disabled and `alpn` must be non-empty.
pub fn client_config(ca_certs: Vec<CertificateDer<'static>>, alpn: &[&[u8]]) -> Result<ClientConfig, CertError> {
    check_alpn(alpn)?;
    if ca_certs.is_empty() {
        return Err(CertError::Tls(
            "no CA certificate given: the client would trust no server".to_owned(),
        ));
    }
    let mut roots = RootCertStore::empty();
    for cert in ca_certs {
        roots
            .add(cert)
            .map_err(|e| CertError::Tls(format!("unusable CA certificate: {e}")))?;
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.enable_early_data = false;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The ring provider, named explicitly so the choice never depends on which other crates in
/// the build enable which rustls features.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn check_alpn(alpn: &[&[u8]]) -> Result<(), CertError> {
    if alpn.is_empty() {
        return Err(CertError::Tls("no ALPN protocol given".to_owned()));
    }
    // RFC 7301 §3.1: protocol names are 1..=255 bytes.
    if alpn.iter().any(|p| p.is_empty() || p.len() > 255) {
        return Err(CertError::Tls(
            "ALPN protocol names must be 1 to 255 bytes long".to_owned(),
        ));
    }
    Ok(())
}
