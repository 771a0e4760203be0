//! What the person at the keyboard reads when something goes wrong: one plain-language message
//! per situation, each saying what to do next. The gateway's answers stay terse and uniform;
//! these add what the client knows (the resource asked for, its own clock, whether this home
//! ever logged in).

use crate::ClientError;
use crate::certificate::{CertificateProblem, utc};
use rampart_core::ErrorCode;

/// How far the local clock may be from the gateway's before it is named as a likely cause.
pub const CLOCK_TOLERANCE_SECS: i64 = 15;

/// What the client knows around an error.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The resource the person asked for.
    pub resource: Option<&'a str>,
    /// Its hours, as the gateway gave them at login (`None`: any time or unknown).
    pub hours: Option<&'a str>,
    /// Gateway time minus local time, seconds, when known.
    pub clock_offset: Option<i64>,
    /// True when no login from this computer has succeeded yet.
    pub first_login: bool,
}

/// A command's failure and what the client knew around it: `main` says it with [`explain`]
/// and exits with the error's code.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong.
    pub error: ClientError,
    /// What the client knew around it.
    pub context: Context<'static>,
}

impl Failure {
    /// The message the person reads.
    pub fn explain(&self) -> String {
        explain(&self.error, self.context)
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        self.error.exit_code()
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        Self {
            error,
            context: Context::default(),
        }
    }
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

/// What to make of this computer's clock and the gateway's disagreeing, when the offset
/// (gateway minus computer, seconds) is past the tolerance; `None` within it.
///
/// Codes come from the phone and are checked against the gateway's clock, so this computer's
/// clock never makes a code fail. Three clocks are in play and the client sees two: it names the
/// difference, and lets the phone decide which one is wrong — the gateway's (tell the service
/// desk), the phone's (set it to automatic), or only this computer's (harmless for codes).
pub fn clock_skew(offset: i64) -> Option<String> {
    if offset.unsigned_abs() <= CLOCK_TOLERANCE_SECS.unsigned_abs() {
        return None;
    }
    let apart = duration_words(offset);
    let gateway = if offset > 0 { "ahead" } else { "behind" };
    Some(format!(
        "This computer's clock and the gateway's differ by {apart} (the gateway's is {gateway}). Codes \
         are checked against the gateway's clock, not this computer's, so compare the time on your \
         phone: if your phone shows the same time as this computer, the gateway's clock is probably \
         wrong — tell the service desk that the gateway's clock is {apart} {gateway}; if your phone \
         shows the gateway's time, only this computer's clock is off, which does not stop codes (set it \
         to update automatically when convenient); if your phone agrees with neither, set its date and \
         time to automatic."
    ))
}

/// What to tell the person about a gateway certificate that is refused for another reason than
/// not being the organisation's (`None` for that one: what to do then depends on where the CA
/// came from). Setting the profile up again cannot fix these.
pub fn certificate_problem(problem: &CertificateProblem) -> Option<String> {
    match problem {
        CertificateProblem::NotOurs => None,
        CertificateProblem::WrongName { dialled, covers } => Some(format!(
            "The gateway's certificate is not made for the name your profile dials ({dialled}): it covers \
             {}. Ask the service desk to fix the profile or the certificate.",
            CertificateProblem::covered(covers)
        )),
        CertificateProblem::Expired { not_after } => Some(format!(
            "The gateway's certificate {} by this computer's clock. If this computer's date is wrong, set it \
             to update automatically and try again; otherwise tell the service desk that the gateway's \
             certificate has expired.",
            not_after.map_or_else(|| "has expired".to_owned(), |at| format!("expired on {}", utc(at)))
        )),
        CertificateProblem::NotYetValid { not_before } => Some(format!(
            "The gateway's certificate is not valid {} by this computer's clock. Check this computer's date \
             (set it to update automatically) and try again; if the date is right, tell the service desk.",
            not_before.map_or_else(|| "yet".to_owned(), |at| format!("until {}", utc(at)))
        )),
    }
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
            ErrorCode::OutsideHours => match context.hours {
                Some(hours) => {
                    format!("{resource:?} is open to you {hours}, not now. Try again then, or ask the service desk.")
                }
                None => format!(
                    "{resource:?} is not available at this time of day. Try again during its hours, or ask the \
                     service desk."
                ),
            },
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
        ClientError::Untrusted { gateway, problem, .. } => certificate_problem(problem).unwrap_or_else(|| {
            format!(
                "The gateway at {gateway} could not prove it belongs to your organisation (its certificate is \
                     not signed by your organisation's CA). Do not continue on this network if it persists; run \
                     `rampart-connect setup` again with the profile from the service desk."
            )
        }),
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
        let behind = clock_skew(-120).unwrap_or_default();
        assert!(
            behind.contains("differ by 2 min 0 s (the gateway's is behind)"),
            "{behind}"
        );
        assert!(behind.contains("the gateway's clock is 2 min 0 s behind"), "{behind}");
        let ahead = clock_skew(3700).unwrap_or_default();
        assert!(
            ahead.contains("differ by 1 h 1 min (the gateway's is ahead)"),
            "{ahead}"
        );
    }

    /// A gateway whose clock is wrong makes every code fail for everyone: the person must not be
    /// told that their computer is to blame, and must learn how to tell whose clock is wrong.
    #[test]
    fn the_clock_message_does_not_blame_this_computer() {
        let said = clock_skew(120).unwrap_or_default();
        for blaming in ["Your computer's clock is", "likely cause", "fix your clock"] {
            assert!(!said.contains(blaming), "{blaming:?} in {said}");
        }
        assert!(
            said.contains("Codes are checked against the gateway's clock, not this computer's"),
            "{said}"
        );
        assert!(said.contains("tell the service desk"), "{said}");
        assert!(said.contains("phone"), "{said}");
    }

    fn untrusted(problem: CertificateProblem) -> String {
        explain(
            &ClientError::Untrusted {
                gateway: "localhost:4433".into(),
                reason: problem.to_string(),
                problem,
            },
            Context::default(),
        )
    }

    /// A certificate made for other names is the profile's or the certificate's fault, not a
    /// stranger's CA: the person is not sent to set the profile up again.
    #[test]
    fn a_wrong_name_is_not_reported_as_a_wrong_ca() {
        let said = untrusted(CertificateProblem::WrongName {
            dialled: "localhost".into(),
            covers: vec!["gw1.bank.example".into(), "127.0.0.1".into()],
        });
        assert_eq!(
            said,
            "The gateway's certificate is not made for the name your profile dials (localhost): it covers \
             gw1.bank.example, 127.0.0.1. Ask the service desk to fix the profile or the certificate."
        );
        let wrong_ca = untrusted(CertificateProblem::NotOurs);
        assert!(
            wrong_ca.starts_with("The gateway at localhost:4433 could not prove it belongs to your organisation"),
            "{wrong_ca}"
        );
        assert!(wrong_ca.contains("rampart-connect setup"), "{wrong_ca}");
        let expired = untrusted(CertificateProblem::Expired {
            not_after: Some(1_764_979_200),
        });
        assert!(
            expired.starts_with("The gateway's certificate expired on 2025-12-06 00:00 UTC by this computer's clock."),
            "{expired}"
        );
        assert!(expired.contains("tell the service desk"), "{expired}");
        assert!(!expired.contains("organisation's CA"), "{expired}");
        let early = untrusted(CertificateProblem::NotYetValid { not_before: None });
        assert!(early.contains("not valid yet by this computer's clock"), "{early}");
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
        assert!(
            skewed.contains("differ by 1 min 30 s (the gateway's is behind)") && !skewed.contains("activated"),
            "{skewed}"
        );
        assert_eq!(skewed.matches("differ by").count(), 1, "said once: {skewed}");
    }

    #[test]
    fn outside_its_hours_names_the_hours_when_known() {
        let refused = ClientError::Refused {
            code: ErrorCode::OutsideHours,
            message: String::new(),
        };
        let said = explain(
            &refused,
            Context {
                resource: Some("payments"),
                hours: Some("Mon-Fri 07:00-20:00 (Europe/Zurich)"),
                ..Context::default()
            },
        );
        assert_eq!(
            said,
            "\"payments\" is open to you Mon-Fri 07:00-20:00 (Europe/Zurich), not now. Try again then, or ask the \
             service desk."
        );
        let plain = explain(
            &refused,
            Context {
                resource: Some("payments"),
                ..Context::default()
            },
        );
        assert!(plain.contains("not available at this time of day"), "{plain}");
    }
}
