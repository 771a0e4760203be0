//! One QUIC connection: the control stream (hello, login, resume, logout), data streams
//! dispatched to forwarding, and the login deadline for connections that never log in.

use crate::forward;
use crate::login;
use crate::server::Shared;
use crate::session::ActiveSession;
use rampart_core::PROTOCOL_VERSION;
use rampart_core::codec::FrameError;
use rampart_core::io::{read_frame, write_frame};
use rampart_core::protocol::{ClientMessage, ErrorCode, ServerMessage};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// QUIC application close code for connections that did not log in in time.
const CLOSE_LOGIN_DEADLINE: u32 = 0x10;
/// QUIC application close code after too many failed logins.
const CLOSE_TOO_MANY_FAILURES: u32 = 0x11;

/// Per-connection state.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    session: Mutex<Option<ActiveSession>>,
    control_taken: AtomicBool,
}

impl ConnState {
    pub(crate) fn session(&self) -> Option<ActiveSession> {
        self.lock().clone()
    }

    fn set_session(&self, session: Option<ActiveSession>) {
        *self.lock() = session;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ActiveSession>> {
        self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Completes the handshake and serves the connection's streams until it closes.
pub(crate) async fn serve(shared: Arc<Shared>, incoming: quinn::Incoming) {
    let source = incoming.remote_address();
    let connection = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(target: "rampart::gateway", source = %source, error = %e, "handshake failed");
            return;
        }
    };
    let state = Arc::new(ConnState::default());
    let deadline = tokio::spawn(enforce_login_deadline(
        shared.clone(),
        connection.clone(),
        state.clone(),
    ));
    while let Ok((send, recv)) = connection.accept_bi().await {
        tokio::spawn(serve_stream(
            shared.clone(),
            connection.clone(),
            state.clone(),
            source,
            send,
            recv,
        ));
    }
    deadline.abort();
}

/// Closes the connection if it has not logged in by the deadline, keep-alives or not.
async fn enforce_login_deadline(shared: Arc<Shared>, connection: quinn::Connection, state: Arc<ConnState>) {
    tokio::time::sleep(shared.settings.login_deadline()).await;
    if state.session().is_none() {
        tracing::info!(target: "rampart::gateway", source = %connection.remote_address(), "closing connection: no login before the deadline");
        connection.close(quinn::VarInt::from_u32(CLOSE_LOGIN_DEADLINE), b"login deadline passed");
    }
}

async fn serve_stream(
    shared: Arc<Shared>,
    connection: quinn::Connection,
    state: Arc<ConnState>,
    source: SocketAddr,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let first = tokio::time::timeout(
        shared.settings.login_deadline(),
        read_frame::<ClientMessage, _>(&mut recv),
    )
    .await;
    match first {
        Ok(Ok(Some(ClientMessage::Hello { versions, client }))) => {
            if state.control_taken.swap(true, Ordering::SeqCst) {
                refuse(&mut send, ErrorCode::BadRequest).await;
                return;
            }
            tracing::debug!(target: "rampart::gateway", source = %source, client = %client, "hello");
            if !versions.contains(&PROTOCOL_VERSION) {
                refuse(&mut send, ErrorCode::UnsupportedVersion).await;
                return;
            }
            let welcome = ServerMessage::Welcome {
                version: PROTOCOL_VERSION,
                server_time: shared.clock.now(),
            };
            if write_frame(&mut send, &welcome).await.is_ok() {
                control_loop(&shared, &connection, &state, source, send, recv).await;
            }
        }
        Ok(Ok(Some(ClientMessage::Open { resource }))) => {
            forward::serve(&shared, state.session(), source, resource, send, recv).await;
        }
        Ok(Ok(None)) => {}
        Ok(Ok(Some(_))) | Ok(Err(_)) | Err(_) => refuse(&mut send, ErrorCode::BadRequest).await,
    }
}

async fn control_loop(
    shared: &Shared,
    connection: &quinn::Connection,
    state: &ConnState,
    source: SocketAddr,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let mut failures = 0u32;
    loop {
        let reply = match read_frame::<ClientMessage, _>(&mut recv).await {
            Ok(None) => return,
            Err(FrameError::Io(_)) => return,
            Err(e) => {
                tracing::debug!(target: "rampart::gateway", source = %source, error = %e, "bad control frame");
                refuse(&mut send, ErrorCode::BadRequest).await;
                return;
            }
            Ok(Some(ClientMessage::Login {
                username,
                password,
                otp,
            })) => match login::login(shared, source, &username, &password, &otp).await {
                Ok((session, grant)) => {
                    state.set_session(Some(session));
                    ServerMessage::SessionGranted(grant)
                }
                Err(failure) => {
                    failures += 1;
                    ServerMessage::refused(failure.code())
                }
            },
            Ok(Some(ClientMessage::Resume { ticket })) => match login::resume(shared, source, &ticket).await {
                Ok((session, grant)) => {
                    state.set_session(Some(session));
                    ServerMessage::SessionGranted(grant)
                }
                Err(code) => {
                    failures += 1;
                    ServerMessage::refused(code)
                }
            },
            Ok(Some(ClientMessage::Logout)) => {
                if let Some(session) = state.session() {
                    if let Err(e) = shared
                        .store
                        .end_session(&session.id, "logout", shared.clock.now())
                        .await
                    {
                        tracing::error!(target: "rampart::gateway", session = %session.id, error = %e, "cannot record logout");
                    }
                    tracing::info!(target: "rampart::auth", user = %session.identity.username, session = %session.id, "logout");
                }
                state.set_session(None);
                ServerMessage::LoggedOut
            }
            Ok(Some(ClientMessage::Hello { .. } | ClientMessage::Open { .. })) => {
                ServerMessage::refused(ErrorCode::BadRequest)
            }
        };
        if write_frame(&mut send, &reply).await.is_err() {
            return;
        }
        if failures >= shared.settings.max_login_attempts_per_connection && state.session().is_none() {
            let _ = send.finish();
            // Let the refusal reach the client before the connection goes.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), send.stopped()).await;
            connection.close(
                quinn::VarInt::from_u32(CLOSE_TOO_MANY_FAILURES),
                b"too many failed logins",
            );
            return;
        }
    }
}

/// Answers a stream with a refusal and ends it.
pub(crate) async fn refuse(send: &mut quinn::SendStream, code: ErrorCode) {
    let _ = write_frame(send, &ServerMessage::refused(code)).await;
    let _ = send.finish();
}
