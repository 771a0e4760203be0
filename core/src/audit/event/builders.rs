//! Building an audit event: a constructor per kind of record, and one method per optional
//! part.

use super::{
    Activity, Actor, Api, ApiService, AuditEvent, ChainGap, Class, Disposition, Endpoint, GapKind, HttpRequest,
    Metadata, PolicyRef, RecordLoss, ResourceRef, SessionRef, Status, Traffic, Unmapped, Url, User,
};

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
