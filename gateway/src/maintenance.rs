//! Background upkeep: closes sessions that ended elsewhere (operator kill, revoked token,
//! another gateway), expired or went idle; asks the directory again about connected people in a
//! task of its own, so a slow or hung directory never delays a session's end; and reloads the
//! policy on SIGHUP or when its file changes.

use crate::registry::LiveSession;
use crate::state::{EndReason, Shared};
use rampart_core::policy::Identity;
use rampart_directory::DirectoryUser;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// Longest one person's directory re-check may take before it counts as failed.
const RECHECK_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest one round of directory re-checks may take; people not reached are checked next round.
const RECHECK_ROUND_TIMEOUT: Duration = Duration::from_secs(60);
/// Directory lookups of one round in flight at once.
const RECHECK_CONCURRENCY: usize = 4;

/// Runs the session checks every `session_check_secs` until `stop`. Nothing here waits on the
/// directory: [`run_directory_recheck`] asks it in a task of its own.
pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(shared.settings.session_check());
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut ended_cursor = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let now = shared.clock.now();
        close_sessions_ended_elsewhere(&shared, &mut ended_cursor, now).await;
        close_expired_and_idle(&shared, now).await;
        shared
            .metrics
            .sessions_active()
            .set(i64::try_from(shared.registry.len()).unwrap_or(i64::MAX));
    }
}

/// Re-checks connected people against the directory every `directory_recheck_secs` until
/// `stop`. Rounds never overlap (the next waits for the previous one), each is cut off after
/// [`RECHECK_ROUND_TIMEOUT`] or the interval, whichever is shorter, and each lookup after
/// [`RECHECK_LOOKUP_TIMEOUT`], with at most [`RECHECK_CONCURRENCY`] in flight.
pub(crate) async fn run_directory_recheck(shared: Arc<Shared>, stop: CancellationToken) {
    let interval = Duration::from_secs(shared.settings.directory_recheck_secs.max(1));
    let round_bound = interval.clamp(RECHECK_LOOKUP_TIMEOUT, RECHECK_ROUND_TIMEOUT);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        tokio::select! {
            outcome = tokio::time::timeout(round_bound, recheck_directory(&shared)) => {
                if outcome.is_err() {
                    tracing::warn!(target: "rampart::gateway", bound_secs = round_bound.as_secs(), "directory re-check round cut off at its bound; the rest is checked next round");
                }
            }
            () = stop.cancelled() => return,
        }
    }
}

/// Follows the store's feed of session ends by position, not by time: the store numbers ends
/// in the order they commit, so an end whose writer waited for the write lock, or whose host's
/// clock is behind, is still seen, and exactly once. `cursor` is the last position seen; until
/// the store first answers it is unknown, and then starts at the feed's current position.
async fn close_sessions_ended_elsewhere(shared: &Shared, cursor: &mut Option<u64>, now: i64) {
    let Some(after) = *cursor else {
        *cursor = start_following(shared, now).await;
        return;
    };
    match shared.store.sessions_ended_after(after).await {
        // Nothing after the cursor, and the feed itself is behind it: the database was
        // restored or failed over to a standby that had not seen the latest ends. Follow the
        // feed again from where it now is (re-checking the sessions held here), or new ends
        // numbered at or below the old cursor would never be seen.
        Ok(ended) if ended.is_empty() && shared.store.session_end_seq().await.is_ok_and(|seq| seq < after) => {
            tracing::warn!(target: "rampart::gateway", cursor = after, "the feed of session ends went back (restore or failover): following it again");
            *cursor = start_following(shared, now).await;
        }
        Ok(ended) => {
            for end in &ended {
                if let Some(session) = shared.registry.get(&end.id) {
                    // The ender recorded with the end (an operator elsewhere, a rule), so this
                    // gateway's record names the same one.
                    match &end.ended_by {
                        Some(ended_by) => shared.end_here_by(&session, &end.reason, ended_by),
                        None => shared.end_here(&session, &end.reason),
                    }
                }
            }
            if let Some(last) = ended.last() {
                *cursor = Some(last.seq);
            }
        }
        Err(e) => tracing::warn!(target: "rampart::gateway", error = %e, "cannot read ended sessions; will retry"),
    }
}

/// The feed position to follow from, or `None` to try again at the next check. Sessions this
/// gateway already holds (the store did not answer at start-up, then logins went through) may
/// have ended elsewhere before that position, so each is checked against the store once: one
/// that is no longer live there ends here too. Expired ones are left to the expiry check.
async fn start_following(shared: &Shared, now: i64) -> Option<u64> {
    let position = match shared.store.session_end_seq().await {
        Ok(position) => position,
        Err(e) => {
            tracing::warn!(target: "rampart::gateway", error = %e, "cannot read the feed of ended sessions; will retry");
            return None;
        }
    };
    let mut by_user: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for session in shared.registry.all() {
        if !session.is_ended() && session.expires_at > now {
            by_user.entry(session.user_id.clone()).or_default().push(session);
        }
    }
    for (user_id, sessions) in by_user {
        let live = match shared.store.live_sessions_for_user(&user_id, now).await {
            Ok(live) => live,
            Err(e) => {
                tracing::warn!(target: "rampart::gateway", error = %e, "cannot check sessions against the store; will retry");
                return None;
            }
        };
        for session in sessions {
            if !live.iter().any(|record| record.id == session.id) {
                shared.end_here(&session, "ended_elsewhere");
            }
        }
    }
    Some(position)
}

async fn close_expired_and_idle(shared: &Shared, now: i64) {
    let idle = i64::try_from(shared.settings.session_idle_secs).unwrap_or(i64::MAX);
    for session in shared.registry.all() {
        if session.is_ended() {
            continue;
        }
        session.note_traffic(now);
        if session.expires_at <= now {
            shared.end_session(&session.id, EndReason::Expired).await;
        } else if now.saturating_sub(session.last_activity()) >= idle {
            shared.end_session(&session.id, EndReason::Idle).await;
        }
    }
}

/// Asks the directory about every connected person: a disabled or vanished account ends their
/// sessions; a group change that takes a resource away ends them too (the person logs in
/// again and sees what they may use now); other group changes apply to new streams. When the
/// directory cannot answer in time, sessions are kept and the person is asked again next round.
async fn recheck_directory(shared: &Arc<Shared>) {
    let mut by_user: BTreeMap<String, Vec<Arc<LiveSession>>> = BTreeMap::new();
    for session in shared.registry.all() {
        if !session.is_ended() {
            by_user.entry(session.username.clone()).or_default().push(session);
        }
    }
    let mut people = by_user.into_iter();
    let mut lookups = JoinSet::new();
    loop {
        while lookups.len() < RECHECK_CONCURRENCY {
            let Some((username, sessions)) = people.next() else {
                break;
            };
            let directory = shared.directory.clone();
            lookups.spawn(async move {
                let found = tokio::time::timeout(RECHECK_LOOKUP_TIMEOUT, directory.lookup(&username)).await;
                (username, sessions, found)
            });
        }
        let Some(joined) = lookups.join_next().await else {
            return;
        };
        let Ok((username, sessions, found)) = joined else {
            continue;
        };
        match found {
            Ok(Ok(found)) => apply_recheck(shared, &username, sessions, found.as_ref()).await,
            Ok(Err(e)) => {
                tracing::warn!(target: "rampart::gateway", user = %username, error = %e, "directory re-check failed; sessions kept");
            }
            Err(_) => {
                let bound_secs = RECHECK_LOOKUP_TIMEOUT.as_secs();
                tracing::warn!(target: "rampart::gateway", user = %username, bound_secs, "directory re-check got no answer in time; sessions kept");
            }
        }
    }
}

/// Applies one person's directory answer to their sessions here.
async fn apply_recheck(
    shared: &Shared,
    username: &str,
    sessions: Vec<Arc<LiveSession>>,
    found: Option<&DirectoryUser>,
) {
    for session in sessions {
        match found {
            Some(person) if person.stable_id == session.user_id => {
                let before = shared.policy().visible_to(&session.identity());
                let after_identity = Identity {
                    username: session.username.clone(),
                    groups: person.groups.clone(),
                };
                let after = shared.policy().visible_to(&after_identity);
                let lost_access = before.iter().any(|r| !after.contains(r));
                if lost_access {
                    shared.end_session(&session.id, EndReason::GroupsChanged).await;
                } else if session.set_groups(person.groups.clone()) {
                    tracing::info!(target: "rampart::auth", user = %username, session = %session.id, groups = ?person.groups, "groups refreshed from the directory");
                }
            }
            _ => shared.end_session(&session.id, EndReason::AccountDisabled).await,
        }
    }
}

/// Reloads the policy when its file changes (checked every `policy_check_secs`) and on SIGHUP.
/// Install `hangup` (from [`hangup_signal`]) before announcing readiness, so an early SIGHUP
/// reloads instead of killing the process.
pub(crate) async fn watch_policy(shared: Arc<Shared>, stop: CancellationToken, mut hangup: Hangup) {
    let mut tick = tokio::time::interval(shared.settings.policy_check());
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            () = next_hangup(&mut hangup) => true,
            () = stop.cancelled() => return,
        };
        if forced {
            tracing::info!(target: "rampart::policy", "SIGHUP: reloading the policy");
        }
        // Problems are logged by the holder; a rejected file is not re-parsed until it changes.
        let _ = shared.policy.reload(forced, shared.clock.now(), &shared.metrics).await;
    }
}

#[cfg(unix)]
pub(crate) type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
pub(crate) type Hangup = ();

#[cfg(unix)]
pub(crate) fn hangup_signal() -> Hangup {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(target: "rampart::policy", error = %e, "cannot listen for SIGHUP; the policy file is still watched");
            None
        }
    }
}

#[cfg(unix)]
async fn next_hangup(hangup: &mut Hangup) {
    match hangup {
        Some(signal) => {
            if signal.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

#[cfg(not(unix))]
pub(crate) fn hangup_signal() -> Hangup {}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangup) {
    std::future::pending::<()>().await
}
