//! Operator API keys as every Rampart service checks them: the stored form of a key (its
//! SHA-256; keys are 256-bit random, so a fast hash is enough). What each role may do is
//! `rampart_core::access`.

use ring::digest::{SHA256, digest};

/// The hash the store keeps for `key` (surrounding whitespace ignored).
pub fn key_hash(key: &str) -> Vec<u8> {
    digest(&SHA256, key.trim().as_bytes()).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ignores_surrounding_whitespace() {
        assert_eq!(key_hash("rk_abc"), key_hash(" rk_abc\n"));
        assert_ne!(key_hash("rk_abc"), key_hash("rk_abd"));
        assert_eq!(key_hash("rk_abc").len(), 32);
    }
}
