//! One QUIC connection: the control stream (hello, login, resume, logout), data streams
//! dispatched to forwarding within the per-connection limit, the login deadline for
//! connections that never log in, and closing the connection when its session ends.

use crate::forward;
use crate::login;
use crate::registry::{LiveSession, SessionInfo};
use crate::resume::{self, ResumeRequest};
use crate::server::Shared;
use rampart_core::PROTOCOL_VERSION;
use rampart_core::audit::{Activity, AuditEvent, Class, Status, User};
use rampart_core::codec::FrameError;
use rampart_core::io::{read_frame, write_frame};
use rampart_core::protocol::{ClientMessage, ErrorCode, ServerMessage};
use rampart_core::resume_proof::{ClientPublicKey, EXPORTER_LABEL, EXPORTER_LEN};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// QUIC application close code for connections that did not log in in time.
const CLOSE_LOGIN_DEADLINE: u32 = 0x10;
/// QUIC application close code after too many failed logins.
const CLOSE_TOO_MANY_FAILURES: u32 = 0x11;
/// QUIC application close code when the session ended (kill, revocation, expiry…); the
/// close reason carries why.
pub(crate) const CLOSE_SESSION_ENDED: u32 = 0x12;

/// Per-connection state.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    session: Mutex<Option<Arc<LiveSession>>>,
    control_taken: AtomicBool,
    /// Forwarded connections open on this QUIC connection.
    pub flows: AtomicU32,
}

impl ConnState {
    pub(crate) fn session(&self) -> Option<Arc<LiveSession>> {
        self.lock().clone()
    }

    fn replace_session(&self, session: Option<Arc<LiveSession>>) -> Option<Arc<LiveSession>> {
        std::mem::replace(&mut *self.lock(), session)
    }

    fn is_attached(&self, id: &str) -> bool {
        self.lock().as_ref().is_some_and(|s| s.id == id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<LiveSession>>> {
        self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Completes the handshake and serves the connection's streams until it closes.
pub(crate) async fn serve(shared: Arc<Shared>, incoming: quinn::Incoming) {
    let source = incoming.remote_address();
    // Counted up by the accept loop before this task started.
    let connecting = incoming.await;
    shared.metrics.handshakes_in_progress().dec();
    let connection = match connecting {
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
    if let Some(session) = state.replace_session(None) {
        detach(&shared, &session).await;
    }
}

/// Closes the connection if it has not logged in by the deadline, keep-alives or not.
async fn enforce_login_deadline(shared: Arc<Shared>, connection: quinn::Connection, state: Arc<ConnState>) {
    tokio::time::sleep(shared.settings.login_deadline()).await;
    if state.session().is_none() {
        tracing::info!(target: "rampart::gateway", source = %connection.remote_address(), "closing connection: no login before the deadline");
        connection.close(quinn::VarInt::from_u32(CLOSE_LOGIN_DEADLINE), b"login deadline passed");
    }
}

/// Attaches a logged-in or resumed session to this connection, and closes the connection
/// when the session ends while attached.
async fn attach(shared: &Arc<Shared>, connection: &quinn::Connection, state: &Arc<ConnState>, info: SessionInfo) {
    crate::transport::open_up(connection, &shared.settings);
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
async fn detach(shared: &Shared, session: &LiveSession) {
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
            let limit = shared.settings.max_streams_per_connection;
            let open = state.flows.fetch_add(1, Ordering::AcqRel);
            if open >= limit {
                state.flows.fetch_sub(1, Ordering::AcqRel);
                shared.metrics.refused_stream("stream_limit");
                tracing::warn!(target: "rampart::gateway", source = %source, limit, "stream refused: too many forwarded connections on one connection");
                refuse(&mut send, ErrorCode::TooManyStreams).await;
                return;
            }
            forward::serve(&shared, state.session(), source, resource, send, recv).await;
            state.flows.fetch_sub(1, Ordering::AcqRel);
        }
        Ok(Ok(None)) => {}
        Ok(Ok(Some(_))) | Ok(Err(_)) | Err(_) => {
            shared.metrics.refused_stream("bad_request");
            refuse(&mut send, ErrorCode::BadRequest).await
        }
    }
}

async fn control_loop(
    shared: &Arc<Shared>,
    connection: &quinn::Connection,
    state: &Arc<ConnState>,
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
                client_key,
            })) => 'login: {
                let Ok(client_key) = client_key.as_deref().map(ClientPublicKey::parse).transpose() else {
                    failures += 1;
                    tracing::debug!(target: "rampart::gateway", source = %source, "login refused: malformed client key");
                    break 'login ServerMessage::refused(ErrorCode::BadRequest);
                };
                let began = Instant::now();
                let outcome = match shared.admission.admit().await {
                    Err(busy) => Err(ServerMessage::busy(busy.retry_after_secs)),
                    Ok(slot) => {
                        shared.metrics.logins_in_progress().inc();
                        let result =
                            login::login(shared, source, &username, &password, &otp, client_key.as_ref()).await;
                        shared.metrics.logins_in_progress().dec();
                        drop(slot);
                        match result {
                            Ok((info, grant)) => {
                                shared.metrics.login("login", "success", "", began.elapsed());
                                attach(shared, connection, state, info).await;
                                Ok(ServerMessage::SessionGranted(grant))
                            }
                            Err(failure) => {
                                failures += 1;
                                let result = if failure.code() == ErrorCode::TryLater {
                                    "error"
                                } else {
                                    "failure"
                                };
                                shared.metrics.login("login", result, failure.reason(), began.elapsed());
                                // Every rejection is answered after its person's growing delay,
                                // whatever was wrong (see `login`); the login slot is free
                                // meanwhile.
                                if let Some(answer_at) = failure.answer_at() {
                                    tokio::time::sleep_until(answer_at.into()).await;
                                }
                                Err(ServerMessage::refused(failure.code()))
                            }
                        }
                    }
                };
                outcome.unwrap_or_else(|refusal| {
                    if matches!(
                        refusal,
                        ServerMessage::Refused {
                            code: ErrorCode::Busy,
                            ..
                        }
                    ) {
                        shared.metrics.login("login", "busy", "admission", began.elapsed());
                        tracing::info!(target: "rampart::auth", source = %source, "login deferred: gateway busy");
                        audit_busy(shared, Activity::LOGON, Some(&username), source);
                    }
                    refusal
                })
            }
            Ok(Some(ClientMessage::Resume { ticket, proof })) => {
                let began = Instant::now();
                // What the client's proof must be signed over: only this connection has it.
                let mut exporter = [0u8; EXPORTER_LEN];
                if let Err(e) = connection.export_keying_material(&mut exporter, EXPORTER_LABEL, b"") {
                    tracing::error!(target: "rampart::gateway", source = %source, error = ?e, "cannot export keying material for a resume");
                    refuse(&mut send, ErrorCode::Internal).await;
                    return;
                }
                let request = ResumeRequest {
                    ticket: &ticket,
                    proof: &proof,
                    exporter,
                };
                match shared.admission.admit().await {
                    Err(busy) => {
                        shared.metrics.login("resume", "busy", "admission", began.elapsed());
                        audit_busy(shared, Activity::RESUME, None, source);
                        ServerMessage::busy(busy.retry_after_secs)
                    }
                    Ok(_slot) => match resume::resume(shared, source, request).await {
                        Ok((info, grant)) => {
                            shared.metrics.login("resume", "success", "", began.elapsed());
                            attach(shared, connection, state, info).await;
                            ServerMessage::SessionGranted(grant)
                        }
                        Err(refusal) => {
                            failures += 1;
                            shared
                                .metrics
                                .login("resume", "failure", refusal.reason, began.elapsed());
                            ServerMessage::refused(refusal.code)
                        }
                    },
                }
            }
            Ok(Some(ClientMessage::Logout)) => {
                if let Some(session) = state.replace_session(None) {
                    tracing::info!(target: "rampart::auth", user = %session.username, session = %session.id, "logout");
                    shared.end_session(&session.id, "logout").await;
                    detach(shared, &session).await;
                    // Logged out, the connection is unauthenticated again: the deadline applies.
                    tokio::spawn(enforce_login_deadline(
                        shared.clone(),
                        connection.clone(),
                        state.clone(),
                    ));
                }
                ServerMessage::LoggedOut
            }
            Ok(Some(ClientMessage::Hello { .. } | ClientMessage::Open { .. })) => {
                ServerMessage::refused(ErrorCode::BadRequest)
            }
        };
        if write_frame(&mut send, &reply).await.is_err() {
            return;
        }
        if failures >= shared.settings.max_login_attempts_per_connection {
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

/// Records a login or resume the admission gate turned away (told to retry later).
fn audit_busy(shared: &Shared, activity: Activity, typed_username: Option<&str>, source: SocketAddr) {
    let mut event = AuditEvent::new(
        Class::Authentication,
        activity,
        shared.clock.now_ms(),
        Status::Failure,
        "login deferred: gateway busy",
    )
    .detail("busy")
    .source(source);
    if let Some(name) = typed_username {
        event = event.user(User::named(name));
    }
    shared.audit.record(event);
}

/// Answers a stream with a refusal and ends it.
pub(crate) async fn refuse(send: &mut quinn::SendStream, code: ErrorCode) {
    let _ = write_frame(send, &ServerMessage::refused(code)).await;
    let _ = send.finish();
}
