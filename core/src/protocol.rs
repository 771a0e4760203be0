//! Wire protocol v2: the messages exchanged on QUIC streams and the error codes the gateway
//! answers with.
//!
//! The first bidirectional stream a client opens is the control stream: `Hello` → `Welcome`,
//! then `Login` or `Resume` → `SessionGranted`. Every further bidirectional stream carries one
//! forwarded TCP connection: `Open{resource}` → `Opened`, then raw bytes both ways; or
//! `Refused{code}` and the stream ends. Frames are encoded by [`crate::codec`].
//!
//! Version 2 binds the resume ticket to a key the client holds: `Login` names the client's
//! public key, `Resume` proves possession of it on the new connection
//! ([`crate::resume_proof`]), and every resume hands out a new ticket. A version 1 client is
//! answered `unsupported_version` at `Hello`.

use crate::secret::Sensitive;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 2;
/// TLS application protocol negotiated by client and gateway.
pub const ALPN: &[u8] = b"rampart/1";

/// A message from the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// First message on the control stream: the versions the client speaks.
    Hello {
        /// Protocol versions, any order.
        versions: Vec<u16>,
        /// Client software name and version, for the log.
        client: String,
    },
    /// Log in with directory password and a TOTP code.
    Login {
        /// The name the person typed; the gateway normalises it.
        username: String,
        /// Directory password.
        password: Sensitive<String>,
        /// The current TOTP code.
        otp: Sensitive<String>,
        /// The Ed25519 public key (base64url) that must sign every resume of the session. A
        /// session opened without one lives only as long as this connection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_key: Option<String>,
    },
    /// Attach this connection to a live session with its latest ticket, signed for this
    /// connection by the key named at login.
    Resume {
        /// The ticket from the latest `SessionGranted` of the session; an older one ends it.
        ticket: Sensitive<String>,
        /// Ed25519 signature (base64url) over [`crate::resume_proof::message`] for this
        /// connection's exported keying material and the session's id.
        proof: String,
    },
    /// End the session.
    Logout,
    /// First message of a data stream: connect this stream to a resource.
    Open {
        /// The resource's name in the policy.
        resource: String,
    },
}

/// A message from the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Answer to `Hello`: the version chosen and the gateway's clock.
    Welcome {
        /// The version both sides speak.
        version: u16,
        /// The gateway's time, unix seconds, so a client can detect its own clock skew.
        server_time: i64,
    },
    /// Answer to `Login` or `Resume`.
    SessionGranted(SessionGrant),
    /// The session ended (answer to `Logout`).
    LoggedOut,
    /// Answer to `Open`: the target is connected; raw bytes follow.
    Opened,
    /// The request was refused.
    Refused {
        /// Machine-readable reason.
        code: ErrorCode,
        /// Plain-language explanation for the person.
        message: String,
        /// With [`ErrorCode::Busy`]: seconds to wait before trying again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_secs: Option<u32>,
    },
}

/// What a client learns when a login or resume succeeds.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionGrant {
    /// Public session id (for logs and the service desk); not a credential.
    pub session_id: String,
    /// Ticket for the next resume, new at every login and resume: the one it replaces no
    /// longer resumes, and presenting it ends the session. None for a login without a client
    /// key (the session cannot be resumed).
    pub ticket: Option<Sensitive<String>>,
    /// The normalised username.
    pub user: String,
    /// End of the session, unix seconds.
    pub expires_at: i64,
    /// Resources this person may open.
    pub resources: Vec<ResourceInfo>,
}

impl fmt::Debug for SessionGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionGrant")
            .field("session_id", &self.session_id)
            .field("user", &self.user)
            .field("expires_at", &self.expires_at)
            .field("resources", &self.resources)
            .finish_non_exhaustive()
    }
}

/// A resource as shown to the person who may use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceInfo {
    /// Name used in `Open`.
    pub name: String,
    /// What it is, in words.
    #[serde(default)]
    pub description: String,
    /// Where it leads (`host:port`), so a SOCKS client can name it by address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// When the person may open it, e.g. `Mon-Fri 07:00-20:00 (Europe/Zurich)`; `None`: at any
    /// time (some rule naming them has no windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<String>,
}

/// Why the gateway refused something. Stable: clients map them to messages and exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// None of the client's protocol versions is supported.
    UnsupportedVersion,
    /// A frame was malformed, oversize or out of order.
    BadRequest,
    /// A data stream was opened before the connection logged in or resumed.
    NotAuthenticated,
    /// Unknown user, wrong password, wrong or reused code or disabled account: deliberately one
    /// answer.
    InvalidCredentials,
    /// The session or ticket is unknown, ended or expired: log in again.
    SessionExpired,
    /// The gateway or a service it needs (directory, store) is busy or down: retry later.
    TryLater,
    /// No resource has this name.
    UnknownResource,
    /// The resource exists but this person may not use it.
    Forbidden,
    /// The target refused the connection.
    TargetRefused,
    /// The target could not be reached (no route, name not resolved).
    TargetUnreachable,
    /// The target did not answer in time.
    TargetTimeout,
    /// An unexpected failure on the gateway.
    Internal,
    /// Too many logins are in progress: retry after the given number of seconds.
    Busy,
    /// This connection already carries as many forwarded connections as it may.
    TooManyStreams,
    /// The resource may be used only at certain hours, and this is not one of them.
    OutsideHours,
    /// The session is older than the resource allows: log in again.
    SessionTooOld,
    /// The password was right but the person's token is locked after too many wrong codes:
    /// only the service desk can unlock it. Sent only after the directory accepted the password.
    TokenLocked,
    /// The resource leads to the person's own VM in a pool, and they hold none there.
    NoVmAllocated,
    /// A ticket this session had already replaced was presented: someone holds a copy of the
    /// session, so it was ended. Log in again.
    TicketReused,
}

impl ErrorCode {
    /// Numeric form used as the QUIC application error code when a stream is reset.
    pub fn as_u32(self) -> u32 {
        match self {
            Self::UnsupportedVersion => 1,
            Self::BadRequest => 2,
            Self::NotAuthenticated => 3,
            Self::InvalidCredentials => 4,
            Self::SessionExpired => 5,
            Self::TryLater => 6,
            Self::UnknownResource => 7,
            Self::Forbidden => 8,
            Self::TargetRefused => 9,
            Self::TargetUnreachable => 10,
            Self::TargetTimeout => 11,
            Self::Internal => 12,
            Self::Busy => 13,
            Self::TooManyStreams => 14,
            Self::OutsideHours => 15,
            Self::SessionTooOld => 16,
            Self::TokenLocked => 17,
            Self::NoVmAllocated => 18,
            Self::TicketReused => 19,
        }
    }

    /// The default plain-language message for this code.
    pub fn default_message(self) -> &'static str {
        match self {
            Self::UnsupportedVersion => "this client is too old or too new for the gateway; update rampart-connect",
            Self::BadRequest => "the gateway could not understand the request",
            Self::NotAuthenticated => "log in first",
            Self::InvalidCredentials => "the username, password or code is not right",
            Self::SessionExpired => "your session has ended; log in again",
            Self::TryLater => "the gateway is busy or cannot reach a service it needs; try again in a minute",
            Self::UnknownResource => "there is no resource with that name",
            Self::Forbidden => "you are not allowed to use that resource",
            Self::TargetRefused => "the resource refused the connection",
            Self::TargetUnreachable => "the resource cannot be reached from the gateway",
            Self::TargetTimeout => "the resource did not answer in time",
            Self::Internal => "the gateway failed unexpectedly; contact the service desk",
            Self::Busy => "the gateway is busy with many logins; try again in a few seconds",
            Self::TooManyStreams => "too many connections at once through this session; close some and retry",
            Self::OutsideHours => "this resource is not available at this time of day; see its hours",
            Self::SessionTooOld => "your session is too old for this resource; log in again",
            Self::TokenLocked => "your token is locked after too many wrong codes; the service desk can unlock it",
            Self::NoVmAllocated => "no desktop allocated — contact the service desk",
            Self::TicketReused => "your session was ended because a copy of it was used from elsewhere; log in again",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.default_message())
    }
}

impl ServerMessage {
    /// A refusal with the code's default message.
    pub fn refused(code: ErrorCode) -> Self {
        Self::Refused {
            code,
            message: code.default_message().to_owned(),
            retry_after_secs: None,
        }
    }

    /// The answer to a login the gateway is too busy to take now.
    pub fn busy(retry_after_secs: u32) -> Self {
        Self::Refused {
            code: ErrorCode::Busy,
            message: format!("the gateway is busy with many logins; retry in {retry_after_secs} s"),
            retry_after_secs: Some(retry_after_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_debug_hides_password_and_code() {
        let m = ClientMessage::Login {
            username: "alice".into(),
            password: Sensitive::new("pw-secret".into()),
            otp: Sensitive::new("123456".into()),
            client_key: None,
        };
        let text = format!("{m:?}");
        assert!(!text.contains("pw-secret") && !text.contains("123456"), "{text}");
    }

    #[test]
    fn grant_debug_hides_ticket() {
        let g = SessionGrant {
            session_id: "s1".into(),
            ticket: Some(Sensitive::new("tkt-secret".into())),
            user: "alice".into(),
            expires_at: 1,
            resources: vec![],
        };
        assert!(!format!("{g:?}").contains("tkt-secret"));
    }

    #[test]
    fn resume_debug_hides_ticket_and_a_login_without_key_omits_it() {
        let m = ClientMessage::Resume {
            ticket: Sensitive::new("tkt-secret".into()),
            proof: "sig".into(),
        };
        assert!(!format!("{m:?}").contains("tkt-secret"));
        let login = ClientMessage::Login {
            username: "alice".into(),
            password: Sensitive::new("pw".into()),
            otp: Sensitive::new("123456".into()),
            client_key: None,
        };
        let json = serde_json::to_string(&login).unwrap_or_default();
        assert!(!json.contains("client_key"), "{json}");
    }

    #[test]
    fn error_codes_are_distinct() {
        use std::collections::HashSet;
        let all = [
            ErrorCode::UnsupportedVersion,
            ErrorCode::BadRequest,
            ErrorCode::NotAuthenticated,
            ErrorCode::InvalidCredentials,
            ErrorCode::SessionExpired,
            ErrorCode::TryLater,
            ErrorCode::UnknownResource,
            ErrorCode::Forbidden,
            ErrorCode::TargetRefused,
            ErrorCode::TargetUnreachable,
            ErrorCode::TargetTimeout,
            ErrorCode::Internal,
            ErrorCode::Busy,
            ErrorCode::TooManyStreams,
            ErrorCode::OutsideHours,
            ErrorCode::SessionTooOld,
            ErrorCode::TokenLocked,
            ErrorCode::NoVmAllocated,
            ErrorCode::TicketReused,
        ];
        let numbers: HashSet<u32> = all.iter().map(|c| c.as_u32()).collect();
        assert_eq!(numbers.len(), all.len());
    }
}
