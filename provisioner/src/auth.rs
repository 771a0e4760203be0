//! Operator API keys: generated with the system random generator, shown once, kept only as a
//! SHA-256 hash ([`rampart_store::access`]); what each role may do is
//! [`rampart_core::access`].

use ring::rand::{SecureRandom, SystemRandom};

/// Prefix of every API key, so a leaked key is recognisable in scans.
pub const KEY_PREFIX: &str = "rk_";

/// A fresh API key: `rk_` and 64 hex digits.
pub fn new_api_key() -> Result<String, ring::error::Unspecified> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    SystemRandom::new().fill(&mut *bytes)?;
    Ok(format!("{KEY_PREFIX}{}", hex::encode(*bytes)))
}

pub use rampart_core::access::{Permission, allows};
pub use rampart_store::access::key_hash;

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
}
