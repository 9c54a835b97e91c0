//! `Limit` end to end: rate and quota together, driven by a fake monotonic clock and `now`
//! values around midnight and month ends.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::problem::Problem;
use governor::clock::FakeRelativeClock;
use std::time::Duration;

/// 2024-03-01T00:00:00Z: the day after a leap day.
const MAR_1_2024: u64 = 1_709_251_200;
/// 2025-01-01T00:00:00Z.
const JAN_1_2025: u64 = 1_735_689_600;

fn limit(
    name: &str,
    rate: Option<&str>,
    burst: Option<u32>,
    quota: Option<&str>,
) -> (Limit<FakeRelativeClock>, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    let spec = LimitSpec::parse(rate, burst, quota).unwrap();
    (Limit::with_clock(name, &spec, clock.clone()), clock)
}

fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

fn allowed_headers(d: LimitDecision) -> Vec<(&'static str, String)> {
    match d {
        LimitDecision::Allow { headers } => headers
            .iter()
            .map(|(name, value)| (name, value.to_string()))
            .collect(),
        LimitDecision::Deny { problem } => panic!("denied: {}", problem.detail),
    }
}

fn denied(d: LimitDecision) -> Problem {
    match d {
        LimitDecision::Deny { problem } => problem,
        LimitDecision::Allow { .. } => panic!("allowed"),
    }
}

#[test]
fn burst_of_50_gives_exactly_10_allowed_40_denied() {
    let (l, clock) = limit("default", Some("10/s"), Some(10), None);
    let counters = MemoryQuotaCounters::new();
    let (mut allowed, mut denied_n) = (0, 0);
    for _ in 0..50 {
        clock.advance(Duration::from_micros(60)); // 50 calls in 3 ms
        match l.check("client", &counters, 1_000) {
            LimitDecision::Allow { .. } => allowed += 1,
            LimitDecision::Deny { problem } => {
                assert_eq!(problem.status, 429);
                assert_eq!(header(&problem.headers, RETRY_AFTER), Some("1"));
                denied_n += 1;
            }
        }
    }
    assert_eq!((allowed, denied_n), (10, 40));
}

#[test]
fn rate_denials_do_not_consume_quota() {
    let (l, clock) = limit("default", Some("1/s"), Some(1), Some("5/day"));
    let counters = MemoryQuotaCounters::new();
    allowed_headers(l.check("c", &counters, 1_000));
    for _ in 0..10 {
        let p = denied(l.check("c", &counters, 1_000));
        assert!(
            p.detail.contains("rate limit of \"default\""),
            "{}",
            p.detail
        );
        assert!(p.detail.contains("1/s, burst 1"), "{}", p.detail);
    }
    clock.advance(Duration::from_secs(1));
    let h = allowed_headers(l.check("c", &counters, 1_001));
    // 2 of 5 used: 3 left in the quota, 0 in the bucket, so the bucket is reported.
    assert_eq!(header(&h, RATELIMIT), Some("\"burst\";r=0;t=1"));
    assert_eq!(counters.export()[0].2, 2);
}

#[test]
fn a_day_quota_lets_exactly_n_through_until_midnight_utc() {
    let (l, _clock) = limit("createOrder", None, None, Some("3/day"));
    let counters = MemoryQuotaCounters::new();
    let before_midnight = MAR_1_2024 - 10;
    for left in [2, 1, 0] {
        let h = allowed_headers(l.check("c", &counters, before_midnight));
        assert_eq!(
            header(&h, RATELIMIT),
            Some(format!("\"day\";r={left};t=10").as_str())
        );
        assert_eq!(header(&h, RATELIMIT_POLICY), Some("\"day\";q=3;w=86400"));
    }
    for now in [before_midnight, MAR_1_2024 - 1] {
        let p = denied(l.check("c", &counters, now));
        let wait = (MAR_1_2024 - now).to_string();
        assert_eq!(header(&p.headers, RETRY_AFTER), Some(wait.as_str()));
        assert_eq!(
            header(&p.headers, RATELIMIT),
            Some(format!("\"day\";r=0;t={wait}").as_str())
        );
        assert!(
            p.detail.contains("quota of \"createOrder\""),
            "{}",
            p.detail
        );
        assert!(p.detail.contains("3 requests per day"), "{}", p.detail);
    }
    // Another consumer has its own count.
    allowed_headers(l.check("other", &counters, before_midnight));
    // Midnight UTC: a fresh day.
    for _ in 0..3 {
        allowed_headers(l.check("c", &counters, MAR_1_2024));
    }
    denied(l.check("c", &counters, MAR_1_2024 + 86_399));
    allowed_headers(l.check("c", &counters, MAR_1_2024 + 86_400));
}

#[test]
fn a_month_quota_resets_on_the_first_incl_leap_february() {
    let (l, _clock) = limit("default", None, None, Some("2/month"));
    let counters = MemoryQuotaCounters::new();
    let feb_29_end = MAR_1_2024 - 1;
    let h = allowed_headers(l.check("c", &counters, feb_29_end - 86_400 * 28)); // Feb 1st
    assert_eq!(
        header(&h, RATELIMIT_POLICY),
        Some("\"month\";q=2;w=2505600")
    ); // 29 days
    allowed_headers(l.check("c", &counters, feb_29_end - 86_400)); // Feb 28th
    let p = denied(l.check("c", &counters, feb_29_end));
    assert_eq!(header(&p.headers, RETRY_AFTER), Some("1"));
    let h = allowed_headers(l.check("c", &counters, MAR_1_2024));
    assert_eq!(
        header(&h, RATELIMIT_POLICY),
        Some("\"month\";q=2;w=2678400")
    ); // 31 days
       // December into January.
    allowed_headers(l.check("c", &counters, JAN_1_2025 - 5));
    allowed_headers(l.check("c", &counters, JAN_1_2025 - 4));
    let p = denied(l.check("c", &counters, JAN_1_2025 - 3));
    assert_eq!(header(&p.headers, RETRY_AFTER), Some("3"));
    allowed_headers(l.check("c", &counters, JAN_1_2025));
}

#[test]
fn headers_report_both_policies_and_the_most_constraining() {
    let (l, _clock) = limit("default", Some("50/s"), Some(100), Some("100000/day"));
    let counters = MemoryQuotaCounters::new();
    let h = allowed_headers(l.check("c", &counters, 1_000));
    assert_eq!(
        header(&h, RATELIMIT_POLICY),
        Some("\"burst\";q=100;w=1, \"day\";q=100000;w=86400")
    );
    assert_eq!(header(&h, RATELIMIT), Some("\"burst\";r=99;t=1"));

    // A tie goes to the quota: 9 left in both.
    let (l, _clock) = limit("tie", Some("10/s"), None, Some("10/hour"));
    let h = allowed_headers(l.check("c", &counters, 3_600 * 5 + 60));
    assert_eq!(header(&h, RATELIMIT), Some("\"hour\";r=9;t=3540"));
}

#[test]
fn a_denied_answer_is_a_complete_429_problem() {
    let (l, _clock) = limit("erp-batch", Some("2/m"), None, Some("100/day"));
    let counters = MemoryQuotaCounters::new();
    allowed_headers(l.check("c", &counters, 0));
    allowed_headers(l.check("c", &counters, 0));
    let p = denied(l.check("c", &counters, 0));
    assert_eq!(p.status, 429);
    assert_eq!(p.type_uri, "urn:propylon:problem:rate-limited");
    assert_eq!(p.title, "Too many requests");
    assert!(
        p.detail
            .contains("\"erp-batch\" exceeded (2/m, burst 2); retry in 30 s"),
        "{}",
        p.detail
    );
    assert_eq!(
        p.headers,
        vec![
            (RETRY_AFTER, "30".to_string()),
            (
                RATELIMIT_POLICY,
                "\"burst\";q=2;w=60, \"day\";q=100;w=86400".to_string()
            ),
            (RATELIMIT, "\"burst\";r=0;t=60".to_string()),
        ]
    );
    // Only the two allowed calls were counted.
    assert_eq!(counters.export()[0].2, 2);
}

#[test]
fn limits_are_namespaced_and_partial_specs_work() {
    let counters = MemoryQuotaCounters::new();
    let (a, _c1) = limit("default", None, None, Some("1/day"));
    let (b, _c2) = limit("createOrder", None, None, Some("1/day"));
    allowed_headers(a.check("c", &counters, 0));
    // The operation's quota is counted apart from the consumer's.
    allowed_headers(b.check("c", &counters, 0));
    denied(a.check("c", &counters, 0));

    let (rate_only, _c) = limit("r", Some("5/s"), None, None);
    let h = allowed_headers(rate_only.check("c", &counters, 0));
    assert_eq!(header(&h, RATELIMIT_POLICY), Some("\"burst\";q=5;w=1"));
    assert_eq!(header(&h, RATELIMIT), Some("\"burst\";r=4;t=1"));

    let (none, _c) = limit("none", None, None, None);
    assert_eq!(
        none.check("c", &counters, 0),
        LimitDecision::Allow {
            headers: LimitFields::none()
        }
    );
    assert!(none.spec().is_empty());
}

#[test]
fn evict_idle_bounds_rate_state() {
    let (l, clock) = limit("default", Some("10/s"), None, None);
    let counters = MemoryQuotaCounters::new();
    for i in 0..100 {
        l.check(&format!("c{i}"), &counters, 0);
    }
    clock.advance(Duration::from_secs(2));
    l.evict_idle();
    allowed_headers(l.check("c0", &counters, 0));
}

#[test]
fn limit_fields_are_both_fields_or_none() {
    let fields = LimitFields::new("\"burst\";q=5;w=1", "\"burst\";r=4;t=1");
    let pairs: Vec<_> = fields.iter().collect();
    assert_eq!(
        pairs,
        [
            (RATELIMIT_POLICY, "\"burst\";q=5;w=1"),
            (RATELIMIT, "\"burst\";r=4;t=1")
        ]
    );
    assert_eq!((&fields).into_iter().count(), 2);
    assert!(LimitFields::none().is_empty());
    assert_eq!(LimitFields::none().iter().count(), 0);
}
