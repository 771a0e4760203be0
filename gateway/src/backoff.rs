//! A growing delay before the answer to a rejected login, per username: 1×, 2×, 4×, then 8×
//! `failed_login_delay_ms` for consecutive rejections, forgotten after 15 quiet minutes or a
//! success. It grows with every kind of rejection alike (unknown user, wrong password, wrong
//! code), so the delay never tells which one it was; the token's lock (in the store, shared
//! by every gateway) is what finally stops guessing.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Usernames remembered at most; beyond it, quiet entries are dropped, and a new name gets the
/// base delay until there is room.
const MAX_ENTRIES: usize = 100_000;
/// A name with no rejection for this long starts again from the base delay.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// The delay doubles at most this many times.
const MAX_DOUBLINGS: u32 = 3;

#[derive(Debug, Clone, Copy)]
struct Entry {
    rejections: u32,
    last: Instant,
}

/// Consecutive rejections per username on this gateway.
#[derive(Debug)]
pub(crate) struct LoginBackoff {
    base: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl LoginBackoff {
    pub(crate) fn new(base: Duration) -> Self {
        Self {
            base,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a rejection for `user` and returns how long after the check began to answer.
    pub(crate) fn rejected(&self, user: &str, now: Instant) -> Duration {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if !entries.contains_key(user) && entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| now.saturating_duration_since(e.last) < FORGET_AFTER);
            if entries.len() >= MAX_ENTRIES {
                return self.base;
            }
        }
        let entry = entries.entry(user.to_owned()).or_insert(Entry {
            rejections: 0,
            last: now,
        });
        if now.saturating_duration_since(entry.last) >= FORGET_AFTER {
            entry.rejections = 0;
        }
        entry.rejections = entry.rejections.saturating_add(1);
        entry.last = now;
        self.base * 2u32.pow(entry.rejections.saturating_sub(1).min(MAX_DOUBLINGS))
    }

    /// A successful login: `user` starts again from the base delay.
    pub(crate) fn succeeded(&self, user: &str) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_per_name_caps_and_is_forgotten() {
        let backoff = LoginBackoff::new(Duration::from_secs(1));
        let t = Instant::now();
        let secs: Vec<u64> = (0..6).map(|_| backoff.rejected("alice", t).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 8, 8]);
        assert_eq!(backoff.rejected("bob", t).as_secs(), 1, "per name");
        assert_eq!(
            backoff.rejected("alice", t + FORGET_AFTER).as_secs(),
            1,
            "forgotten when quiet"
        );
        backoff.rejected("bob", t);
        backoff.succeeded("bob");
        assert_eq!(backoff.rejected("bob", t).as_secs(), 1, "reset by a success");
    }

    #[test]
    fn memory_is_bounded() {
        let backoff = LoginBackoff::new(Duration::from_millis(10));
        let t = Instant::now();
        for i in 0..MAX_ENTRIES {
            backoff.rejected(&format!("user{i}"), t);
        }
        assert_eq!(backoff.rejected("one-more", t), Duration::from_millis(10));
        assert_eq!(
            backoff.entries.lock().unwrap_or_else(PoisonError::into_inner).len(),
            MAX_ENTRIES
        );
        // Once the old names have been quiet long enough, new ones are remembered again.
        backoff.rejected("later", t + FORGET_AFTER);
        assert_eq!(backoff.entries.lock().unwrap_or_else(PoisonError::into_inner).len(), 1);
    }
}
