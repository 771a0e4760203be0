//! Prometheus metrics of one gateway: logins by result and reason with their latency, sessions,
//! flows by resource and decision, bytes, refused streams, admission and QUIC address
//! validation, and the clock check. Label values come only from fixed sets or the policy's
//! resource names, never from what a client typed, so a client cannot blow up the series count.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    kind: &'static str,
    result: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowLabels {
    resource: String,
    decision: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Every metric of the gateway; cheap to update from any task.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    logins: Family<LoginLabels, Counter>,
    login_seconds: Histogram,
    logins_in_progress: Gauge,
    logins_queued: Gauge,
    sessions_active: Gauge,
    sessions_ended: Family<ReasonLabels, Counter>,
    flows: Family<FlowLabels, Counter>,
    flows_active: Gauge,
    bytes: Family<DirectionLabels, Counter>,
    refused_streams: Family<ReasonLabels, Counter>,
    handshakes_in_progress: Gauge,
    quic_retries: Counter,
    policy_reloads: Family<ResultLabels, Counter>,
    /// Metrics every Rampart service exports under the same names (`rampart_clock_*`).
    common: Registry,
    clock_offset_ms: Gauge,
    clock_in_bounds: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("rampart_gateway");
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register(
            "logins",
            "Login and resume attempts by kind, result and reason",
            logins.clone(),
        );
        // 5 ms to ~20 s: a local login takes milliseconds, a slow directory seconds.
        let login_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 13));
        registry.register(
            "login_duration_seconds",
            "Time to answer a login or resume, queueing included",
            login_seconds.clone(),
        );
        let logins_in_progress = Gauge::default();
        registry.register(
            "logins_in_progress",
            "Logins being checked now",
            logins_in_progress.clone(),
        );
        let logins_queued = Gauge::default();
        registry.register("logins_queued", "Logins waiting for a free slot", logins_queued.clone());
        let sessions_active = Gauge::default();
        registry.register(
            "sessions_active",
            "Sessions attached to this gateway",
            sessions_active.clone(),
        );
        let sessions_ended = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "sessions_ended",
            "Sessions ended on this gateway by reason",
            sessions_ended.clone(),
        );
        let flows = Family::<FlowLabels, Counter>::default();
        registry.register(
            "flows",
            "Forwarded connections requested, by resource and decision",
            flows.clone(),
        );
        let flows_active = Gauge::default();
        registry.register("flows_active", "Forwarded connections open now", flows_active.clone());
        let bytes = Family::<DirectionLabels, Counter>::default();
        registry.register("bytes", "Bytes forwarded, to targets and from targets", bytes.clone());
        let refused_streams = Family::<ReasonLabels, Counter>::default();
        registry.register("refused_streams", "Streams refused, by reason", refused_streams.clone());
        let handshakes_in_progress = Gauge::default();
        registry.register(
            "handshakes_in_progress",
            "QUIC handshakes not yet complete",
            handshakes_in_progress.clone(),
        );
        let quic_retries = Counter::default();
        registry.register(
            "quic_retries",
            "Incoming connections asked to prove their address with a QUIC Retry",
            quic_retries.clone(),
        );
        let policy_reloads = Family::<ResultLabels, Counter>::default();
        registry.register("policy_reloads", "Policy reloads by result", policy_reloads.clone());
        let mut common = Registry::with_prefix("rampart");
        let clock_offset_ms = Gauge::default();
        common.register(
            "clock_offset_ms",
            "This service's clock minus the database's at the latest check, in milliseconds",
            clock_offset_ms.clone(),
        );
        // Unknown until the first check, which does not hold logins back.
        let clock_in_bounds = Gauge::default();
        clock_in_bounds.set(1);
        common.register(
            "clock_in_bounds",
            "1 while the clock is within max_clock_skew_ms of the database's, 0 while logins are refused for it",
            clock_in_bounds.clone(),
        );
        Self {
            registry,
            logins,
            login_seconds,
            logins_in_progress,
            logins_queued,
            sessions_active,
            sessions_ended,
            flows,
            flows_active,
            bytes,
            refused_streams,
            handshakes_in_progress,
            quic_retries,
            policy_reloads,
            common,
            clock_offset_ms,
            clock_in_bounds,
        }
    }

    /// The Prometheus text exposition.
    pub(crate) fn encode(&self) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        let encoded = encode_registry(&mut out, &self.registry)
            .and_then(|()| encode_registry(&mut out, &self.common))
            .and_then(|()| encode_eof(&mut out));
        if encoded.is_err() {
            tracing::error!(target: "rampart::gateway", "cannot encode metrics");
        }
        out
    }

    /// A login or resume answered: `kind` is `login` or `resume`.
    pub(crate) fn login(&self, kind: &'static str, result: &'static str, reason: &'static str, took: Duration) {
        self.logins.get_or_create(&LoginLabels { kind, result, reason }).inc();
        self.login_seconds.observe(took.as_secs_f64());
    }

    pub(crate) fn logins_in_progress(&self) -> &Gauge {
        &self.logins_in_progress
    }

    pub(crate) fn logins_queued(&self) -> &Gauge {
        &self.logins_queued
    }

    pub(crate) fn sessions_active(&self) -> &Gauge {
        &self.sessions_active
    }

    pub(crate) fn session_ended(&self, reason: &str) {
        self.sessions_ended
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// A stream decided: `resource` must be a policy name or `(unknown)`.
    pub(crate) fn flow(&self, resource: &str, decision: &'static str) {
        self.flows
            .get_or_create(&FlowLabels {
                resource: resource.to_owned(),
                decision,
            })
            .inc();
    }

    pub(crate) fn flows_active(&self) -> &Gauge {
        &self.flows_active
    }

    pub(crate) fn bytes_to_target(&self) -> Counter {
        self.bytes
            .get_or_create(&DirectionLabels { direction: "to_target" })
            .clone()
    }

    pub(crate) fn bytes_from_target(&self) -> Counter {
        self.bytes
            .get_or_create(&DirectionLabels {
                direction: "from_target",
            })
            .clone()
    }

    pub(crate) fn refused_stream(&self, reason: &str) {
        self.refused_streams
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub(crate) fn handshakes_in_progress(&self) -> &Gauge {
        &self.handshakes_in_progress
    }

    pub(crate) fn quic_retry(&self) {
        self.quic_retries.inc();
    }

    /// The latest clock check: this gateway minus the database, and whether within the bound.
    pub(crate) fn clock(&self, offset_ms: i64, in_bounds: bool) {
        self.clock_offset_ms.set(offset_ms);
        self.clock_in_bounds.set(i64::from(in_bounds));
    }

    pub(crate) fn policy_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "rejected" };
        self.policy_reloads.get_or_create(&ResultLabels { result }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_and_labels() {
        let m = Metrics::new();
        m.login("login", "failure", "wrong_code", Duration::from_millis(20));
        m.flow("intranet", "allow");
        m.bytes_to_target().inc_by(42);
        m.refused_stream("stream_limit");
        let text = m.encode();
        assert!(
            text.contains(r#"rampart_gateway_logins_total{kind="login",result="failure",reason="wrong_code"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"rampart_gateway_flows_total{resource="intranet",decision="allow"} 1"#));
        assert!(text.contains(r#"rampart_gateway_bytes_total{direction="to_target"} 42"#));
        assert!(text.contains("rampart_gateway_login_duration_seconds_bucket"));
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        assert!(text.contains("rampart_clock_in_bounds 1\n"), "unknown at first: {text}");
        m.clock(120_004, false);
        let text = m.encode();
        assert!(text.contains("# TYPE rampart_clock_offset_ms gauge\n"), "{text}");
        assert!(text.contains("rampart_clock_offset_ms 120004\n"), "{text}");
        assert!(text.contains("rampart_clock_in_bounds 0\n"), "{text}");
        m.clock(-12, true);
        let text = m.encode();
        assert!(text.contains("rampart_clock_offset_ms -12\n"), "{text}");
        assert!(text.contains("rampart_clock_in_bounds 1\n"), "{text}");
    }
}
