//! Username normalisation: one canonical spelling per person, so `Alice`, `alice` and
//! ` alice ` are the same account and odd characters never reach a directory query unchecked.

/// Longest username accepted, in characters.
pub const MAX_USERNAME_LEN: usize = 256;

/// Why a typed username cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Nothing but white space.
    #[error("the username is empty")]
    Empty,
    /// Longer than [`MAX_USERNAME_LEN`].
    #[error("the username is too long")]
    TooLong,
    /// Contains a control character (including NUL, newlines and escapes).
    #[error("the username contains control characters")]
    ControlCharacter,
}

/// Trims surrounding white space and lower-cases; rejects empty, overlong and control-bearing
/// names. Directory adapters still escape the result before it enters a filter or DN.
pub fn normalize_username(typed: &str) -> Result<String, UsernameError> {
    let trimmed = typed.trim();
    if trimmed.is_empty() {
        return Err(UsernameError::Empty);
    }
    if trimmed.chars().count() > MAX_USERNAME_LEN {
        return Err(UsernameError::TooLong);
    }
    if trimmed.chars().any(char::is_control) {
        return Err(UsernameError::ControlCharacter);
    }
    Ok(trimmed.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_name_agree() {
        for typed in ["alice", "Alice", "ALICE", " alice ", "\talice\u{3000}"] {
            assert_eq!(normalize_username(typed).as_deref(), Ok("alice"), "{typed:?}");
        }
    }

    #[test]
    fn rejects_empty_long_and_control() {
        assert_eq!(normalize_username("   "), Err(UsernameError::Empty));
        assert_eq!(normalize_username(&"a".repeat(257)), Err(UsernameError::TooLong));
        for bad in ["al\0ice", "al\nice", "a\u{1b}[31m"] {
            assert_eq!(normalize_username(bad), Err(UsernameError::ControlCharacter), "{bad:?}");
        }
    }

    #[test]
    fn filter_metacharacters_are_kept_for_escaping_later() {
        assert_eq!(normalize_username("alice)(uid=*").as_deref(), Ok("alice)(uid=*"));
    }
}
