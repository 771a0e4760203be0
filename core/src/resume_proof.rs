//! Proof of possession for resuming a session: at login the client names an Ed25519 public
//! key, and every resume carries a signature by that key over the session id and keying
//! material exported from the new connection's TLS handshake (RFC 5705 / RFC 8446 §7.5).
//!
//! A ticket alone therefore resumes nothing, and a proof recorded on one connection is
//! worthless on any other, since no two connections export the same material. Signing needs
//! the private key and stays with the client; this module builds the signed message and checks
//! signatures.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ED25519, UnparsedPublicKey};

/// Label of the keying material exported from the connection for the proof.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-rampart-resume";
/// Bytes of keying material exported for the proof.
pub const EXPORTER_LEN: usize = 32;
/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Domain separation: these signatures mean "resume", in this protocol version, nothing else.
const CONTEXT: &[u8] = b"rampart resume proof v2\0";

/// Why a key or a proof was not accepted. Never quotes the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The public key is not base64url of 32 bytes.
    #[error("the client key is not a base64url Ed25519 public key")]
    MalformedKey,
    /// The proof is not base64url.
    #[error("the resume proof is not base64url")]
    MalformedProof,
    /// The signature does not verify under the session's key for this connection.
    #[error("the resume proof does not verify")]
    Mismatch,
}

/// A client's Ed25519 public key, as bound to a session at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPublicKey([u8; PUBLIC_KEY_LEN]);

impl ClientPublicKey {
    /// Parses the key as sent in `Login` (base64url without padding).
    pub fn parse(text: &str) -> Result<Self, ProofError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| ProofError::MalformedKey)?;
        Self::from_bytes(&bytes)
    }

    /// The key from its 32 raw bytes (as stored).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProofError> {
        bytes.try_into().map(Self).map_err(|_| ProofError::MalformedKey)
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The form sent in `Login`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Checks `proof` (base64url, as sent in `Resume`) for session `session_id` on the
    /// connection that exported `exporter`.
    pub fn verify(&self, exporter: &[u8; EXPORTER_LEN], session_id: &str, proof: &str) -> Result<(), ProofError> {
        let signature = URL_SAFE_NO_PAD
            .decode(proof.trim())
            .map_err(|_| ProofError::MalformedProof)?;
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(&message(exporter, session_id), &signature)
            .map_err(|_| ProofError::Mismatch)
    }
}

/// The bytes the client signs: a fixed context, the connection's exported material and the
/// session id.
pub fn message(exporter: &[u8; EXPORTER_LEN], session_id: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(CONTEXT.len() + EXPORTER_LEN + session_id.len());
    message.extend_from_slice(CONTEXT);
    message.extend_from_slice(exporter);
    message.extend_from_slice(session_id.as_bytes());
    message
}

/// A signature in the form sent in `Resume`.
pub fn encode_proof(signature: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(signature)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    /// A fixed key (RFC 8032 §7.1, test 1) so the test needs no randomness.
    fn key_pair() -> Ed25519KeyPair {
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").unwrap();
        Ed25519KeyPair::from_seed_unchecked(&seed).unwrap()
    }

    #[test]
    fn a_proof_verifies_only_for_its_connection_and_session() {
        let pair = key_pair();
        let public = ClientPublicKey::parse(&URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())).unwrap();
        let exporter = [7u8; EXPORTER_LEN];
        let proof = encode_proof(pair.sign(&message(&exporter, "s1")).as_ref());
        assert_eq!(public.verify(&exporter, "s1", &proof), Ok(()));
        assert_eq!(
            public.verify(&[8u8; EXPORTER_LEN], "s1", &proof),
            Err(ProofError::Mismatch),
            "another connection"
        );
        assert_eq!(
            public.verify(&exporter, "s2", &proof),
            Err(ProofError::Mismatch),
            "another session"
        );
        assert_eq!(public.verify(&exporter, "s1", "!!"), Err(ProofError::MalformedProof));
        assert_eq!(public.verify(&exporter, "s1", ""), Err(ProofError::Mismatch));
    }

    #[test]
    fn keys_of_the_wrong_size_or_form_are_refused() {
        assert_eq!(ClientPublicKey::parse("abc"), Err(ProofError::MalformedKey));
        assert_eq!(ClientPublicKey::parse("***"), Err(ProofError::MalformedKey));
        assert_eq!(ClientPublicKey::from_bytes(&[0; 31]), Err(ProofError::MalformedKey));
        let key = ClientPublicKey::from_bytes(&[1; 32]).unwrap();
        assert_eq!(ClientPublicKey::parse(&key.encode()), Ok(key));
    }
}
