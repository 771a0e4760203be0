//! `CertError`: everything that can go wrong while creating, issuing, loading or using the
//! organisation's certificates. Messages name the file involved and never contain key material.

use std::io;
use std::path::PathBuf;

/// An error from the PKI or TLS configuration code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// Key or certificate generation failed inside the crypto library (for example the system
    /// random number generator was unavailable, or a validity period was out of range).
    #[error("certificate generation failed: {0}")]
    Generate(String),

    /// A name given for a certificate (organisation, DNS name, IP address, device name) is not
    /// acceptable. `reason` says why.
    #[error("invalid certificate name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name, as given.
        name: String,
        /// Why it was rejected.
        reason: String,
    },

    /// PEM or DER data could not be decoded. `what` says which data (and, where known, which
    /// file); `reason` is the decoder's explanation.
    #[error("could not parse {what}: {reason}")]
    Parse {
        /// What was being parsed, e.g. `CA certificate /etc/rampart/ca.pem`.
        what: String,
        /// The decoder's explanation.
        reason: String,
    },

    /// Reading or writing a file failed. The message says the path and the operating system's
    /// reason once: the `io::Error` is part of the text, not a separate `source()`, so an error
    /// chain printed with `{:#}` does not repeat it.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file that could not be read or written.
        path: PathBuf,
        /// The underlying operating-system error.
        cause: io::Error,
    },

    /// rustls refused the configuration (for example the key does not match the certificate,
    /// or a trust anchor is unusable).
    #[error("TLS configuration rejected: {0}")]
    Tls(String),

    /// A file expected to hold at least one PEM `CERTIFICATE` section holds none.
    #[error("no certificate found in {}", .0.display())]
    NoCertificate(PathBuf),

    /// A file expected to hold a PEM private key holds none.
    #[error("no private key found in {}", .0.display())]
    NoKey(PathBuf),
}

impl CertError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, cause: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            cause,
        }
    }

    /// A rejected name with its reason.
    pub(crate) fn invalid_name(name: &str, reason: impl Into<String>) -> Self {
        Self::InvalidName {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }
}

impl From<rcgen::Error> for CertError {
    fn from(err: rcgen::Error) -> Self {
        Self::Generate(err.to_string())
    }
}

impl From<rustls::Error> for CertError {
    fn from(err: rustls::Error) -> Self {
        Self::Tls(err.to_string())
    }
}
