//! Login admission: a bounded number of logins checked at once, a short queue in front of
//! them, and beyond it a polite "busy, retry in N s" — so a morning rush cannot exhaust the
//! directory, the store or the CPU that established tunnels need.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Shortest and longest retry delay suggested to a refused client.
const RETRY_MIN_SECS: u32 = 1;
const RETRY_MAX_SECS: u32 = 60;
/// Starting estimate of one login's duration, before any was measured.
const INITIAL_LOGIN_MICROS: u64 = 50_000;

/// The gate every login and resume passes.
#[derive(Debug)]
pub(crate) struct Admission {
    slots: Semaphore,
    max_in_progress: usize,
    max_queued: usize,
    max_wait: Duration,
    queued: AtomicUsize,
    /// Moving average of how long a login holds its slot, in microseconds.
    average_micros: AtomicU64,
}

/// A login's slot; frees it (and updates the average) when dropped.
#[derive(Debug)]
pub(crate) struct Slot<'a> {
    _permit: SemaphorePermit<'a>,
    admission: &'a Admission,
    since: Instant,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let took = u64::try_from(self.since.elapsed().as_micros()).unwrap_or(u64::MAX);
        let old = self.admission.average_micros.load(Ordering::Relaxed);
        // Exponential moving average with weight 1/8: steady under jitter, quick to follow a
        // slow directory.
        let new = old - old / 8 + took / 8;
        self.admission.average_micros.store(new.max(1), Ordering::Relaxed);
    }
}

/// The login was not admitted: retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy {
    pub retry_after_secs: u32,
}

impl Admission {
    pub(crate) fn new(max_in_progress: usize, max_queued: usize, max_wait: Duration) -> Self {
        let max_in_progress = max_in_progress.max(1);
        Self {
            slots: Semaphore::new(max_in_progress),
            max_in_progress,
            max_queued,
            max_wait,
            queued: AtomicUsize::new(0),
            average_micros: AtomicU64::new(INITIAL_LOGIN_MICROS),
        }
    }

    /// A free slot now, or after waiting in the queue; [`Busy`] when the queue is full or the
    /// wait runs out.
    pub(crate) async fn admit(&self) -> Result<Slot<'_>, Busy> {
        if let Ok(permit) = self.slots.try_acquire() {
            return Ok(self.slot(permit));
        }
        let position = self.queued.fetch_add(1, Ordering::AcqRel);
        if position >= self.max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(self.busy());
        }
        let waited = tokio::time::timeout(self.max_wait, self.slots.acquire()).await;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        match waited {
            Ok(Ok(permit)) => Ok(self.slot(permit)),
            Ok(Err(_)) | Err(_) => Err(self.busy()),
        }
    }

    fn slot<'a>(&'a self, permit: SemaphorePermit<'a>) -> Slot<'a> {
        Slot {
            _permit: permit,
            admission: self,
            since: Instant::now(),
        }
    }

    /// Logins being checked now.
    pub(crate) fn in_progress(&self) -> usize {
        self.max_in_progress - self.slots.available_permits()
    }

    /// Logins waiting for a slot.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// When the work ahead of a new client should be done: everything queued and running,
    /// spread over the slots, at the average login time.
    fn busy(&self) -> Busy {
        let ahead = u64::try_from(self.queued() + self.in_progress()).unwrap_or(u64::MAX);
        let average = self.average_micros.load(Ordering::Relaxed);
        let slots = u64::try_from(self.max_in_progress).unwrap_or(1);
        let micros = ahead.saturating_mul(average) / slots;
        let secs = u32::try_from(micros.div_ceil(1_000_000)).unwrap_or(RETRY_MAX_SECS);
        Busy {
            retry_after_secs: secs.clamp(RETRY_MIN_SECS, RETRY_MAX_SECS),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[tokio::test]
    async fn admits_up_to_the_limit_queues_then_refuses() {
        let gate = Admission::new(2, 1, Duration::from_millis(200));
        let a = gate.admit().await.unwrap();
        let _b = gate.admit().await.unwrap();
        assert_eq!(gate.in_progress(), 2);
        // One may wait; it gets the slot a frees.
        let waiter = async {
            let slot = gate.admit().await;
            assert!(slot.is_ok());
        };
        let freer = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            // The queue is full now: a fourth is refused at once.
            assert_eq!(gate.queued(), 1);
            let busy = gate.admit().await.unwrap_err();
            assert!((RETRY_MIN_SECS..=RETRY_MAX_SECS).contains(&busy.retry_after_secs));
            drop(a);
        };
        tokio::join!(waiter, freer);
        assert_eq!(gate.queued(), 0);
    }

    #[tokio::test]
    async fn a_wait_that_runs_out_is_busy() {
        let gate = Admission::new(1, 10, Duration::from_millis(30));
        let _held = gate.admit().await.unwrap();
        let Err(busy) = gate.admit().await else {
            panic!("admitted past a held slot");
        };
        assert!(busy.retry_after_secs >= 1);
        assert_eq!(gate.queued(), 0);
    }
}
