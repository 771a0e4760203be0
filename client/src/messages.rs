//! What the person at the keyboard reads when something goes wrong: one plain-language message
//! per situation, each saying what to do next. The gateway's answers stay terse and uniform;
//! these add what the client knows (the resource asked for, its own clock, whether this home
//! ever logged in).

use crate::ClientError;
use rampart_core::ErrorCode;

/// How far the local clock may be from the gateway's before it is named as a likely cause.
pub const CLOCK_TOLERANCE_SECS: i64 = 15;

/// What the client knows around an error.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The resource the person asked for.
    pub resource: Option<&'a str>,
    /// Gateway time minus local time, seconds, when known.
    pub clock_offset: Option<i64>,
    /// True when no login from this computer has succeeded yet.
    pub first_login: bool,
}

/// `secs` as "2 min 5 s", "45 s", "1 h 3 min".
pub fn duration_words(secs: i64) -> String {
    let secs = secs.unsigned_abs();
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

/// The clock warning, when the offset is past the tolerance.
pub fn clock_skew(offset: i64) -> Option<String> {
    if offset.unsigned_abs() <= CLOCK_TOLERANCE_SECS.unsigned_abs() {
        return None;
    }
    let direction = if offset > 0 { "behind" } else { "ahead of" };
    Some(format!(
        "Your computer's clock is {} {direction} the gateway's. Codes depend on the time, so this is \
         the likely cause of rejected codes: set your clock to update automatically (Settings, Date \
         and time), then try again.",
        duration_words(offset)
    ))
}

/// The message for `error` in `context`.
pub fn explain(error: &ClientError, context: Context<'_>) -> String {
    let resource = context.resource.unwrap_or("that resource");
    match error {
        ClientError::Refused { code, message } => match code {
            ErrorCode::InvalidCredentials => {
                let mut text = "Your username, password or code was not accepted. Check your password, then \
                                type the code your authenticator app shows now (it changes every 30 seconds)."
                    .to_owned();
                if let Some(skew) = context.clock_offset.and_then(clock_skew) {
                    text = format!("{text}\n{skew}");
                } else if context.first_login {
                    text.push_str(
                        "\nThis is your first login from this computer, so your token may not be activated \
                         yet: check that your authenticator app holds the account from your enrolment \
                         letter (scan its QR code again if unsure) and type its newest code.",
                    );
                }
                text
            }
            ErrorCode::TokenLocked => "Your token is locked after too many wrong codes. Call the service desk to \
                                       unlock it, then log in with a new code."
                .to_owned(),
            ErrorCode::SessionExpired | ErrorCode::NotAuthenticated | ErrorCode::SessionTooOld => {
                "Your session has ended (it expired, or you or the service desk ended it). Log in again: \
                 rampart-connect login"
                    .to_owned()
            }
            ErrorCode::TicketReused => "Your session was ended because a copy of it was used from another \
                                        place (someone may have copied your session file, or another \
                                        computer of yours holds an old copy). Log in again: rampart-connect \
                                        login. If you did not copy it, tell the service desk."
                .to_owned(),
            ErrorCode::UnknownResource => format!(
                "There is no resource named {resource:?}. Run `rampart-connect status` to see the ones you can \
                 reach."
            ),
            ErrorCode::Forbidden => format!(
                "You are not allowed to use {resource:?}. If you need it for your work, ask the service desk; \
                 `rampart-connect status` lists what you can reach."
            ),
            ErrorCode::OutsideHours => format!(
                "{resource:?} is not available at this time of day. Try again during its hours, or ask the \
                 service desk."
            ),
            ErrorCode::TargetRefused | ErrorCode::TargetUnreachable | ErrorCode::TargetTimeout => format!(
                "{resource:?} cannot be reached right now: the gateway could not connect to it. Try again in \
                 a few minutes; if it stays down, tell the service desk."
            ),
            ErrorCode::NoVmAllocated => {
                format!("No desktop is allocated to you for {resource:?} — contact the service desk and ask for one.")
            }
            ErrorCode::TryLater | ErrorCode::Busy => {
                "The gateway is busy or a service behind it is down. Try again in a minute.".to_owned()
            }
            ErrorCode::TooManyStreams => {
                "Too many connections at once through your session. Close some programs, then retry.".to_owned()
            }
            ErrorCode::UnsupportedVersion => {
                "This rampart-connect does not speak the gateway's version. Install the current one from the \
                 service desk."
                    .to_owned()
            }
            ErrorCode::BadRequest | ErrorCode::Internal => {
                format!("The gateway could not handle the request ({message}). Tell the service desk.")
            }
        },
        ClientError::Busy { retry_after_secs } => format!(
            "The gateway is busy: many people are logging in right now. Try again in {retry_after_secs} seconds."
        ),
        ClientError::Unreachable { gateway, reason } => format!(
            "Cannot reach the gateway at {gateway}: {reason}. Check your internet connection; \
             `rampart-connect doctor` tests each step."
        ),
        ClientError::Untrusted { gateway, .. } => format!(
            "The gateway at {gateway} could not prove it belongs to your organisation (its certificate is \
             not signed by your organisation's CA). Do not continue on this network if it persists; run \
             `rampart-connect setup` again with the profile from the service desk."
        ),
        ClientError::ConnectionLost(reason) => {
            format!("The connection to the gateway was lost ({reason}). Check your internet connection and try again.")
        }
        ClientError::NotLoggedIn => "You are not logged in. Run: rampart-connect login".to_owned(),
        ClientError::Protocol(_) | ClientError::Local(_) => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_is_named_only_past_the_tolerance() {
        assert_eq!(clock_skew(15), None);
        assert_eq!(clock_skew(-15), None);
        let ahead = clock_skew(-120).unwrap_or_default();
        assert!(ahead.contains("2 min 0 s ahead of"), "{ahead}");
        let behind = clock_skew(3700).unwrap_or_default();
        assert!(behind.contains("1 h 1 min behind"), "{behind}");
    }

    #[test]
    fn credentials_name_the_likely_cause() {
        let wrong = ClientError::Refused {
            code: ErrorCode::InvalidCredentials,
            message: String::new(),
        };
        let plain = explain(&wrong, Context::default());
        assert!(plain.starts_with("Your username, password or code was not accepted"));
        let first = explain(
            &wrong,
            Context {
                first_login: true,
                ..Context::default()
            },
        );
        assert!(first.contains("may not be activated yet"));
        let skewed = explain(
            &wrong,
            Context {
                clock_offset: Some(-90),
                first_login: true,
                ..Context::default()
            },
        );
        assert!(skewed.contains("1 min 30 s ahead of") && !skewed.contains("activated"));
    }
}
