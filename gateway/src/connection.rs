//! One QUIC connection: completes the handshake, then dispatches each stream by its first
//! frame — the hello opens the control stream (`control`), an `Open` is one forwarded
//! connection (`forward`) within the per-connection limit — and detaches the session when the
//! connection closes.

use crate::attachment::{ConnState, detach, enforce_login_deadline};
use crate::reply::refuse;
use crate::state::Shared;
use crate::{control, forward, transport};
use rampart_core::PROTOCOL_VERSION;
use rampart_core::io::{read_frame, write_frame};
use rampart_core::protocol::{ClientMessage, ErrorCode, ServerMessage};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

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
                control::run(&shared, &connection, &state, source, send, recv).await;
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
            if state.session().is_some() {
                transport::grant_streams(&connection, &shared.settings, &state.stream_credit, open + 1);
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
