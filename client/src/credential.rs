//! What resumes a session on a new connection: its id, its latest ticket, and the Ed25519 key
//! the login bound it to. The key is made at login and never leaves this computer except in
//! the 0600 session file; each resume signs this connection's exported keying material with
//! it, and brings a new ticket that replaces the old one.

use crate::ClientError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_core::resume_proof::{self, ClientPublicKey, EXPORTER_LEN};
use rampart_core::secret::Sensitive;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The client's Ed25519 key for one session (PKCS#8, wiped on drop). Saved as base64url.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientKey {
    pkcs8: Sensitive<Vec<u8>>,
}

impl ClientKey {
    /// A new key from the system's random generator.
    pub fn generate() -> Result<Self, ClientError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| ClientError::Local("the system random generator failed".into()))?;
        Ok(Self {
            pkcs8: Sensitive::new(pkcs8.as_ref().to_vec()),
        })
    }

    /// The public half, as sent in `Login`.
    pub fn public_key(&self) -> Result<String, ClientError> {
        let pair = self.pair()?;
        ClientPublicKey::from_bytes(pair.public_key().as_ref())
            .map(|key| key.encode())
            .map_err(|e| ClientError::Local(e.to_string()))
    }

    /// The proof for resuming `session_id` on the connection that exported `exporter`.
    pub fn prove(&self, exporter: &[u8; EXPORTER_LEN], session_id: &str) -> Result<String, ClientError> {
        let signature = self.pair()?.sign(&resume_proof::message(exporter, session_id));
        Ok(resume_proof::encode_proof(signature.as_ref()))
    }

    fn pair(&self) -> Result<Ed25519KeyPair, ClientError> {
        Ed25519KeyPair::from_pkcs8(self.pkcs8.expose())
            .map_err(|_| ClientError::Local("the saved session key is damaged; log in again".into()))
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientKey(<redacted>)")
    }
}

impl Serialize for ClientKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = Sensitive::new(URL_SAFE_NO_PAD.encode(self.pkcs8.expose()));
        serializer.serialize_str(text.expose())
    }
}

impl<'de> Deserialize<'de> for ClientKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Sensitive::<String>::deserialize(deserializer)?;
        let pkcs8 = URL_SAFE_NO_PAD
            .decode(text.expose())
            .map_err(|_| serde::de::Error::custom("the session key is not base64url"))?;
        let key = Self {
            pkcs8: Sensitive::new(pkcs8),
        };
        key.pair()
            .map_err(|_| serde::de::Error::custom("the session key is not an Ed25519 key"))?;
        Ok(key)
    }
}

/// Everything a resume needs. The ticket changes at every resume; the key and id never do.
#[derive(Debug, Clone)]
pub struct ResumeCredential {
    /// Public session id (signed over, so a proof names its session).
    pub session_id: String,
    /// The session's latest ticket.
    pub ticket: Sensitive<String>,
    /// The key named at login.
    pub key: ClientKey,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_key_survives_its_file_form_and_its_proofs_verify() {
        let key = ClientKey::generate().unwrap();
        let json = serde_json::to_string(&key).unwrap();
        let back: ClientKey = serde_json::from_str(&json).unwrap();
        assert_eq!(back, key);
        assert!(!format!("{back:?}").contains(json.trim_matches('"')));
        let public = ClientPublicKey::parse(&key.public_key().unwrap()).unwrap();
        let exporter = [3u8; EXPORTER_LEN];
        let proof = back.prove(&exporter, "s1").unwrap();
        assert_eq!(public.verify(&exporter, "s1", &proof), Ok(()));
        let other = ClientKey::generate().unwrap().prove(&exporter, "s1").unwrap();
        assert!(public.verify(&exporter, "s1", &other).is_err(), "another key's proof");
    }

    #[test]
    fn a_damaged_key_is_refused_when_read() {
        assert!(serde_json::from_str::<ClientKey>("\"AAAA\"").is_err());
        assert!(serde_json::from_str::<ClientKey>("\"***\"").is_err());
    }
}
