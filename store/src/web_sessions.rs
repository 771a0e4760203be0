//! Browser sessions of the provisioner's web console: what the store keeps of one (never the
//! cookie itself, only its SHA-256) and that hash. Every provisioner host finds a session
//! through the store, so a person signed in on one host stays signed in on the others.

use ring::digest::{SHA256, digest};
use std::fmt;

/// The hash the store keeps for a session cookie's value: SHA-256 (the value is 256-bit
/// random, so a fast hash is enough, and the store never holds a usable cookie).
pub fn web_session_hash(cookie_value: &str) -> Vec<u8> {
    digest(&SHA256, cookie_value.as_bytes()).as_ref().to_vec()
}

/// One signed-in browser session of the web console.
#[derive(Clone, PartialEq, Eq)]
pub struct WebSession {
    /// [`web_session_hash`] of the cookie value: the session's key.
    pub id_hash: Vec<u8>,
    /// The person's stable directory id (a known user).
    pub user_id: String,
    /// The person's normalised username at sign-in.
    pub username: String,
    /// The console roles granted at sign-in, comma-separated (`employee,helpdesk`).
    pub roles: String,
    /// The token every form of this session must carry.
    pub csrf_token: String,
    /// The client address at sign-in.
    pub source: String,
    /// Unix seconds of sign-in.
    pub created_at: i64,
    /// Unix seconds of the last request seen (the idle limit counts from here).
    pub last_seen_at: i64,
    /// Unix seconds after which the session no longer works, however busy.
    pub expires_at: i64,
}

impl fmt::Debug for WebSession {
    /// Everything but the hash and the form token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSession")
            .field("user_id", &self.user_id)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .field("source", &self.source)
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256_of_the_cookie_value() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let abc = web_session_hash("abc");
        assert_eq!(abc.len(), 32);
        assert_eq!(abc[..4], [0xba, 0x78, 0x16, 0xbf]);
        assert_eq!(abc[28..], [0xf2, 0x00, 0x15, 0xad]);
        assert_ne!(web_session_hash("abc"), web_session_hash("abd"));
    }

    #[test]
    fn debug_leaves_out_the_hash_and_the_form_token() {
        let session = WebSession {
            id_hash: vec![0xab; 32],
            user_id: "u1".to_owned(),
            username: "alice".to_owned(),
            roles: "employee".to_owned(),
            csrf_token: "csrf-secret-value".to_owned(),
            source: "192.0.2.7".to_owned(),
            created_at: 1,
            last_seen_at: 2,
            expires_at: 3,
        };
        let shown = format!("{session:?}");
        assert!(shown.contains("alice") && shown.contains("employee"), "{shown}");
        assert!(!shown.contains("csrf-secret-value"), "{shown}");
        assert!(!shown.contains("171") && !shown.contains("id_hash"), "{shown}");
    }
}
