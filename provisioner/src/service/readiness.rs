//! The readiness funnel for managers and the desk (per person and per group: registration code
//! issued, enrolled, profile set up, rehearsal passed, first real connection; counts, who is
//! stuck where, a CSV export) and the rehearsals employees' clients report with their gateway
//! session's ticket.

use super::{Provisioner, ServiceError, random_hex};
use crate::api::{ReadinessPerson, ReadinessReport, RehearsalRecorded, RehearsedResource, StepCount};
use rampart_core::audit::{Activity, Actor, AuditEvent, Class, Status, User};
use rampart_core::secret::Sensitive;
use rampart_store::TicketMatch;
use rampart_store::readiness::{
    MAX_REHEARSAL_RESOURCES, ReadinessRow, Rehearsal, RehearsalCheck, funnel, session_ticket_hash,
};
use std::net::SocketAddr;

/// Longest resource name a rehearsal report may carry (characters).
const MAX_RESOURCE_NAME: usize = 200;
/// Longest reason kept per resource (characters); longer ones are cut.
const MAX_REASON: usize = 500;

impl Provisioner {
    /// The person's latest rehearsal report, if any.
    pub async fn latest_rehearsal(&self, user_id: &str) -> Result<Option<Rehearsal>, ServiceError> {
        Ok(self.store.latest_rehearsal(user_id).await?)
    }

    /// The funnel of everyone the store knows, or of the members of `group`.
    pub async fn readiness(&self, group: Option<&str>) -> Result<ReadinessReport, ServiceError> {
        let group = group.map(str::trim).filter(|g| !g.is_empty());
        let now = self.now();
        let rows = self.store.readiness(group, now).await?;
        Ok(report(group, now, &rows))
    }

    /// Records a rehearsal for the person whose live gateway session `ticket` resumes (its
    /// current ticket, as the gateway stores it hashed). `None` when the ticket names no live
    /// session: nothing is recorded. One audit record either way.
    pub async fn record_rehearsal(
        &self,
        ticket: &Sensitive<String>,
        resources: Vec<RehearsedResource>,
        source: Option<SocketAddr>,
    ) -> Result<Option<RehearsalRecorded>, ServiceError> {
        // A rehearsal is reported once in a while; a stream of reports (each an audit record)
        // from one address is held back like sign-ins.
        if let Some(addr) = source
            && let Err(secs) =
                self.enrolment_limiter
                    .admit(addr.ip(), self.console.sign_ins_per_minute, std::time::Instant::now())
        {
            return Err(ServiceError::TooMany(secs));
        }
        if resources.len() > MAX_REHEARSAL_RESOURCES {
            return Err(ServiceError::Invalid(format!(
                "a rehearsal names at most {MAX_REHEARSAL_RESOURCES} resources"
            )));
        }
        if let Some(long) = resources
            .iter()
            .find(|r| r.resource.chars().count() > MAX_RESOURCE_NAME)
        {
            let shown: String = long.resource.chars().take(40).collect();
            return Err(ServiceError::Invalid(format!(
                "resource name {shown:?}... is longer than {MAX_RESOURCE_NAME} characters"
            )));
        }
        let now = self.now();
        let found = self
            .store
            .session_for_ticket(&session_ticket_hash(ticket.expose()))
            .await?;
        // Only the current ticket of a session that has not ended or expired: a replaced one is
        // a copy made before a resume.
        let session = match found {
            Some(TicketMatch::Current(session)) if session.ended_at.is_none() && session.expires_at > now => session,
            _ => {
                self.audit_rehearsal(
                    None,
                    Status::Failure,
                    "rehearsal report refused",
                    "no live session",
                    source,
                );
                return Ok(None);
            }
        };
        let rehearsal = Rehearsal {
            id: random_hex(8)?,
            user_id: session.user_id.clone(),
            session_id: Some(session.id.clone()),
            at: now,
            checks: resources
                .into_iter()
                .map(|r| RehearsalCheck {
                    resource: r.resource,
                    ok: r.ok,
                    reason: r.reason.map(|reason| reason.chars().take(MAX_REASON).collect()),
                })
                .collect(),
            source: source.map(|addr| addr.ip().to_string()).unwrap_or_default(),
        };
        self.store.record_rehearsal(&rehearsal).await?;
        let passed = rehearsal.passed();
        let failed: Vec<&str> = rehearsal
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.resource.as_str())
            .collect();
        let detail = format!(
            "rehearsal {} in session {}: {} resources, {} did not open{}",
            rehearsal.id,
            session.id,
            rehearsal.checks.len(),
            failed.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!(" ({})", failed.join(", "))
            }
        );
        let (status, message) = if passed {
            (Status::Success, "rehearsal passed")
        } else {
            (Status::Failure, "rehearsal failed")
        };
        self.audit_rehearsal(
            Some((&session.username, &session.user_id)),
            status,
            message,
            &detail,
            source,
        );
        Ok(Some(RehearsalRecorded {
            rehearsal_id: rehearsal.id,
            username: session.username,
            passed,
            resources: count(rehearsal.checks.len()),
            failed: count(failed.len()),
        }))
    }

    fn audit_rehearsal(
        &self,
        user: Option<(&str, &str)>,
        status: Status,
        message: &str,
        detail: &str,
        source: Option<SocketAddr>,
    ) {
        let mut event = AuditEvent::new(Class::AccountChange, Activity::OTHER, self.now_ms(), status, message)
            .actor(Actor::operator("rampart-connect"))
            .resource("rehearsal", None, Some(message))
            .detail(detail);
        event = match user {
            Some((username, user_id)) => event.user(User::with_uid(username, user_id)),
            None => event.user(User::named("(no live session)")),
        };
        if let Some(addr) = source {
            event = event.source(addr);
        }
        self.audit.record(event);
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The report of `rows` (sorted by username) for `group` at `now`.
pub fn report(group: Option<&str>, now: i64, rows: &[ReadinessRow]) -> ReadinessReport {
    let funnel = funnel(rows);
    let names = |people: &[&ReadinessRow]| people.iter().map(|r| r.username.clone()).collect::<Vec<_>>();
    ReadinessReport {
        group: group.map(str::to_owned),
        generated_at: now,
        people_total: count(funnel.people),
        not_started: count(funnel.not_started.len()),
        not_started_people: names(&funnel.not_started),
        steps: funnel
            .steps
            .iter()
            .map(|tally| StepCount {
                step: tally.step.as_str().to_owned(),
                label: tally.step.label().to_owned(),
                reached: count(tally.reached),
                stuck: count(tally.stuck.len()),
                stuck_people: names(&tally.stuck),
            })
            .collect(),
        people: rows
            .iter()
            .map(|row| ReadinessPerson {
                username: row.username.clone(),
                display_name: row.display_name.clone(),
                groups: row.groups.clone(),
                furthest_step: row.furthest().map(|s| s.as_str().to_owned()),
                code_issued_at: row.code_issued_at,
                enrolled_at: row.enrolled_at,
                profile_set_up_at: row.profile_set_up_at,
                rehearsal_passed_at: row.rehearsal_passed_at,
                first_connection_at: row.first_connection_at,
            })
            .collect(),
    }
}

/// The report as CSV for managers ([`rampart_api::provisioner::readiness_csv`]): one row per
/// person, with the furthest step in words and each step's time in ISO 8601 UTC.
pub fn readiness_csv(report: &ReadinessReport) -> Result<Vec<u8>, ServiceError> {
    rampart_api::provisioner::readiness_csv(report).map_err(|e| ServiceError::Unavailable(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rampart_store::{KeyRing, SessionRecord, SqliteStore, Store, UserRecord};
    use std::sync::Arc;

    /// A provisioner on a fresh SQLite store holding alice and her session `s1`, whose ticket
    /// is `ticket-1`.
    async fn with_session(dir: &std::path::Path) -> (Provisioner, Arc<dyn Store>) {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir).await.unwrap());
        let now = jiff::Timestamp::now().as_second();
        store
            .upsert_user(&UserRecord {
                id: "u-alice".into(),
                username: "alice".into(),
                display_name: "Alice".into(),
                password_hash: None,
                enabled: true,
                groups: vec!["staff".into()],
                created_at: now,
            })
            .await
            .unwrap();
        store
            .create_session(&SessionRecord {
                id: "s1".into(),
                ticket_hash: session_ticket_hash("ticket-1"),
                user_id: "u-alice".into(),
                username: "alice".into(),
                groups: vec!["staff".into()],
                source: "192.0.2.7:5000".into(),
                created_at: now - 10,
                expires_at: now + 3_600,
                ended_at: None,
                end_reason: None,
                token_id: None,
                last_seen_at: None,
                gateway_id: None,
                client_key: Some(vec![7; 32]),
            })
            .await
            .unwrap();
        let keys = Arc::new(KeyRing::load_or_create(&dir.join("master.key")).unwrap());
        let directory = Arc::new(rampart_directory::LocalDirectory::new(store.clone()).unwrap());
        let provisioner = Provisioner::new(
            store.clone(),
            keys,
            directory,
            crate::ProvisionerSettings::default(),
            rampart_core::clock::Clock::system(),
        );
        (provisioner, store)
    }

    fn tried(resource: &str, ok: bool) -> RehearsedResource {
        RehearsedResource {
            resource: resource.into(),
            ok,
            reason: (!ok).then(|| "the gateway could not connect to it".into()),
        }
    }

    #[tokio::test]
    async fn only_a_live_sessions_current_ticket_records_a_rehearsal_for_its_person() {
        let dir = tempfile::tempdir().unwrap();
        let (provisioner, store) = with_session(dir.path()).await;
        let ticket = |t: &str| Sensitive::new(t.to_owned());

        let unknown = provisioner
            .record_rehearsal(&ticket("not-a-ticket"), vec![tried("echo", true)], None)
            .await
            .unwrap();
        assert_eq!(unknown, None);
        assert_eq!(store.latest_rehearsal("u-alice").await.unwrap(), None);

        let failed = provisioner
            .record_rehearsal(
                &ticket("ticket-1"),
                vec![tried("echo", true), tried("desktop", false)],
                None,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (failed.username.as_str(), failed.passed, failed.resources, failed.failed),
            ("alice", false, 2, 1)
        );
        let kept = store.latest_rehearsal("u-alice").await.unwrap().unwrap();
        assert_eq!(kept.session_id.as_deref(), Some("s1"));
        assert_eq!(
            kept.checks[1].reason.as_deref(),
            Some("the gateway could not connect to it")
        );

        let none_tried = provisioner
            .record_rehearsal(&ticket("ticket-1"), Vec::new(), None)
            .await
            .unwrap()
            .unwrap();
        assert!(!none_tried.passed, "nothing tried is no pass");
        let passed = provisioner
            .record_rehearsal(&ticket("ticket-1"), vec![tried("echo", true)], None)
            .await
            .unwrap()
            .unwrap();
        assert!(passed.passed);
        let report = provisioner.readiness(Some("staff")).await.unwrap();
        assert_eq!(report.people[0].furthest_step.as_deref(), Some("rehearsal_passed"));

        // A replaced ticket, or the ticket of an ended session, records nothing.
        let now = jiff::Timestamp::now().as_second();
        store
            .rotate_ticket(
                "s1",
                &session_ticket_hash("ticket-1"),
                &session_ticket_hash("ticket-2"),
                "gw",
                now,
            )
            .await
            .unwrap();
        let replaced = provisioner
            .record_rehearsal(&ticket("ticket-1"), vec![tried("echo", true)], None)
            .await
            .unwrap();
        assert_eq!(replaced, None);
        store.end_session("s1", "logout", now).await.unwrap();
        let ended = provisioner
            .record_rehearsal(&ticket("ticket-2"), vec![tried("echo", true)], None)
            .await
            .unwrap();
        assert_eq!(ended, None);
        assert_eq!(
            store.latest_rehearsal("u-alice").await.unwrap().unwrap().id,
            passed.rehearsal_id
        );

        let too_many = (0..=MAX_REHEARSAL_RESOURCES)
            .map(|i| tried(&format!("r{i}"), true))
            .collect();
        let refused = provisioner.record_rehearsal(&ticket("ticket-2"), too_many, None).await;
        assert!(matches!(refused, Err(ServiceError::Invalid(_))), "{refused:?}");
    }

    fn row(name: &str, display: &str, enrolled: Option<i64>, connected: Option<i64>) -> ReadinessRow {
        ReadinessRow {
            user_id: format!("id-{name}"),
            username: name.to_owned(),
            display_name: display.to_owned(),
            groups: vec!["branch-7".to_owned(), "staff".to_owned()],
            enabled: true,
            code_issued_at: None,
            enrolled_at: enrolled,
            profile_set_up_at: None,
            rehearsal_passed_at: None,
            first_connection_at: connected,
        }
    }

    #[test]
    fn the_csv_has_a_row_per_person_with_iso_times_and_no_formulas() {
        let rows = vec![
            row("alice", "Alice Example", Some(1_772_357_400), Some(1_772_443_800)),
            row("bob", "=HYPERLINK(\"x\")", None, None),
        ];
        let report = report(Some("branch-7"), 1_772_500_000, &rows);
        assert_eq!(report.people_total, 2);
        assert_eq!(report.not_started_people, ["bob"]);
        assert_eq!(report.steps[4].stuck_people, ["alice"]);
        assert!(report.steps.iter().all(|s| s.reached == 1));
        let text = String::from_utf8(readiness_csv(&report).unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "username,display_name,groups,furthest_step,code_issued,enrolled,profile_set_up,rehearsal_passed,first_connection"
        );
        assert_eq!(
            lines[1],
            "alice,Alice Example,branch-7 staff,first real connection,,2026-03-01T09:30:00Z,,,2026-03-02T09:30:00Z"
        );
        assert!(
            lines[2].starts_with("bob,\"'=HYPERLINK(\"\"x\"\")\",branch-7 staff,not started,"),
            "{}",
            lines[2]
        );
        assert_eq!(lines.len(), 3);
    }
}
