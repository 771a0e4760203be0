//! Signed checkpoints: a chained record carrying an Ed25519 signature over the stream name and
//! the sequence number and hash of the record before it. Someone able to rewrite the whole log
//! and recompute every hash still cannot forge these without the signing key, which lives apart
//! from the log.

use super::event::Metadata;
use ring::digest::{SHA256, digest};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

const DOMAIN: &str = "rampart-audit-checkpoint/1";

/// The signed statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The audit stream.
    pub stream: String,
    /// Sequence number of the record just before the checkpoint.
    pub covers_seq: u64,
    /// Hash of that record.
    pub covers_hash: String,
    /// Which key signed ([`key_id`] of its public key).
    pub key_id: String,
    /// Ed25519 signature, hex.
    pub signature: String,
}

/// A checkpoint as it is written into the chain.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointRecord {
    /// Milliseconds since the epoch.
    pub time: i64,
    /// `audit checkpoint`.
    pub message: &'static str,
    /// Product and stream.
    pub metadata: Metadata,
    /// The signed statement.
    pub checkpoint: Checkpoint,
}

/// Why a checkpoint does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The checkpoint names another key than the one given to verify with.
    #[error("signed by key {found}, not by the given key {expected}")]
    OtherKey {
        /// Key id in the checkpoint.
        found: String,
        /// Key id of the key given.
        expected: String,
    },
    /// The signature does not match.
    #[error("bad signature")]
    BadSignature,
}

/// Short id of a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(public_key: &[u8]) -> String {
    hex::encode(&digest(&SHA256, public_key).as_ref()[..8])
}

fn message(stream: &str, covers_seq: u64, covers_hash: &str) -> Vec<u8> {
    format!("{DOMAIN}\n{stream}\n{covers_seq}\n{covers_hash}").into_bytes()
}

/// Signs that `stream` reached record `covers_seq` with hash `covers_hash`.
pub fn sign(key: &Ed25519KeyPair, stream: &str, covers_seq: u64, covers_hash: &str) -> Checkpoint {
    let signature = key.sign(&message(stream, covers_seq, covers_hash));
    Checkpoint {
        stream: stream.into(),
        covers_seq,
        covers_hash: covers_hash.into(),
        key_id: key_id(key.public_key().as_ref()),
        signature: hex::encode(signature.as_ref()),
    }
}

/// Checks a checkpoint's signature with `public_key` (32 raw bytes).
pub fn verify(public_key: &[u8], checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
    let expected = key_id(public_key);
    if checkpoint.key_id != expected {
        return Err(CheckpointError::OtherKey {
            found: checkpoint.key_id.clone(),
            expected,
        });
    }
    let signature = hex::decode(&checkpoint.signature).map_err(|_| CheckpointError::BadSignature)?;
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(
            &message(&checkpoint.stream, checkpoint.covers_seq, &checkpoint.covers_hash),
            &signature,
        )
        .map_err(|_| CheckpointError::BadSignature)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // A fixed test key (PKCS#8 v2 generated once); signing needs no randomness.
    fn key() -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]).unwrap()
    }

    #[test]
    fn a_signed_checkpoint_verifies_and_any_change_does_not() {
        let key = key();
        let public = key.public_key().as_ref().to_vec();
        let cp = sign(&key, "gateway", 41, &"ab".repeat(32));
        assert_eq!(verify(&public, &cp), Ok(()));
        let mut moved = cp.clone();
        moved.covers_seq = 40;
        assert_eq!(verify(&public, &moved), Err(CheckpointError::BadSignature));
        let mut renamed = cp.clone();
        renamed.stream = "provisioner".into();
        assert_eq!(verify(&public, &renamed), Err(CheckpointError::BadSignature));
        let other = Ed25519KeyPair::from_seed_unchecked(&[8u8; 32]).unwrap();
        assert!(matches!(
            verify(other.public_key().as_ref(), &cp),
            Err(CheckpointError::OtherKey { .. })
        ));
    }
}
