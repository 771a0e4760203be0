//! Client errors in plain language, each with the exit code scripts can rely on.

use rampart_core::ErrorCode;

/// Exit codes of `rampart-connect`.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Anything not listed below.
    pub const FAILURE: u8 = 1;
    /// Wrong username, password or code (or a locked or unknown account: one answer).
    pub const CREDENTIALS: u8 = 3;
    /// The gateway could not be reached or its certificate is not trusted.
    pub const UNREACHABLE: u8 = 4;
    /// Not logged in, or the session ended.
    pub const SESSION: u8 = 5;
    /// The gateway or a service behind it is busy: try again later.
    pub const BUSY: u8 = 6;
    /// The resource is unknown, not allowed, or could not be reached.
    pub const RESOURCE: u8 = 7;
}

/// What went wrong, worded for the person at the keyboard.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The gateway refused the request.
    #[error("{message}")]
    Refused {
        /// Machine-readable reason.
        code: ErrorCode,
        /// The gateway's explanation.
        message: String,
    },
    /// The gateway is busy; retry after this many seconds.
    #[error("the gateway is busy; retry in {retry_after_secs} s")]
    Busy {
        /// When to retry.
        retry_after_secs: u32,
    },
    /// The gateway answered, but its certificate was refused: not signed by the organisation
    /// CA, made for other names than the one dialled, or outside its dates.
    #[error("the gateway at {gateway} is not trusted: {reason}")]
    Untrusted {
        /// The address tried.
        gateway: String,
        /// Why, in words.
        reason: String,
        /// What is wrong with the certificate.
        problem: crate::certificate::CertificateProblem,
    },
    /// No connection to the gateway could be made.
    #[error("cannot reach the gateway at {gateway}: {reason}")]
    Unreachable {
        /// The address tried.
        gateway: String,
        /// Why.
        reason: String,
    },
    /// There is no saved session.
    #[error("you are not logged in; run `rampart-connect login` first")]
    NotLoggedIn,
    /// The connection to the gateway broke.
    #[error("the connection to the gateway was lost: {0}")]
    ConnectionLost(String),
    /// The gateway sent something this client does not understand.
    #[error("unexpected answer from the gateway: {0}")]
    Protocol(String),
    /// Local set-up problem (files, certificates, arguments).
    #[error("{0}")]
    Local(String),
}

impl ClientError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Refused { code, .. } => match code {
                ErrorCode::InvalidCredentials | ErrorCode::TokenLocked => exit::CREDENTIALS,
                ErrorCode::SessionExpired | ErrorCode::NotAuthenticated | ErrorCode::TicketReused => exit::SESSION,
                ErrorCode::TryLater | ErrorCode::Busy => exit::BUSY,
                ErrorCode::SessionTooOld => exit::SESSION,
                ErrorCode::UnknownResource
                | ErrorCode::Forbidden
                | ErrorCode::OutsideHours
                | ErrorCode::TooManyStreams
                | ErrorCode::TargetRefused
                | ErrorCode::TargetUnreachable
                | ErrorCode::TargetTimeout
                | ErrorCode::NoVmAllocated => exit::RESOURCE,
                ErrorCode::UnsupportedVersion | ErrorCode::BadRequest | ErrorCode::Internal => exit::FAILURE,
            },
            Self::Unreachable { .. } | Self::ConnectionLost(_) | Self::Untrusted { .. } => exit::UNREACHABLE,
            Self::Busy { .. } => exit::BUSY,
            Self::NotLoggedIn => exit::SESSION,
            Self::Protocol(_) | Self::Local(_) => exit::FAILURE,
        }
    }

    /// True when the connection itself failed, so a reconnect may help.
    pub fn is_connection_failure(&self) -> bool {
        matches!(self, Self::ConnectionLost(_) | Self::Unreachable { .. })
    }

    /// True when the gateway said the session is over (ended, expired, or its ticket reused).
    pub fn ends_session(&self) -> bool {
        matches!(self, Self::Refused { code, .. } if session_ended(*code))
    }
}

/// Whether an error code means the session is gone.
pub fn session_ended(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::SessionExpired | ErrorCode::NotAuthenticated | ErrorCode::TicketReused
    )
}
