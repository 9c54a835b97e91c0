//! The per-consumer rate limit: GCRA from `governor`, keyed by consumer, with enough state
//! information to fill in the `RateLimit` headers.

use super::spec::Rate;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::Quota;
use std::cell::RefCell;
use std::num::NonZeroU32;
use std::time::Duration;

type Keyed<C> =
    governor::RateLimiter<String, DefaultKeyedStateStore<String>, C, StateInformationMiddleware>;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A GCRA limiter keyed by consumer (governor's keyed limiter with its default keyed state
/// store). Memory stays bounded by calling `evict_idle` periodically: it drops the keys whose
/// bucket is full again, which are indistinguishable from keys never seen.
///
/// Generic over governor's clock so that tests can drive time with `FakeRelativeClock`.
pub struct RateLimiter<C: Clock = DefaultClock> {
    inner: Keyed<C>,
    burst: u32,
    /// GCRA's emission interval `t`: one cell comes back every `t`.
    t_nanos: u64,
}

/// One rate decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateOutcome {
    pub allowed: bool,
    /// Cells available immediately after this decision (best estimate, rounded down).
    pub remaining: u32,
    /// Seconds until the bucket is full again, rounded up.
    pub reset_secs: u32,
    /// When denied: seconds until the next request would pass, rounded up, at least 1.
    /// When allowed: 0.
    pub retry_after_secs: u32,
}

impl RateLimiter<DefaultClock> {
    pub fn new(rate: Rate, burst: u32) -> RateLimiter {
        RateLimiter::with_clock(rate, burst, DefaultClock::default())
    }
}

impl<C: Clock> RateLimiter<C> {
    pub fn with_clock(rate: Rate, burst: u32, clock: C) -> RateLimiter<C> {
        // A sub-nanosecond interval is not representable; such rates are unlimited in practice.
        let t_nanos =
            (u64::from(rate.per_secs) * NANOS_PER_SEC / u64::from(rate.count.max(1))).max(1);
        let burst = burst.max(1);
        let quota = Quota::with_period(Duration::from_nanos(t_nanos))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        let inner = Keyed::<C>::new(quota, DefaultKeyedStateStore::default(), clock);
        RateLimiter {
            inner,
            burst,
            t_nanos,
        }
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    pub fn check(&self, key: &str) -> RateOutcome {
        // governor wants `&String`; a per-thread buffer avoids an allocation per request
        // (the store clones the key only when it first sees it).
        thread_local!(static KEY: RefCell<String> = const { RefCell::new(String::new()) });
        let result = KEY.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            buf.push_str(key);
            self.inner.check_key(&buf)
        });
        match result {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                // `remaining` is rounded down, so this is an upper bound of the refill time.
                let missing = u64::from(self.burst.saturating_sub(remaining));
                RateOutcome {
                    allowed: true,
                    remaining,
                    reset_secs: ceil_secs(missing.saturating_mul(self.t_nanos)),
                    retry_after_secs: 0,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.inner.clock().now());
                let wait_nanos = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
                // Full again once the next cell is back plus the rest of the burst (tau).
                let tau = u64::from(self.burst - 1).saturating_mul(self.t_nanos);
                RateOutcome {
                    allowed: false,
                    remaining: 0,
                    reset_secs: ceil_secs(wait_nanos.saturating_add(tau)),
                    retry_after_secs: ceil_secs(wait_nanos).max(1),
                }
            }
        }
    }

    /// Drops keys whose bucket is full again and gives the memory back.
    pub fn evict_idle(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }

    /// Keys currently tracked.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

pub(crate) fn ceil_secs(nanos: u64) -> u32 {
    u32::try_from(nanos.div_ceil(NANOS_PER_SEC)).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn limiter(
        count: u32,
        per_secs: u32,
        burst: u32,
    ) -> (RateLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (
            RateLimiter::with_clock(Rate { count, per_secs }, burst, clock.clone()),
            clock,
        )
    }

    #[test]
    fn burst_of_50_lets_exactly_10_through() {
        let (l, clock) = limiter(10, 1, 10);
        let mut allowed = 0;
        for _ in 0..50 {
            clock.advance(Duration::from_micros(50)); // 50 calls in 2.5 ms
            if l.check("client").allowed {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 10);
    }

    #[test]
    fn the_real_clock_agrees() {
        let l = RateLimiter::new(
            Rate {
                count: 10,
                per_secs: 1,
            },
            10,
        );
        let allowed = (0..50).filter(|_| l.check("client").allowed).count();
        assert_eq!(allowed, 10);
    }

    #[test]
    fn remaining_reset_and_retry_after() {
        let (l, clock) = limiter(10, 1, 10);
        let first = l.check("a");
        assert_eq!(
            (first.allowed, first.remaining, first.reset_secs),
            (true, 9, 1)
        );
        for _ in 0..9 {
            assert!(l.check("a").allowed);
        }
        let denied = l.check("a");
        assert!(!denied.allowed);
        assert_eq!(denied.remaining, 0);
        assert_eq!(denied.retry_after_secs, 1); // 100 ms, rounded up
        assert_eq!(denied.reset_secs, 1); // 1 s to refill ten cells
                                          // One emission interval later, exactly one more passes.
        clock.advance(Duration::from_millis(100));
        let again = l.check("a");
        assert!(again.allowed);
        assert_eq!(again.remaining, 0);
        assert!(!l.check("a").allowed);
    }

    #[test]
    fn slow_rates_wait_long() {
        // 2 per minute, burst 2: after both, the next cell is 30 s away, full in 60 s.
        let (l, _clock) = limiter(2, 60, 2);
        assert!(l.check("k").allowed);
        let second = l.check("k");
        assert_eq!((second.remaining, second.reset_secs), (0, 60));
        let denied = l.check("k");
        assert_eq!((denied.retry_after_secs, denied.reset_secs), (30, 60));
    }

    #[test]
    fn keys_are_independent() {
        let (l, _clock) = limiter(1, 1, 1);
        assert!(l.check("a").allowed);
        assert!(!l.check("a").allowed);
        assert!(l.check("b").allowed);
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn evict_idle_drops_only_full_buckets() {
        let (l, clock) = limiter(10, 1, 10);
        l.check("old");
        clock.advance(Duration::from_secs(5));
        l.check("new");
        l.evict_idle();
        assert_eq!(l.len(), 1);
        // An evicted key starts again with a full bucket, as it would have anyway.
        assert_eq!(l.check("old").remaining, 9);
    }
}
