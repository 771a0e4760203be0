//! The control stream of a connection after its hello: login, resume and logout, each answered
//! in one frame; logins wait for an admission slot, refused ones for their person's growing
//! delay, and too many failures on one connection close it.

use crate::attachment::{CLOSE_TOO_MANY_FAILURES, ConnState, attach, detach, enforce_login_deadline};
use crate::login;
use crate::reply::refuse;
use crate::resume::{self, ResumeRequest};
use crate::state::{EndReason, Shared};
use rampart_core::audit::{Activity, AuditEvent, Class, Status, User};
use rampart_core::codec::FrameError;
use rampart_core::io::{read_frame, write_frame};
use rampart_core::protocol::{ClientMessage, ErrorCode, ServerMessage};
use rampart_core::resume_proof::{ClientPublicKey, EXPORTER_LABEL, EXPORTER_LEN};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Serves the control stream until the client closes it or too many logins fail.
pub(crate) async fn run(
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
                    shared.end_session(&session.id, EndReason::Logout).await;
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
