//! Flow records: one per forwarded connection, written when it closes, for the security team.
//! A flow's outcome is one of a fixed set, and its decision follows from the outcome: a stream
//! the policy (or the person's VM lookup) refused is `deny`, every other one was `allow`ed.

use crate::policy::DenyReason;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;

/// What happened to one forwarded connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// Always `"flow"`, so flow lines are easy to pick out of mixed logs.
    pub event: FlowEvent,
    /// Session that opened the stream.
    pub session_id: String,
    /// Normalised username.
    pub user: String,
    /// The person's stable directory id.
    pub user_id: String,
    /// Client address as the gateway saw it.
    pub source: SocketAddr,
    /// Resource name requested.
    pub resource: String,
    /// Target connected to (empty when refused before dialling).
    pub target: String,
    /// Whether the stream was allowed.
    pub decision: FlowDecision,
    /// Why it ended or was refused.
    pub outcome: FlowOutcome,
    /// Bytes from the client to the target.
    pub bytes_to_target: u64,
    /// Bytes from the target to the client.
    pub bytes_from_target: u64,
    /// Start, RFC 3339.
    pub start: String,
    /// End, RFC 3339.
    pub end: String,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// The VM reached, for a resource that leads to the person's own machine in a pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<String>,
}

/// The kind of a flow-log line: there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowEvent {
    /// One forwarded connection.
    Flow,
}

/// Whether a stream was let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowDecision {
    /// Allowed by a rule; the gateway dialled (or tried to dial) the target.
    Allow,
    /// Refused before any dialling.
    Deny,
}

/// How a flow ended, or why it never started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowOutcome {
    /// Both sides closed cleanly.
    Closed,
    /// One side reset or broke the connection.
    Reset,
    /// The session ended (kill, expiry, revocation, logout) while the flow ran or dialled.
    SessionEnded,
    /// The person's VM was released or given to someone else while the flow ran.
    VmReleased,
    /// The client went away before hearing that the target answered.
    ClientGone,
    /// The target refused the TCP connection.
    TargetRefused,
    /// The target did not answer within the connect timeout.
    TargetTimeout,
    /// The target could not be reached (no route, DNS, …).
    TargetUnreachable,
    /// The session had ended or expired before the stream asked.
    SessionExpired,
    /// The policy names no such resource.
    UnknownResource,
    /// No rule gives this person the resource.
    NotAllowed,
    /// A rule gives it, but not at this hour.
    OutsideHours,
    /// A rule gives it, but only to sessions younger than this one.
    SessionTooOld,
    /// An `allocated:` resource, and the person holds no VM in its pool.
    NoVmAllocated,
    /// The person's VM has an address that cannot be dialled.
    VmAddressInvalid,
    /// The person's VM could not be looked up.
    StoreUnavailable,
}

impl FlowOutcome {
    /// The decision a flow with this outcome had.
    pub fn decision(self) -> FlowDecision {
        match self {
            Self::SessionExpired
            | Self::UnknownResource
            | Self::NotAllowed
            | Self::OutsideHours
            | Self::SessionTooOld
            | Self::NoVmAllocated
            | Self::VmAddressInvalid
            | Self::StoreUnavailable => FlowDecision::Deny,
            Self::Closed
            | Self::Reset
            | Self::SessionEnded
            | Self::VmReleased
            | Self::ClientGone
            | Self::TargetRefused
            | Self::TargetTimeout
            | Self::TargetUnreachable => FlowDecision::Allow,
        }
    }

    /// Whether the target was reached and the flow later ended (rather than never opening).
    pub fn was_opened(self) -> bool {
        matches!(
            self,
            Self::Closed | Self::Reset | Self::SessionEnded | Self::VmReleased | Self::ClientGone
        )
    }

    /// The label on records, logs and metrics (`closed`, `target_refused`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Reset => "reset",
            Self::SessionEnded => "session_ended",
            Self::VmReleased => "vm_released",
            Self::ClientGone => "client_gone",
            Self::TargetRefused => "target_refused",
            Self::TargetTimeout => "target_timeout",
            Self::TargetUnreachable => "target_unreachable",
            Self::SessionExpired => "session_expired",
            Self::UnknownResource => "unknown_resource",
            Self::NotAllowed => "not_allowed",
            Self::OutsideHours => "outside_hours",
            Self::SessionTooOld => "session_too_old",
            Self::NoVmAllocated => "no_vm_allocated",
            Self::VmAddressInvalid => "vm_address_invalid",
            Self::StoreUnavailable => "store_unavailable",
        }
    }
}

impl From<DenyReason> for FlowOutcome {
    fn from(reason: DenyReason) -> Self {
        match reason {
            DenyReason::UnknownResource => Self::UnknownResource,
            DenyReason::NotAllowed => Self::NotAllowed,
            DenyReason::OutsideHours => Self::OutsideHours,
            DenyReason::SessionTooOld => Self::SessionTooOld,
        }
    }
}

impl FlowDecision {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

impl fmt::Display for FlowOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for FlowDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ALL: [FlowOutcome; 16] = [
        FlowOutcome::Closed,
        FlowOutcome::Reset,
        FlowOutcome::SessionEnded,
        FlowOutcome::VmReleased,
        FlowOutcome::ClientGone,
        FlowOutcome::TargetRefused,
        FlowOutcome::TargetTimeout,
        FlowOutcome::TargetUnreachable,
        FlowOutcome::SessionExpired,
        FlowOutcome::UnknownResource,
        FlowOutcome::NotAllowed,
        FlowOutcome::OutsideHours,
        FlowOutcome::SessionTooOld,
        FlowOutcome::NoVmAllocated,
        FlowOutcome::VmAddressInvalid,
        FlowOutcome::StoreUnavailable,
    ];

    #[test]
    fn an_outcome_is_written_as_its_label_and_read_back() {
        for outcome in ALL {
            let json = serde_json::to_string(&outcome).unwrap();
            assert_eq!(json, format!("\"{}\"", outcome.as_str()));
            assert_eq!(serde_json::from_str::<FlowOutcome>(&json).unwrap(), outcome);
        }
    }

    #[test]
    fn refusals_are_denials_and_only_flows_that_reached_the_target_were_opened() {
        for outcome in ALL {
            if outcome.was_opened() {
                assert_eq!(outcome.decision(), FlowDecision::Allow, "{outcome}");
            }
        }
        assert_eq!(
            FlowOutcome::from(DenyReason::OutsideHours).decision(),
            FlowDecision::Deny
        );
        assert_eq!(
            FlowOutcome::from(DenyReason::NotAllowed).as_str(),
            DenyReason::NotAllowed.as_str()
        );
        assert_eq!(
            FlowOutcome::TargetRefused.decision(),
            FlowDecision::Allow,
            "allowed, then not reached"
        );
        assert!(!FlowOutcome::TargetRefused.was_opened());
    }

    #[test]
    fn a_record_keeps_the_line_format_readers_know() {
        let record = FlowRecord {
            event: FlowEvent::Flow,
            session_id: "s".into(),
            user: "alice".into(),
            user_id: "u".into(),
            source: "127.0.0.1:4433".parse().unwrap(),
            resource: "intranet".into(),
            target: "10.0.0.5:443".into(),
            decision: FlowDecision::Allow,
            outcome: FlowOutcome::Closed,
            bytes_to_target: 1,
            bytes_from_target: 2,
            start: "2026-01-01T00:00:00.000Z".into(),
            end: "2026-01-01T00:00:01.000Z".into(),
            duration_ms: 1000,
            vm: None,
        };
        let value: serde_json::Value = serde_json::to_value(&record).unwrap();
        assert_eq!(value["event"], "flow");
        assert_eq!(value["source"], "127.0.0.1:4433");
        assert_eq!(value["decision"], "allow");
        assert_eq!(value["outcome"], "closed");
        assert!(value.get("vm").is_none());
        let back: FlowRecord = serde_json::from_value(value).unwrap();
        assert_eq!(back, record);
    }
}
