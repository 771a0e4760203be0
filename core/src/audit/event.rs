//! Audit events shaped after OCSF classes, so a SIEM maps them without custom parsing:
//! Authentication (3002), Authorization (3003), Network Activity (4001), Account Change (3001),
//! API Activity (6003) and Event Log Activity (1008, the trail's own losses and gaps). Every string from
//! outside is a plain field: serialisation escapes it, so it can never split or forge a record.

use serde::{Deserialize, Serialize};

/// OCSF schema version the field names follow.
pub const OCSF_VERSION: &str = "1.3.0";

/// The OCSF classes Rampart writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Logins, resumes, logouts and session ends.
    Authentication,
    /// Per-stream access decisions.
    Authorization,
    /// Forwarded connections: open, close, failure.
    NetworkActivity,
    /// Token (and later VM) changes.
    AccountChange,
    /// Operator calls to the admin and provisioner APIs.
    ApiActivity,
    /// The audit trail about itself: records it had to drop.
    EventLogActivity,
}

impl Class {
    /// OCSF `class_uid`.
    pub fn uid(self) -> u32 {
        match self {
            Self::Authentication => 3002,
            Self::Authorization => 3003,
            Self::NetworkActivity => 4001,
            Self::AccountChange => 3001,
            Self::ApiActivity => 6003,
            Self::EventLogActivity => 1008,
        }
    }

    /// OCSF `class_name`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Authentication => "Authentication",
            Self::Authorization => "Authorize Session",
            Self::NetworkActivity => "Network Activity",
            Self::AccountChange => "Account Change",
            Self::ApiActivity => "API Activity",
            Self::EventLogActivity => "Event Log Activity",
        }
    }

    fn category(self) -> (u32, &'static str) {
        match self {
            Self::Authentication | Self::Authorization | Self::AccountChange => (3, "Identity & Access Management"),
            Self::NetworkActivity => (4, "Network Activity"),
            Self::ApiActivity => (6, "Application Activity"),
            Self::EventLogActivity => (1, "System Activity"),
        }
    }

    /// The short name `rampart audit query --class` takes.
    pub fn short_name(self) -> &'static str {
        match self {
            Self::Authentication => "auth",
            Self::Authorization => "decision",
            Self::NetworkActivity => "flow",
            Self::AccountChange => "account",
            Self::ApiActivity => "api",
            Self::EventLogActivity => "log",
        }
    }

    /// Every class, for parsing short names.
    pub const ALL: [Self; 6] = [
        Self::Authentication,
        Self::Authorization,
        Self::NetworkActivity,
        Self::AccountChange,
        Self::ApiActivity,
        Self::EventLogActivity,
    ];
}

/// An OCSF activity: its id within the class and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    /// `activity_id`.
    pub id: u32,
    /// `activity_name`.
    pub name: &'static str,
}

impl Activity {
    /// Authentication: a login with password and code.
    pub const LOGON: Self = Self { id: 1, name: "Logon" };
    /// Authentication: a session ended (logout, kill, expiry, revocation…).
    pub const LOGOFF: Self = Self { id: 2, name: "Logoff" };
    /// Authentication: a session resumed with its ticket.
    pub const RESUME: Self = Self {
        id: 3,
        name: "Authentication Ticket",
    };
    /// Authorization: a stream's access decision.
    pub const DECIDE: Self = Self {
        id: 99,
        name: "Access Decision",
    };
    /// Network Activity: a forwarded connection opened.
    pub const OPEN: Self = Self { id: 1, name: "Open" };
    /// Network Activity: a forwarded connection closed.
    pub const CLOSE: Self = Self { id: 2, name: "Close" };
    /// Network Activity: the target could not be reached.
    pub const FAIL: Self = Self { id: 4, name: "Fail" };
    /// Account Change: a token issued.
    pub const MFA_ENABLE: Self = Self {
        id: 10,
        name: "MFA Factor Enable",
    };
    /// Account Change: a token revoked, lost or replaced.
    pub const MFA_DISABLE: Self = Self {
        id: 11,
        name: "MFA Factor Disable",
    };
    /// Account Change: a token locked after wrong codes.
    pub const LOCK: Self = Self { id: 9, name: "Lock" };
    /// Account Change: a VM removed for good.
    pub const REMOVE: Self = Self { id: 6, name: "Delete" };
    /// Account Change: a VM given to a person.
    pub const ATTACH: Self = Self {
        id: 7,
        name: "Attach Policy",
    };
    /// Account Change: a VM taken back.
    pub const DETACH: Self = Self {
        id: 8,
        name: "Detach Policy",
    };
    /// Account Change and API Activity: anything else (unlock, resync, activation…).
    pub const OTHER: Self = Self { id: 99, name: "Other" };
    /// API Activity: a call that created something.
    pub const CREATE: Self = Self { id: 1, name: "Create" };
    /// API Activity: a call that only read.
    pub const READ: Self = Self { id: 2, name: "Read" };
    /// API Activity: a call that changed something.
    pub const UPDATE: Self = Self { id: 3, name: "Update" };
    /// API Activity: a call that removed or ended something.
    pub const DELETE: Self = Self { id: 4, name: "Delete" };
    /// Event Log Activity: the writer dropped records (OCSF `Other`, named by `activity_name`).
    pub const RECORDS_DROPPED: Self = Self {
        id: 99,
        name: "Records Dropped",
    };
    /// Event Log Activity: a restarted writer found its files behind or unlike the head the
    /// store anchored (OCSF `Other`, named by `activity_name`).
    pub const CHAIN_GAP: Self = Self {
        id: 99,
        name: "Chain Gap",
    };
}

/// Whether the activity succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It did what was asked.
    Success,
    /// It was refused or failed.
    Failure,
}

/// Whether access was granted (OCSF `disposition_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Allowed.
    Allowed,
    /// Blocked.
    Blocked,
}

impl Disposition {
    /// OCSF `disposition_id`.
    pub fn id(self) -> u8 {
        match self {
            Self::Allowed => 1,
            Self::Blocked => 2,
        }
    }

    /// OCSF `disposition`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Allowed => "Allowed",
            Self::Blocked => "Blocked",
        }
    }
}

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

/// What a restarted writer found missing or changed: its files against the last checkpoint
/// head recorded in the store (a chain-gap record's OCSF `unmapped`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainGap {
    /// `cut`: the files end before the anchored record; `differs`: the files hold another
    /// record under the anchored number, or not that record at all.
    pub gap: GapKind,
    /// The last record on file (none: no file of the stream is left).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_end_seq: Option<u64>,
    /// The record the store anchored: the stream's last checkpoint it was told of.
    pub anchored_seq: u64,
    /// That record's hash.
    pub anchored_hash: String,
    /// The file that held it.
    pub anchored_file: String,
}

/// How a stream's files disagree with the store's anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// Records up to the anchored one are gone from the end of the stream.
    Cut,
    /// The anchored record is not in the files as it was anchored.
    Differs,
}

impl ChainGap {
    /// Records known to be missing: from after the last one on file to the anchored one (a
    /// `differs` gap counts the anchored record alone).
    pub fn missing(&self) -> u64 {
        match self.gap {
            GapKind::Cut => self
                .anchored_seq
                .saturating_sub(self.files_end_seq.map_or(0, |end| end.saturating_add(1)))
                .saturating_add(1),
            GapKind::Differs => 1,
        }
    }
}

/// Why audit records were dropped, cause by cause (a loss report's OCSF `unmapped`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordLoss {
    /// Events not written because the file could not be written (disk full, I/O error).
    pub dropped_write_failed: u64,
    /// Events refused because the writer's queue was full.
    pub dropped_queue_full: u64,
    /// The first write error, as the operating system put it (never record content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_error: Option<String>,
}

impl RecordLoss {
    /// Records dropped for any cause.
    pub fn total(&self) -> u64 {
        self.dropped_write_failed.saturating_add(self.dropped_queue_full)
    }
}

/// OCSF `metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Which program wrote it.
    pub product: Product,
    /// OCSF schema version.
    pub version: String,
    /// The audit stream (one per process).
    #[serde(default)]
    pub log_name: String,
}

/// OCSF `metadata.product`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// `Rampart`.
    pub name: String,
    /// `Rampart`.
    pub vendor_name: String,
    /// `gateway`, `provisioner`…
    #[serde(default)]
    pub feature: Feature,
    /// The program's version.
    #[serde(default)]
    pub version: String,
}

/// OCSF `product.feature`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    /// The service.
    pub name: String,
}

impl Metadata {
    /// Metadata for a Rampart service writing the stream `log_name`.
    pub fn rampart(service: &str, version: &str, log_name: &str) -> Self {
        Self {
            product: Product {
                name: "Rampart".into(),
                vendor_name: "Rampart".into(),
                feature: Feature { name: service.into() },
                version: version.into(),
            },
            version: OCSF_VERSION.into(),
            log_name: log_name.into(),
        }
    }
}

/// OCSF `user`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The name as typed or as the directory knows it.
    pub name: String,
    /// The directory's stable id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// `User`, `Operator` or `System`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// Group memberships at the time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
}

impl User {
    /// A person by name.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// A person with their stable id.
    pub fn with_uid(name: &str, uid: &str) -> Self {
        Self {
            name: name.into(),
            uid: Some(uid.into()),
            ..Self::default()
        }
    }

    /// Adds group memberships.
    #[must_use]
    pub fn groups(mut self, groups: &[String]) -> Self {
        self.groups = groups.iter().map(|name| Group { name: name.clone() }).collect();
        self
    }
}

/// OCSF `group`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Group name.
    pub name: String,
}

/// OCSF `actor`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Who acted.
    pub user: User,
}

impl Actor {
    /// An operator (API key holder) by name.
    pub fn operator(name: &str) -> Self {
        Self {
            user: User {
                name: name.into(),
                r#type: Some("Operator".into()),
                ..User::default()
            },
        }
    }

    /// A Rampart service acting on its own (e.g. the gateway locking a token).
    pub fn system(name: &str) -> Self {
        Self {
            user: User {
                name: name.into(),
                r#type: Some("System".into()),
                ..User::default()
            },
        }
    }
}

/// OCSF network endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Host name, when the target is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The Rampart resource name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub svc_name: Option<String>,
}

impl Endpoint {
    /// An endpoint from a socket address.
    pub fn socket(addr: std::net::SocketAddr) -> Self {
        Self {
            ip: Some(addr.ip().to_canonical().to_string()),
            port: Some(addr.port()),
            ..Self::default()
        }
    }

    /// A resource and the `host:port` it leads to (`target` may be empty before dialling).
    pub fn resource(name: &str, target: &str) -> Self {
        let mut endpoint = Self {
            svc_name: Some(name.into()),
            ..Self::default()
        };
        if let Some((host, port)) = target.rsplit_once(':') {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.parse::<std::net::IpAddr>().is_ok() {
                endpoint.ip = Some(host.into());
            } else {
                endpoint.hostname = Some(host.into());
            }
            endpoint.port = port.parse().ok();
        }
        endpoint
    }
}

/// OCSF `session`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRef {
    /// Session id.
    pub uid: String,
}

/// OCSF `traffic`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// From the target back to the client.
    pub bytes_in: u64,
    /// From the client to the target.
    pub bytes_out: u64,
}

/// OCSF `policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    /// The rule's name.
    pub name: String,
}

/// OCSF `api`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Api {
    /// `METHOD /route/{param}`.
    pub operation: String,
    /// The service answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ApiService>,
}

/// OCSF `api.service`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiService {
    /// `gateway-admin` or `provisioner`.
    pub name: String,
}

/// OCSF `http_request`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// GET, POST…
    pub http_method: String,
    /// The path as called.
    pub url: Url,
}

/// OCSF `url`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Url {
    /// Path.
    pub path: String,
}

/// OCSF `resources[]`: something an operator or the gateway changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRef {
    /// `token`, `vm`, `session`…
    pub r#type: String,
    /// Its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl AuditEvent {
    /// An event of `class` and `activity` at `time_ms`, with its outcome and a message.
    pub fn new(class: Class, activity: Activity, time_ms: i64, status: Status, message: &str) -> Self {
        let (category_uid, category_name) = class.category();
        let (status_name, status_id, severity_id) = match status {
            Status::Success => ("Success", 1, 1),
            Status::Failure => ("Failure", 2, 3),
        };
        Self {
            time: time_ms,
            class_uid: class.uid(),
            class_name: class.name().into(),
            category_uid,
            category_name: category_name.into(),
            activity_id: activity.id,
            activity_name: activity.name.into(),
            type_uid: u64::from(class.uid()) * 100 + u64::from(activity.id),
            severity_id,
            status: status_name.into(),
            status_id,
            status_detail: None,
            message: message.into(),
            metadata: Metadata::default(),
            user: None,
            actor: None,
            src_endpoint: None,
            dst_endpoint: None,
            session: None,
            traffic: None,
            disposition: None,
            disposition_id: None,
            policy: None,
            api: None,
            http_request: None,
            resources: Vec::new(),
            start_time: None,
            end_time: None,
            duration: None,
            count: None,
            unmapped: None,
        }
    }

    /// A loss report: the stream's writer dropped `loss.total()` events between `first_ms` and
    /// `last_ms` (when it noticed each loss) and says so in the chain, so the loss is on record
    /// instead of looking like a deletion. `status_detail` is `records_dropped`; severity high.
    pub fn records_dropped(time_ms: i64, loss: RecordLoss, first_ms: i64, last_ms: i64) -> Self {
        let mut event = Self::new(
            Class::EventLogActivity,
            Activity::RECORDS_DROPPED,
            time_ms,
            Status::Failure,
            "audit records dropped",
        )
        .detail("records_dropped");
        event.severity_id = 4;
        event.count = Some(loss.total());
        event.start_time = Some(first_ms);
        event.end_time = Some(last_ms);
        event.unmapped = Some(Unmapped::Loss(loss));
        event
    }

    /// A chain gap: a restarted writer found its files behind, or unlike, the last checkpoint
    /// head the store holds — records were cut or the files replaced while it was stopped. The
    /// writer records it before anything else instead of carrying on as if nothing happened.
    /// `status_detail` is `chain_gap`; severity critical; `count` the records known missing.
    pub fn chain_gap(time_ms: i64, gap: ChainGap) -> Self {
        let message = match gap.gap {
            GapKind::Cut => "audit chain gap: records were cut off the end of this stream",
            GapKind::Differs => "audit chain gap: this stream's files do not hold the anchored record",
        };
        let mut event = Self::new(
            Class::EventLogActivity,
            Activity::CHAIN_GAP,
            time_ms,
            Status::Failure,
            message,
        )
        .detail("chain_gap");
        event.severity_id = 5;
        event.count = Some(gap.missing());
        event.unmapped = Some(Unmapped::Gap(gap));
        event
    }

    /// Sets the real reason.
    #[must_use]
    pub fn detail(mut self, detail: &str) -> Self {
        self.status_detail = Some(detail.into());
        self
    }

    /// Sets the person.
    #[must_use]
    pub fn user(mut self, user: User) -> Self {
        self.user = Some(user);
        self
    }

    /// Sets who acted.
    #[must_use]
    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = Some(actor);
        self
    }

    /// Sets the source address.
    #[must_use]
    pub fn source(mut self, addr: std::net::SocketAddr) -> Self {
        self.src_endpoint = Some(Endpoint::socket(addr));
        self
    }

    /// Sets the destination.
    #[must_use]
    pub fn destination(mut self, endpoint: Endpoint) -> Self {
        self.dst_endpoint = Some(endpoint);
        self
    }

    /// Sets the session id.
    #[must_use]
    pub fn session(mut self, id: &str) -> Self {
        self.session = Some(SessionRef { uid: id.into() });
        self
    }

    /// Sets the access decision.
    #[must_use]
    pub fn disposition(mut self, disposition: Disposition) -> Self {
        self.disposition = Some(disposition.name().into());
        self.disposition_id = Some(disposition.id());
        self
    }

    /// Sets the deciding rule.
    #[must_use]
    pub fn rule(mut self, name: &str) -> Self {
        self.policy = Some(PolicyRef { name: name.into() });
        self
    }

    /// Adds something that was changed.
    #[must_use]
    pub fn resource(mut self, kind: &str, uid: Option<&str>, name: Option<&str>) -> Self {
        self.resources.push(ResourceRef {
            r#type: kind.into(),
            uid: uid.map(Into::into),
            name: name.map(Into::into),
        });
        self
    }

    /// Sets a flow's bytes and times.
    #[must_use]
    pub fn flow(mut self, traffic: Traffic, start_ms: i64, end_ms: i64) -> Self {
        self.traffic = Some(traffic);
        self.start_time = Some(start_ms);
        self.end_time = Some(end_ms);
        self.duration = Some(end_ms.saturating_sub(start_ms).max(0));
        self
    }

    /// Sets the API call.
    #[must_use]
    pub fn api_call(mut self, service: &str, method: &str, route: &str, path: &str) -> Self {
        self.api = Some(Api {
            operation: format!("{method} {route}"),
            service: Some(ApiService { name: service.into() }),
        });
        self.http_request = Some(HttpRequest {
            http_method: method.into(),
            url: Url { path: path.into() },
        });
        self
    }

    /// The class, if it is one Rampart writes.
    pub fn class(&self) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.uid() == self.class_uid)
    }
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
