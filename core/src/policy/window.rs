//! Time windows (`DAYS HH:MM-HH:MM`) and schedules: windows evaluated in an IANA time zone.

use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::{TimeZone, TimeZoneDatabase};
use std::fmt;
use std::sync::OnceLock;

/// The message for a window that is not `DAYS HH:MM-HH:MM` at all.
const EXPECTED: &str = r#"expected "DAYS HH:MM-HH:MM", e.g. "Mon-Fri 07:00-20:00""#;

const MINUTES_PER_DAY: u16 = 24 * 60;

/// Monday-first abbreviations, indexed by `Weekday::to_monday_zero_offset`.
const ABBREVIATIONS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// The bundled IANA database, so decisions never depend on the host's `/usr/share/zoneinfo`
/// or `TZDIR`.
fn time_zones() -> &'static TimeZoneDatabase {
    static DATABASE: OnceLock<TimeZoneDatabase> = OnceLock::new();
    DATABASE.get_or_init(TimeZoneDatabase::bundled)
}

/// Windows in one time zone: in effect when the local time is inside any of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Schedule {
    /// Canonical IANA name, e.g. `Europe/Zurich`.
    pub(super) zone_name: String,
    zone: TimeZone,
    /// Never empty.
    windows: Vec<Window>,
}

impl Schedule {
    /// Windows in `zone`, which was looked up as `written`. `windows` must not be empty.
    pub(super) fn new(zone: TimeZone, written: &str, windows: Vec<Window>) -> Self {
        Self {
            zone_name: zone.iana_name().unwrap_or(written.trim()).to_owned(),
            zone,
            windows,
        }
    }

    /// Whether the unix time `now` falls inside one of the windows, in local time.
    pub(super) fn contains(&self, now: i64) -> bool {
        let Some(local) = self.local(now) else {
            return false;
        };
        let minute = u16::try_from(i16::from(local.hour()) * 60 + i16::from(local.minute())).unwrap_or(0);
        self.windows.iter().any(|w| w.contains(local.weekday(), minute))
    }

    /// `now` as a local time, e.g. `Sat 10:12`; `None` for a time jiff cannot represent.
    pub(super) fn local_text(&self, now: i64) -> Option<String> {
        Some(self.local(now)?.strftime("%a %H:%M").to_string())
    }

    /// The windows, comma-separated, e.g. `Mon-Fri 07:00-20:00, Sat 09:00-12:00`.
    pub(super) fn windows_text(&self) -> String {
        let texts: Vec<String> = self.windows.iter().map(ToString::to_string).collect();
        texts.join(", ")
    }

    fn local(&self, now: i64) -> Option<jiff::Zoned> {
        Some(Timestamp::from_second(now).ok()?.to_zoned(self.zone.clone()))
    }
}

/// Checks that `name` is a time zone in the bundled IANA database.
pub(super) fn time_zone(name: &str) -> Result<TimeZone, String> {
    time_zones()
        .get(name.trim())
        .map_err(|_| format!("unknown time zone {name:?} (use an IANA name such as \"Europe/Zurich\")"))
}

/// One weekly window: days plus a start and end time of day. The end is exclusive; an end
/// before the start runs overnight into the next day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Window {
    /// The days as written (normalised), for display.
    days: Vec<Days>,
    /// Bit `n` set: the window starts on the day with Monday-zero offset `n`.
    mask: u8,
    /// Minutes after midnight, `0..1440`.
    start: u16,
    /// Minutes after midnight, `0..=1440`, never equal to `start`.
    end: u16,
}

/// One item of a window's day list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Days {
    Daily,
    One(Weekday),
    /// Inclusive; may wrap past Sunday (`Fri-Mon`).
    Range(Weekday, Weekday),
}

impl Window {
    /// Parses `DAYS HH:MM-HH:MM`, e.g. `Mon-Fri 07:00-20:00`, `Sat,Sun 10:00-14:00`,
    /// `Fri 22:00-06:00` (overnight) or `daily 00:00-24:00`.
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let mut words: Vec<&str> = text.split_whitespace().collect();
        let times = words.pop().ok_or(EXPECTED)?;
        if words.is_empty() {
            return Err(EXPECTED.into());
        }
        let (start, end) = times.split_once('-').ok_or(EXPECTED)?;
        let (start, end) = (time_of_day(start, false)?, time_of_day(end, true)?);
        if start == end {
            return Err(format!(
                "the window starts and ends at {}; use \"00:00-24:00\" for a whole day",
                clock(start)
            ));
        }
        let days = parse_days(&words.concat())?;
        let mask = days.iter().fold(0, |mask, d| mask | d.mask());
        Ok(Self { days, mask, start, end })
    }

    /// Whether `minute` after midnight on `day` (local time) is inside the window.
    fn contains(&self, day: Weekday, minute: u16) -> bool {
        if self.start < self.end {
            self.starts_on(day) && (self.start..self.end).contains(&minute)
        } else {
            (self.starts_on(day) && minute >= self.start) || (self.starts_on(day.wrapping_sub(1)) && minute < self.end)
        }
    }

    fn starts_on(&self, day: Weekday) -> bool {
        self.mask & bit(day) != 0
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days: Vec<String> = self.days.iter().map(ToString::to_string).collect();
        write!(f, "{} {}-{}", days.join(","), clock(self.start), clock(self.end))
    }
}

impl Days {
    fn mask(self) -> u8 {
        match self {
            Self::Daily => 0x7f,
            Self::One(day) => bit(day),
            Self::Range(first, last) => {
                let mut mask = bit(first);
                let mut day = first;
                while day != last {
                    day = day.wrapping_add(1);
                    mask |= bit(day);
                }
                mask
            }
        }
    }
}

impl fmt::Display for Days {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Daily => f.write_str("daily"),
            Self::One(day) => f.write_str(abbreviation(day)),
            Self::Range(first, last) => write!(f, "{}-{}", abbreviation(first), abbreviation(last)),
        }
    }
}

fn bit(day: Weekday) -> u8 {
    1 << day.to_monday_zero_offset()
}

fn abbreviation(day: Weekday) -> &'static str {
    ABBREVIATIONS[usize::try_from(day.to_monday_zero_offset()).unwrap_or(0)]
}

/// `daily`, or a comma list of days and day ranges.
fn parse_days(text: &str) -> Result<Vec<Days>, String> {
    if text.eq_ignore_ascii_case("daily") {
        return Ok(vec![Days::Daily]);
    }
    text.split(',')
        .map(|item| match item.split_once('-') {
            None => Ok(Days::One(weekday(item)?)),
            Some((first, last)) => {
                let (first, last) = (weekday(first)?, weekday(last)?);
                if first == last {
                    return Err(format!("the day range {item:?} starts and ends on the same day"));
                }
                Ok(Days::Range(first, last))
            }
        })
        .collect()
}

/// `Mon`, `monday`, `TUE`, … in any case.
fn weekday(text: &str) -> Result<Weekday, String> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tues" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thur" | "thurs" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        "sun" | "sunday" => Weekday::Sunday,
        _ if text.is_empty() => return Err(format!("a day is missing; {EXPECTED}")),
        _ => {
            return Err(format!(
                "unknown day {text:?} (use Mon to Sun, a range like Mon-Fri, a list like Mon,Wed,Fri, or daily)"
            ));
        }
    })
}

/// `HH:MM` from `00:00` to `23:59`, or `24:00` when `end` is set; minutes after midnight.
fn time_of_day(text: &str, end: bool) -> Result<u16, String> {
    let invalid = || {
        let range = if end { "00:00 to 24:00" } else { "00:00 to 23:59" };
        format!("invalid time {text:?}; expected HH:MM from {range}")
    };
    let (hour, minute) = text.split_once(':').ok_or_else(invalid)?;
    let digits =
        |s: &str, len: std::ops::RangeInclusive<usize>| len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(hour, 1..=2) || !digits(minute, 2..=2) {
        return Err(invalid());
    }
    let (hour, minute): (u16, u16) = (
        hour.parse().map_err(|_| invalid())?,
        minute.parse().map_err(|_| invalid())?,
    );
    let total = hour * 60 + minute;
    if minute >= 60 || total > MINUTES_PER_DAY || (total == MINUTES_PER_DAY && !end) {
        return Err(invalid());
    }
    Ok(total)
}

/// Minutes after midnight as `HH:MM`.
fn clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn days_of(text: &str) -> Vec<&'static str> {
        let window = Window::parse(text).unwrap();
        ABBREVIATIONS
            .iter()
            .enumerate()
            .filter(|(n, _)| window.mask & (1 << n) != 0)
            .map(|(_, d)| *d)
            .collect()
    }

    #[test]
    fn day_lists_ranges_and_wrapping() {
        assert_eq!(days_of("Mon-Fri 07:00-20:00"), ["Mon", "Tue", "Wed", "Thu", "Fri"]);
        assert_eq!(days_of("Fri-Mon 07:00-20:00"), ["Mon", "Fri", "Sat", "Sun"]);
        assert_eq!(days_of("mon,WED,Friday 07:00-20:00"), ["Mon", "Wed", "Fri"]);
        assert_eq!(days_of("Mon,Thu-Sat 07:00-20:00"), ["Mon", "Thu", "Fri", "Sat"]);
        assert_eq!(days_of("Daily 00:00-24:00").len(), 7);
        assert_eq!(days_of("Mon, Wed 07:00-20:00"), ["Mon", "Wed"]);
    }

    #[test]
    fn display_is_canonical() {
        let shown = |text: &str| Window::parse(text).unwrap().to_string();
        assert_eq!(shown("monday-FRIDAY 7:00-20:00"), "Mon-Fri 07:00-20:00");
        assert_eq!(shown("sat,sun 22:30-06:00"), "Sat,Sun 22:30-06:00");
        assert_eq!(shown("DAILY 00:00-24:00"), "daily 00:00-24:00");
    }

    #[test]
    fn bad_windows_say_what_is_wrong() {
        let error = |text: &str| Window::parse(text).unwrap_err();
        for text in ["", "Mon", "07:00-20:00", "Mon 07:00", "Mon 07:00 20:00"] {
            assert_eq!(error(text), EXPECTED, "{text:?}");
        }
        assert!(error("Mno 07:00-20:00").contains(r#"unknown day "Mno""#));
        assert!(error("Mon,,Fri 07:00-20:00").contains("a day is missing"));
        assert!(error("Mon-Mon 07:00-20:00").contains("same day"));
        assert!(error("Mon 07:00-07:00").contains("starts and ends at 07:00"));
        for bad in [
            "24:00-06:00",
            "25:00-06:00",
            "07:60-08:00",
            "07:00-24:01",
            "7-8",
            "07:0-08:00",
            "+7:00-08:00",
        ] {
            assert!(error(&format!("Mon {bad}")).contains("invalid time"), "{bad}");
        }
    }

    #[test]
    fn edges_are_start_inclusive_end_exclusive() {
        let day = Window::parse("Mon 07:00-20:00").unwrap();
        assert!(!day.contains(Weekday::Monday, 7 * 60 - 1));
        assert!(day.contains(Weekday::Monday, 7 * 60));
        assert!(day.contains(Weekday::Monday, 20 * 60 - 1));
        assert!(!day.contains(Weekday::Monday, 20 * 60));
        assert!(!day.contains(Weekday::Tuesday, 12 * 60));
        let night = Window::parse("Sun 22:00-06:00").unwrap();
        assert!(night.contains(Weekday::Sunday, 22 * 60));
        assert!(night.contains(Weekday::Monday, 0));
        assert!(night.contains(Weekday::Monday, 6 * 60 - 1));
        assert!(!night.contains(Weekday::Monday, 6 * 60));
        assert!(!night.contains(Weekday::Sunday, 5 * 60));
        assert!(!night.contains(Weekday::Monday, 23 * 60));
        let whole = Window::parse("Wed 00:00-24:00").unwrap();
        assert!(whole.contains(Weekday::Wednesday, 0) && whole.contains(Weekday::Wednesday, 1439));
        assert!(!whole.contains(Weekday::Thursday, 0));
    }

    #[test]
    fn time_zones_come_from_the_bundled_database() {
        assert!(time_zones().get("Europe/Zurich").is_ok());
        assert!(
            time_zone("Europe/Zurch")
                .unwrap_err()
                .contains("unknown time zone \"Europe/Zurch\"")
        );
        let schedule = Schedule::new(
            time_zone("europe/zurich").unwrap(),
            "europe/zurich",
            vec![Window::parse("Sat 09:00-12:00").unwrap()],
        );
        assert_eq!(schedule.zone_name, "Europe/Zurich");
        // 2025-06-07T08:12:00Z is Saturday 10:12 in Zurich (CEST, UTC+2).
        assert_eq!(schedule.local_text(1_749_283_920).as_deref(), Some("Sat 10:12"));
        assert!(schedule.contains(1_749_283_920));
        assert!(!schedule.contains(i64::MAX));
    }
}
