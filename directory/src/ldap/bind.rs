//! What a person's bind result means: accepted, refused with the real reason, or the server
//! unable to answer. The reason is read from the LDAP result code, Active Directory's `data`
//! code in the diagnostic message, and the password policy response control OpenLDAP's
//! ppolicy overlay sends (draft-behera-ldap-password-policy). Only a server that says it is
//! busy or unavailable is an outage; every other refusal belongs to the person, so a locked,
//! expired or otherwise refused account is answered like a wrong password and never tells a
//! guesser that the account exists.

use crate::RejectReason;
use ldap3::LdapResult;
use ldap3::controls::RawControl;

/// OID of the password policy request and response controls.
const PASSWORD_POLICY_OID: &str = "1.3.6.1.4.1.42.2.27.8.5.1";

/// LDAP result codes (RFC 4511 §4.1.9) a bind can come back with.
const SUCCESS: u32 = 0;
const INVALID_CREDENTIALS: u32 = 49;
const BUSY: u32 = 51;
const UNAVAILABLE: u32 = 52;

/// The meaning of one bind result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum BindOutcome {
    /// The password is right and the directory lets the person in.
    Accepted,
    /// The directory refused the person, for this reason.
    Refused(RejectReason),
    /// The server cannot answer now (busy, unavailable): fail closed, try again later.
    Unavailable(String),
}

/// The non-critical password policy request control, sent with every person's bind so a
/// server running the ppolicy overlay says why it refused (ignored by others).
pub(super) fn policy_request() -> RawControl {
    RawControl {
        ctype: PASSWORD_POLICY_OID.into(),
        crit: false,
        val: None,
    }
}

/// Reads a bind's result.
pub(super) fn outcome(result: &LdapResult) -> BindOutcome {
    let policy = result
        .ctrls
        .iter()
        .filter(|c| c.1.ctype == PASSWORD_POLICY_OID)
        .find_map(|c| c.1.val.as_deref().and_then(policy_error));
    let ad = ad_data_code(&result.text).and_then(ad_reason);
    match result.rc {
        // A bind that succeeds while the policy says the password must be changed first is
        // still refused: the directory allows nothing else on it.
        SUCCESS => match policy {
            Some(reason) => BindOutcome::Refused(reason),
            None => BindOutcome::Accepted,
        },
        BUSY | UNAVAILABLE => BindOutcome::Unavailable(format!("user bind failed (LDAP result {})", result.rc)),
        INVALID_CREDENTIALS => BindOutcome::Refused(ad.or(policy).unwrap_or(RejectReason::WrongPassword)),
        rc => BindOutcome::Refused(ad.or(policy).unwrap_or(RejectReason::BindRefused(rc))),
    }
}

/// Active Directory's sub-code: the hex number after `data ` in a diagnostic message such as
/// `80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563`.
fn ad_data_code(text: &str) -> Option<u32> {
    let (_, after) = text.split_once("data ")?;
    let digits: String = after.chars().take_while(char::is_ascii_hexdigit).collect();
    u32::from_str_radix(&digits, 16).ok()
}

/// What an Active Directory sub-code says about the account.
fn ad_reason(code: u32) -> Option<RejectReason> {
    Some(match code {
        0x525 | 0x52e => RejectReason::WrongPassword,
        0x530 | 0x531 | 0x534 => RejectReason::Restricted,
        0x532 | 0x773 => RejectReason::PasswordExpired,
        0x533 => RejectReason::Disabled,
        0x701 => RejectReason::AccountExpired,
        0x775 => RejectReason::Locked,
        _ => return None,
    })
}

/// The `error` of a password policy response value, when it concerns a bind:
/// `SEQUENCE { warning [0] CHOICE … OPTIONAL, error [1] ENUMERATED … OPTIONAL }`.
/// Malformed values give `None`.
fn policy_error(value: &[u8]) -> Option<RejectReason> {
    let (tag, body, _) = ber_element(value)?;
    if tag != 0x30 {
        return None;
    }
    let mut rest = body;
    while !rest.is_empty() {
        let (tag, content, after) = ber_element(rest)?;
        if tag == 0x81 {
            return match content {
                [0] => Some(RejectReason::PasswordExpired),
                [1] => Some(RejectReason::Locked),
                // changeAfterReset: an administrator set the password; it must be changed.
                [2] => Some(RejectReason::PasswordExpired),
                _ => None,
            };
        }
        rest = after;
    }
    None
}

/// One BER element at the start of `bytes`: its tag, its content and what follows it. Only the
/// definite lengths a response control may use (up to four length bytes).
fn ber_element(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(count);
        let len = len_bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (content, after) = rest.split_at(len);
    Some((tag, content, after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3::controls::Control;

    fn result(rc: u32, text: &str, policy: Option<&[u8]>) -> LdapResult {
        LdapResult {
            rc,
            matched: String::new(),
            text: text.into(),
            refs: vec![],
            ctrls: policy
                .map(|val| {
                    Control(
                        None,
                        RawControl {
                            ctype: PASSWORD_POLICY_OID.into(),
                            crit: false,
                            val: Some(val.to_vec()),
                        },
                    )
                })
                .into_iter()
                .collect(),
        }
    }

    fn ad(code: &str) -> String {
        format!("80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data {code}, v4563")
    }

    #[test]
    fn success_and_wrong_password() {
        assert_eq!(outcome(&result(0, "", None)), BindOutcome::Accepted);
        assert_eq!(
            outcome(&result(49, "", None)),
            BindOutcome::Refused(RejectReason::WrongPassword)
        );
    }

    #[test]
    fn every_other_result_is_the_persons_refusal_not_an_outage() {
        for rc in [19, 48, 50, 53, 80] {
            assert_eq!(
                outcome(&result(rc, "", None)),
                BindOutcome::Refused(RejectReason::BindRefused(rc)),
                "{rc}"
            );
        }
        assert_eq!(
            RejectReason::BindRefused(53).to_string(),
            "bind_refused (LDAP result 53)"
        );
        for rc in [51, 52] {
            assert!(
                matches!(outcome(&result(rc, "", None)), BindOutcome::Unavailable(_)),
                "{rc}"
            );
        }
    }

    #[test]
    fn active_directory_sub_codes_give_the_real_reason() {
        for (code, reason) in [
            ("52e", RejectReason::WrongPassword),
            ("525", RejectReason::WrongPassword),
            ("530", RejectReason::Restricted),
            ("532", RejectReason::PasswordExpired),
            ("533", RejectReason::Disabled),
            ("701", RejectReason::AccountExpired),
            ("773", RejectReason::PasswordExpired),
            ("775", RejectReason::Locked),
        ] {
            assert_eq!(
                outcome(&result(49, &ad(code), None)),
                BindOutcome::Refused(reason),
                "{code}"
            );
        }
        assert_eq!(
            outcome(&result(49, &ad("9999"), None)),
            BindOutcome::Refused(RejectReason::WrongPassword),
            "an unknown sub-code is a wrong password"
        );
    }

    #[test]
    fn password_policy_control_gives_the_real_reason() {
        // SEQUENCE { error [1] accountLocked }
        let locked = [0x30, 0x03, 0x81, 0x01, 0x01];
        assert_eq!(
            outcome(&result(49, "", Some(&locked))),
            BindOutcome::Refused(RejectReason::Locked)
        );
        // SEQUENCE { warning [0] { graceAuthNsRemaining [1] 2 }, error [1] passwordExpired }
        let expired = [0x30, 0x08, 0xa0, 0x03, 0x81, 0x01, 0x02, 0x81, 0x01, 0x00];
        assert_eq!(
            outcome(&result(49, "", Some(&expired))),
            BindOutcome::Refused(RejectReason::PasswordExpired)
        );
        // A successful bind whose password must be changed first.
        let reset = [0x30, 0x03, 0x81, 0x01, 0x02];
        assert_eq!(
            outcome(&result(0, "", Some(&reset))),
            BindOutcome::Refused(RejectReason::PasswordExpired)
        );
        // Only a warning: the bind stands.
        let warning = [0x30, 0x05, 0xa0, 0x03, 0x80, 0x01, 0x10];
        assert_eq!(outcome(&result(0, "", Some(&warning))), BindOutcome::Accepted);
    }

    #[test]
    fn malformed_policy_values_are_ignored_without_panicking() {
        for junk in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x81],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x80],
            &[0x04, 0x01, 0x01],
        ] {
            assert_eq!(
                outcome(&result(49, "", Some(junk))),
                BindOutcome::Refused(RejectReason::WrongPassword)
            );
        }
    }
}
