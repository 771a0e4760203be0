//! argon2id password hashing for the local directory, with a bound on concurrent hashes so a
//! login storm cannot exhaust memory (each hash takes ~19 MiB).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use ring::rand::{SecureRandom, SystemRandom};

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The system random generator failed.
    #[error("no randomness available for a salt")]
    Random,
    /// The stored hash is not a valid PHC string.
    #[error("stored password hash is malformed")]
    MalformedHash,
    /// Hashing failed.
    #[error("password hashing failed")]
    Hash,
}

/// Hashes a password with argon2id (OWASP parameters: 19 MiB, 2 passes) and a random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    SystemRandom::new().fill(&mut salt).map_err(|_| PasswordError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| PasswordError::Random)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hash)
}

/// Checks a password against a PHC hash string. Constant-time in the comparison.
pub fn verify_password(password: &str, hash: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(hash).map_err(|_| PasswordError::MalformedHash)?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hash_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains("correct horse"));
        assert!(verify_password("correct horse", &hash).unwrap());
        assert!(!verify_password("wrong", &hash).unwrap());
        assert!(verify_password("x", "not a hash").is_err());
    }

    #[test]
    fn salts_differ() {
        assert_ne!(hash_password("p").unwrap(), hash_password("p").unwrap());
    }
}
