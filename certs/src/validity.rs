//! `Validity`: when a certificate starts and how many days it lasts. Time is a parameter, so
//! tests and callers with their own clock can issue certificates for any instant; the
//! `from_now` constructor is the one place that reads the system clock.

use crate::CertError;
use std::time::{Duration, SystemTime};

/// How far `Validity::from_now` backdates `not_before`, so that a peer whose clock is a little
/// behind ours does not reject a freshly issued certificate as "not yet valid".
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(60 * 60);

/// The longest validity accepted (100 years); longer periods are almost certainly a mistake.
pub const MAX_DAYS: u32 = 36_525;

/// Seconds from the Unix epoch to 9999-12-31T23:59:59Z, the last instant X.509 can express.
const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

const SECONDS_PER_DAY: u64 = 24 * 60 * 60;

/// The validity period of a certificate: from `not_before`, for `days` days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// First instant the certificate is valid (truncated to whole seconds).
    pub not_before: SystemTime,
    /// Length of the period in days (1 ..= [`MAX_DAYS`]).
    pub days: u32,
}

impl Validity {
    /// Default lifetime of the organisation CA: about ten years.
    pub const CA_DAYS: u32 = 3_650;
    /// Default lifetime of server and device certificates: one year.
    pub const LEAF_DAYS: u32 = 365;

    /// A period of `days` days starting at `not_before`.
    pub fn new(not_before: SystemTime, days: u32) -> Self {
        Self { not_before, days }
    }

    /// A period of `days` days starting now, backdated by [`CLOCK_SKEW_ALLOWANCE`].
    pub fn from_now(days: u32) -> Self {
        let now = SystemTime::now();
        let not_before = now.checked_sub(CLOCK_SKEW_ALLOWANCE).unwrap_or(now);
        Self::new(not_before, days)
    }

    /// The first instant after the period: `not_before + days`.
    pub fn not_after(&self) -> Option<SystemTime> {
        self.not_before
            .checked_add(Duration::from_secs(u64::from(self.days) * SECONDS_PER_DAY))
    }

    /// Writes the period into rcgen parameters, rejecting periods X.509 cannot express.
    pub(crate) fn apply(&self, params: &mut rcgen::CertificateParams) -> Result<(), CertError> {
        if self.days == 0 || self.days > MAX_DAYS {
            return Err(CertError::Generate(format!(
                "validity of {} days is outside 1..={MAX_DAYS}",
                self.days
            )));
        }
        let start = unix_seconds(self.not_before)?;
        let end = start + u64::from(self.days) * SECONDS_PER_DAY;
        if end > MAX_UNIX_SECONDS {
            return Err(CertError::Generate(
                "validity period ends after the year 9999".to_owned(),
            ));
        }
        // Built from the epoch so this crate needs no date library of its own; both offsets
        // were range-checked above, so the additions cannot overflow.
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        params.not_before = epoch + Duration::from_secs(start);
        params.not_after = epoch + Duration::from_secs(end);
        Ok(())
    }
}

fn unix_seconds(t: SystemTime) -> Result<u64, CertError> {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| CertError::Generate("validity starts before 1970".to_owned()))?
        .as_secs();
    if secs > MAX_UNIX_SECONDS {
        return Err(CertError::Generate("validity starts after the year 9999".to_owned()));
    }
    Ok(secs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn apply_sets_whole_second_dates() {
        let mut params = rcgen::CertificateParams::default();
        let start = at(1_700_000_000) + Duration::from_millis(999);
        Validity::new(start, 2).apply(&mut params).unwrap();
        assert_eq!(params.not_before.unix_timestamp(), 1_700_000_000);
        assert_eq!(params.not_after.unix_timestamp(), 1_700_000_000 + 2 * 86_400);
        assert_eq!(params.not_before.nanosecond(), 0);
    }

    #[test]
    fn out_of_range_periods_are_errors_not_panics() {
        let mut params = rcgen::CertificateParams::default();
        for bad in [
            Validity::new(at(0), 0),
            Validity::new(at(0), MAX_DAYS + 1),
            Validity::new(at(MAX_UNIX_SECONDS), 1),
            Validity::new(at(u64::MAX / 4), 1),
            Validity::new(SystemTime::UNIX_EPOCH - Duration::from_secs(1), 1),
        ] {
            assert!(matches!(bad.apply(&mut params), Err(CertError::Generate(_))));
        }
    }

    #[test]
    fn from_now_is_backdated() {
        let v = Validity::from_now(Validity::LEAF_DAYS);
        assert!(v.not_before < SystemTime::now());
        assert!(v.not_after().unwrap() > SystemTime::now());
    }
}
