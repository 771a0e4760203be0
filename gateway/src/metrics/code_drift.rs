//! Whose clock is wrong when codes are refused: each rejected code that matches another time
//! step (right password, code from a phone whose clock disagrees with this gateway's) is one
//! person's offset; when at least [`QUORUM`] different people within [`PERIOD_SECS`] show the
//! same offset (within one step), it is this gateway's clock that is off, not their phones.
//! Pure bookkeeping: the time is passed in, nothing is logged here.

use std::collections::HashMap;

/// Different people whose codes must agree before the gateway's clock is blamed.
pub(crate) const QUORUM: usize = 5;
/// How long one person's offset counts, in seconds.
pub(crate) const PERIOD_SECS: i64 = 600;
/// People remembered at most (the oldest go first): bounded memory whatever happens.
const MAX_PEOPLE: usize = 10_000;

/// The offset many people's codes agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CommonOffset {
    /// This gateway's clock minus the phones', in seconds (positive: the gateway is ahead).
    pub gateway_ahead_secs: i64,
    /// Different people who showed it within the period.
    pub people: usize,
}

/// What changed with one more rejected code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing new to tell.
    Unchanged(Option<CommonOffset>),
    /// A common offset appeared, or moved by more than a step: tell the desk once.
    NewlyCommon(CommonOffset),
}

/// The latest offset of each person lately refused with a code of another time.
#[derive(Debug, Default)]
pub(crate) struct DriftWatch {
    /// Stable id → (phone minus gateway, seconds; when seen, gateway unix seconds).
    people: HashMap<String, (i64, i64)>,
    /// The common offset last reported.
    reported: Option<CommonOffset>,
}

impl DriftWatch {
    /// Records that `person`'s code matched `phone_minus_gateway_secs` away from this gateway's
    /// clock at `now`, with steps of `step_secs`; says whether many people now agree.
    pub(crate) fn record(&mut self, person: &str, phone_minus_gateway_secs: i64, step_secs: i64, now: i64) -> Verdict {
        self.forget_before(now.saturating_sub(PERIOD_SECS));
        if !self.people.contains_key(person)
            && self.people.len() >= MAX_PEOPLE
            && let Some(oldest) = self
                .people
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
        {
            self.people.remove(&oldest);
        }
        self.people.insert(person.to_owned(), (phone_minus_gateway_secs, now));
        let common = self.common(step_secs.max(1));
        let moved = match (self.reported, common) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(old), Some(new)) => (old.gateway_ahead_secs - new.gateway_ahead_secs).abs() > step_secs.max(1),
        };
        if common.is_none() || moved {
            self.reported = common;
        }
        match common {
            Some(found) if moved => Verdict::NewlyCommon(found),
            other => Verdict::Unchanged(other),
        }
    }

    /// The common offset as of `now` (people older than the period no longer count).
    pub(crate) fn current(&mut self, step_secs: i64, now: i64) -> Option<CommonOffset> {
        self.forget_before(now.saturating_sub(PERIOD_SECS));
        let common = self.common(step_secs.max(1));
        if common.is_none() {
            self.reported = None;
        }
        common
    }

    fn forget_before(&mut self, oldest: i64) {
        self.people.retain(|_, (_, at)| *at >= oldest);
    }

    /// The offset shared (within one step) by the most people, if they are at least [`QUORUM`];
    /// reported as the median of those people's offsets.
    fn common(&self, step_secs: i64) -> Option<CommonOffset> {
        let mut offsets: Vec<i64> = self.people.values().map(|(offset, _)| *offset).collect();
        offsets.sort_unstable();
        let mut best: Option<&[i64]> = None;
        let mut start = 0;
        for end in 0..offsets.len() {
            while offsets[end] - offsets[start] > step_secs {
                start += 1;
            }
            let group = &offsets[start..=end];
            if best.is_none_or(|b| group.len() > b.len()) {
                best = Some(group);
            }
        }
        let group = best.filter(|g| g.len() >= QUORUM)?;
        let median = group[group.len() / 2];
        Some(CommonOffset {
            gateway_ahead_secs: -median,
            people: group.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const STEP: i64 = 30;
    const T0: i64 = 1_800_000_000;

    #[test]
    fn one_person_or_scattered_phones_blame_nobody() {
        let mut watch = DriftWatch::default();
        // The same person five times is one person.
        for i in 0..5 {
            assert_eq!(watch.record("alice", -120, STEP, T0 + i), Verdict::Unchanged(None));
        }
        // Phones off in every direction: no common offset.
        for (i, offset) in [300, -300, 90, -210].into_iter().enumerate() {
            assert_eq!(
                watch.record(&format!("p{i}"), offset, STEP, T0 + 10),
                Verdict::Unchanged(None)
            );
        }
    }

    #[test]
    fn five_people_with_one_offset_blame_the_gateway_once() {
        let mut watch = DriftWatch::default();
        let offsets = [-120, -120, -90, -120, -120];
        for (i, offset) in offsets.into_iter().enumerate().take(4) {
            assert_eq!(
                watch.record(&format!("p{i}"), offset, STEP, T0 + i as i64),
                Verdict::Unchanged(None),
                "{i}"
            );
        }
        let common = CommonOffset {
            gateway_ahead_secs: 120,
            people: 5,
        };
        assert_eq!(
            watch.record("p4", offsets[4], STEP, T0 + 5),
            Verdict::NewlyCommon(common)
        );
        // A sixth says nothing new; the count follows.
        assert_eq!(
            watch.record("p5", -120, STEP, T0 + 6),
            Verdict::Unchanged(Some(CommonOffset { people: 6, ..common }))
        );
        assert_eq!(watch.current(STEP, T0 + 7).map(|c| c.gateway_ahead_secs), Some(120));
    }

    #[test]
    fn the_verdict_fades_after_the_period_and_can_come_back() {
        let mut watch = DriftWatch::default();
        for i in 0..5 {
            watch.record(&format!("p{i}"), 60, STEP, T0);
        }
        assert_eq!(
            watch.current(STEP, T0 + PERIOD_SECS).map(|c| c.gateway_ahead_secs),
            Some(-60)
        );
        assert_eq!(
            watch.current(STEP, T0 + PERIOD_SECS + 1),
            None,
            "forgotten after the period"
        );
        for i in 0..4 {
            assert!(matches!(
                watch.record(&format!("q{i}"), 60, STEP, T0 + PERIOD_SECS + 2),
                Verdict::Unchanged(None)
            ));
        }
        assert!(matches!(
            watch.record("q4", 60, STEP, T0 + PERIOD_SECS + 2),
            Verdict::NewlyCommon(CommonOffset {
                gateway_ahead_secs: -60,
                ..
            })
        ));
    }

    #[test]
    fn a_moved_offset_is_told_again() {
        let mut watch = DriftWatch::default();
        for i in 0..5 {
            watch.record(&format!("p{i}"), -120, STEP, T0);
        }
        // The same people, now four minutes off (the gateway's clock went further).
        let mut verdicts = Vec::new();
        for i in 0..5 {
            verdicts.push(watch.record(&format!("p{i}"), -240, STEP, T0 + 60));
        }
        assert!(
            verdicts.contains(&Verdict::NewlyCommon(CommonOffset {
                gateway_ahead_secs: 240,
                people: 5
            })),
            "{verdicts:?}"
        );
    }
}
