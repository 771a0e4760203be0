//! Session ids and bearer tickets from the system CSPRNG; the store keeps only the ticket's
//! SHA-256, so a stolen database cannot resume anyone's session.

use ring::rand::{SecureRandom, SystemRandom};

/// Random bytes as lower-case hex. Fails only if the OS generator fails.
pub(crate) fn random_hex(bytes: usize) -> Option<String> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new().fill(&mut buf).ok()?;
    Some(hex::encode(buf))
}

/// A new session id (128 bits) and ticket (256 bits).
pub(crate) fn new_id_and_ticket() -> Option<(String, String)> {
    Some((random_hex(16)?, random_hex(32)?))
}

/// A new ticket (256 bits), as handed out at every resume.
pub(crate) fn new_ticket() -> Option<String> {
    random_hex(32)
}

/// The form of a ticket that is stored and looked up: the store's own (also used by the
/// provisioner to find the session a rehearsal report names).
pub(crate) use rampart_store::readiness::session_ticket_hash as ticket_hash;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_are_random_and_sized() {
        let (a, ta) = new_id_and_ticket().unwrap();
        let (b, tb) = new_id_and_ticket().unwrap();
        assert_ne!(a, b);
        assert_ne!(ta, tb);
        assert_eq!(a.len(), 32);
        assert_eq!(ta.len(), 64);
        assert_eq!(ticket_hash(&ta).len(), 32);
        assert_ne!(ticket_hash(&ta), ticket_hash(&tb));
    }
}
