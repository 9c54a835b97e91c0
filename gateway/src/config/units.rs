//! Durations (`2s`, `5m`) and sizes (`1MiB`) as admins write them (rates: `policies::limits`).

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_admins_write() {
        assert_eq!(duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(size("1MiB").unwrap(), 1024 * 1024);
    }

    #[test]
    fn rejects_nonsense_with_an_example() {
        assert!(duration("2 parsecs").unwrap_err().contains("e.g."));
        assert!(size("lots").is_err());
    }
}
