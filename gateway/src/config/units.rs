//! Durations (`2s`, `5m`), sizes (`1MiB`) and rates (`50/s`) as admins write them.

use std::time::Duration;

pub fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration ({e}); write e.g. `500ms`, `2s`, `5m`"))
}

pub fn size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| format!("`{text}` is not a size; write e.g. `64KiB`, `1MiB`, `10MB`"))
}

/// `N/unit` with unit s, m, h, day (or second, minute, hour, day, month): checked now so
/// that a typo fails `check` today, enforced with quotas later.
pub fn rate(text: &str) -> Result<(u64, &str), String> {
    let fail = || format!("`{text}` is not a rate; write e.g. `50/s`, `1000/hour`, `100000/day`");
    let (n, unit) = text.trim().split_once('/').ok_or_else(fail)?;
    let n: u64 = n.trim().parse().map_err(|_| fail())?;
    let unit = unit.trim();
    const UNITS: [&str; 12] = [
        "s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "day", "month", "mo",
    ];
    if n == 0 || !UNITS.contains(&unit) {
        return Err(fail());
    }
    Ok((n, unit))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_admins_write() {
        assert_eq!(duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(size("1MiB").unwrap(), 1024 * 1024);
        assert_eq!(rate("50/s").unwrap(), (50, "s"));
        assert_eq!(rate("100000/day").unwrap(), (100000, "day"));
    }

    #[test]
    fn rejects_nonsense_with_an_example() {
        assert!(duration("2 parsecs").unwrap_err().contains("e.g."));
        assert!(size("lots").is_err());
        assert!(rate("50 per second").is_err());
        assert!(rate("0/s").is_err());
        assert!(rate("5/fortnight").is_err());
    }
}
