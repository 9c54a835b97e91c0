//! One limit (rate and/or quota) applied to a key: the decision and the headers of
//! draft-ietf-httpapi-ratelimit-headers (structured-field form) that go with it.

use super::quota::{counter_key_prefix, QuotaCounters};
use super::rate::{RateLimiter, RateOutcome};
use super::spec::{LimitSpec, QuotaSpec};
use crate::problem::{Problem, ProblemKind};
use governor::clock::{Clock, DefaultClock};
use std::cell::RefCell;

pub const RATELIMIT_POLICY: &str = "ratelimit-policy";
pub const RATELIMIT: &str = "ratelimit";
pub const RETRY_AFTER: &str = "retry-after";

/// The policy name of the rate part in the headers (the quota part uses its window's name).
const BURST_POLICY: &str = "burst";

#[derive(Debug, Clone, PartialEq)]
pub enum LimitDecision {
    /// Carries `RateLimit-Policy` and `RateLimit` (none when the limit has neither part).
    Allow { headers: LimitFields },
    /// A 429 with `Retry-After`, `RateLimit-Policy` and `RateLimit` in `problem.headers`.
    Deny { problem: Problem },
}

/// The `RateLimit-Policy` and `RateLimit` fields of an allowed request, or none. Both values
/// are written into one string: one allocation per request, where a vector of two strings
/// took three.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitFields {
    /// The policy's value, then the `RateLimit` value; empty for no fields.
    values: String,
    policy_len: usize,
}

impl LimitFields {
    /// No fields (a limit with neither a rate nor a quota, or no limit).
    pub fn none() -> LimitFields {
        LimitFields::default()
    }

    /// The two fields with these values.
    pub fn new(policy: &str, ratelimit: &str) -> LimitFields {
        LimitFields {
            values: [policy, ratelimit].concat(),
            policy_len: policy.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Each field as `(name, value)`.
    pub fn iter(&self) -> LimitFieldsIter<'_> {
        let split = self.values.split_at_checked(self.policy_len);
        let fields = split
            .filter(|_| !self.is_empty())
            .map(|(policy, ratelimit)| [(RATELIMIT_POLICY, policy), (RATELIMIT, ratelimit)]);
        fields.into_iter().flatten()
    }
}

/// The fields of a [`LimitFields`].
pub type LimitFieldsIter<'a> =
    std::iter::Flatten<std::option::IntoIter<[(&'static str, &'a str); 2]>>;

impl<'a> IntoIterator for &'a LimitFields {
    type Item = (&'static str, &'a str);
    type IntoIter = LimitFieldsIter<'a>;

    fn into_iter(self) -> LimitFieldsIter<'a> {
        self.iter()
    }
}

/// A configured limit, e.g. the `default` one, a consumer's or an operation's override.
/// Generic over governor's clock for tests; the gateway uses the default.
pub struct Limit<C: Clock = DefaultClock> {
    name: String,
    spec: LimitSpec,
    rate: Option<RateLimiter<C>>,
    quota: Option<QuotaSpec>,
    /// `<window>:<name>:`, the consumer is appended per request.
    quota_key_prefix: String,
    /// The whole `RateLimit-Policy` value when it does not depend on the date (only a month's
    /// length does).
    fixed_policy: Option<String>,
}

impl Limit<DefaultClock> {
    pub fn new(name: &str, spec: &LimitSpec) -> Limit {
        Limit::with_clock(name, spec, DefaultClock::default())
    }
}

impl<C: Clock> Limit<C> {
    pub fn with_clock(name: &str, spec: &LimitSpec, clock: C) -> Limit<C> {
        let rate = spec
            .rate
            .zip(spec.effective_burst())
            .map(|(rate, burst)| RateLimiter::with_clock(rate, burst, clock));
        let quota = spec.quota;
        let mut limit = Limit {
            name: name.to_string(),
            spec: spec.clone(),
            rate,
            quota,
            quota_key_prefix: quota
                .map(|q| counter_key_prefix(q.window, name))
                .unwrap_or_default(),
            fixed_policy: None,
        };
        if quota.is_none_or(|q| q.window != super::Window::Month) {
            limit.fixed_policy = Some(limit.policy_header(0));
        }
        limit
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The spec this limit was built from: on a config reload, an unchanged spec lets the
    /// gateway keep the limit and its rate state.
    pub fn spec(&self) -> &LimitSpec {
        &self.spec
    }

    /// Rate first (a request the rate refuses must not use up quota), then quota.
    pub fn check(&self, key: &str, counters: &dyn QuotaCounters, now_unix: u64) -> LimitDecision {
        let rate = self.rate.as_ref().map(|r| r.check(key));
        if let Some(r) = rate.filter(|r| !r.allowed) {
            return self.deny_rate(&r, now_unix);
        }
        let Some(quota) = self.quota else {
            return match rate {
                Some(r) => self.allow(
                    BURST_POLICY,
                    u64::from(r.remaining),
                    r.reset_secs.into(),
                    now_unix,
                ),
                None => LimitDecision::Allow {
                    headers: LimitFields::none(),
                },
            };
        };
        let (start, end) = quota.window.bounds(now_unix);
        let outcome = with_key(&self.quota_key_prefix, key, |k| {
            counters.try_consume(k, start, quota.count)
        });
        let quota_reset = end.saturating_sub(now_unix);
        if !outcome.allowed {
            return self.deny_quota(quota, quota_reset, now_unix);
        }
        let quota_remaining = quota.count.saturating_sub(outcome.used);
        // The most constraining policy is reported; on a tie the quota, which lasts longer.
        match rate {
            Some(r) if u64::from(r.remaining) < quota_remaining => self.allow(
                BURST_POLICY,
                r.remaining.into(),
                r.reset_secs.into(),
                now_unix,
            ),
            _ => self.allow(quota.window.name(), quota_remaining, quota_reset, now_unix),
        }
    }

    /// Drops idle rate-limiter keys; the gateway calls it periodically.
    pub fn evict_idle(&self) {
        if let Some(r) = &self.rate {
            r.evict_idle();
        }
    }

    fn allow(&self, policy: &str, remaining: u64, reset: u64, now_unix: u64) -> LimitDecision {
        let mut values = String::with_capacity(
            self.fixed_policy.as_ref().map_or(96, String::len) + policy.len() + 48,
        );
        self.write_policy(now_unix, &mut values);
        let policy_len = values.len();
        write_ratelimit(&mut values, policy, remaining, reset);
        LimitDecision::Allow {
            headers: LimitFields { values, policy_len },
        }
    }

    fn deny_rate(&self, r: &RateOutcome, now_unix: u64) -> LimitDecision {
        let detail = match self.spec.rate.zip(self.spec.effective_burst()) {
            Some((rate, burst)) => format!(
                "rate limit of \"{}\" exceeded ({}/{}, burst {burst}); retry in {} s",
                self.name,
                rate.count,
                unit_name(rate.per_secs),
                r.retry_after_secs
            ),
            None => format!("rate limit of \"{}\" exceeded", self.name),
        };
        self.deny(
            detail,
            r.retry_after_secs.into(),
            BURST_POLICY,
            r.reset_secs.into(),
            now_unix,
        )
    }

    fn deny_quota(&self, quota: QuotaSpec, reset: u64, now_unix: u64) -> LimitDecision {
        let detail = format!(
            "quota of \"{}\" exceeded ({} requests per {}); it resets in {reset} s, at the start of the next {} (UTC)",
            self.name,
            quota.count,
            quota.window.name(),
            quota.window.name()
        );
        self.deny(detail, reset.max(1), quota.window.name(), reset, now_unix)
    }

    fn deny(
        &self,
        detail: String,
        retry_after: u64,
        policy: &str,
        reset: u64,
        now_unix: u64,
    ) -> LimitDecision {
        let problem = Problem::new(ProblemKind::TooManyRequests, detail)
            .with_header(RETRY_AFTER, retry_after.to_string())
            .with_header(RATELIMIT_POLICY, self.policy(now_unix))
            .with_header(RATELIMIT, format!("\"{policy}\";r=0;t={reset}"));
        LimitDecision::Deny { problem }
    }

    fn policy(&self, now_unix: u64) -> String {
        let mut policy = String::new();
        self.write_policy(now_unix, &mut policy);
        policy
    }

    /// The `RateLimit-Policy` value, appended to `out`.
    fn write_policy(&self, now_unix: u64, out: &mut String) {
        match &self.fixed_policy {
            Some(fixed) => out.push_str(fixed),
            None => out.push_str(&self.policy_header(now_unix)),
        }
    }

    /// `"burst";q=<burst>;w=<rate period>, "<window>";q=<count>;w=<window length>`, each part
    /// only when configured. A month's `w` is the length of the current month.
    fn policy_header(&self, now_unix: u64) -> String {
        let mut parts = Vec::with_capacity(2);
        if let Some((rate, burst)) = self.spec.rate.zip(self.spec.effective_burst()) {
            parts.push(format!("\"{BURST_POLICY}\";q={burst};w={}", rate.per_secs));
        }
        if let Some(q) = self.quota {
            let (start, end) = q.window.bounds(now_unix);
            parts.push(format!(
                "\"{}\";q={};w={}",
                q.window.name(),
                q.count,
                end - start
            ));
        }
        parts.join(", ")
    }
}

/// `"<policy>";r=<remaining>;t=<reset>`, written without `format!` (once per request).
fn write_ratelimit(field: &mut String, policy: &str, remaining: u64, reset: u64) {
    let mut digits = itoa::Buffer::new();
    field.push('"');
    field.push_str(policy);
    field.push_str("\";r=");
    field.push_str(digits.format(remaining));
    field.push_str(";t=");
    field.push_str(digits.format(reset));
}

fn unit_name(per_secs: u32) -> &'static str {
    match per_secs {
        1 => "s",
        60 => "m",
        _ => "h",
    }
}

/// Runs `f` on `prefix + key` built in a per-thread buffer: no allocation per request.
fn with_key<T>(prefix: &str, key: &str, f: impl FnOnce(&str) -> T) -> T {
    thread_local!(static BUF: RefCell<String> = const { RefCell::new(String::new()) });
    BUF.with(|buf| {
        // A re-entrant call (a QuotaCounters calling back into a Limit) gets its own string.
        let Ok(mut buf) = buf.try_borrow_mut() else {
            return f(&format!("{prefix}{key}"));
        };
        buf.clear();
        buf.push_str(prefix);
        buf.push_str(key);
        f(&buf)
    })
}
