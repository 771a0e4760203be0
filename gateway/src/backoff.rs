//! A growing delay before the answer to a rejected login, per person: 1×, 2×, 4×, then 8×
//! `failed_login_delay_ms` for consecutive rejections, forgotten after 15 quiet minutes or a
//! success. It is kept under the person the directory resolved (their stable id), so every
//! spelling that reaches them (`alice`, ` Alice`, `ａｌｉｃｅ`) shares one delay; a name that
//! reached nobody is kept under its normalised spelling. It grows with every kind of
//! rejection alike (unknown user, wrong password, locked account, wrong code), so the delay
//! never tells which one it was; the token's lock (in the store, shared by every gateway) is
//! what finally stops guessing.

use rampart_core::username::normalize_username;
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

/// Most characters of a typed name that does not normalise kept as its key, so junk cannot
/// grow the table's keys.
const MAX_TYPED_KEY_CHARS: usize = 64;

/// Whom a rejection counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum BackoffKey {
    /// The person the directory resolved, by stable id.
    Person(String),
    /// A name that reached nobody: normalised, or a bounded prefix of what was typed when it
    /// does not normalise.
    Name(String),
}

impl BackoffKey {
    /// The key for a name that reached no person.
    pub(crate) fn typed(typed: &str) -> Self {
        Self::Name(normalize_username(typed).unwrap_or_else(|_| typed.chars().take(MAX_TYPED_KEY_CHARS).collect()))
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    rejections: u32,
    last: Instant,
}

/// Consecutive rejections per person (or unresolved name) on this gateway.
#[derive(Debug)]
pub(crate) struct LoginBackoff {
    base: Duration,
    entries: Mutex<HashMap<BackoffKey, Entry>>,
}

impl LoginBackoff {
    pub(crate) fn new(base: Duration) -> Self {
        Self {
            base,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a rejection for `user` and returns how long after the check began to answer.
    pub(crate) fn rejected(&self, user: &BackoffKey, now: Instant) -> Duration {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if !entries.contains_key(user) && entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| now.saturating_duration_since(e.last) < FORGET_AFTER);
            if entries.len() >= MAX_ENTRIES {
                return self.base;
            }
        }
        let entry = entries.entry(user.clone()).or_insert(Entry {
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
    pub(crate) fn succeeded(&self, user: &BackoffKey) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str) -> BackoffKey {
        BackoffKey::Person(id.into())
    }

    #[test]
    fn grows_per_person_caps_and_is_forgotten() {
        let backoff = LoginBackoff::new(Duration::from_secs(1));
        let t = Instant::now();
        let (alice, bob) = (person("uuid-alice"), person("uuid-bob"));
        let secs: Vec<u64> = (0..6).map(|_| backoff.rejected(&alice, t).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 8, 8]);
        assert_eq!(backoff.rejected(&bob, t).as_secs(), 1, "per person");
        assert_eq!(
            backoff.rejected(&alice, t + FORGET_AFTER).as_secs(),
            1,
            "forgotten when quiet"
        );
        backoff.rejected(&bob, t);
        backoff.succeeded(&bob);
        assert_eq!(backoff.rejected(&bob, t).as_secs(), 1, "reset by a success");
    }

    #[test]
    fn spellings_of_an_unresolved_name_share_its_delay() {
        let backoff = LoginBackoff::new(Duration::from_secs(1));
        let t = Instant::now();
        let secs: Vec<u64> = ["mallory", " Mallory", "ｍａｌｌｏｒｙ\t", "ＭＡＬＬＯＲＹ"]
            .iter()
            .map(|typed| backoff.rejected(&BackoffKey::typed(typed), t).as_secs())
            .collect();
        assert_eq!(secs, [1, 2, 4, 8]);
        // A name that is only a stable id elsewhere is not that person.
        assert_eq!(backoff.rejected(&BackoffKey::typed("uuid-alice"), t).as_secs(), 1);
        let junk = "x y".repeat(1000);
        assert_eq!(
            BackoffKey::typed(&junk),
            BackoffKey::Name(junk.chars().take(64).collect())
        );
    }

    #[test]
    fn memory_is_bounded() {
        let backoff = LoginBackoff::new(Duration::from_millis(10));
        let t = Instant::now();
        for i in 0..MAX_ENTRIES {
            backoff.rejected(&person(&format!("user{i}")), t);
        }
        assert_eq!(backoff.rejected(&person("one-more"), t), Duration::from_millis(10));
        assert_eq!(
            backoff.entries.lock().unwrap_or_else(PoisonError::into_inner).len(),
            MAX_ENTRIES
        );
        // Once the old names have been quiet long enough, new ones are remembered again.
        backoff.rejected(&person("later"), t + FORGET_AFTER);
        assert_eq!(backoff.entries.lock().unwrap_or_else(PoisonError::into_inner).len(), 1);
    }
}
