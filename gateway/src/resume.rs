//! Resume: a live session attached to a new connection by its latest ticket and a proof that
//! the client holds the key named at login, signed over keying material exported from this
//! very connection (so neither a ticket without the key nor a proof seen on another connection
//! resumes anything). Each resume replaces the ticket by one compare-and-swap in the store; a
//! replaced ticket presented again means a copy of the session is in use, so the session ends
//! — on every gateway, through the store's feed of ends — and the audit trail says why.

use crate::registry::SessionInfo;
use crate::session::{new_ticket, ticket_hash};
use crate::state::{EndReason, Shared};
use rampart_core::audit::{Activity, AuditEvent, Class, Status, User};
use rampart_core::protocol::{ErrorCode, SessionGrant};
use rampart_core::resume_proof::{ClientPublicKey, EXPORTER_LEN};
use rampart_core::secret::Sensitive;
use rampart_store::{Rotation, SessionRecord, TicketMatch};
use std::net::SocketAddr;

/// The end reason of a session whose replaced ticket came back, and the resume's refusal.
const TICKET_REUSED: &str = EndReason::TicketReused.as_str();

/// What a client presents to resume a session on this connection.
pub(crate) struct ResumeRequest<'a> {
    /// The ticket from the session's latest grant.
    pub ticket: &'a Sensitive<String>,
    /// The client's signature over [`rampart_core::resume_proof::message`].
    pub proof: &'a str,
    /// Keying material exported from this connection's TLS session.
    pub exporter: [u8; EXPORTER_LEN],
}

/// Why a resume was refused: what the client is told, the reason on record, and the session
/// the ticket named, when it named one.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub code: ErrorCode,
    pub reason: &'static str,
    session: Option<SessionRecord>,
}

impl Refusal {
    fn new(code: ErrorCode, reason: &'static str) -> Self {
        Self {
            code,
            reason,
            session: None,
        }
    }

    fn of(code: ErrorCode, reason: &'static str, session: &SessionRecord) -> Self {
        Self {
            code,
            reason,
            session: Some(session.clone()),
        }
    }
}

/// Resumes a session: the ticket must be the session's current one and the proof must verify
/// under its key for this connection; the session must be live and not idle, and the person
/// still enabled in the directory (their groups are refreshed from it). The outcome is on file
/// before the client hears it.
pub(crate) async fn resume(
    shared: &Shared,
    source: SocketAddr,
    request: ResumeRequest<'_>,
) -> Result<(SessionInfo, SessionGrant), Refusal> {
    let result = attempt(shared, source, &request).await;
    let now = shared.clock.now_ms();
    let event = match &result {
        Ok((session, _)) => AuditEvent::new(
            Class::Authentication,
            Activity::RESUME,
            now,
            Status::Success,
            "session resumed",
        )
        .user(User::with_uid(&session.username, &session.user_id).groups(&session.groups))
        .session(&session.id),
        Err(refusal) => {
            let message = if refusal.code == ErrorCode::TicketReused {
                "resume refused: a replaced ticket was presented, the session is ended"
            } else {
                "resume refused"
            };
            let event = AuditEvent::new(Class::Authentication, Activity::RESUME, now, Status::Failure, message)
                .detail(refusal.reason);
            match &refusal.session {
                Some(s) => event.user(User::with_uid(&s.username, &s.user_id)).session(&s.id),
                None => event,
            }
        }
    };
    match (result, shared.audit.try_record_flushed(event.source(source)).await) {
        (Ok((session, _)), Err(e)) => {
            tracing::error!(target: "rampart::audit", user = %session.username, session = %session.id, error = %e, "resume refused: its audit record could not be written");
            Err(Refusal::new(ErrorCode::TryLater, "audit_unavailable"))
        }
        (result, _) => result,
    }
}

async fn attempt(
    shared: &Shared,
    source: SocketAddr,
    request: &ResumeRequest<'_>,
) -> Result<(SessionInfo, SessionGrant), Refusal> {
    let unavailable = |what: &str, e: &dyn std::fmt::Display| {
        tracing::error!(target: "rampart::auth", source = %source, error = %e, "resume could not be checked: {what}");
        Refusal::new(ErrorCode::TryLater, "service_unavailable")
    };
    let refused = |record: &SessionRecord, refusal: Refusal| {
        tracing::warn!(target: "rampart::auth", user = %record.username, source = %source, session = %record.id, outcome = "failure", reason = refusal.reason, "resume refused");
        refusal
    };
    let presented = ticket_hash(request.ticket.expose());
    let now = shared.clock.now();
    let record = match shared
        .store
        .session_for_ticket(&presented)
        .await
        .map_err(|e| unavailable("store", &e))?
    {
        Some(TicketMatch::Current(record)) if record.ended_at.is_none() && record.expires_at > now => record,
        Some(TicketMatch::Replaced(record)) if record.ended_at.is_none() && record.expires_at > now => {
            return Err(end_as_stolen(shared, source, &record).await);
        }
        // Ended because a copy was used: its holders are told so, not just that it ended.
        Some(TicketMatch::Current(record) | TicketMatch::Replaced(record))
            if record.end_reason.as_deref() == Some(TICKET_REUSED) =>
        {
            return Err(refused(
                &record,
                Refusal::of(ErrorCode::TicketReused, "ended_for_ticket_reuse", &record),
            ));
        }
        _ => {
            tracing::warn!(target: "rampart::auth", source = %source, outcome = "failure", reason = "unknown_or_expired_ticket", "resume refused");
            return Err(Refusal::new(ErrorCode::SessionExpired, "unknown_or_expired_ticket"));
        }
    };
    // The ticket is current: the holder must also prove the key, on this connection.
    let Some(key) = record.client_key.as_deref() else {
        return Err(refused(
            &record,
            Refusal::of(ErrorCode::SessionExpired, "no_client_key", &record),
        ));
    };
    let proven = ClientPublicKey::from_bytes(key)
        .and_then(|key| key.verify(&request.exporter, &record.id, request.proof))
        .is_ok();
    if !proven {
        return Err(refused(
            &record,
            Refusal::of(ErrorCode::SessionExpired, "bad_proof", &record),
        ));
    }
    let local_activity = shared.registry.get(&record.id).map(|s| s.last_activity());
    let last_used = [Some(record.created_at), record.last_seen_at, local_activity]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(record.created_at);
    let idle = i64::try_from(shared.settings.session_idle_secs).unwrap_or(i64::MAX);
    if now.saturating_sub(last_used) >= idle {
        shared.end_session(&record.id, EndReason::Idle).await;
        return Err(refused(
            &record,
            Refusal::of(ErrorCode::SessionExpired, "session_idle", &record),
        ));
    }
    let person = match shared.directory.lookup(&record.username).await {
        Ok(Some(person)) if person.stable_id == record.user_id => person,
        Ok(_) => {
            shared.end_session(&record.id, EndReason::AccountDisabled).await;
            return Err(refused(
                &record,
                Refusal::of(ErrorCode::SessionExpired, "account_disabled", &record),
            ));
        }
        Err(e) => return Err(unavailable("directory", &e)),
    };
    let ticket = new_ticket().ok_or_else(|| unavailable("ticket", &"system random generator failed"))?;
    let rotation = shared
        .store
        .rotate_ticket(&record.id, &presented, &ticket_hash(&ticket), &shared.node.id, now)
        .await
        .map_err(|e| unavailable("store", &e))?;
    if rotation == Rotation::NotCurrent {
        // Another resume with the same ticket replaced it first (a copy is in use elsewhere),
        // or the session ended meanwhile.
        return Err(match shared.store.session_for_ticket(&presented).await {
            Ok(Some(TicketMatch::Replaced(record))) if record.ended_at.is_none() => {
                end_as_stolen(shared, source, &record).await
            }
            Ok(_) => refused(
                &record,
                Refusal::of(ErrorCode::SessionExpired, "session_ended", &record),
            ),
            Err(e) => unavailable("store", &e),
        });
    }
    let info = SessionInfo {
        id: record.id,
        user_id: record.user_id,
        username: record.username,
        groups: person.groups,
        source: source.to_string(),
        created_at: record.created_at,
        expires_at: record.expires_at,
    };
    tracing::info!(target: "rampart::auth", user = %info.username, source = %source, session = %info.id, outcome = "success", "session resumed");
    let grant = shared.grant(&info, Some(ticket));
    Ok((info, grant))
}

/// A ticket the session had replaced came back: whoever holds it copied the session before
/// its last resume, or its owner is the one holding the stale copy. Either way the session is
/// no longer one person's, so it ends everywhere.
async fn end_as_stolen(shared: &Shared, source: SocketAddr, record: &SessionRecord) -> Refusal {
    tracing::error!(
        target: "rampart::auth", user = %record.username, user_id = %record.user_id, source = %source,
        session = %record.id, outcome = "failure", reason = "ticket_reused",
        "resume refused: a replaced ticket was presented, so a copy of the session is in use; ending the session"
    );
    shared.end_session(&record.id, EndReason::TicketReused).await;
    Refusal::of(ErrorCode::TicketReused, TICKET_REUSED, record)
}
