//! The limit configuration as admins write it (`rate: 50/s`, `burst: 100`, `quota: 100000/day`),
//! parsed once at config load so that a typo fails `propylon check`, not a request.

use super::window::Window;
use thiserror::Error;

/// A sustained request rate: `count` requests per `per_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    pub count: u32,
    pub per_secs: u32,
}

/// A calendar quota: `count` requests per calendar `window` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotaSpec {
    pub count: u64,
    pub window: Window,
}

/// One entry of `quotas` (default, a consumer, or an operation override). Every part is
/// optional: an operation may only add a quota, a consumer only a rate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LimitSpec {
    pub rate: Option<Rate>,
    /// Kept as written; `effective_burst` applies the default (the rate's count).
    pub burst: Option<u32>,
    pub quota: Option<QuotaSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LimitError {
    #[error("rate {value:?}: {reason}; write N/s, N/m or N/h (or N/second, N/minute, N/hour), e.g. \"50/s\"")]
    Rate { value: String, reason: &'static str },
    #[error(
        "quota {value:?}: {reason}; write N/minute, N/hour, N/day or N/month, e.g. \"100000/day\""
    )]
    Quota { value: String, reason: &'static str },
    #[error("burst {0}: write a whole number of at least 1 (the requests allowed at once; default: the rate's N)")]
    Burst(u32),
    #[error(
        "burst {0} is set without a rate: add a rate (e.g. \"rate: 50/s\") or remove the burst"
    )]
    BurstWithoutRate(u32),
}

impl LimitSpec {
    pub fn parse(
        rate: Option<&str>,
        burst: Option<u32>,
        quota: Option<&str>,
    ) -> Result<LimitSpec, LimitError> {
        let rate = rate.map(parse_rate).transpose()?;
        if let Some(b) = burst {
            if b == 0 {
                return Err(LimitError::Burst(b));
            }
            if rate.is_none() {
                return Err(LimitError::BurstWithoutRate(b));
            }
        }
        let quota = quota.map(parse_quota).transpose()?;
        Ok(LimitSpec { rate, burst, quota })
    }

    /// The burst in force: as written, else the rate's count (a bucket of one period).
    pub fn effective_burst(&self) -> Option<u32> {
        self.rate.map(|r| self.burst.unwrap_or(r.count))
    }

    pub fn is_empty(&self) -> bool {
        self.rate.is_none() && self.quota.is_none()
    }
}

/// Splits `N/unit` into the number and the unit, both trimmed.
fn split(value: &str) -> Option<(&str, &str)> {
    let (n, unit) = value.split_once('/')?;
    Some((n.trim(), unit.trim()))
}

fn parse_rate(value: &str) -> Result<Rate, LimitError> {
    let err = |reason| LimitError::Rate {
        value: value.to_string(),
        reason,
    };
    let (n, unit) = split(value).ok_or_else(|| err("missing \"/unit\""))?;
    let count: u32 = n.parse().map_err(|_| err("N is not a whole number"))?;
    if count == 0 {
        return Err(err("N must be at least 1"));
    }
    let per_secs = match unit {
        "s" | "sec" | "second" => 1,
        "m" | "min" | "minute" => 60,
        "h" | "hour" => 3600,
        _ => return Err(err("unknown unit")),
    };
    Ok(Rate { count, per_secs })
}

fn parse_quota(value: &str) -> Result<QuotaSpec, LimitError> {
    let err = |reason| LimitError::Quota {
        value: value.to_string(),
        reason,
    };
    let (n, unit) = split(value).ok_or_else(|| err("missing \"/window\""))?;
    let count: u64 = n.parse().map_err(|_| err("N is not a whole number"))?;
    if count == 0 {
        return Err(err("N must be at least 1"));
    }
    let window = match unit {
        "minute" => Window::Minute,
        "hour" => Window::Hour,
        "day" => Window::Day,
        "month" => Window::Month,
        _ => return Err(err("unknown window")),
    };
    Ok(QuotaSpec { count, window })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_design_examples() {
        let d = LimitSpec::parse(Some("50/s"), Some(100), Some("100000/day")).unwrap();
        assert_eq!(
            d.rate,
            Some(Rate {
                count: 50,
                per_secs: 1
            })
        );
        assert_eq!(d.effective_burst(), Some(100));
        assert_eq!(
            d.quota,
            Some(QuotaSpec {
                count: 100_000,
                window: Window::Day
            })
        );
        let e = LimitSpec::parse(Some("500/s"), Some(1000), None).unwrap();
        assert_eq!(e.quota, None);
    }

    #[test]
    fn units_and_default_burst() {
        let m = LimitSpec::parse(Some(" 120 / minute "), None, None).unwrap();
        assert_eq!(
            m.rate,
            Some(Rate {
                count: 120,
                per_secs: 60
            })
        );
        assert_eq!(m.effective_burst(), Some(120));
        for (s, secs) in [
            ("1/s", 1),
            ("1/second", 1),
            ("1/m", 60),
            ("1/h", 3600),
            ("1/hour", 3600),
        ] {
            let r = LimitSpec::parse(Some(s), None, None).unwrap().rate.unwrap();
            assert_eq!(r.per_secs, secs, "{s}");
        }
        for (s, w) in [
            ("5/minute", Window::Minute),
            ("5/hour", Window::Hour),
            ("5/day", Window::Day),
            ("5/month", Window::Month),
        ] {
            assert_eq!(
                LimitSpec::parse(None, None, Some(s))
                    .unwrap()
                    .quota
                    .unwrap()
                    .window,
                w
            );
        }
        assert!(LimitSpec::parse(None, None, None).unwrap().is_empty());
    }

    #[test]
    fn errors_say_what_to_write() {
        let e = LimitSpec::parse(Some("50 per s"), None, None).unwrap_err();
        assert!(e.to_string().contains("write N/s"), "{e}");
        let e = LimitSpec::parse(Some("0/s"), None, None).unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
        let e = LimitSpec::parse(Some("5/d"), None, None).unwrap_err();
        assert!(matches!(e, LimitError::Rate { .. }));
        let e = LimitSpec::parse(None, None, Some("100/week")).unwrap_err();
        assert!(e.to_string().contains("N/month"), "{e}");
        let e = LimitSpec::parse(None, None, Some("x/day")).unwrap_err();
        assert!(e.to_string().contains("whole number"), "{e}");
        assert_eq!(
            LimitSpec::parse(Some("1/s"), Some(0), None).unwrap_err(),
            LimitError::Burst(0)
        );
        assert_eq!(
            LimitSpec::parse(None, Some(5), None).unwrap_err(),
            LimitError::BurstWithoutRate(5)
        );
    }
}
