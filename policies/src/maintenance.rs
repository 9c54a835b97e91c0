//! Maintenance windows of a backend: `[Day] HH:MM-HH:MM [UTC]`, e.g. `Sun 02:00-04:00 UTC`.
//! Without a day the window recurs daily. Times are UTC, 24-hour; `24:00` may end a window.
//! A window whose end is not after its start crosses midnight: `Sat 23:00-01:00` runs from
//! Saturday 23:00 into Sunday 01:00.
//!
//! Pure: the caller passes the time (unix seconds).

use std::fmt;

const DAY_SECS: i64 = 86_400;
const WEEK_SECS: i64 = 7 * DAY_SECS;
const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const HOW: &str = "write `[Day] HH:MM-HH:MM [UTC]`, e.g. `Sun 02:00-04:00 UTC` (day optional: Mon..Sun, every day when left out; times in 24h UTC)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceWindow {
    /// 0 = Monday … 6 = Sunday; `None`: every day.
    day: Option<u8>,
    /// Seconds after midnight UTC when the window starts (< 24h).
    start: i64,
    /// Length in seconds (1 minute … 24 hours).
    length: i64,
}

impl MaintenanceWindow {
    /// Parses `[Day] HH:MM-HH:MM [UTC]`. The error says what is wrong and what to write.
    pub fn parse(text: &str) -> Result<MaintenanceWindow, String> {
        let mut parts: Vec<&str> = text.split_whitespace().collect();
        if parts
            .last()
            .is_some_and(|p| p.eq_ignore_ascii_case("UTC") || p.eq_ignore_ascii_case("Z"))
        {
            parts.pop();
        }
        let (day, range) = match parts.as_slice() {
            [day, range] => (parse_day(day)?, *range),
            [range] => (None, *range),
            [] => return Err(format!("the window is empty: {HOW}")),
            _ => {
                return Err(format!(
                    "expected an optional day and a time range, found `{text}`: {HOW}"
                ))
            }
        };
        let Some((from, to)) = range.split_once('-') else {
            return Err(format!("the time range `{range}` needs a `-`: {HOW}"));
        };
        let start = parse_time(from, false)?;
        let end = parse_time(to, true)?;
        if start == end {
            return Err(format!(
                "the window `{range}` starts and ends at the same time: {HOW}"
            ));
        }
        let length = if end > start {
            end - start
        } else {
            end + DAY_SECS - start
        };
        Ok(MaintenanceWindow { day, start, length })
    }

    /// The end (unix seconds) of the occurrence of this window that contains `now`.
    fn current_end(&self, now_unix_secs: i64) -> Option<i64> {
        let today = now_unix_secs.div_euclid(DAY_SECS);
        // An occurrence lasts at most 24h, so it started today or yesterday.
        (0..=1).find_map(|back| {
            let day = today - back;
            if self.day.is_some_and(|d| i64::from(d) != weekday(day)) {
                return None;
            }
            let start = day * DAY_SECS + self.start;
            let end = start + self.length;
            (start <= now_unix_secs && now_unix_secs < end).then_some(end)
        })
    }

    /// Is `now` (unix seconds) inside the window? Start inclusive, end exclusive.
    pub fn contains(&self, now_unix_secs: i64) -> bool {
        self.current_end(now_unix_secs).is_some()
    }

    /// Seconds until the window ends, when `now` is inside it (always ≥ 1).
    pub fn ends_after(&self, now_unix_secs: i64) -> Option<i64> {
        self.current_end(now_unix_secs)
            .map(|end| end - now_unix_secs)
    }

    /// Seconds until the window next starts (0 when inside it).
    pub fn starts_after(&self, now_unix_secs: i64) -> i64 {
        if self.contains(now_unix_secs) {
            return 0;
        }
        let today = now_unix_secs.div_euclid(DAY_SECS);
        (0..=7)
            .filter_map(|ahead| {
                let day = today + ahead;
                if self.day.is_some_and(|d| i64::from(d) != weekday(day)) {
                    return None;
                }
                let start = day * DAY_SECS + self.start;
                (start > now_unix_secs).then_some(start - now_unix_secs)
            })
            .min()
            .unwrap_or(WEEK_SECS)
    }
}

impl fmt::Display for MaintenanceWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(day) = self.day.and_then(|d| DAY_NAMES.get(usize::from(d))) {
            write!(f, "{day} ")?;
        }
        let end = (self.start + self.length) % DAY_SECS;
        let end = if end == 0 && self.start + self.length == DAY_SECS {
            DAY_SECS
        } else {
            end
        };
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02} UTC",
            self.start / 3600,
            self.start % 3600 / 60,
            end / 3600,
            end % 3600 / 60
        )
    }
}

/// Day number since the epoch → 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday).
fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

fn parse_day(text: &str) -> Result<Option<u8>, String> {
    if text.eq_ignore_ascii_case("daily") {
        return Ok(None);
    }
    DAY_NAMES
        .iter()
        .position(|d| d.eq_ignore_ascii_case(text))
        .and_then(|i| u8::try_from(i).ok())
        .map(Some)
        .ok_or_else(|| {
            format!("`{text}` is not a day: write Mon, Tue, Wed, Thu, Fri, Sat or Sun, or leave the day out for a daily window")
        })
}

/// `HH:MM` → seconds after midnight; `24:00` only as an end.
fn parse_time(text: &str, is_end: bool) -> Result<i64, String> {
    let bad = || format!("`{text}` is not a time: write HH:MM in 24h UTC, e.g. `02:00`");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if is_end && h == 24 && m == 0 {
        return Ok(DAY_SECS);
    }
    if h >= 24 || m >= 60 {
        return Err(bad());
    }
    Ok(h * 3600 + m * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-07 was a Sunday; its midnight UTC in unix seconds.
    const SUN: i64 = 1_704_585_600;
    const MON: i64 = SUN + DAY_SECS;
    const SAT: i64 = SUN - DAY_SECS;

    fn at(day: i64, h: i64, m: i64) -> i64 {
        day + h * 3600 + m * 60
    }

    fn w(text: &str) -> MaintenanceWindow {
        MaintenanceWindow::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn weekday_of_known_dates() {
        assert_eq!(weekday(0), 3, "1970-01-01 was a Thursday");
        assert_eq!(weekday(SUN / DAY_SECS), 6);
        assert_eq!(weekday(MON / DAY_SECS), 0);
        assert_eq!(weekday(-1), 2, "1969-12-31 was a Wednesday");
    }

    #[test]
    fn parses_the_documented_forms() {
        assert!(MaintenanceWindow::parse("Sun 02:00-04:00 UTC").is_ok());
        assert!(MaintenanceWindow::parse("22:00-23:30").is_ok());
        assert!(MaintenanceWindow::parse("sun 02:00-04:00 utc").is_ok());
        assert!(MaintenanceWindow::parse("Daily 02:00-04:00").is_ok());
        assert!(MaintenanceWindow::parse("  Sat   23:00-01:00  UTC ").is_ok());
        assert!(MaintenanceWindow::parse("00:00-24:00").is_ok());
        assert_eq!(w("Sun 02:00-04:00 UTC").to_string(), "Sun 02:00-04:00 UTC");
        assert_eq!(w("23:00-01:00").to_string(), "23:00-01:00 UTC");
        assert_eq!(w("Mon 22:00-24:00").to_string(), "Mon 22:00-24:00 UTC");
    }

    #[test]
    fn rejects_with_what_to_write() {
        for bad in [
            "Sunday 02:00-04:00",
            "Sun 25:00-26:00 UTC",
            "Sun 2:00-4:00",
            "Sun 02:00",
            "Sun 02:00-04:60",
            "24:00-01:00",
            "02:00-02:00",
            "",
            "UTC",
            "Sun Mon 02:00-04:00",
            "Sun 02:00-04:00 CET",
            "Sun 0a:00-04:00",
        ] {
            let e = MaintenanceWindow::parse(bad).expect_err(bad);
            assert!(e.contains("write"), "{bad}: {e}");
        }
        let e = MaintenanceWindow::parse("Sunday 02:00-04:00").expect_err("day");
        assert!(e.contains("Mon, Tue"), "{e}");
    }

    #[test]
    fn weekly_window_bounds() {
        let win = w("Sun 02:00-04:00 UTC");
        assert!(!win.contains(at(SUN, 1, 59)));
        assert!(win.contains(at(SUN, 2, 0)), "start is inclusive");
        assert!(win.contains(at(SUN, 3, 59)));
        assert!(!win.contains(at(SUN, 4, 0)), "end is exclusive");
        assert!(!win.contains(at(MON, 3, 0)), "another day");
        assert!(!win.contains(at(SAT, 3, 0)));
        assert!(win.contains(at(SUN + 7 * DAY_SECS, 3, 0)), "next week");
        assert!(win.contains(at(SUN - 7 * DAY_SECS, 3, 0)), "last week");
        assert_eq!(win.ends_after(at(SUN, 3, 0)), Some(3600));
        assert_eq!(win.ends_after(at(SUN, 3, 59) + 59), Some(1));
        assert_eq!(win.ends_after(at(SUN, 4, 0)), None);
    }

    #[test]
    fn daily_window() {
        let win = w("22:00-23:30");
        for day in [SAT, SUN, MON] {
            assert!(win.contains(at(day, 22, 15)));
            assert!(!win.contains(at(day, 23, 30)));
            assert!(!win.contains(at(day, 12, 0)));
        }
        assert_eq!(win.ends_after(at(MON, 23, 0)), Some(1800));
    }

    #[test]
    fn crossing_midnight_runs_into_the_next_day() {
        let win = w("Sat 23:00-01:00");
        assert!(!win.contains(at(SAT, 22, 59)));
        assert!(win.contains(at(SAT, 23, 0)));
        assert!(win.contains(SUN), "Sunday midnight is inside");
        assert!(win.contains(at(SUN, 0, 59)));
        assert!(!win.contains(at(SUN, 1, 0)));
        assert!(!win.contains(at(SUN, 23, 30)), "not on Sunday night");
        assert!(!win.contains(at(SAT, 0, 30)), "not Friday night's spill");
        assert_eq!(win.ends_after(at(SAT, 23, 0)), Some(7200));
        assert_eq!(win.ends_after(at(SUN, 0, 30)), Some(1800));
    }

    #[test]
    fn sunday_night_crosses_into_monday_across_the_week_boundary() {
        let win = w("Sun 23:30-00:30 UTC");
        assert!(win.contains(at(SUN, 23, 45)));
        assert!(win.contains(at(MON, 0, 15)));
        assert!(!win.contains(at(MON, 23, 45)));
        assert!(
            !win.contains(at(SUN, 0, 15)),
            "Saturday's night is not in it"
        );
    }

    #[test]
    fn daily_crossing_midnight() {
        let win = w("23:00-01:00");
        assert!(win.contains(at(MON, 0, 30)));
        assert!(win.contains(at(MON, 23, 30)));
        assert!(!win.contains(at(MON, 12, 0)));
        assert_eq!(win.ends_after(at(MON, 23, 30)), Some(5400));
    }

    #[test]
    fn whole_day_windows() {
        let all = w("00:00-24:00");
        assert!(all.contains(at(MON, 0, 0)));
        assert!(all.contains(at(MON, 23, 59)));
        assert_eq!(all.ends_after(at(MON, 23, 0)), Some(3600));
        let sunday = w("Sun 00:00-24:00");
        assert!(sunday.contains(SUN));
        assert!(sunday.contains(MON - 1));
        assert!(!sunday.contains(MON));
        assert!(!sunday.contains(SUN - 1));
    }

    #[test]
    fn times_before_1970() {
        // 1969-12-28 was a Sunday.
        let win = w("Sun 02:00-04:00");
        assert!(win.contains(-4 * DAY_SECS + 3 * 3600));
        assert!(!win.contains(-3 * DAY_SECS + 3 * 3600));
    }

    #[test]
    fn starts_after() {
        let win = w("Sun 02:00-04:00");
        assert_eq!(win.starts_after(at(SUN, 1, 0)), 3600);
        assert_eq!(win.starts_after(at(SUN, 3, 0)), 0);
        assert_eq!(win.starts_after(at(SUN, 4, 0)), 7 * DAY_SECS - 2 * 3600);
        assert_eq!(w("02:00-03:00").starts_after(at(MON, 4, 0)), 22 * 3600);
    }
}
