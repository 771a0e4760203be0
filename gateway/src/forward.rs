//! Forwarding: one data stream = one TCP connection to a resource the session may use.
//! Decides by policy, dials with a timeout, relays bytes both ways with backpressure (counted
//! live per session and per gateway), resets the stream if the session ends mid-flow, and
//! writes one flow record when the stream ends.

use crate::registry::LiveSession;
use crate::reply::refuse;
use crate::state::Shared;
use rampart_core::audit::{Activity, AuditEvent, Class, Disposition, Endpoint, Status, Traffic, User};
use rampart_core::flow::{FlowDecision, FlowEvent, FlowOutcome, FlowRecord};
use rampart_core::io::write_frame;
use rampart_core::policy::{AccessTime, Decision, DenyReason, Target};
use rampart_core::protocol::{ErrorCode, ServerMessage};
use rampart_core::quic_relay;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Metric label for stream requests naming no resource of the policy.
const UNKNOWN_RESOURCE_LABEL: &str = "(unknown)";

struct FlowStart<'a> {
    session: &'a LiveSession,
    source: SocketAddr,
    resource: &'a str,
    start: String,
    start_ms: i64,
    began: Instant,
    /// The VM an `allocated:` resource led to.
    vm: Option<String>,
}

impl FlowStart<'_> {
    /// An audit event about this stream: who, from where, which resource and target.
    fn event(
        &self,
        shared: &Shared,
        class: Class,
        activity: Activity,
        status: Status,
        message: &str,
        target: &str,
    ) -> AuditEvent {
        AuditEvent::new(class, activity, shared.clock.now_ms(), status, message)
            .user(User::with_uid(&self.session.username, &self.session.user_id))
            .session(&self.session.id)
            .source(self.source)
            .destination(Endpoint::resource(self.resource, target))
    }

    /// The Authorization record of the stream's decision.
    fn decided(&self, shared: &Shared, target: &str, disposition: Disposition, rule: Option<&str>, reason: &str) {
        let (status, message) = match disposition {
            Disposition::Allowed => (Status::Success, "stream allowed"),
            Disposition::Blocked => (Status::Failure, "stream refused"),
        };
        let mut event = self
            .event(shared, Class::Authorization, Activity::DECIDE, status, message, target)
            .disposition(disposition)
            .detail(reason);
        if let Some(rule) = rule {
            event = event.rule(rule);
        }
        shared.audit.record(event);
    }
}

/// Serves one data stream whose first frame was `Open{resource}`.
pub(crate) async fn serve(
    shared: &Shared,
    session: Option<Arc<LiveSession>>,
    source: SocketAddr,
    resource: String,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let Some(session) = session else {
        // Debug only: anyone can send this before logging in; the metric counts it.
        tracing::debug!(target: "rampart::gateway", source = %source, resource = %shown(&resource), "stream opened before login refused");
        shared.metrics.refused_stream("not_authenticated");
        refuse(&mut send, ErrorCode::NotAuthenticated).await;
        return;
    };
    let mut flow = FlowStart {
        vm: None,
        session: &session,
        source,
        resource: &resource,
        start: shared.clock.now_rfc3339(),
        start_ms: shared.clock.now_ms(),
        began: Instant::now(),
    };
    let now = shared.clock.now();
    if session.is_ended() || session.expires_at <= now {
        shared.metrics.refused_stream("session_expired");
        refuse(&mut send, ErrorCode::SessionExpired).await;
        flow.decided(
            shared,
            "",
            Disposition::Blocked,
            None,
            FlowOutcome::SessionExpired.as_str(),
        );
        record(shared, &flow, FlowEnd::refused(FlowOutcome::SessionExpired)).await;
        return;
    }
    let policy = shared.policy();
    let label = if policy.resource(&resource).is_some() {
        resource.as_str()
    } else {
        UNKNOWN_RESOURCE_LABEL
    };
    let at = AccessTime {
        now,
        session_started: session.created_at,
    };
    let (target, held) = match policy.decide(&session.identity(), &resource, at) {
        Decision::Allow { target, rule } => match own_vm(shared, &session, target).await {
            Ok((target, vm)) => {
                tracing::debug!(target: "rampart::gateway", user = %session.username, resource = %shown(&resource), rule = %rule, "stream allowed");
                shared.metrics.flow(label, FlowDecision::Allow.as_str());
                flow.vm = vm.as_ref().map(|vm| vm.id.clone());
                flow.decided(
                    shared,
                    &target.to_string(),
                    Disposition::Allowed,
                    Some(&rule),
                    "allowed",
                );
                (target, vm)
            }
            Err((code, outcome)) => {
                tracing::info!(target: "rampart::gateway", user = %session.username, resource = %shown(&resource), reason = outcome.as_str(), "stream refused");
                shared.metrics.flow(label, outcome.decision().as_str());
                shared.metrics.refused_stream(outcome.as_str());
                refuse(&mut send, code).await;
                flow.decided(shared, "", Disposition::Blocked, Some(&rule), outcome.as_str());
                record(shared, &flow, FlowEnd::refused(outcome)).await;
                return;
            }
        },
        Decision::Deny { reason, rule } => {
            let code = match reason {
                DenyReason::UnknownResource => ErrorCode::UnknownResource,
                DenyReason::NotAllowed => ErrorCode::Forbidden,
                DenyReason::OutsideHours => ErrorCode::OutsideHours,
                DenyReason::SessionTooOld => ErrorCode::SessionTooOld,
            };
            tracing::info!(target: "rampart::gateway", user = %session.username, resource = %shown(&resource), reason = reason.as_str(), rule = rule.as_deref().unwrap_or(""), "stream denied");
            let outcome = FlowOutcome::from(reason);
            shared.metrics.flow(label, outcome.decision().as_str());
            shared.metrics.refused_stream(outcome.as_str());
            refuse(&mut send, code).await;
            flow.decided(shared, "", Disposition::Blocked, rule.as_deref(), outcome.as_str());
            record(shared, &flow, FlowEnd::refused(outcome)).await;
            return;
        }
    };
    let guard = session.open_flow(&resource, now);
    let dialled = tokio::select! {
        dialled = dial(&target, shared.settings.connect_timeout()) => dialled,
        () = guard.cancelled().cancelled() => Err(ErrorCode::SessionExpired),
    };
    let target_text = target.to_string();
    let tcp = match dialled {
        Ok(tcp) => tcp,
        Err(code) => {
            refuse(&mut send, code).await;
            let outcome = match code {
                ErrorCode::TargetRefused => FlowOutcome::TargetRefused,
                ErrorCode::TargetTimeout => FlowOutcome::TargetTimeout,
                ErrorCode::SessionExpired => FlowOutcome::SessionEnded,
                _ => FlowOutcome::TargetUnreachable,
            };
            shared.metrics.refused_stream(outcome.as_str());
            record(shared, &flow, FlowEnd::unopened(&target_text, outcome)).await;
            return;
        }
    };
    if write_frame(&mut send, &ServerMessage::Opened).await.is_err() {
        record(shared, &flow, FlowEnd::unopened(&target_text, FlowOutcome::ClientGone)).await;
        return;
    }
    shared.metrics.flows_active().inc();
    if let Some(vm) = &held {
        mark_vm_used(shared, &vm.id);
    }
    shared.audit.record(
        flow.event(
            shared,
            Class::NetworkActivity,
            Activity::OPEN,
            Status::Success,
            "flow opened",
            &target_text,
        )
        .disposition(Disposition::Allowed),
    );
    let to_target = AtomicU64::new(0);
    let from_target = AtomicU64::new(0);
    let gateway_to_target = shared.metrics.bytes_to_target();
    let gateway_from_target = shared.metrics.bytes_from_target();
    let (tcp_read, tcp_write) = tcp.into_split();
    let relayed = tokio::select! {
        relayed = quic_relay::relay(
            tcp_read,
            tcp_write,
            &mut recv,
            &mut send,
            |n| {
                from_target.fetch_add(n, Ordering::Relaxed);
                session.add_from_target(n);
                gateway_from_target.inc_by(n);
            },
            |n| {
                to_target.fetch_add(n, Ordering::Relaxed);
                session.add_to_target(n);
                gateway_to_target.inc_by(n);
            },
        ) => Ok(relayed.clean),
        () = guard.cancelled().cancelled() => Err((FlowOutcome::SessionEnded, ErrorCode::SessionExpired)),
        () = vm_taken_away(shared, &session.user_id, held.as_ref()) => Err((FlowOutcome::VmReleased, ErrorCode::NoVmAllocated)),
    };
    shared.metrics.flows_active().dec();
    let outcome = match relayed {
        Ok(true) => FlowOutcome::Closed,
        // Ending a session closes its connections too, and the relay may see that first.
        Ok(false) if guard.cancelled().is_cancelled() => FlowOutcome::SessionEnded,
        Ok(false) => FlowOutcome::Reset,
        Err((outcome, code)) => {
            let code = quinn::VarInt::from_u32(code.as_u32());
            let _ = send.reset(code);
            let _ = recv.stop(code);
            if outcome == FlowOutcome::VmReleased {
                tracing::info!(target: "rampart::gateway", user = %session.username, resource = %shown(&resource), "flow ended: the VM is no longer this person's");
            }
            outcome
        }
    };
    drop(guard);
    let end = FlowEnd {
        target: &target_text,
        outcome,
        traffic: Traffic {
            bytes_in: from_target.load(Ordering::Relaxed),
            bytes_out: to_target.load(Ordering::Relaxed),
        },
    };
    record(shared, &flow, end).await;
}

/// Longest resource name written to the log: the name comes from the client.
const SHOWN_RESOURCE_CHARS: usize = 128;

/// A client-chosen resource name as it may appear in a log line: cut to
/// [`SHOWN_RESOURCE_CHARS`]. Its control characters are escaped by the log formatter
/// (`rampart_core::logging`), as every field's are.
fn shown(resource: &str) -> String {
    let mut cut: String = resource.chars().take(SHOWN_RESOURCE_CHARS).collect();
    if cut.len() < resource.len() {
        cut.push('…');
    }
    cut
}

/// How often a long flow to a VM marks it used, so reclaim never takes a desktop in use.
const VM_USE_MARK: Duration = Duration::from_secs(600);

/// The VM a flow was taken to.
#[derive(Debug)]
struct HeldVm {
    id: String,
    pool: String,
}

/// For an `allocated:<pool>:<port>` target, the VM the person holds in that pool (looked up
/// per stream, so allocation changes apply to the next connection); other targets as they are.
async fn own_vm(
    shared: &Shared,
    session: &LiveSession,
    target: Target,
) -> Result<(Target, Option<HeldVm>), (ErrorCode, FlowOutcome)> {
    let Some(pool) = target.pool.clone() else {
        return Ok((target, None));
    };
    match shared.store.vm_held(&session.user_id, &pool).await {
        Ok(Some(vm)) => match target.on_host(&vm.address) {
            Ok(on_vm) => Ok((on_vm, Some(HeldVm { id: vm.id, pool }))),
            Err(e) => {
                tracing::error!(target: "rampart::gateway", vm = %vm.id, error = %e, "VM address is not usable");
                Err((ErrorCode::TargetUnreachable, FlowOutcome::VmAddressInvalid))
            }
        },
        Ok(None) => Err((ErrorCode::NoVmAllocated, FlowOutcome::NoVmAllocated)),
        Err(e) => {
            tracing::error!(target: "rampart::gateway", pool, error = %e, "cannot look up the person's VM");
            Err((ErrorCode::TryLater, FlowOutcome::StoreUnavailable))
        }
    }
}

/// While a flow to a person's VM runs: resolves once the VM is no longer theirs (released,
/// reassigned or retired), checked every `session_check_secs`, so a desktop handed to someone
/// else is never left reachable through an old flow. Never resolves for other flows. Marks
/// the VM used every [`VM_USE_MARK`] on the way.
async fn vm_taken_away(shared: &Shared, user_id: &str, held: Option<&HeldVm>) {
    let Some(vm) = held else {
        return std::future::pending().await;
    };
    let mut marked = Instant::now();
    loop {
        tokio::time::sleep(shared.settings.session_check()).await;
        match shared.store.vm_held(user_id, &vm.pool).await {
            Ok(Some(now)) if now.id == vm.id => {
                if marked.elapsed() >= VM_USE_MARK {
                    marked = Instant::now();
                    mark_vm_used(shared, &vm.id);
                }
            }
            Ok(_) => return,
            // The store is unreachable for now: the flow goes on, and the next check decides.
            Err(e) => {
                tracing::warn!(target: "rampart::gateway", vm = %vm.id, error = %e, "cannot check who holds the VM")
            }
        }
    }
}

/// Records that the VM's holder used it now (reclaim counts idleness from here). Off the data
/// path.
fn mark_vm_used(shared: &Shared, vm: &str) {
    let (store, vm, now) = (shared.store.clone(), vm.to_owned(), shared.clock.now());
    tokio::spawn(async move {
        if let Err(e) = store.touch_vm_flow(&vm, now).await {
            tracing::warn!(target: "rampart::gateway", vm = %vm, error = %e, "cannot record the VM's use");
        }
    });
}

async fn dial(target: &Target, timeout: Duration) -> Result<TcpStream, ErrorCode> {
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

/// How a stream ended, for its flow record: the target dialled (empty when refused before
/// dialling), the outcome (which says the decision) and the bytes each way.
struct FlowEnd<'a> {
    target: &'a str,
    outcome: FlowOutcome,
    /// `bytes_in` from the target, `bytes_out` to it.
    traffic: Traffic,
}

impl<'a> FlowEnd<'a> {
    /// A stream refused before any dialling.
    fn refused(outcome: FlowOutcome) -> Self {
        Self::unopened("", outcome)
    }

    /// A stream that never carried a byte.
    fn unopened(target: &'a str, outcome: FlowOutcome) -> Self {
        Self {
            target,
            outcome,
            traffic: Traffic::default(),
        }
    }
}

/// Writes a stream's flow record and, for an allowed one, its audit record (close or failure;
/// a denied one is on file as its decision). A flow to a VM marks it used.
async fn record(shared: &Shared, flow: &FlowStart<'_>, end: FlowEnd<'_>) {
    let elapsed = flow.began.elapsed();
    let FlowEnd {
        target,
        outcome,
        traffic,
    } = end;
    let decision = outcome.decision();
    if let Some(vm) = &flow.vm
        && decision == FlowDecision::Allow
        && outcome != FlowOutcome::VmReleased
    {
        mark_vm_used(shared, vm);
    }
    if decision == FlowDecision::Allow {
        let (activity, status, message) = if outcome.was_opened() {
            (Activity::CLOSE, Status::Success, "flow closed")
        } else {
            (Activity::FAIL, Status::Failure, "target not reached")
        };
        let end_ms = flow
            .start_ms
            .saturating_add(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX));
        let mut event = flow
            .event(shared, Class::NetworkActivity, activity, status, message, target)
            .disposition(Disposition::Allowed)
            .detail(outcome.as_str())
            .flow(traffic, flow.start_ms, end_ms);
        if let Some(vm) = &flow.vm {
            event = event.resource("vm", Some(vm), None);
        }
        shared.audit.record(event);
    }
    shared
        .flows
        .record(FlowRecord {
            event: FlowEvent::Flow,
            session_id: flow.session.id.clone(),
            user: flow.session.username.clone(),
            user_id: flow.session.user_id.clone(),
            source: flow.source,
            resource: flow.resource.to_owned(),
            target: target.to_owned(),
            decision,
            outcome,
            bytes_to_target: traffic.bytes_out,
            bytes_from_target: traffic.bytes_in,
            start: flow.start.clone(),
            end: shared.clock.now_rfc3339(),
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            vm: flow.vm.clone(),
        })
        .await;
}
