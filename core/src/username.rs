//! Username normalisation: one canonical spelling per person, the way identity systems compare
//! usernames (RFC 8265's UsernameCaseMapped profile: fullwidth and halfwidth forms mapped to
//! their ordinary letters, Unicode default case folding, NFC, only identifier characters).
//! `Alice`, ` alice ` and `ａｌｉｃｅ` come out as one name; look-alikes the profile cannot map
//! (the Kelvin sign, ligatures, invisible characters) are refused; nothing odd reaches a
//! directory query unchecked.

use precis_profiles::UsernameCaseMapped;
use precis_profiles::precis_core::profile::PrecisFastInvocation;
use precis_profiles::precis_core::{DerivedPropertyValue, Error as PrecisError};

/// Longest username accepted, in characters (as typed, and once normalised).
pub const MAX_USERNAME_LEN: usize = 256;

/// Why a typed username cannot be used. The input is never quoted: a password typed into the
/// username field must not reach a log through an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Nothing but white space.
    #[error("the username is empty")]
    Empty,
    /// Longer than [`MAX_USERNAME_LEN`].
    #[error("the username is too long")]
    TooLong,
    /// Contains a control character (including NUL, tabs inside, newlines and escapes).
    #[error("the username contains control characters")]
    ControlCharacter,
    /// Contains white space between its characters.
    #[error("the username contains spaces")]
    Space,
    /// Contains a character usernames may not hold: a symbol, an invisible or compatibility
    /// character (such as the Kelvin sign or a ligature), or mixes directions badly.
    #[error("the username contains characters a username cannot hold")]
    Disallowed,
}

/// The one spelling of a typed username: surrounding white space trimmed, then RFC 8265
/// UsernameCaseMapped enforcement (width mapping, case folding, NFC, IdentifierClass, the
/// bidi rule). Refuses empty, overlong, spaced, control-bearing and non-identifier names
/// rather than guessing. ASCII punctuation (including LDAP filter metacharacters) is allowed
/// by the profile: directory adapters still escape the result before it enters a filter or DN.
pub fn normalize_username(typed: &str) -> Result<String, UsernameError> {
    let trimmed = typed.trim();
    if trimmed.is_empty() {
        return Err(UsernameError::Empty);
    }
    if trimmed.chars().count() > MAX_USERNAME_LEN {
        return Err(UsernameError::TooLong);
    }
    let normalised = UsernameCaseMapped::enforce(trimmed).map_err(|e| refusal(trimmed, &e))?;
    if normalised.chars().count() > MAX_USERNAME_LEN {
        return Err(UsernameError::TooLong);
    }
    Ok(normalised.into_owned())
}

/// What the profile refused, in our terms.
fn refusal(trimmed: &str, error: &PrecisError) -> UsernameError {
    let PrecisError::BadCodepoint(info) = error else {
        return UsernameError::Disallowed;
    };
    match char::from_u32(info.cp) {
        Some(c) if c.is_control() => UsernameError::ControlCharacter,
        Some(c) if c.is_whitespace() => UsernameError::Space,
        // Width mapping turns the ideographic space into a plain one before the check.
        _ if info.property == DerivedPropertyValue::SpecClassDis && trimmed.chars().any(char::is_whitespace) => {
            UsernameError::Space
        }
        _ => UsernameError::Disallowed,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic, clippy::expect_used)]
    use super::*;

    fn ok(typed: &str) -> String {
        normalize_username(typed).unwrap_or_else(|e| panic!("{typed:?}: {e}"))
    }

    #[test]
    fn spellings_of_one_name_agree() {
        for typed in [
            "alice",
            "Alice",
            "ALICE",
            " alice ",
            "alice\t",
            "\talice\u{3000}",
            // Fullwidth letters, wholly or in part.
            "ａｌｉｃｅ",
            "Ａｌｉｃｅ",
            "Ａlice",
            "ＡＬＩＣＥ",
        ] {
            assert_eq!(ok(typed), "alice", "{typed:?}");
        }
    }

    #[test]
    fn halfwidth_forms_map_to_their_ordinary_letters() {
        // Halfwidth katakana KA becomes the ordinary one.
        assert_eq!(ok("\u{FF76}"), "\u{30AB}");
    }

    #[test]
    fn composed_and_decomposed_accents_are_one_name() {
        let composed = ok("jos\u{00E9}");
        assert_eq!(ok("jose\u{0301}"), composed, "NFD input is composed");
        assert_eq!(ok("JOS\u{00C9}"), composed, "case folding reaches accented letters");
        assert_eq!(composed, "jos\u{00E9}");
    }

    #[test]
    fn the_kelvin_sign_and_other_compatibility_look_alikes_are_refused() {
        // A directory folds U+212A to `k`; here it is refused, never a second spelling.
        for bad in [
            "\u{212A}ate",
            "\u{FB01}ona",
            "alice\u{2126}",
            "x\u{00AD}y",
            "al\u{200B}ice",
        ] {
            assert_eq!(normalize_username(bad), Err(UsernameError::Disallowed), "{bad:?}");
        }
        // Plain ASCII `K` stays a letter.
        assert_eq!(ok("Kate"), "kate");
    }

    #[test]
    fn rejects_empty_long_spaced_and_control() {
        assert_eq!(normalize_username("   "), Err(UsernameError::Empty));
        assert_eq!(normalize_username("\t\u{3000}"), Err(UsernameError::Empty));
        assert_eq!(normalize_username(&"a".repeat(257)), Err(UsernameError::TooLong));
        assert_eq!(ok(&"a".repeat(256)).len(), 256);
        for bad in ["al\0ice", "al\nice", "a\u{1b}[31m", "al\tice", "alice\u{7f}"] {
            assert_eq!(normalize_username(bad), Err(UsernameError::ControlCharacter), "{bad:?}");
        }
        for bad in ["al ice", "al\u{3000}ice", "al\u{00A0}ice", "ａｌ\u{3000}ｉｃｅ"] {
            assert_eq!(normalize_username(bad), Err(UsernameError::Space), "{bad:?}");
        }
    }

    #[test]
    fn symbols_are_refused() {
        for bad in ["alice\u{2764}", "\u{1F600}", "a\u{2212}b"] {
            assert_eq!(normalize_username(bad), Err(UsernameError::Disallowed), "{bad:?}");
        }
    }

    #[test]
    fn filter_metacharacters_are_kept_for_escaping_later() {
        assert_eq!(ok("alice)(uid=*"), "alice)(uid=*");
        assert_eq!(ok("a\\b"), "a\\b");
        assert_eq!(ok("*"), "*");
        assert_eq!(
            ok("ＡＬＩＣＥ)(UID=＊)"),
            "alice)(uid=*)",
            "fullwidth metacharacters become ASCII"
        );
    }

    #[test]
    fn errors_never_quote_the_input() {
        for bad in ["secret here", "secret\nhere", "secret\u{212A}"] {
            let message = normalize_username(bad).expect_err("refused").to_string();
            assert!(!message.contains("secret"), "{message}");
        }
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for typed in ["Alice", "ａｌｉｃｅ", "jose\u{0301}", "Straße", "ΣΊΣΥΦΟΣ"] {
            let once = ok(typed);
            assert_eq!(ok(&once), once, "{typed:?}");
        }
    }
}
