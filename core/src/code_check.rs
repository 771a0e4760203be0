//! What a typed TOTP code means for its token, as pure rules shared by every place a person types
//! one (a gateway login, a console sign-in), so a code counts the same wherever it is typed: the
//! device time it is checked at, the verdict before anything is written (spend the step, count a
//! failure, or refuse), and what a counted failure did to the token.

use crate::totp::{TotpError, TotpParams};

/// What to do with a typed code, decided from its verification and the token's failure count
/// before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeVerdict {
    /// A right code at this step: spend it (the store's atomic accept still has the last word on
    /// a replay or a lock by a concurrent attempt).
    Spend {
        /// The time step the code belongs to.
        step: u64,
    },
    /// A right code at a step already used.
    Replayed,
    /// A wrong or malformed code: count one failure against the token.
    CountFailure,
    /// The token is locked. The code is not spent and no failure is counted; only someone with
    /// the device (`code_was_right`) may learn that the token is locked.
    Locked {
        /// Whether the code was right (or a replay of a right one).
        code_was_right: bool,
    },
    /// The token's parameters are unusable: nothing can be decided.
    BadParams,
}

/// The verdict on a code whose verification gave `verified`, for a token with `failures` wrong
/// codes counted against it and locked at `limit`.
pub fn verdict(verified: &Result<u64, TotpError>, failures: u32, limit: u32) -> CodeVerdict {
    if failures >= limit {
        return CodeVerdict::Locked {
            code_was_right: matches!(verified, Ok(_) | Err(TotpError::Replayed)),
        };
    }
    match verified {
        Ok(step) => CodeVerdict::Spend { step: *step },
        Err(TotpError::Replayed) => CodeVerdict::Replayed,
        Err(TotpError::Malformed | TotpError::Mismatch) => CodeVerdict::CountFailure,
        Err(TotpError::BadParams(_)) => CodeVerdict::BadParams,
    }
}

/// What counting one more wrong code did to a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Still below the limit.
    Counted,
    /// This failure reached the limit: the token is locked now (record it once).
    LockedNow,
    /// Another attempt had already locked it.
    AlreadyLocked,
}

impl AfterFailure {
    /// The token's state after its failure count became `failures`, locked at `limit`.
    pub fn of(failures: u32, limit: u32) -> Self {
        match failures.cmp(&limit) {
            std::cmp::Ordering::Less => Self::Counted,
            std::cmp::Ordering::Equal => Self::LockedNow,
            std::cmp::Ordering::Greater => Self::AlreadyLocked,
        }
    }

    /// Whether the token is locked now.
    pub fn is_locked(self) -> bool {
        self != Self::Counted
    }
}

/// The owner's device time at `now` (unix seconds): a code is checked on the device's clock as
/// the last resync learnt it, `drift_steps` steps of `params.period` away from ours.
pub fn device_time(now: i64, drift_steps: i64, params: &TotpParams) -> u64 {
    let drift = drift_steps.saturating_mul(i64::try_from(params.period).unwrap_or(0));
    u64::try_from(now.saturating_add(drift)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_the_limit_a_right_code_is_spent_and_a_wrong_one_counted() {
        assert_eq!(verdict(&Ok(7), 0, 5), CodeVerdict::Spend { step: 7 });
        assert_eq!(verdict(&Ok(7), 4, 5), CodeVerdict::Spend { step: 7 });
        assert_eq!(verdict(&Err(TotpError::Replayed), 0, 5), CodeVerdict::Replayed);
        assert_eq!(verdict(&Err(TotpError::Mismatch), 4, 5), CodeVerdict::CountFailure);
        assert_eq!(verdict(&Err(TotpError::Malformed), 0, 5), CodeVerdict::CountFailure);
        assert_eq!(verdict(&Err(TotpError::BadParams("x")), 0, 5), CodeVerdict::BadParams);
    }

    #[test]
    fn a_locked_token_spends_nothing_and_tells_only_the_holder_of_the_device() {
        assert_eq!(verdict(&Ok(7), 5, 5), CodeVerdict::Locked { code_was_right: true });
        assert_eq!(
            verdict(&Err(TotpError::Replayed), 9, 5),
            CodeVerdict::Locked { code_was_right: true }
        );
        assert_eq!(
            verdict(&Err(TotpError::Mismatch), 5, 5),
            CodeVerdict::Locked { code_was_right: false }
        );
    }

    #[test]
    fn the_failure_that_reaches_the_limit_locks_the_token_once() {
        assert_eq!(AfterFailure::of(4, 5), AfterFailure::Counted);
        assert_eq!(AfterFailure::of(5, 5), AfterFailure::LockedNow);
        assert_eq!(AfterFailure::of(6, 5), AfterFailure::AlreadyLocked);
        assert!(!AfterFailure::Counted.is_locked());
        assert!(AfterFailure::AlreadyLocked.is_locked());
    }

    #[test]
    fn the_device_time_follows_the_learnt_drift() {
        let params = TotpParams::default();
        assert_eq!(device_time(1_000, 0, &params), 1_000);
        assert_eq!(device_time(1_000, 2, &params), 1_000 + 2 * params.period);
        assert_eq!(device_time(10, -1, &params), 0, "never before the epoch");
    }
}
