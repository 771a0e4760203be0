//! A QUIC connection's session: the per-connection state, attaching a logged-in or resumed
//! session (and closing the connection when it ends), detaching it, and the login deadline for
//! a connection with no session.

use crate::registry::{LiveSession, SessionInfo};
use crate::state::Shared;
use crate::transport;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::{Arc, Mutex};

/// QUIC application close code for connections that did not log in in time.
const CLOSE_LOGIN_DEADLINE: u32 = 0x10;
/// QUIC application close code after too many failed logins.
pub(crate) const CLOSE_TOO_MANY_FAILURES: u32 = 0x11;
/// QUIC application close code when the session ended (kill, revocation, expiry…); the
/// close reason carries why.
pub(crate) const CLOSE_SESSION_ENDED: u32 = 0x12;

/// Per-connection state.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    session: Mutex<Option<Arc<LiveSession>>>,
    pub(crate) control_taken: AtomicBool,
    /// Forwarded connections open on this QUIC connection.
    pub flows: AtomicU32,
    /// Concurrent streams given to the peer since login (`transport::grant_streams`).
    pub(crate) stream_credit: Mutex<u32>,
}

impl ConnState {
    pub(crate) fn session(&self) -> Option<Arc<LiveSession>> {
        self.lock().clone()
    }

    pub(crate) fn replace_session(&self, session: Option<Arc<LiveSession>>) -> Option<Arc<LiveSession>> {
        std::mem::replace(&mut *self.lock(), session)
    }

    fn is_attached(&self, id: &str) -> bool {
        self.lock().as_ref().is_some_and(|s| s.id == id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<LiveSession>>> {
        self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Closes the connection if it has not logged in by the deadline, keep-alives or not.
pub(crate) async fn enforce_login_deadline(shared: Arc<Shared>, connection: quinn::Connection, state: Arc<ConnState>) {
    tokio::time::sleep(shared.settings.login_deadline()).await;
    if state.session().is_none() {
        tracing::info!(target: "rampart::gateway", source = %connection.remote_address(), "closing connection: no login before the deadline");
        connection.close(quinn::VarInt::from_u32(CLOSE_LOGIN_DEADLINE), b"login deadline passed");
    }
}

/// Attaches a logged-in or resumed session to this connection, and closes the connection
/// when the session ends while attached.
pub(crate) async fn attach(
    shared: &Arc<Shared>,
    connection: &quinn::Connection,
    state: &Arc<ConnState>,
    info: SessionInfo,
) {
    transport::open_up(connection, &shared.settings, &state.stream_credit);
    let session = shared.registry.attach(info, shared.clock.now());
    if let Some(previous) = state.replace_session(Some(session.clone())) {
        detach(shared, &previous).await;
    }
    update_session_gauge(shared);
    let connection = connection.clone();
    let state = state.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = session.ended().cancelled() => {
                if state.is_attached(&session.id) {
                    let reason = format!("session ended: {}", session.end_reason().unwrap_or("ended"));
                    connection.close(quinn::VarInt::from_u32(CLOSE_SESSION_ENDED), reason.as_bytes());
                }
            }
            _ = connection.closed() => {}
        }
    });
}

/// Detaches a session from a connection; the last connection out records when it was used.
pub(crate) async fn detach(shared: &Shared, session: &LiveSession) {
    if shared.registry.detach(session) && !session.is_ended() {
        let now = shared.clock.now();
        if let Err(e) = shared
            .store
            .touch_session(&session.id, session.last_activity().max(now))
            .await
        {
            tracing::warn!(target: "rampart::gateway", session = %session.id, error = %e, "cannot record session use");
        }
    }
    update_session_gauge(shared);
}

fn update_session_gauge(shared: &Shared) {
    shared
        .metrics
        .sessions_active()
        .set(i64::try_from(shared.registry.len()).unwrap_or(i64::MAX));
}
