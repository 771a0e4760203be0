//! Prometheus metrics of one gateway: logins by result and reason with their latency, sessions,
//! flows by resource and decision, bytes, refused streams, admission and QUIC address
//! validation, the clock check, and how far rejected codes lie from this gateway's clock
//! (`code_drift`: many people alike means this gateway's clock is off). Label values come only
//! from fixed sets or the policy's resource names, never from what a client typed, so a client
//! cannot blow up the series count.

mod code_drift;

pub(crate) use code_drift::{CommonOffset, PERIOD_SECS as DRIFT_PERIOD_SECS};
use code_drift::{DriftWatch, Verdict};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OffsetLabels {
    /// A whole number of steps (at most ten each way) times a token's period: a small set.
    offset_secs: i64,
}

/// Rejected codes' offsets, on this process's monotonic clock (seconds since start), so the
/// verdict fades on time whatever the wall clock does.
#[derive(Debug)]
struct Drift {
    watch: DriftWatch,
    step_secs: i64,
    started: Instant,
}

impl Drift {
    fn now(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_secs()).unwrap_or(i64::MAX)
    }
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
    clock_drill_offset_secs: Gauge,
    code_offsets: Family<OffsetLabels, Counter>,
    code_drift_common_secs: Gauge,
    code_drift_people: Gauge,
    drift: Mutex<Drift>,
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
        let clock_drill_offset_secs = Gauge::default();
        common.register(
            "clock_drill_offset_seconds",
            "How far settings.clock_offset_secs shifts this service's clock for a drill, in seconds; 0 in \
             production",
            clock_drill_offset_secs.clone(),
        );
        let code_offsets = Family::<OffsetLabels, Counter>::default();
        registry.register(
            "rejected_code_offsets",
            "Rejected codes (right password) that match another time step, by how far the phone's clock \
             is from this gateway's in seconds (negative: behind)",
            code_offsets.clone(),
        );
        let code_drift_common_secs = Gauge::default();
        registry.register(
            "code_drift_common_seconds",
            "How far this gateway's clock is probably ahead of its users' phones, in seconds (negative: \
             behind), when the rejected codes of many different people agreed within the last 10 minutes; \
             0 otherwise",
            code_drift_common_secs.clone(),
        );
        let code_drift_people = Gauge::default();
        registry.register(
            "code_drift_people",
            "Different people within the last 10 minutes whose rejected codes agree on that offset",
            code_drift_people.clone(),
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
            clock_drill_offset_secs,
            code_offsets,
            code_drift_common_secs,
            code_drift_people,
            drift: Mutex::new(Drift {
                watch: DriftWatch::default(),
                step_secs: 30,
                started: Instant::now(),
            }),
        }
    }

    /// The Prometheus text exposition.
    pub(crate) fn encode(&self) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        self.refresh_code_drift();
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

    /// Shows a drill's clock shift on `/metrics`, so it cannot stay on unnoticed.
    pub(crate) fn clock_drill(&self, offset_secs: i64) {
        self.clock_drill_offset_secs.set(offset_secs);
    }

    /// The latest clock check: this gateway minus the database, and whether within the bound.
    pub(crate) fn clock(&self, offset_ms: i64, in_bounds: bool) {
        self.clock_offset_ms.set(offset_ms);
        self.clock_in_bounds.set(i64::from(in_bounds));
    }

    /// A rejected code of `person` (stable id) matched a step `phone_minus_gateway_secs` away
    /// from this gateway's clock (`step_secs` long). Returns the common offset when it has just
    /// appeared (or moved): many people alike, so this gateway's clock is off. Tell the desk.
    pub(crate) fn code_offset(
        &self,
        person: &str,
        phone_minus_gateway_secs: i64,
        step_secs: i64,
    ) -> Option<CommonOffset> {
        self.code_offsets
            .get_or_create(&OffsetLabels {
                offset_secs: phone_minus_gateway_secs,
            })
            .inc();
        let mut drift = self.drift.lock().unwrap_or_else(PoisonError::into_inner);
        drift.step_secs = step_secs.max(1);
        let now = drift.now();
        let verdict = drift.watch.record(person, phone_minus_gateway_secs, step_secs, now);
        let (common, newly) = match verdict {
            Verdict::NewlyCommon(found) => (Some(found), true),
            Verdict::Unchanged(found) => (found, false),
        };
        self.show_common(common);
        common.filter(|_| newly)
    }

    /// Lets a common offset fade once its people are older than the period.
    fn refresh_code_drift(&self) {
        let mut drift = self.drift.lock().unwrap_or_else(PoisonError::into_inner);
        let (step, now) = (drift.step_secs, drift.now());
        let common = drift.watch.current(step, now);
        self.show_common(common);
    }

    fn show_common(&self, common: Option<CommonOffset>) {
        self.code_drift_common_secs
            .set(common.map_or(0, |c| c.gateway_ahead_secs));
        self.code_drift_people
            .set(common.map_or(0, |c| i64::try_from(c.people).unwrap_or(i64::MAX)));
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
        assert!(text.contains("rampart_clock_drill_offset_seconds 0\n"), "{text}");
        m.clock_drill(-60);
        let text = m.encode();
        assert!(text.contains("rampart_clock_drill_offset_seconds -60\n"), "{text}");
    }

    #[test]
    fn rejected_code_offsets_and_their_common_value() {
        let m = Metrics::new();
        assert!(
            m.encode().contains("rampart_gateway_code_drift_common_seconds 0\n"),
            "nothing known at first"
        );
        let told: Vec<_> = (0..6)
            .filter_map(|i| m.code_offset(&format!("person-{i}"), -120, 30))
            .collect();
        assert_eq!(
            told,
            vec![CommonOffset {
                gateway_ahead_secs: 120,
                people: 5
            }],
            "told once, at the fifth person"
        );
        let text = m.encode();
        assert!(
            text.contains(r#"rampart_gateway_rejected_code_offsets_total{offset_secs="-120"} 6"#),
            "{text}"
        );
        assert!(
            text.contains("rampart_gateway_code_drift_common_seconds 120\n"),
            "{text}"
        );
        assert!(text.contains("rampart_gateway_code_drift_people 6\n"), "{text}");
    }
}
