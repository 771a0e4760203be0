//! Temporary one-time codes for people who lost their token: their shape (ten digits, shown as
//! two groups of five) and the hash the store keeps, bound to the person so a code issued for
//! one person is worthless for another.

use ring::digest::{SHA256, digest};

/// Digits in a temporary code: more than any TOTP code (6–8), so the two never mix.
pub const TEMP_CODE_DIGITS: usize = 10;
/// Wrong temporary codes a person may enter before their unused codes are spent: a temporary
/// code bypasses the token, so the token's lock does not guard it.
pub const MAX_TEMP_CODE_FAILURES: u32 = 5;

const DOMAIN: &[u8] = b"rampart-temp-code-v1\0";

/// The canonical form of a typed temporary code (digits only, separators ` ` and `-`
/// removed), or `None` if it is not one.
pub fn parse_temp_code(typed: &str) -> Option<String> {
    let digits: String = typed.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    (digits.len() == TEMP_CODE_DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// How a code is shown to people: `12345 67890`.
pub fn display_temp_code(code: &str) -> String {
    let (head, tail) = code.split_at(code.len().min(TEMP_CODE_DIGITS / 2));
    format!("{head} {tail}")
}

/// SHA-256 over a domain separator, the person's stable id and the canonical code.
pub fn temp_code_hash(user_id: &str, code: &str) -> Vec<u8> {
    let mut input = Vec::with_capacity(DOMAIN.len() + user_id.len() + 1 + code.len());
    input.extend_from_slice(DOMAIN);
    input.extend_from_slice(user_id.as_bytes());
    input.push(0);
    input.extend_from_slice(code.as_bytes());
    digest(&SHA256, &input).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parsing_accepts_separators_and_only_ten_digits() {
        assert_eq!(parse_temp_code("12345 67890").as_deref(), Some("1234567890"));
        assert_eq!(parse_temp_code("12345-67890").as_deref(), Some("1234567890"));
        assert_eq!(parse_temp_code("123456"), None);
        assert_eq!(parse_temp_code("12345 6789x"), None);
        assert_eq!(display_temp_code("1234567890"), "12345 67890");
    }

    #[test]
    fn hash_is_bound_to_the_person() {
        assert_ne!(temp_code_hash("u1", "1234567890"), temp_code_hash("u2", "1234567890"));
        assert_eq!(temp_code_hash("u1", "1234567890"), temp_code_hash("u1", "1234567890"));
    }
}
