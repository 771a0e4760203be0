//! Sessions: random ids and bearer tickets from the system CSPRNG; the store keeps only the
//! ticket's SHA-256, so a stolen database cannot resume anyone's session. A session's end is
//! kept in the store with who ended it — the operator of a kill, the rule of an automatic end,
//! the person of a logout — and every gateway's session-end audit record names that ender.

use crate::registry::LiveSession;
use crate::server::Shared;
use rampart_core::audit::{Activity, Actor, AuditEvent, Class, Status, User};
use rampart_store::EndedBy;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

/// Who ended a session for a `reason` no operator gave: the person for a logout, else the
/// rule the reason names (`idle`, `expired`, `session_limit`, `ticket_reused`, …).
pub(crate) fn ender_of(reason: &str, username: &str) -> EndedBy {
    match reason {
        "logout" => EndedBy::Person(username.to_owned()),
        rule => EndedBy::Rule(rule.to_owned()),
    }
}

/// The audit record's `actor` for an ender: the operator by name (type `Operator`), a rule as
/// `rule NAME` (type `System`), the person as themselves.
fn actor_of(ended_by: &EndedBy, session: &LiveSession) -> Actor {
    match ended_by {
        EndedBy::Operator(name) => Actor::operator(name),
        EndedBy::Rule(_) => Actor::system(&ended_by.to_string()),
        EndedBy::Person(_) => Actor {
            user: User::with_uid(&session.username, &session.user_id),
        },
    }
}

impl Shared {
    /// Ends a session in the store with who ended it (so other gateways and resumes see both)
    /// and here.
    pub async fn end_session_by(&self, id: &str, reason: &str, ended_by: &EndedBy) {
        if let Err(e) = self
            .store
            .end_session_by(id, reason, Some(ended_by), self.clock.now())
            .await
        {
            tracing::error!(target: "rampart::gateway", session = %id, reason, error = %e, "cannot record the end of a session");
        }
        if let Some(session) = self.registry.get(id) {
            self.end_here_by(&session, reason, ended_by);
        }
    }

    /// Ends a session on this gateway: its connections close and its flows are reset. The
    /// first end writes the session-end record (`Logoff`, `status_detail` the reason, `actor`
    /// the ender) and the log line.
    pub fn end_here_by(&self, session: &LiveSession, reason: &str, ended_by: &EndedBy) {
        if session.end(reason) {
            tracing::info!(
                target: "rampart::auth", user = %session.username, session = %session.id, reason,
                ended_by = %ended_by, "session ended"
            );
            self.metrics.session_ended(reason);
            self.audit.record(
                AuditEvent::new(
                    Class::Authentication,
                    Activity::LOGOFF,
                    self.clock.now_ms(),
                    Status::Success,
                    "session ended",
                )
                .detail(reason)
                .user(User::with_uid(&session.username, &session.user_id))
                .actor(actor_of(ended_by, session))
                .session(&session.id),
            );
        }
    }
}

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

/// The form of a ticket that is stored and looked up.
pub(crate) fn ticket_hash(ticket: &str) -> Vec<u8> {
    digest(&SHA256, ticket.as_bytes()).as_ref().to_vec()
}

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
