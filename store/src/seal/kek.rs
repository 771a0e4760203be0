//! Key-encryption keys: what wraps the seed-sealing keys kept in the store. Every node holds
//! the same key-encryption key outside the database (a file or an environment variable now);
//! [`KeyEncryptionKey`] is the seam where a hardware security module can take its place.
//!
//! A wrapped key is a random nonce, the AES-256-GCM ciphertext of the 32 key bytes and the tag,
//! with the key id in the associated data, so a wrapped key moved to another id fails to open.
//! The fingerprint names which key-encryption key wrapped a key, never the key itself.

use std::fmt;
use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::{KEY_LEN, SealError, key_file};

/// Environment variable holding a key-encryption key as 64 hex digits.
pub const KEK_ENV: &str = "RAMPART_KEK";
/// Domain separator at the start of the associated data.
const AAD_PREFIX: &[u8] = b"rampart-seal-key-v1\0";

/// Wraps and unwraps seed-sealing keys. Implementations never log or print key material.
pub trait KeyEncryptionKey: Send + Sync + fmt::Debug {
    /// A stable fingerprint of this key-encryption key (not secret).
    fn id(&self) -> &str;
    /// Wraps seal key `key_id`.
    fn wrap(&self, key_id: u32, key: &[u8; KEY_LEN]) -> Result<Vec<u8>, SealError>;
    /// Unwraps seal key `key_id`; [`SealError::Corrupt`] when this is not the key that wrapped it.
    fn unwrap(&self, key_id: u32, wrapped: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, SealError>;
}

/// A key-encryption key held in this process's memory, read from a file or the environment.
pub struct LocalKek {
    key: LessSafeKey,
    id: String,
    rng: SystemRandom,
}

impl fmt::Debug for LocalKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKek").field("id", &self.id).finish_non_exhaustive()
    }
}

impl LocalKek {
    /// From 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<Self, SealError> {
        let bad = || SealError::Io("a key-encryption key must be 64 hex digits".to_owned());
        let bytes = Zeroizing::new(hex_decode(text.trim()).ok_or_else(bad)?);
        let key: &[u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| bad())?;
        Self::from_bytes(key)
    }

    /// From a file holding 64 hex digits, which group and others must not be able to read.
    pub fn from_file(path: &Path) -> Result<Self, SealError> {
        key_file::check_permissions(path)?;
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|err| SealError::Io(format!("cannot read {}: {err}", path.display())))?,
        );
        Self::from_hex(&text).map_err(|err| SealError::Io(format!("{}: {err}", path.display())))
    }

    /// From `RAMPART_KEK`, if set.
    pub fn from_env() -> Option<Result<Self, SealError>> {
        let text = Zeroizing::new(std::env::var(KEK_ENV).ok()?);
        Some(Self::from_hex(&text).map_err(|err| SealError::Io(format!("{KEK_ENV}: {err}"))))
    }

    /// A fresh random key-encryption key and its hex form (to be stored by the caller, 0600).
    pub fn generate() -> Result<(Self, Zeroizing<String>), SealError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new().fill(&mut *bytes).map_err(|_| SealError::Random)?;
        let text = Zeroizing::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
        Ok((Self::from_bytes(&bytes)?, text))
    }

    fn from_bytes(bytes: &[u8; KEY_LEN]) -> Result<Self, SealError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SealError::Io("unusable key".to_owned()))?;
        let mut tagged = b"rampart-kek-id\0".to_vec();
        tagged.extend_from_slice(bytes);
        let fingerprint = digest(&SHA256, &tagged);
        let id = fingerprint.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            key: LessSafeKey::new(unbound),
            id,
            rng: SystemRandom::new(),
        })
    }
}

impl KeyEncryptionKey for LocalKek {
    fn id(&self) -> &str {
        &self.id
    }

    fn wrap(&self, key_id: u32, key: &[u8; KEY_LEN]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut in_out = Zeroizing::new(key.to_vec());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(key_id)),
                &mut *in_out,
            )
            .map_err(|_| SealError::Corrupt)?;
        let mut wrapped = nonce.to_vec();
        wrapped.extend_from_slice(&in_out);
        Ok(wrapped)
    }

    fn unwrap(&self, key_id: u32, wrapped: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, SealError> {
        if wrapped.len() <= NONCE_LEN {
            return Err(SealError::Corrupt);
        }
        let (nonce, ciphertext) = wrapped.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Corrupt)?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad(key_id)), &mut buffer)
            .map_err(|_| SealError::Corrupt)?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if plain.len() != KEY_LEN {
            return Err(SealError::Corrupt);
        }
        key.copy_from_slice(plain);
        Ok(key)
    }
}

fn aad(key_id: u32) -> Vec<u8> {
    let mut aad = AAD_PREFIX.to_vec();
    aad.extend_from_slice(&key_id.to_be_bytes());
    aad
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_wrapped_key_opens_only_under_its_kek_and_its_id() {
        let kek = LocalKek::from_hex(&"11".repeat(32)).unwrap();
        let other = LocalKek::from_hex(&"22".repeat(32)).unwrap();
        let key = [7u8; KEY_LEN];
        let wrapped = kek.wrap(3, &key).unwrap();
        assert_eq!(*kek.unwrap(3, &wrapped).unwrap(), key);
        assert_eq!(kek.unwrap(4, &wrapped).err(), Some(SealError::Corrupt));
        assert_eq!(other.unwrap(3, &wrapped).err(), Some(SealError::Corrupt));
        assert_ne!(kek.id(), other.id());
        assert_eq!(kek.id().len(), 16);
        assert!(!format!("{kek:?}").contains("11111111"));
    }

    #[test]
    fn malformed_keks_are_refused_without_echoing_them() {
        for text in ["", "abc", &"zz".repeat(32), &"11".repeat(31)] {
            let err = LocalKek::from_hex(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("64 hex digits"), "{err}");
        }
    }
}
