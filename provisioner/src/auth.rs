//! Operator API keys: generated with the system random generator, shown once, kept only as a
//! SHA-256 hash (the keys are 256-bit random, so a fast hash is enough), and the role rules
//! that decide what each key may do.

use rampart_store::OperatorRole;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

/// Prefix of every API key, so a leaked key is recognisable in scans.
pub const KEY_PREFIX: &str = "rk_";

/// A fresh API key: `rk_` and 64 hex digits.
pub fn new_api_key() -> Result<String, ring::error::Unspecified> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    SystemRandom::new().fill(&mut *bytes)?;
    Ok(format!("{KEY_PREFIX}{}", hex::encode(*bytes)))
}

/// The hash the store keeps for `key`.
pub fn key_hash(key: &str) -> Vec<u8> {
    digest(&SHA256, key.trim().as_bytes()).as_ref().to_vec()
}

/// What an API route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read tokens, people, reports and history.
    Read,
    /// Issue, revoke, unlock, resync tokens; enrol people.
    ManageTokens,
    /// Operators and seed-sealing keys.
    Administer,
}

/// Whether `role` grants `permission`.
pub fn allows(role: OperatorRole, permission: Permission) -> bool {
    match permission {
        Permission::Read => true,
        Permission::ManageTokens => matches!(role, OperatorRole::Admin | OperatorRole::Helpdesk),
        Permission::Administer => role == OperatorRole::Admin,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_are_random_and_hashed() {
        let a = new_api_key().unwrap();
        let b = new_api_key().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == 67);
        assert_eq!(key_hash(&a), key_hash(&format!(" {a}\n")));
        assert_ne!(key_hash(&a), key_hash(&b));
    }

    #[test]
    fn roles() {
        use OperatorRole::*;
        assert!(allows(Auditor, Permission::Read));
        assert!(!allows(Auditor, Permission::ManageTokens));
        assert!(allows(Helpdesk, Permission::ManageTokens));
        assert!(!allows(Helpdesk, Permission::Administer));
        assert!(allows(Admin, Permission::Administer));
    }
}
