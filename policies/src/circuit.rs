//! A circuit breaker per backend: consecutive failures open it, so callers stop waiting out
//! connect timeouts against a backend that is known down; after `open_for` exactly one
//! caller is let through as the half-open probe, and its outcome closes or re-opens it.
//!
//! Pure: the caller passes the time (unix milliseconds) and reports each outcome.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitSettings {
    /// Consecutive failures that open the circuit (default 5; 0 counts as 1).
    pub failure_threshold: u32,
    /// How long the circuit stays open before a half-open probe (default 10s).
    pub open_for: Duration,
}

impl Default for CircuitSettings {
    fn default() -> Self {
        CircuitSettings {
            failure_threshold: 5,
            open_for: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls are refused until `until_ms` (unix ms); then one probe is let through.
    Open { until_ms: i64 },
    /// A probe is in flight (or due): its outcome closes or re-opens the circuit.
    HalfOpen,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open {
        until_ms: i64,
    },
    /// `probe_since_ms`: when the probe was let through. A probe that never reports (its
    /// caller was dropped) does not wedge the circuit: after another `open_for`, another
    /// caller becomes the probe.
    HalfOpen {
        probe_since_ms: i64,
    },
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// Consecutive failures while closed.
    failures: u32,
}

/// Thread-safe: one per backend, shared by all requests and replays to it. The lock is held
/// for a few instructions only, never across an await.
#[derive(Debug)]
pub struct CircuitBreaker {
    settings: CircuitSettings,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    pub fn new(settings: CircuitSettings) -> Self {
        CircuitBreaker {
            settings: CircuitSettings {
                failure_threshold: settings.failure_threshold.max(1),
                open_for: settings.open_for,
            },
            inner: Mutex::new(Inner {
                phase: Phase::Closed,
                failures: 0,
            }),
        }
    }

    pub fn settings(&self) -> CircuitSettings {
        self.settings
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No code path panics while holding the lock; a poisoned lock still holds a
        // consistent state.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn open_for_ms(&self) -> i64 {
        i64::try_from(self.settings.open_for.as_millis()).unwrap_or(i64::MAX / 4)
    }

    /// May a call go to the backend now? Closed: yes. Open before its end: no. Open after
    /// its end: yes for exactly one caller, which becomes the half-open probe; no for the
    /// others until the probe reports (or, if it never does, until another `open_for`).
    pub fn allow(&self, now_ms: i64) -> bool {
        let mut inner = self.lock();
        match inner.phase {
            Phase::Closed => true,
            Phase::Open { until_ms } if now_ms >= until_ms => {
                inner.phase = Phase::HalfOpen {
                    probe_since_ms: now_ms,
                };
                true
            }
            Phase::Open { .. } => false,
            Phase::HalfOpen { probe_since_ms }
                if now_ms >= probe_since_ms.saturating_add(self.open_for_ms()) =>
            {
                inner.phase = Phase::HalfOpen {
                    probe_since_ms: now_ms,
                };
                true
            }
            Phase::HalfOpen { .. } => false,
        }
    }

    /// The backend answered: the circuit closes and the failure count resets.
    pub fn record_success(&self) {
        let mut inner = self.lock();
        inner.phase = Phase::Closed;
        inner.failures = 0;
    }

    /// The backend could not be reached. Counts while closed and opens at the threshold; a
    /// failed probe re-opens for `open_for`. A late failure of a call let through before
    /// the circuit opened changes nothing while it is open.
    pub fn record_failure(&self, now_ms: i64) {
        let open_until = now_ms.saturating_add(self.open_for_ms());
        let mut inner = self.lock();
        match inner.phase {
            Phase::Closed => {
                inner.failures = inner.failures.saturating_add(1);
                if inner.failures >= self.settings.failure_threshold {
                    inner.phase = Phase::Open {
                        until_ms: open_until,
                    };
                }
            }
            Phase::HalfOpen { .. } => {
                inner.phase = Phase::Open {
                    until_ms: open_until,
                };
            }
            Phase::Open { .. } => {}
        }
    }

    /// Opens the circuit at once (e.g. an active health check found the backend down).
    pub fn trip(&self, now_ms: i64) {
        let mut inner = self.lock();
        inner.phase = Phase::Open {
            until_ms: now_ms.saturating_add(self.open_for_ms()),
        };
    }

    /// The state as seen at `now_ms`: an open circuit whose time is up reads `HalfOpen`
    /// (the next `allow` lets a probe through). Does not change anything.
    pub fn state(&self, now_ms: i64) -> CircuitState {
        match self.lock().phase {
            Phase::Closed => CircuitState::Closed,
            Phase::Open { until_ms } if now_ms < until_ms => CircuitState::Open { until_ms },
            Phase::Open { .. } | Phase::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// Consecutive failures counted while closed.
    pub fn failures(&self) -> u32 {
        self.lock().failures
    }
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker::new(CircuitSettings::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn breaker(threshold: u32, open_ms: u64) -> CircuitBreaker {
        CircuitBreaker::new(CircuitSettings {
            failure_threshold: threshold,
            open_for: Duration::from_millis(open_ms),
        })
    }

    #[test]
    fn defaults() {
        let s = CircuitSettings::default();
        assert_eq!(s.failure_threshold, 5);
        assert_eq!(s.open_for, Duration::from_secs(10));
        assert_eq!(CircuitBreaker::default().state(0), CircuitState::Closed);
    }

    #[test]
    fn opens_after_n_consecutive_failures() {
        let b = breaker(3, 1000);
        b.record_failure(100);
        b.record_failure(200);
        assert_eq!(b.state(200), CircuitState::Closed);
        assert!(b.allow(200));
        b.record_failure(300);
        assert_eq!(b.state(300), CircuitState::Open { until_ms: 1300 });
        assert!(!b.allow(301));
    }

    #[test]
    fn a_success_in_between_resets_the_count() {
        let b = breaker(3, 1000);
        b.record_failure(100);
        b.record_failure(200);
        b.record_success();
        assert_eq!(b.failures(), 0);
        b.record_failure(300);
        b.record_failure(400);
        assert_eq!(b.state(400), CircuitState::Closed);
        b.record_failure(500);
        assert_eq!(b.state(500), CircuitState::Open { until_ms: 1500 });
    }

    #[test]
    fn refuses_while_open_then_one_probe() {
        let b = breaker(1, 1000);
        b.record_failure(0);
        for t in [0, 1, 500, 999] {
            assert!(!b.allow(t), "allowed at {t}");
        }
        assert_eq!(b.state(999), CircuitState::Open { until_ms: 1000 });
        assert_eq!(b.state(1000), CircuitState::HalfOpen);
        assert!(b.allow(1000), "the probe");
        assert!(!b.allow(1000), "a second caller while the probe is out");
        assert!(!b.allow(1500));
        assert_eq!(b.state(1500), CircuitState::HalfOpen);
    }

    #[test]
    fn probe_success_closes() {
        let b = breaker(2, 1000);
        b.record_failure(0);
        b.record_failure(0);
        assert!(b.allow(1000));
        b.record_success();
        assert_eq!(b.state(1001), CircuitState::Closed);
        assert!(b.allow(1001));
        assert!(b.allow(1001));
        // The count starts afresh: one failure does not re-open a threshold of two.
        b.record_failure(1002);
        assert_eq!(b.state(1002), CircuitState::Closed);
    }

    #[test]
    fn probe_failure_reopens_for_open_for() {
        let b = breaker(5, 1000);
        for t in 0..5 {
            b.record_failure(t);
        }
        assert!(b.allow(2000));
        b.record_failure(2100);
        assert_eq!(b.state(2100), CircuitState::Open { until_ms: 3100 });
        assert!(!b.allow(3099));
        assert!(b.allow(3100));
    }

    #[test]
    fn a_probe_that_never_reports_does_not_wedge_the_circuit() {
        let b = breaker(1, 1000);
        b.record_failure(0);
        assert!(b.allow(1000));
        assert!(!b.allow(1999));
        assert!(b.allow(2000), "another probe after open_for");
        assert!(!b.allow(2000));
    }

    #[test]
    fn late_failures_while_open_do_not_extend_it() {
        let b = breaker(1, 1000);
        b.record_failure(0);
        b.record_failure(900);
        assert_eq!(b.state(900), CircuitState::Open { until_ms: 1000 });
    }

    #[test]
    fn trip_opens_at_once() {
        let b = breaker(5, 1000);
        b.trip(50);
        assert_eq!(b.state(50), CircuitState::Open { until_ms: 1050 });
        assert!(!b.allow(60));
    }

    #[test]
    fn zero_threshold_counts_as_one() {
        let b = breaker(0, 1000);
        assert!(b.allow(0));
        b.record_failure(0);
        assert!(!b.allow(1));
    }

    #[test]
    fn concurrent_callers_get_one_probe() {
        let b = Arc::new(breaker(1, 1000));
        b.record_failure(0);
        let allowed = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (b, allowed) = (b.clone(), allowed.clone());
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        if b.allow(1500) {
                            allowed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(allowed.load(Ordering::SeqCst), 1);
    }
}
