//! Calendar-aligned quota windows in UTC: a day quota resets at 00:00 UTC, a month quota on
//! the 1st. Pure arithmetic on Unix seconds; the month needs civil-date math, done here with
//! Howard Hinnant's days-from-civil algorithms rather than a date crate.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    Minute,
    Hour,
    Day,
    Month,
}

const DAY: u64 = 86_400;

impl Window {
    /// The window containing `now_unix`: `(start, end)`, end exclusive.
    pub fn bounds(self, now_unix: u64) -> (u64, u64) {
        let fixed = |len: u64| {
            let start = now_unix - now_unix % len;
            (start, start + len)
        };
        match self {
            Window::Minute => fixed(60),
            Window::Hour => fixed(3600),
            Window::Day => fixed(DAY),
            Window::Month => {
                let (y, m, _) = civil_from_days(now_unix / DAY);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (
                    days_from_civil(y, m, 1) * DAY,
                    days_from_civil(ny, nm, 1) * DAY,
                )
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Month => "month",
        }
    }

    /// The inverse of `name`.
    pub fn from_name(name: &str) -> Option<Window> {
        match name {
            "minute" => Some(Window::Minute),
            "hour" => Some(Window::Hour),
            "day" => Some(Window::Day),
            "month" => Some(Window::Month),
            _ => None,
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (years ≥ 1970 here, so unsigned).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    // Years start in March so that the leap day is the last day of the year.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month, day)` of a day count since 1970-01-01.
fn civil_from_days(z: u64) -> (u64, u64, u64) {
    let z = z + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix seconds of a UTC date and time.
    fn at(y: u64, m: u64, d: u64, hh: u64, mm: u64, ss: u64) -> u64 {
        days_from_civil(y, m, d) * DAY + hh * 3600 + mm * 60 + ss
    }

    #[test]
    fn civil_roundtrip_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(at(2000, 3, 1, 0, 0, 0), 951_868_800);
        assert_eq!(at(2024, 2, 29, 12, 0, 0), 1_709_208_000);
        for z in (0..200_000).step_by(7) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn fixed_windows_align_to_utc() {
        let t = at(2024, 5, 20, 10, 31, 7);
        assert_eq!(Window::Minute.bounds(t), (t - 7, t - 7 + 60));
        assert_eq!(
            Window::Hour.bounds(t),
            (at(2024, 5, 20, 10, 0, 0), at(2024, 5, 20, 11, 0, 0))
        );
        assert_eq!(
            Window::Day.bounds(t),
            (at(2024, 5, 20, 0, 0, 0), at(2024, 5, 21, 0, 0, 0))
        );
        // The last second of a day belongs to it; midnight starts the next one.
        let midnight = at(2024, 5, 21, 0, 0, 0);
        assert_eq!(Window::Day.bounds(midnight - 1).1, midnight);
        assert_eq!(Window::Day.bounds(midnight).0, midnight);
    }

    #[test]
    fn month_windows_incl_leap_years() {
        let feb = |y| Window::Month.bounds(at(y, 2, 15, 0, 0, 0));
        assert_eq!(
            feb(2024),
            (at(2024, 2, 1, 0, 0, 0), at(2024, 3, 1, 0, 0, 0))
        );
        assert_eq!(feb(2024).1 - feb(2024).0, 29 * DAY); // divisible by 4
        assert_eq!(feb(2023).1 - feb(2023).0, 28 * DAY);
        assert_eq!(feb(2100).1 - feb(2100).0, 28 * DAY); // century, not leap
        assert_eq!(feb(2000).1 - feb(2000).0, 29 * DAY); // divisible by 400
                                                         // Leap day's last second is still February; the next second is March.
        let mar1 = at(2024, 3, 1, 0, 0, 0);
        assert_eq!(
            Window::Month.bounds(mar1 - 1),
            (at(2024, 2, 1, 0, 0, 0), mar1)
        );
        assert_eq!(Window::Month.bounds(mar1).0, mar1);
        // December rolls into the next year.
        let dec = Window::Month.bounds(at(2024, 12, 31, 23, 59, 59));
        assert_eq!(dec, (at(2024, 12, 1, 0, 0, 0), at(2025, 1, 1, 0, 0, 0)));
        let apr = Window::Month.bounds(at(2025, 4, 30, 23, 59, 59));
        assert_eq!(apr.1 - apr.0, 30 * DAY);
    }

    #[test]
    fn names_roundtrip() {
        for w in [Window::Minute, Window::Hour, Window::Day, Window::Month] {
            assert_eq!(Window::from_name(w.name()), Some(w));
        }
    }
}
