//! The clock check every service runs (gateway and provisioner): its clock compared with the
//! database's. It lives in the store crate because it asks [`StoreHealth::database_time_ms`] and
//! both services depend on this crate; the store still never reads the clock (callers pass
//! `now_ms`), and the arithmetic ([`offset_ms`], [`within`]) is pure.
//!
//! A service asks the database for its time between two readings of its own clock ([`measure`]),
//! keeps the latest [`Reading`] in a [`ClockCheck`] (shared with whatever the offset holds back
//! and with its readiness answer) and logs, under [`TARGET`], an `ERROR` when the clock goes out
//! of bounds, a reminder every [`REMINDER_MS`] while it stays out and an `INFO` when it is back.
//! Until the first reading the clock is unknown, which holds nothing back; a check that fails
//! keeps the previous reading.

use crate::StoreHealth;
use std::fmt::Display;
use std::future::Future;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

/// Log target of the clock check.
pub const TARGET: &str = "rampart::clock";
/// While the clock stays off, the error is repeated at most this often.
pub const REMINDER_MS: i64 = 5 * 60 * 1000;
/// Longest wait for the database's clock; a check that takes longer tells nothing.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// One comparison of the two clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// This service's clock minus the database's, in milliseconds (positive: the service is
    /// ahead).
    pub offset_ms: i64,
    /// When it was taken, on this service's clock (unix ms).
    pub checked_at_ms: i64,
    /// Whether the offset is within the bound.
    pub in_bounds: bool,
}

/// The offset of this service's clock from the database's: `t0` and `t1` are this service's
/// times just before the question and just after the answer `database`, which is taken to have
/// been read half-way between them.
pub fn offset_ms(t0: i64, database: i64, t1: i64) -> i64 {
    let midpoint = t0.saturating_add(t1.saturating_sub(t0) / 2);
    midpoint.saturating_sub(database)
}

/// Whether `offset_ms` is within `bound_ms` either way (the bound itself still is).
pub fn within(offset_ms: i64, bound_ms: u64) -> bool {
    offset_ms.unsigned_abs() <= bound_ms
}

/// Asks `database_time` for the database's clock between two readings of `now_ms` (this
/// service's clock, unix ms). An error, no answer within five seconds, or an answer that took
/// longer than the bound (the midpoint could then be off by more than half the bound) or while
/// the local clock went back, is no reading.
pub async fn measure<N, F, Fut, E>(now_ms: N, bound_ms: u64, database_time: F) -> Result<Reading, String>
where
    N: Fn() -> i64,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<i64, E>>,
    E: Display,
{
    let t0 = now_ms();
    let database = match tokio::time::timeout(ANSWER_TIMEOUT, database_time()).await {
        Ok(Ok(database)) => database,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err(format!("no answer within {} s", ANSWER_TIMEOUT.as_secs())),
    };
    let t1 = now_ms();
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
pub enum Change {
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
    /// When the error was last logged (service ms).
    last_error_ms: Option<i64>,
}

/// The latest reading of one service, shared by its check task, what the clock holds back and
/// its readiness answer.
#[derive(Debug)]
pub struct ClockCheck {
    bound_ms: u64,
    period_secs: u64,
    /// What is held back while the clock is off, as a plural subject: "logins".
    affected: &'static str,
    state: RwLock<State>,
}

impl ClockCheck {
    /// A check allowing `bound_ms` either way, run every `period_secs`, that holds `affected`
    /// (a plural subject for the log, e.g. "logins") back while the clock is off.
    pub fn new(bound_ms: u64, period_secs: u64, affected: &'static str) -> Self {
        Self {
            bound_ms,
            period_secs,
            affected,
            state: RwLock::new(State::default()),
        }
    }

    /// The largest offset that holds nothing back, in milliseconds.
    pub fn bound_ms(&self) -> u64 {
        self.bound_ms
    }

    /// How often the clocks are compared.
    pub fn period(&self) -> Duration {
        Duration::from_secs(self.period_secs)
    }

    /// The latest reading, if any.
    pub fn latest(&self) -> Option<Reading> {
        self.state.read().unwrap_or_else(PoisonError::into_inner).latest
    }

    /// The latest reading when it is out of bounds: what the clock affects is refused.
    pub fn off(&self) -> Option<Reading> {
        self.latest().filter(|r| !r.in_bounds)
    }

    /// Keeps `reading` as the latest and says what changed.
    pub fn record(&self, reading: Reading) -> Change {
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

    /// The readiness check: whether it passes and the offset and bound in words.
    pub fn readiness(&self) -> (bool, String) {
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
                    "{:+} ms from the database's clock, beyond the bound of ±{bound} ms: {} are refused",
                    r.offset_ms, self.affected
                ),
            ),
        }
    }

    /// Compares the clocks once (`now_ms` is this service's clock, unix ms), keeps the reading
    /// and logs what changed. A failed comparison is logged as a warning and is `None`.
    pub async fn check<N, S>(&self, now_ms: N, store: &S) -> Option<Reading>
    where
        N: Fn() -> i64,
        S: StoreHealth + ?Sized,
    {
        let reading = self.measure(now_ms, || store.database_time_ms()).await?;
        self.settle(reading);
        Some(reading)
    }

    /// [`measure`] with this check's bound; a failure is logged as a warning and is `None`.
    pub async fn measure<N, F, Fut, E>(&self, now_ms: N, database_time: F) -> Option<Reading>
    where
        N: Fn() -> i64,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<i64, E>>,
        E: Display,
    {
        match measure(now_ms, self.bound_ms, database_time).await {
            Ok(reading) => Some(reading),
            Err(error) => {
                let affected = self.affected;
                let holding = if self.off().is_some() {
                    format!("{affected} stay refused")
                } else {
                    format!("{affected} are not held back")
                };
                tracing::warn!(
                    target: TARGET, error = %error, retry_secs = self.period_secs,
                    "cannot compare the clock with the database's; {holding} until a check succeeds"
                );
                None
            }
        }
    }

    /// Keeps `reading` ([`ClockCheck::record`]) and logs what changed: an `ERROR` when the clock
    /// goes off and as a reminder, an `INFO` at the first reading in bounds and when it is back.
    pub fn settle(&self, reading: Reading) -> Change {
        let (offset_ms, bound_ms, affected) = (reading.offset_ms, self.bound_ms, self.affected);
        let change = self.record(reading);
        let fix = || {
            format!(
                "synchronise this host's clock (NTP, chrony) with the database host's; {affected} resume at the next check"
            )
        };
        match change {
            Change::FirstInBounds => tracing::info!(
                target: TARGET, offset_ms, bound_ms, "the clock agrees with the database's"
            ),
            Change::StillInBounds => tracing::debug!(
                target: TARGET, offset_ms, bound_ms, "the clock agrees with the database's"
            ),
            Change::WentOff => tracing::error!(
                target: TARGET, offset_ms, bound_ms, fix = %fix(),
                "the clock is off from the database's by more than the bound: {affected} are refused"
            ),
            Change::StillOff { remind: true } => tracing::error!(
                target: TARGET, offset_ms, bound_ms, fix = %fix(),
                "the clock is still off from the database's by more than the bound: {affected} are refused"
            ),
            Change::StillOff { remind: false } => tracing::debug!(
                target: TARGET, offset_ms, bound_ms, "the clock is still off from the database's"
            ),
            Change::CameBack => tracing::info!(
                target: TARGET, offset_ms, bound_ms,
                "the clock agrees with the database's again: {affected} are accepted"
            ),
        }
        change
    }
}

/// Runs `check` every `period`, the first time one period from now (the check at start is the
/// caller's), until the future is dropped; a late tick delays the next rather than bunching.
pub async fn every<F, Fut>(period: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future,
{
    let mut tick = tokio::time::interval_at(Instant::now() + period, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        check().await;
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

    /// A service clock `offset_secs` off the real one.
    fn clock(offset_secs: i64) -> impl Fn() -> i64 {
        move || real_ms() + offset_secs * 1000
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
        assert_eq!(offset_ms(121_000, 1_050, 121_100), 120_000, "service ahead");
        assert_eq!(offset_ms(1_000, 4_050, 1_100), -3_000, "service behind");
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
        let fast = measure(clock(120), 3_000, || async { Ok::<_, String>(real_ms()) })
            .await
            .unwrap();
        assert!(!fast.in_bounds);
        assert!((119_000..=121_000).contains(&fast.offset_ms), "{fast:?}");
        let slow = measure(clock(-5), 3_000, || async { Ok::<_, String>(real_ms()) })
            .await
            .unwrap();
        assert!(!slow.in_bounds);
        assert!((-6_000..=-4_000).contains(&slow.offset_ms), "{slow:?}");
        let right = measure(clock(0), 3_000, || async { Ok::<_, String>(real_ms()) })
            .await
            .unwrap();
        assert!(right.in_bounds, "{right:?}");
        assert!(right.offset_ms.abs() < 1_000, "{right:?}");
    }

    #[tokio::test]
    async fn a_failed_or_slow_answer_is_no_reading() {
        let failed = measure(clock(0), 3_000, || async { Err::<i64, _>("database is locked") }).await;
        assert_eq!(failed, Err("database is locked".to_owned()));
        let slow = measure(clock(0), 100, || async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, String>(real_ms())
        })
        .await;
        assert!(slow.unwrap_err().contains("more than the bound"));
    }

    #[tokio::test]
    async fn a_failed_check_keeps_the_last_reading() {
        let check = ClockCheck::new(3_000, 30, "logins");
        let fast = check
            .measure(clock(120), || async { Ok::<_, String>(real_ms()) })
            .await
            .unwrap();
        assert_eq!(check.latest(), None, "measuring alone keeps nothing");
        assert_eq!(check.settle(fast), Change::WentOff);
        let failed = check
            .measure(clock(0), || async { Err::<i64, _>("database is locked") })
            .await;
        assert_eq!(failed, None);
        assert_eq!(check.off(), Some(fast), "still refused after a failed check");
    }

    #[test]
    fn unknown_until_the_first_reading_and_a_failure_keeps_the_last_one() {
        let check = ClockCheck::new(3_000, 30, "logins");
        assert_eq!(check.latest(), None);
        assert_eq!(check.off(), None, "unknown does not hold logins back");
        let (ready, detail) = check.readiness();
        assert!(ready, "{detail}");
        assert_eq!(check.record(reading(120_000, 0, 3_000)), Change::WentOff);
        assert_eq!(check.off().map(|r| r.offset_ms), Some(120_000));
    }

    #[test]
    fn transitions_are_logged_once_with_a_reminder_every_few_minutes() {
        let check = ClockCheck::new(3_000, 30, "logins");
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
        let check = ClockCheck::new(3_000, 30, "logins");
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

    #[tokio::test]
    async fn every_waits_one_period_then_repeats() {
        let period = Duration::from_millis(50);
        let (runs, mut ran) = tokio::sync::mpsc::unbounded_channel();
        let started = Instant::now();
        let repeat = tokio::spawn(every(period, move || {
            let runs = runs.clone();
            async move {
                let _ = runs.send(Instant::now());
            }
        }));
        for k in 1..=3 {
            let at = tokio::time::timeout(Duration::from_secs(10), ran.recv())
                .await
                .unwrap()
                .unwrap();
            assert!(at.duration_since(started) >= period * k, "run {k} too early");
        }
        repeat.abort();
    }
}
