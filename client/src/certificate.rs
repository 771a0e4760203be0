//! The check of a gateway's certificate against the organisation CA, and what was wrong with a
//! refused one as a type: the handshake's error carries only text, and the person must be told a
//! wrong name apart from a wrong CA or a clock outside the certificate's dates.

use rampart_core::text::printable;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// What is wrong with a gateway's certificate, as far as this client can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateProblem {
    /// Not signed by the organisation CA this client trusts (or not readable as a certificate).
    NotOurs,
    /// Signed by the organisation CA, but made for other names than the one dialled.
    WrongName {
        /// The name (or address) the client dialled, from the profile or `--gateway`.
        dialled: String,
        /// The names and addresses the certificate covers.
        covers: Vec<String>,
    },
    /// Past its end date by this computer's clock (the gateway's, or its CA's).
    Expired {
        /// The end date, unix seconds, when known.
        not_after: Option<i64>,
    },
    /// Before its start date by this computer's clock.
    NotYetValid {
        /// The start date, unix seconds, when known.
        not_before: Option<i64>,
    },
}

impl CertificateProblem {
    /// The problem `error` (from verifying the certificate `end_entity` for `dialled`) means.
    fn of(error: &rustls::Error, end_entity: &CertificateDer<'_>, dialled: &ServerName<'_>) -> Self {
        use rustls::CertificateError as E;
        let rustls::Error::InvalidCertificate(error) = error else {
            return Self::NotOurs;
        };
        match error {
            E::NotValidForName | E::NotValidForNameContext { .. } => Self::WrongName {
                dialled: dialled.to_str().into_owned(),
                covers: rampart_certs::describe_der(end_entity)
                    .map(|summary| summary.names().iter().map(|n| printable(n)).collect())
                    .unwrap_or_default(),
            },
            E::Expired => Self::Expired { not_after: None },
            E::ExpiredContext { not_after, .. } => Self::Expired {
                not_after: i64::try_from(not_after.as_secs()).ok(),
            },
            E::NotValidYet => Self::NotYetValid { not_before: None },
            E::NotValidYetContext { not_before, .. } => Self::NotYetValid {
                not_before: i64::try_from(not_before.as_secs()).ok(),
            },
            _ => Self::NotOurs,
        }
    }

    /// The names the certificate covers, as a list: "gw1.bank.example, 127.0.0.1".
    pub fn covered(covers: &[String]) -> String {
        if covers.is_empty() {
            "no names at all".to_owned()
        } else {
            covers.join(", ")
        }
    }
}

impl std::fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotOurs => write!(f, "its certificate is not signed by your organisation's CA"),
            Self::WrongName { dialled, covers } => write!(
                f,
                "its certificate is not made for the name {dialled} (it covers {})",
                Self::covered(covers)
            ),
            Self::Expired { not_after } => match not_after {
                Some(at) => write!(f, "its certificate expired on {} by this computer's clock", utc(*at)),
                None => write!(f, "its certificate has expired by this computer's clock"),
            },
            Self::NotYetValid { not_before } => match not_before {
                Some(at) => write!(
                    f,
                    "its certificate is not valid until {} by this computer's clock",
                    utc(*at)
                ),
                None => write!(f, "its certificate is not valid yet by this computer's clock"),
            },
        }
    }
}

/// `unix` as "2026-12-05 22:40 UTC".
pub fn utc(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// The organisation CA's verifier (the same checks `rampart_certs::client_config` makes), which
/// also keeps what was wrong with a refused certificate: the handshake's error carries only
/// text, and the person must be told a wrong name apart from a wrong CA.
#[derive(Debug)]
pub(crate) struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    refused: Arc<std::sync::Mutex<Option<CertificateProblem>>>,
}

impl RecordingVerifier {
    /// A verifier trusting only `ca`, which writes the problem with a refused certificate into
    /// `refused`; the error says why `ca` cannot be used.
    pub(crate) fn new(
        ca: Vec<CertificateDer<'static>>,
        provider: Arc<rustls::crypto::CryptoProvider>,
        refused: Arc<std::sync::Mutex<Option<CertificateProblem>>>,
    ) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in ca {
            roots
                .add(cert)
                .map_err(|e| format!("unusable organisation CA certificate: {e}"))?;
        }
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("organisation CA: {e}"))?;
        Ok(Self { inner, refused })
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .inspect_err(|e| {
                *self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(CertificateProblem::of(e, end_entity, server_name));
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use rampart_certs::{CertificateAuthority, Validity};
    use std::time::{Duration, SystemTime};

    /// What the organisation CA's verifier records for `leaf` dialled as `name`.
    fn refused(ca: &CertificateAuthority, leaf: &CertificateDer<'_>, name: &str) -> Option<CertificateProblem> {
        let slot = Arc::new(std::sync::Mutex::new(None));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = RecordingVerifier::new(vec![ca.cert_der().clone()], provider, slot.clone()).unwrap();
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let verified = verifier.verify_server_cert(leaf, &[], &name, &[], UnixTime::now());
        let recorded = slot.lock().unwrap().take();
        assert_eq!(verified.is_ok(), recorded.is_none(), "{verified:?} {recorded:?}");
        recorded
    }

    fn leaf(ca: &CertificateAuthority, names: &[&str], validity: Validity) -> CertificateDer<'static> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let issued = ca.issue_server_with_validity(&names, validity).unwrap();
        issued.cert_chain().unwrap().remove(0)
    }

    #[test]
    fn a_wrong_name_a_wrong_ca_and_an_expired_certificate_are_told_apart() {
        let ca = CertificateAuthority::create("Test Bank").unwrap();
        let gw1 = leaf(&ca, &["gw1.bank.example", "127.0.0.1"], Validity::from_now(30));
        assert_eq!(refused(&ca, &gw1, "gw1.bank.example"), None);
        assert_eq!(refused(&ca, &gw1, "127.0.0.1"), None);
        let wrong_name = refused(&ca, &gw1, "localhost").unwrap();
        assert_eq!(
            wrong_name,
            CertificateProblem::WrongName {
                dialled: "localhost".into(),
                covers: vec!["gw1.bank.example".into(), "127.0.0.1".into()],
            }
        );
        assert_eq!(
            wrong_name.to_string(),
            "its certificate is not made for the name localhost (it covers gw1.bank.example, 127.0.0.1)"
        );

        let other = CertificateAuthority::create("Someone Else").unwrap();
        let theirs = leaf(&other, &["gw1.bank.example"], Validity::from_now(30));
        assert_eq!(
            refused(&ca, &theirs, "gw1.bank.example"),
            Some(CertificateProblem::NotOurs)
        );
        // A certificate of another CA is not ours, whatever names it carries.
        assert_eq!(refused(&ca, &theirs, "localhost"), Some(CertificateProblem::NotOurs));

        let started = SystemTime::now() - Duration::from_secs(10 * 24 * 3600);
        let expired = leaf(&ca, &["gw1.bank.example"], Validity::new(started, 2));
        let Some(CertificateProblem::Expired { not_after: Some(at) }) = refused(&ca, &expired, "gw1.bank.example")
        else {
            panic!("not reported as expired");
        };
        let want = started + Duration::from_secs(2 * 24 * 3600);
        let want = i64::try_from(want.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()).unwrap();
        assert!((at - want).abs() <= 1, "{at} vs {want}");

        let later = SystemTime::now() + Duration::from_secs(3 * 24 * 3600);
        let early = leaf(&ca, &["gw1.bank.example"], Validity::new(later, 2));
        assert!(matches!(
            refused(&ca, &early, "gw1.bank.example"),
            Some(CertificateProblem::NotYetValid { not_before: Some(_) })
        ));
    }
}
