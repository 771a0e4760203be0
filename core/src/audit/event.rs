//! Audit events shaped after OCSF classes, so a SIEM maps them without custom parsing:
//! Authentication (3002), Authorization (3003), Network Activity (4001), Account Change (3001),
//! API Activity (6003) and Event Log Activity (1008, the trail's own losses and gaps). Every string from
//! outside is a plain field: serialisation escapes it, so it can never split or forge a record.

use serde::{Deserialize, Serialize};

/// OCSF schema version the field names follow.
pub const OCSF_VERSION: &str = "1.3.0";

mod builders;
mod classes;
mod objects;
mod trail;

pub use classes::{Activity, Class, Disposition, Status};
pub use objects::{
    Actor, Api, ApiService, Endpoint, Feature, Group, HttpRequest, Metadata, PolicyRef, Product, ResourceRef,
    SessionRef, Traffic, Url, User,
};
pub use trail::{ChainGap, GapKind, RecordLoss};

/// One audit event, before it is chained. Optional parts are left out of the JSON when empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Milliseconds since the Unix epoch.
    pub time: i64,
    /// OCSF class.
    pub class_uid: u32,
    /// OCSF class name.
    pub class_name: String,
    /// OCSF category.
    pub category_uid: u32,
    /// OCSF category name.
    pub category_name: String,
    /// Activity within the class.
    pub activity_id: u32,
    /// Activity name.
    pub activity_name: String,
    /// `class_uid * 100 + activity_id`.
    pub type_uid: u64,
    /// 1 informational, 3 medium (refusals and failures), 4 high (audit records lost).
    pub severity_id: u8,
    /// `Success` or `Failure`.
    pub status: String,
    /// 1 success, 2 failure.
    pub status_id: u8,
    /// The real reason (`wrong_code`, `admin_kill`, `target_refused`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_detail: Option<String>,
    /// A short human description.
    pub message: String,
    /// Product and log name; filled in by the writer.
    pub metadata: Metadata,
    /// The person the event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// Who acted (an operator, or the gateway itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    /// Where the request came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_endpoint: Option<Endpoint>,
    /// The resource and target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_endpoint: Option<Endpoint>,
    /// The session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionRef>,
    /// Bytes each way (`bytes_out`: client to target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
    /// `Allowed` or `Blocked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
    /// 1 allowed, 2 blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition_id: Option<u8>,
    /// The policy rule that decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyRef>,
    /// The API operation called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<Api>,
    /// The HTTP request of an API call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_request: Option<HttpRequest>,
    /// What was changed (tokens, VMs…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceRef>,
    /// Start of a flow, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    /// End of a flow, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    /// Duration of a flow in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// OCSF `count`: how many events this record stands for (in a loss report, the records lost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// OCSF `unmapped`: in a loss report, how many records each cause dropped; in a chain gap,
    /// what the files hold against what the store anchored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmapped: Option<Unmapped>,
}

/// The trail's own details that OCSF has no field for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Unmapped {
    /// A loss report's causes.
    Loss(RecordLoss),
    /// A chain gap's extent.
    Gap(ChainGap),
}
/// `ms` since the epoch as an RFC 3339 UTC timestamp with milliseconds.
pub fn format_time_ms(ms: i64) -> Option<String> {
    jiff::Timestamp::from_millisecond(ms).ok().map(|t| format!("{t:.3}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn type_uid_combines_class_and_activity() {
        let event = AuditEvent::new(
            Class::NetworkActivity,
            Activity::CLOSE,
            5,
            Status::Success,
            "flow closed",
        );
        assert_eq!(event.type_uid, 400_102);
        assert_eq!(event.category_uid, 4);
        assert_eq!(event.class(), Some(Class::NetworkActivity));
    }

    #[test]
    fn resource_endpoint_splits_host_and_port() {
        let named = Endpoint::resource("intranet", "intranet.bank.example:443");
        assert_eq!(named.hostname.as_deref(), Some("intranet.bank.example"));
        assert_eq!(named.port, Some(443));
        let v6 = Endpoint::resource("db", "[::1]:5432");
        assert_eq!(v6.ip.as_deref(), Some("::1"));
        let empty = Endpoint::resource("x", "");
        assert_eq!((empty.ip, empty.hostname, empty.port), (None, None, None));
    }

    #[test]
    fn empty_optional_parts_are_left_out() {
        let event = AuditEvent::new(Class::Authentication, Activity::LOGON, 1, Status::Failure, "login");
        let json = serde_json::to_value(&event).unwrap();
        assert!(json.get("user").is_none());
        assert!(json.get("resources").is_none());
        assert_eq!(json["status_id"], 2);
        let back: AuditEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn a_loss_report_counts_each_cause() {
        let loss = RecordLoss {
            dropped_write_failed: 10,
            dropped_queue_full: 2,
            write_error: Some("No space left on device (os error 28)".into()),
        };
        let event = AuditEvent::records_dropped(9, loss, 3, 8);
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["class_uid"], 1008);
        assert_eq!(json["category_uid"], 1);
        assert_eq!(json["type_uid"], 100_899);
        assert_eq!(json["activity_name"], "Records Dropped");
        assert_eq!(json["status_detail"], "records_dropped");
        assert_eq!(json["severity_id"], 4);
        assert_eq!(json["count"], 12);
        assert_eq!(
            (json["start_time"].clone(), json["end_time"].clone()),
            (3.into(), 8.into())
        );
        assert_eq!(json["unmapped"]["dropped_write_failed"], 10);
        assert_eq!(json["unmapped"]["dropped_queue_full"], 2);
        assert_eq!(event.class(), Some(Class::EventLogActivity));
        let back: AuditEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn a_chain_gap_names_what_is_missing() {
        let gap = ChainGap {
            gap: GapKind::Cut,
            files_end_seq: Some(41),
            anchored_seq: 50,
            anchored_hash: "ab".repeat(32),
            anchored_file: "gateway-0000000000000000.jsonl".into(),
        };
        let event = AuditEvent::chain_gap(9, gap.clone());
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["status_detail"], "chain_gap");
        assert_eq!(json["activity_name"], "Chain Gap");
        assert_eq!(json["severity_id"], 5);
        assert_eq!(json["count"], 9, "records 42 to 50");
        assert_eq!(json["unmapped"]["gap"], "cut");
        assert_eq!(json["unmapped"]["anchored_seq"], 50);
        let back: AuditEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
        let deleted = ChainGap {
            files_end_seq: None,
            ..gap
        };
        assert_eq!(deleted.missing(), 51, "records 0 to 50");
    }
}
