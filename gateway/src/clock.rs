//! The gateway's wall clock: the one place it reads the time, with an optional offset so tests
//! can run a gateway whose clock is wrong.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock time in unix seconds, shifted by a fixed offset.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    offset_secs: i64,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// The system clock shifted by `offset_secs` (tests and diagnostics only).
    pub fn with_offset(offset_secs: i64) -> Self {
        Self { offset_secs }
    }

    /// Unix seconds now.
    pub fn now(&self) -> i64 {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        i64::try_from(since.as_secs())
            .unwrap_or(i64::MAX)
            .saturating_add(self.offset_secs)
    }

    /// Milliseconds since the epoch now (audit records).
    pub fn now_ms(&self) -> i64 {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        i64::try_from(since.as_millis())
            .unwrap_or(i64::MAX)
            .saturating_add(self.offset_secs.saturating_mul(1000))
    }

    /// Now as an RFC 3339 timestamp with millisecond precision.
    pub fn now_rfc3339(&self) -> String {
        let offset = jiff::SignedDuration::from_secs(self.offset_secs);
        let now = jiff::Timestamp::now()
            .checked_add(offset)
            .unwrap_or_else(|_| jiff::Timestamp::now());
        format!("{now:.3}")
    }
}
