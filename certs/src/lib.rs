//! The organisation's small PKI and Rampart's TLS configurations.
//!
//! * [`CertificateAuthority`] creates, saves and loads the organisation CA (ECDSA P-256,
//!   path length 0) and issues server certificates (DNS and IP SANs, EKU serverAuth) and
//!   device certificates (EKU clientAuth) as [`IssuedCert`]s.
//! * [`load_certs`], [`load_key`], [`certs_from_pem`] and [`key_from_pem`] turn PEM into the
//!   DER types rustls takes.
//! * [`server_config`] and [`client_config`] build rustls configurations that speak TLS 1.3
//!   only, with the ring provider, 0-RTT disabled, ALPN required and, on the client, only the
//!   organisation CA trusted.
//! * [`server_pair_problems`] and [`ca_file_problems`] check the files a config names before a
//!   service starts, each problem naming its setting.
//! * [`describe`] and [`describe_der`] read a certificate back as a [`CertSummary`] (subject,
//!   issuer, names, validity, purpose).
//!
//! Private keys are written with mode 0600, wiped from memory when an [`IssuedCert`] is
//! dropped, and never appear in `Debug` output or error messages. Nothing here reads the clock
//! except the `create`/`issue_*` convenience constructors; pass a [`Validity`] to the
//! `*_with_validity` variants to control time.

mod ca;
mod check;
mod error;
mod fs;
mod inspect;
mod issue;
mod pem;
mod tls;
mod validity;

pub use ca::{CA_CERT_FILE, CA_KEY_FILE, CertificateAuthority};
pub use check::{FileSetting, ca_file_problems, issued_by_problems, server_pair_problems, service_cert_problems};
pub use error::CertError;
pub use inspect::{CertSummary, describe, describe_der};
pub use issue::IssuedCert;
pub use pem::{certs_from_pem, key_from_pem, load_certs, load_key};
pub use tls::{client_config, server_config};
pub use validity::{CLOCK_SKEW_ALLOWANCE, MAX_DAYS, Validity};
