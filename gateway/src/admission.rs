//! Login admission: a bounded number of logins checked at once, a queue in front of them as long
//! as the slots can serve within the wait allowed, and beyond it a polite "busy, retry in N s"
//! timed for when the queue will have room — so a morning rush cannot exhaust the directory, the
//! store or the CPU that established tunnels need, and yet every slot keeps working through it
//! (the logins completed, not the answers given, are what counts).

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

/// A place in the queue, counted while held: given up when the login gets its slot, is refused,
/// or is abandoned while waiting (its connection closed and the future was dropped).
struct Place<'a> {
    queued: &'a AtomicUsize,
    /// Logins that were queued before this one (0: first).
    position: usize,
}

impl<'a> Place<'a> {
    fn take(queued: &'a AtomicUsize) -> Self {
        let position = queued.fetch_add(1, Ordering::AcqRel);
        Self { queued, position }
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
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

    /// A free slot now, or after waiting in the queue; [`Busy`] when the queue is full (by count,
    /// or because a newcomer could not expect a slot within the wait allowed) or the wait runs out.
    pub(crate) async fn admit(&self) -> Result<Slot<'_>, Busy> {
        if let Ok(permit) = self.slots.try_acquire() {
            return Ok(self.slot(permit));
        }
        let place = Place::take(&self.queued);
        if place.position >= self.max_queued || self.expected_wait(place.position + 1) > self.max_wait {
            drop(place);
            return Err(self.busy());
        }
        let waited = tokio::time::timeout(self.max_wait, self.slots.acquire()).await;
        drop(place);
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

    /// How long the login at queue position `position` (1: next) should wait for a slot: the
    /// logins ahead of it spread over the slots, at the average login time.
    fn expected_wait(&self, position: usize) -> Duration {
        let ahead = u64::try_from(position).unwrap_or(u64::MAX);
        let average = self.average_micros.load(Ordering::Relaxed);
        let slots = u64::try_from(self.max_in_progress).unwrap_or(1);
        Duration::from_micros(ahead.saturating_mul(average) / slots)
    }

    /// When a refused client should come back: once the work ahead of it (everything queued and
    /// running) has shrunk to half the wait allowed, so that it queues behind logins that keep
    /// the slots busy rather than arriving to idle slots or to a queue still full.
    fn busy(&self) -> Busy {
        let ahead = self.expected_wait(self.queued() + self.in_progress());
        let micros = ahead.saturating_sub(self.max_wait / 2).as_micros();
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
    async fn the_queue_holds_only_what_the_slots_serve_within_the_wait() {
        // Two slots, logins of 50 ms (the starting estimate), 100 ms of wait allowed: a
        // newcomer at position p expects p × 25 ms, so four may queue and the fifth is refused
        // although the count limit (100) is far away.
        let gate = Admission::new(2, 100, Duration::from_millis(100));
        let _a = gate.admit().await.unwrap();
        let _b = gate.admit().await.unwrap();
        let mut waiting: Vec<_> = (0..4).map(|_| Box::pin(gate.admit())).collect();
        for login in &mut waiting {
            tokio::select! {
                biased;
                _ = login.as_mut() => panic!("a queued login got a slot"),
                () = std::future::ready(()) => {}
            }
        }
        assert_eq!(gate.queued(), 4);
        let busy = gate.admit().await.unwrap_err();
        assert_eq!(gate.queued(), 4);
        // 6 ahead × 25 ms = 150 ms, less half the wait (50 ms): 100 ms, rounded up to a second.
        assert_eq!(busy.retry_after_secs, RETRY_MIN_SECS);
        // A login abandoned while it waits (its client went away) gives its place up.
        drop(waiting);
        assert_eq!(gate.queued(), 0);
    }

    #[test]
    fn a_long_queue_is_told_to_come_back_when_half_the_wait_is_left() {
        // 10 slots at 2 s a login with 20 queued and 10 running: 6 s of work ahead; with 5 s of
        // wait allowed the client should come back when 2.5 s are left, 3.5 s from now: 4 s.
        let gate = Admission::new(10, 100, Duration::from_secs(5));
        gate.average_micros.store(2_000_000, Ordering::Relaxed);
        gate.queued.store(20, Ordering::Relaxed);
        let _held = gate.slots.try_acquire_many(10).unwrap();
        assert_eq!(gate.busy().retry_after_secs, 4);
        // A slow directory (60 s a login) is told the longest wait, not more.
        gate.average_micros.store(60_000_000, Ordering::Relaxed);
        assert_eq!(gate.busy().retry_after_secs, RETRY_MAX_SECS);
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
