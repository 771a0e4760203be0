//! `/readyz` made cheap and quiet: the checks run at most once per `ttl` whoever asks (one
//! caller refreshes, the others wait for its answer), callers without a key share a small
//! budget of answers per second, and they are told only which checks pass, never why one fails.

use super::api::Readiness;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How `/readyz` spends the gateway's effort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyzLimits {
    /// How long one run of the checks answers every caller.
    pub ttl: Duration,
    /// Answers to callers without a key, per second, on average.
    pub anonymous_per_sec: u32,
    /// Answers to callers without a key in one burst.
    pub anonymous_burst: u32,
}

impl Default for ReadyzLimits {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(5),
            anonymous_per_sec: 5,
            anonymous_burst: 20,
        }
    }
}

/// The latest outcome of the checks and when it was taken.
#[derive(Debug)]
pub(super) struct ReadinessCache {
    ttl: Duration,
    latest: tokio::sync::Mutex<Option<(Instant, Readiness)>>,
}

impl ReadinessCache {
    pub(super) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            latest: tokio::sync::Mutex::new(None),
        }
    }

    /// The cached outcome while younger than the ttl, else the outcome of `run` (which only one
    /// caller at a time awaits; the others then get its answer).
    pub(super) async fn get(&self, run: impl Future<Output = Readiness>) -> Readiness {
        let mut latest = self.latest.lock().await;
        if let Some((taken, readiness)) = latest.as_ref()
            && taken.elapsed() < self.ttl
        {
            return readiness.clone();
        }
        let readiness = run.await;
        *latest = Some((Instant::now(), readiness.clone()));
        readiness
    }
}

/// A token bucket shared by every caller without a key.
#[derive(Debug)]
pub(super) struct AnonymousBudget {
    per_sec: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl AnonymousBudget {
    pub(super) fn new(per_sec: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            per_sec: f64::from(per_sec),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes one answer from the budget; false when it is spent.
    pub(super) fn take(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, refilled) = &mut *state;
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*refilled).as_secs_f64() * self.per_sec).min(self.burst);
        *refilled = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// `readiness` as a caller without a key sees it: each check's name and outcome, no detail.
pub(super) fn without_details(mut readiness: Readiness) -> Readiness {
    for check in &mut readiness.checks {
        check.detail = None;
    }
    readiness
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::admin::api::Check;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn ready(detail: &str) -> Readiness {
        Readiness {
            ready: true,
            checks: vec![Check {
                name: "store".into(),
                ok: true,
                detail: Some(detail.into()),
            }],
        }
    }

    #[tokio::test]
    async fn checks_run_once_per_ttl_however_many_ask() {
        let cache = std::sync::Arc::new(ReadinessCache::new(Duration::from_secs(60)));
        let runs = std::sync::Arc::new(AtomicUsize::new(0));
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (cache, runs) = (cache.clone(), runs.clone());
            callers.spawn(async move {
                cache
                    .get(async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        ready("answers")
                    })
                    .await
            });
        }
        while let Some(answer) = callers.join_next().await {
            assert!(answer.unwrap().ready);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1, "one run answered all 50 callers");

        let fresh = ReadinessCache::new(Duration::ZERO);
        fresh.get(async { ready("first") }).await;
        let second = fresh.get(async { ready("second") }).await;
        assert_eq!(second.checks[0].detail.as_deref(), Some("second"), "expired: run again");
    }

    #[test]
    fn the_anonymous_budget_allows_a_burst_then_refuses() {
        let budget = AnonymousBudget::new(0, 3);
        assert_eq!((0..10).filter(|_| budget.take()).count(), 3);
        let refilling = AnonymousBudget::new(1000, 1);
        assert!(refilling.take());
        std::thread::sleep(Duration::from_millis(5));
        assert!(refilling.take(), "refilled over time");
    }

    #[test]
    fn callers_without_a_key_get_no_detail() {
        let shown = without_details(ready("error returned from database: password authentication failed"));
        assert_eq!(shown.checks[0].detail, None);
        assert_eq!(shown.checks[0].name, "store");
        assert!(shown.ready && shown.checks[0].ok);
    }
}
