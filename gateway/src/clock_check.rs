//! The clock check: this gateway's clock compared with the database's, at start and every
//! `clock_check_secs`. While they differ by more than `max_clock_skew_ms` every login is
//! refused with "try later" before any code is checked (a clock that is off would accept codes
//! from the future and mark steps that have not come yet as used), and the log
//! (`rampart::clock`), `/readyz` and `/metrics` say so.

use crate::clock::Clock;
use crate::server::Shared;
use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Log target of the clock check.
const TARGET: &str = "rampart::clock";
/// While the clock stays off, the error is repeated at most this often.
const REMINDER_MS: i64 = 5 * 60 * 1000;
/// Longest wait for the database's clock; a check that takes longer tells nothing.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// What an operator does about a clock that is off.
const FIX: &str =
    "synchronise this host's clock (NTP, chrony) with the database host's; logins resume at the next check";

/// One comparison of the two clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reading {
    /// This gateway's clock minus the database's, in milliseconds (positive: the gateway is
    /// ahead).
    pub offset_ms: i64,
    /// When it was taken, on this gateway's clock (unix ms).
    pub checked_at_ms: i64,
    /// Whether the offset is within the bound.
    pub in_bounds: bool,
}

/// The offset of this gateway's clock from the database's: `t0` and `t1` are this gateway's
/// times just before the question and just after the answer `database`, which is taken to have
/// been read half-way between them.
pub(crate) fn offset_ms(t0: i64, database: i64, t1: i64) -> i64 {
    let midpoint = t0.saturating_add(t1.saturating_sub(t0) / 2);
    midpoint.saturating_sub(database)
}

/// Whether `offset_ms` is within `bound_ms` either way (the bound itself still is).
pub(crate) fn within(offset_ms: i64, bound_ms: u64) -> bool {
    offset_ms.unsigned_abs() <= bound_ms
}

/// Asks `database_time` for the database's clock between two readings of `clock`. An error,
/// no answer within five seconds, or an answer that took longer than the bound (the midpoint
/// could then be off by more than half the bound) or while the local clock went back, is no
/// reading.
pub(crate) async fn measure<F, Fut, E>(clock: &Clock, bound_ms: u64, database_time: F) -> Result<Reading, String>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<i64, E>>,
    E: Display,
{
    let t0 = clock.now_ms();
    let database = match tokio::time::timeout(ANSWER_TIMEOUT, database_time()).await {
        Ok(Ok(database)) => database,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err(format!("no answer within {} s", ANSWER_TIMEOUT.as_secs())),
    };
    let t1 = clock.now_ms();
    let round_trip = t1.saturating_sub(t0);
    if round_trip < 0 || round_trip.unsigned_abs() > bound_ms {
        return Err(format!(
            "the answer took {round_trip} ms, more than the bound of {bound_ms} ms"
        ));
    }
    let offset = offset_ms(t0, database, t1);
    Ok(Reading {
        offset_ms: offset,
        checked_at_ms: t1,
        in_bounds: within(offset, bound_ms),
    })
}

/// What a new reading changed, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// The first reading, in bounds.
    FirstInBounds,
    /// In bounds, as before.
    StillInBounds,
    /// Out of bounds, and it was not before (or this is the first reading).
    WentOff,
    /// Out of bounds, as before; `remind` when the last error is old enough to repeat.
    StillOff {
        /// Whether to log the error again.
        remind: bool,
    },
    /// Back in bounds after being out.
    CameBack,
}

#[derive(Debug, Default)]
struct State {
    latest: Option<Reading>,
    /// When the error was last logged (gateway ms).
    last_error_ms: Option<i64>,
}

/// The latest reading, shared by the check, logins, `/readyz` and `/metrics`. Until the first
/// reading the clock is unknown, which does not hold logins back; a check that fails keeps the
/// previous reading.
#[derive(Debug)]
pub(crate) struct ClockCheck {
    bound_ms: u64,
    state: RwLock<State>,
}

impl ClockCheck {
    pub(crate) fn new(bound_ms: u64) -> Self {
        Self {
            bound_ms,
            state: RwLock::new(State::default()),
        }
    }

    /// The largest offset that allows logins, in milliseconds.
    pub(crate) fn bound_ms(&self) -> u64 {
        self.bound_ms
    }

    /// The latest reading, if any.
    pub(crate) fn latest(&self) -> Option<Reading> {
        self.state.read().unwrap_or_else(PoisonError::into_inner).latest
    }

    /// The latest reading when it is out of bounds: logins are refused.
    pub(crate) fn off(&self) -> Option<Reading> {
        self.latest().filter(|r| !r.in_bounds)
    }

    /// Keeps `reading` as the latest and says what changed.
    pub(crate) fn record(&self, reading: Reading) -> Change {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let before = state.latest.replace(reading);
        let change = match (before.map(|r| r.in_bounds), reading.in_bounds) {
            (None, true) => Change::FirstInBounds,
            (Some(true), true) => Change::StillInBounds,
            (Some(false), true) => Change::CameBack,
            (None | Some(true), false) => Change::WentOff,
            (Some(false), false) => Change::StillOff {
                remind: state
                    .last_error_ms
                    .is_none_or(|at| reading.checked_at_ms.saturating_sub(at) >= REMINDER_MS),
            },
        };
        match change {
            Change::WentOff | Change::StillOff { remind: true } => state.last_error_ms = Some(reading.checked_at_ms),
            Change::CameBack => state.last_error_ms = None,
            _ => {}
        }
        change
    }

    /// The `/readyz` check: whether it passes and the offset and bound in words.
    pub(crate) fn readiness(&self) -> (bool, String) {
        let bound = self.bound_ms;
        match self.latest() {
            None => (
                true,
                format!("not compared with the database's clock yet (bound ±{bound} ms)"),
            ),
            Some(r) if r.in_bounds => (
                true,
                format!("{:+} ms from the database's clock (bound ±{bound} ms)", r.offset_ms),
            ),
            Some(r) => (
                false,
                format!(
                    "{:+} ms from the database's clock, beyond the bound of ±{bound} ms: logins are refused",
                    r.offset_ms
                ),
            ),
        }
    }
}

/// Compares the clocks once: keeps the reading, updates the metrics and logs a change.
pub(crate) async fn check(shared: &Shared) {
    let checker = &shared.clock_check;
    let bound_ms = checker.bound_ms();
    let measured = measure(&shared.clock, bound_ms, || shared.store.database_time_ms()).await;
    let reading = match measured {
        Ok(reading) => reading,
        Err(error) => {
            let holding = if checker.off().is_some() {
                "logins stay refused"
            } else {
                "logins are not held back"
            };
            tracing::warn!(
                target: TARGET, error = %error, retry_secs = shared.settings.clock_check_secs,
                "cannot compare the clock with the database's; {holding} until a check succeeds"
            );
            return;
        }
    };
    shared.metrics.clock(reading.offset_ms, reading.in_bounds);
    let offset_ms = reading.offset_ms;
    match checker.record(reading) {
        Change::FirstInBounds => tracing::info!(
            target: TARGET, offset_ms, bound_ms, "the clock agrees with the database's"
        ),
        Change::StillInBounds => tracing::debug!(
            target: TARGET, offset_ms, bound_ms, "the clock agrees with the database's"
        ),
        Change::WentOff => tracing::error!(
            target: TARGET, offset_ms, bound_ms, fix = FIX,
            "the clock is off from the database's by more than the bound: logins are refused"
        ),
        Change::StillOff { remind: true } => tracing::error!(
            target: TARGET, offset_ms, bound_ms, fix = FIX,
            "the clock is still off from the database's by more than the bound: logins are refused"
        ),
        Change::StillOff { remind: false } => tracing::debug!(
            target: TARGET, offset_ms, bound_ms, "the clock is still off from the database's"
        ),
        Change::CameBack => tracing::info!(
            target: TARGET, offset_ms, bound_ms,
            "the clock agrees with the database's again: logins are accepted"
        ),
    }
}

/// Compares the clocks every `clock_check_secs` until `stop`; the first comparison is
/// [`check`] at start, before the gateway serves.
pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let period = shared.settings.clock_check();
    let mut tick = tokio::time::interval_at(Instant::now() + period, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        check(&shared).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn real_ms() -> i64 {
        i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
    }

    fn reading(offset_ms: i64, checked_at_ms: i64, bound_ms: u64) -> Reading {
        Reading {
            offset_ms,
            checked_at_ms,
            in_bounds: within(offset_ms, bound_ms),
        }
    }

    #[test]
    fn the_offset_is_taken_at_the_midpoint() {
        assert_eq!(offset_ms(1_000, 1_000, 1_000), 0);
        // Asked at 1000, answered at 1100: the database read 1050 at the midpoint.
        assert_eq!(offset_ms(1_000, 1_050, 1_100), 0);
        assert_eq!(offset_ms(121_000, 1_050, 121_100), 120_000, "gateway ahead");
        assert_eq!(offset_ms(1_000, 4_050, 1_100), -3_000, "gateway behind");
        assert_eq!(offset_ms(i64::MAX, i64::MIN, i64::MAX), i64::MAX, "saturates");
    }

    #[test]
    fn the_bound_itself_is_within() {
        for (offset, inside) in [
            (0, true),
            (3_000, true),
            (-3_000, true),
            (3_001, false),
            (-3_001, false),
            (120_000, false),
            (i64::MIN, false),
        ] {
            assert_eq!(within(offset, 3_000), inside, "{offset}");
        }
    }

    #[tokio::test]
    async fn a_clock_two_minutes_fast_is_off_and_a_right_one_is_not() {
        let fast = measure(&Clock::with_offset(120), 3_000, || async { Ok::<_, String>(real_ms()) })
            .await
            .unwrap();
        assert!(!fast.in_bounds);
        assert!((119_000..=121_000).contains(&fast.offset_ms), "{fast:?}");
        let slow = measure(&Clock::with_offset(-5), 3_000, || async { Ok::<_, String>(real_ms()) })
            .await
            .unwrap();
        assert!(!slow.in_bounds);
        assert!((-6_000..=-4_000).contains(&slow.offset_ms), "{slow:?}");
        let right = measure(&Clock::system(), 3_000, || async { Ok::<_, String>(real_ms()) })
            .await
            .unwrap();
        assert!(right.in_bounds, "{right:?}");
        assert!(right.offset_ms.abs() < 1_000, "{right:?}");
    }

    #[tokio::test]
    async fn a_failed_or_slow_answer_is_no_reading() {
        let failed = measure(&Clock::system(), 3_000, || async {
            Err::<i64, _>("database is locked")
        })
        .await;
        assert_eq!(failed, Err("database is locked".to_owned()));
        let slow = measure(&Clock::system(), 100, || async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, String>(real_ms())
        })
        .await;
        assert!(slow.unwrap_err().contains("more than the bound"));
    }

    #[test]
    fn unknown_until_the_first_reading_and_a_failure_keeps_the_last_one() {
        let check = ClockCheck::new(3_000);
        assert_eq!(check.latest(), None);
        assert_eq!(check.off(), None, "unknown does not hold logins back");
        let (ready, detail) = check.readiness();
        assert!(ready, "{detail}");
        assert_eq!(check.record(reading(120_000, 0, 3_000)), Change::WentOff);
        assert_eq!(check.off().map(|r| r.offset_ms), Some(120_000));
    }

    #[test]
    fn transitions_are_logged_once_with_a_reminder_every_few_minutes() {
        let check = ClockCheck::new(3_000);
        assert_eq!(check.record(reading(12, 0, 3_000)), Change::FirstInBounds);
        assert_eq!(check.record(reading(3_000, 30_000, 3_000)), Change::StillInBounds);
        assert_eq!(check.off(), None);
        assert_eq!(check.record(reading(3_001, 60_000, 3_000)), Change::WentOff);
        assert!(check.off().is_some());
        assert_eq!(
            check.record(reading(3_001, 90_000, 3_000)),
            Change::StillOff { remind: false }
        );
        assert_eq!(
            check.record(reading(-9_000, 60_000 + REMINDER_MS, 3_000)),
            Change::StillOff { remind: true }
        );
        assert_eq!(
            check.record(reading(-9_000, 90_000 + REMINDER_MS, 3_000)),
            Change::StillOff { remind: false }
        );
        assert_eq!(
            check.record(reading(-3_000, 120_000 + REMINDER_MS, 3_000)),
            Change::CameBack
        );
        assert_eq!(check.off(), None);
        assert_eq!(
            check.record(reading(4_000, 150_000 + REMINDER_MS, 3_000)),
            Change::WentOff
        );
    }

    #[test]
    fn readiness_names_the_offset_and_the_bound() {
        let check = ClockCheck::new(3_000);
        check.record(reading(-250, 0, 3_000));
        assert_eq!(
            check.readiness(),
            (true, "-250 ms from the database's clock (bound ±3000 ms)".to_owned())
        );
        check.record(reading(120_004, 1, 3_000));
        let (ready, detail) = check.readiness();
        assert!(!ready);
        assert_eq!(
            detail,
            "+120004 ms from the database's clock, beyond the bound of ±3000 ms: logins are refused"
        );
    }
}
