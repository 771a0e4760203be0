//! Forwarding: one data stream = one TCP connection to a resource the session may use.
//! Decides by policy, dials with a timeout, relays bytes both ways with backpressure and
//! writes one flow record when the stream ends.

use crate::connection::refuse;
use crate::server::Shared;
use crate::session::ActiveSession;
use rampart_core::flow::FlowRecord;
use rampart_core::io::{relay, write_frame};
use rampart_core::policy::{Decision, DenyReason, Target};
use rampart_core::protocol::{ErrorCode, ServerMessage};
use std::io;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::net::TcpStream;

struct FlowStart<'a> {
    session: &'a ActiveSession,
    source: SocketAddr,
    resource: &'a str,
    start: String,
    began: Instant,
}

/// Serves one data stream whose first frame was `Open{resource}`.
pub(crate) async fn serve(
    shared: &Shared,
    session: Option<ActiveSession>,
    source: SocketAddr,
    resource: String,
    mut send: quinn::SendStream,
    recv: quinn::RecvStream,
) {
    let Some(session) = session else {
        tracing::warn!(target: "rampart::gateway", source = %source, resource = %resource, "stream opened before login refused");
        refuse(&mut send, ErrorCode::NotAuthenticated).await;
        return;
    };
    let flow = FlowStart {
        session: &session,
        source,
        resource: &resource,
        start: shared.clock.now_rfc3339(),
        began: Instant::now(),
    };
    if session.expires_at <= shared.clock.now() {
        refuse(&mut send, ErrorCode::SessionExpired).await;
        record(shared, &flow, "", "deny", "session_expired", 0, 0).await;
        return;
    }
    let target = match shared.policy().decide(&session.identity, &resource) {
        Decision::Allow { target, .. } => target,
        Decision::Deny(reason) => {
            let (code, outcome) = match reason {
                DenyReason::UnknownResource => (ErrorCode::UnknownResource, "unknown_resource"),
                DenyReason::NotAllowed => (ErrorCode::Forbidden, "forbidden"),
            };
            refuse(&mut send, code).await;
            record(shared, &flow, "", "deny", outcome, 0, 0).await;
            return;
        }
    };
    let tcp = match dial(&target, shared.settings.connect_timeout()).await {
        Ok(tcp) => tcp,
        Err(code) => {
            refuse(&mut send, code).await;
            let outcome = match code {
                ErrorCode::TargetRefused => "target_refused",
                ErrorCode::TargetTimeout => "target_timeout",
                _ => "target_unreachable",
            };
            record(shared, &flow, &target.to_string(), "allow", outcome, 0, 0).await;
            return;
        }
    };
    if write_frame(&mut send, &ServerMessage::Opened).await.is_err() {
        record(shared, &flow, &target.to_string(), "allow", "client_gone", 0, 0).await;
        return;
    }
    let (tcp_read, tcp_write) = tcp.into_split();
    let relayed = relay(recv, send, tcp_read, tcp_write).await;
    let outcome = if relayed.clean { "closed" } else { "reset" };
    record(
        shared,
        &flow,
        &target.to_string(),
        "allow",
        outcome,
        relayed.left_to_right,
        relayed.right_to_left,
    )
    .await;
}

async fn dial(target: &Target, timeout: std::time::Duration) -> Result<TcpStream, ErrorCode> {
    match tokio::time::timeout(timeout, TcpStream::connect(target.dial_string())).await {
        Err(_) => Err(ErrorCode::TargetTimeout),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => Err(ErrorCode::TargetRefused),
        Ok(Err(e)) if e.kind() == io::ErrorKind::TimedOut => Err(ErrorCode::TargetTimeout),
        Ok(Err(_)) => Err(ErrorCode::TargetUnreachable),
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        }
    }
}

async fn record(
    shared: &Shared,
    flow: &FlowStart<'_>,
    target: &str,
    decision: &str,
    outcome: &str,
    bytes_to_target: u64,
    bytes_from_target: u64,
) {
    let elapsed = flow.began.elapsed();
    shared
        .flows
        .record(FlowRecord {
            event: "flow".into(),
            session_id: flow.session.id.clone(),
            user: flow.session.identity.username.clone(),
            user_id: flow.session.user_id.clone(),
            source: flow.source.to_string(),
            resource: flow.resource.to_owned(),
            target: target.to_owned(),
            decision: decision.to_owned(),
            outcome: outcome.to_owned(),
            bytes_to_target,
            bytes_from_target,
            start: flow.start.clone(),
            end: shared.clock.now_rfc3339(),
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        })
        .await;
}
