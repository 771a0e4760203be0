//! The one wall clock of the services: the system clock, a drill's shifted clock, or a manual
//! clock that a test moves by hand. A service builds one at start and hands it to everything that
//! reads the time (logins, policy windows, sessions, audit records), so a test can fix the time
//! and a drill's shift cannot reach only half of the process.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock time in unix seconds and milliseconds. Cheap to clone; clones read the same time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    source: Source,
}

#[derive(Debug, Clone, Default)]
enum Source {
    /// The system clock.
    #[default]
    System,
    /// The system clock shifted by a fixed amount (clock drills only).
    Shifted { offset_ms: i64 },
    /// A time that only a [`ClockHand`] moves (tests).
    Manual(Arc<AtomicI64>),
}

/// What moves a manual [`Clock`]: every clone of the clock reads the time set here.
#[derive(Debug, Clone)]
pub struct ClockHand {
    now_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// The system clock shifted by `offset_secs` (0: the system clock). Only for clock drills:
    /// a service given a shifted clock says so loudly at start and on its metrics.
    pub fn shifted(offset_secs: i64) -> Self {
        match offset_secs {
            0 => Self::system(),
            secs => Self {
                source: Source::Shifted {
                    offset_ms: secs.saturating_mul(1000),
                },
            },
        }
    }

    /// A clock standing at `now_ms` (unix milliseconds) that moves only when its hand does.
    pub fn manual(now_ms: i64) -> (Self, ClockHand) {
        let shared = Arc::new(AtomicI64::new(now_ms));
        let clock = Self {
            source: Source::Manual(shared.clone()),
        };
        (clock, ClockHand { now_ms: shared })
    }

    /// How far a drill shifted this clock from the system's, in seconds (`0` otherwise).
    pub fn drill_offset_secs(&self) -> i64 {
        match &self.source {
            Source::Shifted { offset_ms } => offset_ms / 1000,
            Source::System | Source::Manual(_) => 0,
        }
    }

    /// Unix milliseconds now.
    pub fn now_ms(&self) -> i64 {
        match &self.source {
            Source::System => system_ms(),
            Source::Shifted { offset_ms } => system_ms().saturating_add(*offset_ms),
            Source::Manual(now) => now.load(Ordering::SeqCst),
        }
    }

    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Now as an RFC 3339 timestamp with millisecond precision.
    pub fn now_rfc3339(&self) -> String {
        let now = jiff::Timestamp::from_millisecond(self.now_ms()).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        format!("{now:.3}")
    }
}

impl ClockHand {
    /// Moves the clock forward (or back, for a negative `by_ms`).
    pub fn advance_ms(&self, by_ms: i64) {
        self.now_ms.fetch_add(by_ms, Ordering::SeqCst);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.advance_ms(i64::try_from(by.as_millis()).unwrap_or(i64::MAX));
    }

    /// Sets the clock to `now_ms` (unix milliseconds).
    pub fn set_ms(&self, now_ms: i64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }
}

/// The system clock in unix milliseconds: the one reading of it in the services (core's lints
/// forbid it everywhere else in core).
#[allow(clippy::disallowed_methods)]
fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_with_its_hand_and_all_clones_follow() {
        let (clock, hand) = Clock::manual(1_700_000_000_500);
        let other = clock.clone();
        assert_eq!(clock.now(), 1_700_000_000);
        hand.advance(Duration::from_millis(600));
        assert_eq!(other.now_ms(), 1_700_000_001_100);
        assert_eq!(other.now(), 1_700_000_001);
        hand.set_ms(0);
        assert_eq!(clock.now_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(clock.drill_offset_secs(), 0);
    }

    #[test]
    fn a_shifted_clock_is_off_by_its_drill_offset_and_zero_is_the_system_clock() {
        let shifted = Clock::shifted(120);
        assert_eq!(shifted.drill_offset_secs(), 120);
        let gap = shifted.now() - Clock::system().now();
        assert!((119..=121).contains(&gap), "{gap}");
        assert_eq!(Clock::shifted(0).drill_offset_secs(), 0);
        assert!(matches!(Clock::shifted(0).source, Source::System));
    }

    #[test]
    fn seconds_round_down_before_the_epoch_too() {
        let (clock, _) = Clock::manual(-1);
        assert_eq!(clock.now(), -1);
    }
}
