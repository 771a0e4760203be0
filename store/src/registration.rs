//! Self-service enrolment: registration codes (their shape, the hash the store keeps, how many
//! wrong tries spend them) and the enrolments they open, which stay apart from tokens until the
//! person's first code from their new authenticator confirms them.

use crate::SealedSeed;
pub use rampart_core::registration::Delivery;
use rampart_core::totp::TotpParams;
use ring::digest::{SHA256, digest};
use std::fmt;

/// Characters in a registration code: 16 from a 32-letter alphabet, 80 random bits.
pub const REGISTRATION_CODE_CHARS: usize = 16;
/// Random bytes a registration code is made from.
pub const REGISTRATION_CODE_BYTES: usize = 10;
/// Wrong passwords given with the right registration code before the code is spent and the desk
/// must issue another (a wrong code alone is not counted: 80 random bits are not guessed).
pub const MAX_REGISTRATION_FAILURES: u32 = 5;
/// Wrong first codes from the new authenticator before a started enrolment is dropped.
pub const MAX_ENROLMENT_FAILURES: u32 = 5;

/// Crockford's base 32: digits and letters without `I`, `L`, `O` and `U`, so that a code read
/// from a letter or over the phone cannot be mistaken; typed `O`, `I` and `L` read as `0`, `1`.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const DOMAIN: &[u8] = b"rampart-registration-code-v1\0";

/// The code made from `random` (the caller draws the bytes): 16 characters, canonical form.
pub fn registration_code_from(random: &[u8; REGISTRATION_CODE_BYTES]) -> String {
    let mut bits: u128 = 0;
    for byte in random {
        bits = (bits << 8) | u128::from(*byte);
    }
    (0..REGISTRATION_CODE_CHARS)
        .rev()
        .map(|i| char::from(ALPHABET[usize::try_from((bits >> (5 * i)) & 31).unwrap_or(0)]))
        .collect()
}

/// The canonical form of a typed code (upper case, spaces and dashes removed; the letters `O`,
/// `I` and `L` read as the digits they are usually mistaken for), or `None` if it is not one.
pub fn parse_registration_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    (code.len() == REGISTRATION_CODE_CHARS && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// How a code is shown to people: `7K2M-9QXD-...` in four groups of four.
pub fn display_registration_code(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// SHA-256 over a domain separator, the person's stable id and the canonical code: a code is
/// worthless for anyone else, and 80 random bits leave nothing to guess offline.
pub fn registration_code_hash(user_id: &str, code: &str) -> Vec<u8> {
    let mut input = Vec::with_capacity(DOMAIN.len() + user_id.len() + 1 + code.len());
    input.extend_from_slice(DOMAIN);
    input.extend_from_slice(user_id.as_bytes());
    input.push(0);
    input.extend_from_slice(code.as_bytes());
    digest(&SHA256, &input).as_ref().to_vec()
}

/// A registration code to store: only its hash.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistrationCode {
    /// Random id, named in history and audit records (never the code).
    pub id: String,
    /// The person's stable id.
    pub user_id: String,
    /// [`registration_code_hash`] of the code.
    pub code_hash: Vec<u8>,
    /// Unix seconds of issue.
    pub created_at: i64,
    /// Unix seconds after which it no longer works.
    pub expires_at: i64,
    /// The operator who issued it.
    pub created_by: String,
    /// How it is delivered.
    pub delivery: Delivery,
}

impl fmt::Debug for RegistrationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrationCode")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

/// Where a registration code stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeState {
    /// It can still open an enrolment.
    Live,
    /// It opened an enrolment that was confirmed.
    Used,
    /// Its time ran out.
    Expired,
    /// A newer code replaced it, or wrong tries spent it.
    Withdrawn,
}

/// A registration code as the desk sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationCodeView {
    /// Its id.
    pub id: String,
    /// Unix seconds of issue.
    pub created_at: i64,
    /// Unix seconds of expiry.
    pub expires_at: i64,
    /// Who issued it.
    pub created_by: String,
    /// How it was delivered.
    pub delivery: Delivery,
    /// Wrong tries so far.
    pub failures: u32,
    /// Where it stands.
    pub state: CodeState,
}

/// What a registration code check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    /// The person's live code: the id to redeem when the enrolment is confirmed.
    Valid {
        /// The code's id.
        code_id: String,
    },
    /// Not the person's live code; the wrong try was counted. `tries_left` 0: it is spent.
    Wrong {
        /// Tries left before the live code is spent.
        tries_left: u32,
    },
    /// The person holds no live code (none issued, used, expired or spent).
    NoLiveCode,
}

/// An enrolment waiting for its first code: the new seed, sealed for the token it becomes.
#[derive(Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// Random id, the handle the person confirms with.
    pub id: String,
    /// The person's stable id.
    pub user_id: String,
    /// The registration code that opened it (redeemed at confirmation).
    pub registration_code: String,
    /// The token id the seed is sealed for.
    pub token_id: String,
    /// How codes are computed.
    pub params: TotpParams,
    /// The seed, sealed for `token_id`.
    pub sealed: SealedSeed,
    /// Unix seconds it was started.
    pub created_at: i64,
    /// Unix seconds after which it can no longer be confirmed.
    pub expires_at: i64,
    /// Wrong first codes so far.
    pub failures: u32,
}

impl fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enrolment")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("token_id", &self.token_id)
            .field("expires_at", &self.expires_at)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

/// What the provisioner found when the first code confirmed an enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    /// The time step of the confirming code, recorded as used.
    pub step: u64,
    /// The seed sealed again under the current key (rotation may have retired the one that
    /// sealed the enrolment).
    pub sealed: SealedSeed,
    /// What to do about a live token: replace it, or (with dual control on) refuse.
    pub mode: crate::IssueMode,
}

/// What confirming an enrolment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// The token is live and active; `replaced` names the token it replaced, if any.
    Confirmed {
        /// The person's earlier live token, now revoked.
        replaced: Option<String>,
    },
    /// The enrolment is unknown, expired or spent, or its registration code no longer works
    /// (replaced by a newer one, or already used): nothing was written.
    Gone,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_are_sixteen_unambiguous_characters_and_read_back() {
        let code = registration_code_from(&[0xFF; REGISTRATION_CODE_BYTES]);
        assert_eq!(code.len(), REGISTRATION_CODE_CHARS);
        let zero = registration_code_from(&[0; REGISTRATION_CODE_BYTES]);
        assert_eq!(zero, "0000000000000000");
        assert_eq!(code, "ZZZZZZZZZZZZZZZZ");
        let mixed = registration_code_from(&[0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0, 0x0F, 0x1E]);
        for c in ['I', 'L', 'O', 'U'] {
            assert!(!mixed.contains(c), "{mixed}");
        }
        assert_eq!(
            parse_registration_code("oooo-iiii-llll-0000").as_deref(),
            Some("0000111111110000")
        );
        let shown = display_registration_code(&code);
        assert_eq!(shown.len(), 19);
        assert_eq!(parse_registration_code(&shown).as_deref(), Some(code.as_str()));
        assert_eq!(
            parse_registration_code(&shown.to_lowercase()).as_deref(),
            Some(code.as_str())
        );
        assert_eq!(parse_registration_code("ABCD-EFGH"), None);
        assert_eq!(parse_registration_code("ABCD-EFGH-JKMN-PQR!"), None);
        assert_eq!(parse_registration_code("ABCD-EFGH-JKMN-PQRU"), None);
    }

    #[test]
    fn hash_is_bound_to_the_person() {
        let code = "ABCDEFGHJKMNPQRS";
        assert_ne!(registration_code_hash("u1", code), registration_code_hash("u2", code));
        assert_eq!(registration_code_hash("u1", code), registration_code_hash("u1", code));
    }
}
