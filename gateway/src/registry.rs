//! Live sessions on this gateway: who is attached, their open flows and byte counts, and the
//! one switch that ends a session here — its connections close and its flows are reset.

use rampart_api::gateway::SessionView;
use rampart_core::policy::Identity;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use tokio_util::sync::CancellationToken;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a session is created from (a login, or a resume of a stored session).
#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub groups: Vec<String>,
    pub source: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// One live session.
#[derive(Debug)]
pub(crate) struct LiveSession {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub created_at: i64,
    pub expires_at: i64,
    groups: RwLock<Vec<String>>,
    source: Mutex<String>,
    last_activity: AtomicI64,
    connections: AtomicU32,
    /// Open flows: id → resource.
    flows: Mutex<HashMap<u64, String>>,
    next_flow: AtomicU64,
    resources_used: Mutex<BTreeSet<String>>,
    bytes_to_targets: AtomicU64,
    bytes_from_targets: AtomicU64,
    /// Bytes both ways at the last [`LiveSession::note_traffic`].
    traffic_seen: AtomicU64,
    ended: CancellationToken,
    end_reason: OnceLock<String>,
}

impl LiveSession {
    fn new(info: SessionInfo, now: i64) -> Self {
        Self {
            id: info.id,
            user_id: info.user_id,
            username: info.username,
            created_at: info.created_at,
            expires_at: info.expires_at,
            groups: RwLock::new(info.groups),
            source: Mutex::new(info.source),
            last_activity: AtomicI64::new(now),
            connections: AtomicU32::new(0),
            flows: Mutex::new(HashMap::new()),
            next_flow: AtomicU64::new(0),
            resources_used: Mutex::new(BTreeSet::new()),
            bytes_to_targets: AtomicU64::new(0),
            bytes_from_targets: AtomicU64::new(0),
            traffic_seen: AtomicU64::new(0),
            ended: CancellationToken::new(),
            end_reason: OnceLock::new(),
        }
    }

    /// Who the session decides as, with its current groups.
    pub fn identity(&self) -> Identity {
        let groups = match self.groups.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        Identity {
            username: self.username.clone(),
            groups,
        }
    }

    /// Replaces the groups (directory re-check); true when they changed.
    pub fn set_groups(&self, mut groups: Vec<String>) -> bool {
        groups.sort();
        let mut current = match self.groups.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut old = current.clone();
        old.sort();
        if old == groups {
            return false;
        }
        *current = groups;
        true
    }

    /// Records use at `now`.
    pub fn touch(&self, now: i64) {
        self.last_activity.fetch_max(now, Ordering::Relaxed);
    }

    /// Counts the session as active at `now` if bytes moved or a flow is open since the last
    /// call (called periodically, so the data path never reads the clock).
    pub fn note_traffic(&self, now: i64) {
        let total = self
            .bytes_to_targets
            .load(Ordering::Relaxed)
            .wrapping_add(self.bytes_from_targets.load(Ordering::Relaxed));
        let before = self.traffic_seen.swap(total, Ordering::Relaxed);
        if before != total || !lock(&self.flows).is_empty() {
            self.touch(now);
        }
    }

    pub fn last_activity(&self) -> i64 {
        self.last_activity.load(Ordering::Relaxed)
    }

    /// Ends the session here; true for the first call. Its connections and flows watch
    /// [`LiveSession::ended`] and close.
    pub fn end(&self, reason: &str) -> bool {
        let first = self.end_reason.set(reason.to_owned()).is_ok();
        self.ended.cancel();
        first
    }

    /// Cancelled when the session ends.
    pub fn ended(&self) -> &CancellationToken {
        &self.ended
    }

    pub fn is_ended(&self) -> bool {
        self.ended.is_cancelled()
    }

    /// Why the session ended, once it has.
    pub fn end_reason(&self) -> Option<&str> {
        self.end_reason.get().map(String::as_str)
    }

    pub fn set_source(&self, source: String) {
        *lock(&self.source) = source;
    }

    /// Counts bytes carried to a target.
    pub fn add_to_target(&self, n: u64) {
        self.bytes_to_targets.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts bytes carried from a target.
    pub fn add_from_target(&self, n: u64) {
        self.bytes_from_targets.fetch_add(n, Ordering::Relaxed);
    }

    /// Registers an open flow; it is closed when the guard drops. Its token is cancelled when
    /// the session ends or when the flow alone must close (e.g. the person left a group).
    pub fn open_flow(self: &Arc<Self>, resource: &str, now: i64) -> FlowGuard {
        let id = self.next_flow.fetch_add(1, Ordering::Relaxed);
        let cancel = self.ended.child_token();
        lock(&self.flows).insert(id, resource.to_owned());
        lock(&self.resources_used).insert(resource.to_owned());
        self.touch(now);
        FlowGuard {
            session: self.clone(),
            id,
            cancel,
        }
    }

    pub fn connections(&self) -> u32 {
        self.connections.load(Ordering::Relaxed)
    }

    /// The service desk's view of the session.
    pub fn view(&self) -> SessionView {
        SessionView {
            id: self.id.clone(),
            gateway: None,
            user: self.username.clone(),
            user_id: self.user_id.clone(),
            groups: self.identity().groups,
            source: lock(&self.source).clone(),
            since: self.created_at,
            expires_at: self.expires_at,
            last_activity: self.last_activity(),
            connections: self.connections(),
            active_flows: u32::try_from(lock(&self.flows).len()).unwrap_or(u32::MAX),
            resources_used: lock(&self.resources_used).iter().cloned().collect(),
            bytes_to_targets: self.bytes_to_targets.load(Ordering::Relaxed),
            bytes_from_targets: self.bytes_from_targets.load(Ordering::Relaxed),
        }
    }
}

/// An open flow of a session; dropping it removes the flow.
#[derive(Debug)]
pub(crate) struct FlowGuard {
    session: Arc<LiveSession>,
    id: u64,
    cancel: CancellationToken,
}

impl FlowGuard {
    /// Cancelled when the flow must close.
    pub fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }
}

impl Drop for FlowGuard {
    fn drop(&mut self) {
        lock(&self.session.flows).remove(&self.id);
    }
}

/// The live sessions of this gateway, by id.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    sessions: Mutex<HashMap<String, Arc<LiveSession>>>,
}

impl Registry {
    /// Attaches a connection to the session (created here if this gateway had not seen it).
    pub fn attach(&self, info: SessionInfo, now: i64) -> Arc<LiveSession> {
        let source = info.source.clone();
        let session = lock(&self.sessions)
            .entry(info.id.clone())
            .or_insert_with(|| Arc::new(LiveSession::new(info, now)))
            .clone();
        session.set_source(source);
        session.connections.fetch_add(1, Ordering::Relaxed);
        session.touch(now);
        session
    }

    /// Detaches a connection; returns true when it was the session's last one here, and then
    /// forgets the session (it lives on in the store until it ends or expires).
    pub fn detach(&self, session: &LiveSession) -> bool {
        let mut sessions = lock(&self.sessions);
        let left = session.connections.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
        if left == 0 {
            sessions.remove(&session.id);
            true
        } else {
            false
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<LiveSession>> {
        lock(&self.sessions).get(id).cloned()
    }

    /// Every live session, oldest first.
    pub fn all(&self) -> Vec<Arc<LiveSession>> {
        let mut all: Vec<_> = lock(&self.sessions).values().cloned().collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        all
    }

    pub fn len(&self) -> usize {
        lock(&self.sessions).len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn info(id: &str) -> SessionInfo {
        SessionInfo {
            id: id.into(),
            user_id: "u1".into(),
            username: "alice".into(),
            groups: vec!["staff".into()],
            source: "127.0.0.1:1".into(),
            created_at: 100,
            expires_at: 200,
        }
    }

    #[test]
    fn attach_detach_and_end() {
        let registry = Registry::default();
        let a = registry.attach(info("s1"), 100);
        let b = registry.attach(info("s1"), 101);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.connections(), 2);
        assert!(!registry.detach(&a));
        let flow = a.open_flow("intranet", 105);
        assert_eq!(a.view().active_flows, 1);
        assert_eq!(a.view().last_activity, 105);
        assert!(a.end("admin_kill"));
        assert!(!a.end("expired"));
        assert_eq!(a.end_reason(), Some("admin_kill"));
        assert!(flow.cancelled().is_cancelled(), "flows close with their session");
        drop(flow);
        assert_eq!(a.view().active_flows, 0);
        assert_eq!(a.view().resources_used, ["intranet"]);
        assert!(registry.detach(&a));
        assert!(registry.get("s1").is_none());
    }

    #[test]
    fn groups_change_detected() {
        let registry = Registry::default();
        let s = registry.attach(info("s1"), 100);
        assert!(!s.set_groups(vec!["staff".into()]));
        assert!(s.set_groups(vec![]));
        assert!(s.identity().groups.is_empty());
    }
}
