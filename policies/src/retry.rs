//! When a replayed job succeeded, should be tried again (and when), or is dead — Azure
//! Service Bus semantics: a delivery count against a maximum, a reason when it dead-letters.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Backend statuses that mean "try again later" (besides 408 and 429).
    pub retry_statuses: Vec<u16>,
}

/// What one delivery attempt ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The backend answered with this status.
    Answered(u16),
    /// The backend could not be reached or did not answer in time.
    Unreachable,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReplayDecision {
    Succeeded,
    /// Try again after this delay.
    RetryIn(Duration),
    /// Give up: the job is dead, for this reason.
    Dead(String),
}

impl RetryPolicy {
    /// `attempts` counts this attempt (1 for the first delivery). `jitter` in [0, 1) spreads
    /// retries of many jobs so a backend that comes back is not hit by all at once.
    pub fn decide(&self, attempt: Attempt, attempts: u32, jitter: f64) -> ReplayDecision {
        let retryable = match attempt {
            Attempt::Answered(status) if status < 400 => return ReplayDecision::Succeeded,
            Attempt::Answered(status) => {
                status == 408 || status == 429 || self.retry_statuses.contains(&status)
            }
            Attempt::Unreachable => true,
        };
        let what = match attempt {
            Attempt::Answered(status) => format!("the backend answered {status}"),
            Attempt::Unreachable => "the backend was unreachable".to_string(),
        };
        if !retryable {
            return ReplayDecision::Dead(format!("{what}, a final answer"));
        }
        if attempts >= self.max_attempts {
            return ReplayDecision::Dead(format!(
                "{what} on attempt {attempts} of {}",
                self.max_attempts
            ));
        }
        ReplayDecision::RetryIn(self.delay(attempts, jitter))
    }

    /// Exponential backoff, capped, with "equal jitter": between half and all of the step.
    pub fn delay(&self, attempts: u32, jitter: f64) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(31));
        let step = self.backoff.saturating_mul(factor).min(self.max_backoff);
        step.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5),
            retry_statuses: vec![502, 503, 504],
        }
    }

    #[test]
    fn success_and_final_answers() {
        assert_eq!(
            policy().decide(Attempt::Answered(201), 1, 0.0),
            ReplayDecision::Succeeded
        );
        let dead = policy().decide(Attempt::Answered(404), 1, 0.0);
        assert_eq!(
            dead,
            ReplayDecision::Dead("the backend answered 404, a final answer".into())
        );
        assert!(matches!(
            policy().decide(Attempt::Answered(500), 1, 0.0),
            ReplayDecision::Dead(_)
        ));
    }

    #[test]
    fn retryable_until_the_last_attempt() {
        for attempt in [
            Attempt::Unreachable,
            Attempt::Answered(503),
            Attempt::Answered(429),
            Attempt::Answered(408),
        ] {
            assert!(
                matches!(policy().decide(attempt, 3, 0.0), ReplayDecision::RetryIn(_)),
                "{attempt:?}"
            );
            assert!(
                matches!(policy().decide(attempt, 4, 0.0), ReplayDecision::Dead(_)),
                "{attempt:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let p = policy();
        assert_eq!(p.delay(1, 1.0), Duration::from_secs(1));
        assert_eq!(p.delay(2, 1.0), Duration::from_secs(2));
        assert_eq!(p.delay(3, 1.0), Duration::from_secs(4));
        assert_eq!(p.delay(4, 1.0), Duration::from_secs(5));
        assert_eq!(p.delay(40, 1.0), Duration::from_secs(5));
        assert_eq!(p.delay(2, 0.0), Duration::from_secs(1));
    }
}
