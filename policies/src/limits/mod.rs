//! Rate limits and quotas (`quotas` in the config): a GCRA rate per consumer (from `governor`)
//! and a calendar quota per consumer (counters behind `QuotaCounters`), decided together by a
//! `Limit`, which also writes the `RateLimit-Policy` / `RateLimit` headers and the 429 problem.
//!
//! Pure: the rate limiter reads governor's monotonic clock, the quota takes `now_unix` as a
//! parameter, and nothing here does I/O (persisting counters is the gateway's, through
//! `MemoryQuotaCounters::export`/`import`).

mod limit;
mod quota;
mod rate;
mod spec;
mod window;

#[cfg(test)]
mod tests;

pub use limit::{Limit, LimitDecision, LimitFields, RATELIMIT, RATELIMIT_POLICY, RETRY_AFTER};
pub use quota::{counter_key, MemoryQuotaCounters, QuotaCounters, QuotaOutcome};
pub use rate::{RateLimiter, RateOutcome};
pub use spec::{LimitError, LimitSpec, QuotaSpec, Rate};
pub use window::Window;
