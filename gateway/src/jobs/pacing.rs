//! Per-backend replay pacing (`replay: { concurrency, rate }`), so a backend that just came
//! back is not flooded by its backlog.

use crate::snapshot::ReplayPacing;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

struct Pace {
    settings: ReplayPacing,
    permits: Arc<Semaphore>,
    limiter: Option<DefaultDirectRateLimiter>,
}

#[derive(Default)]
pub struct ReplayPaces {
    paces: Mutex<HashMap<String, Arc<Pace>>>,
}

impl ReplayPaces {
    /// Waits for a free replay slot of `backend` and for its rate, then holds the slot.
    pub async fn enter(
        &self,
        backend: &str,
        settings: ReplayPacing,
    ) -> Option<OwnedSemaphorePermit> {
        let pace = self.pace(backend, settings)?;
        let permit = pace.permits.clone().acquire_owned().await.ok()?;
        if let Some(limiter) = &pace.limiter {
            limiter.until_ready().await;
        }
        Some(permit)
    }

    /// The pace of `backend`, made again when a reload changed its settings.
    fn pace(&self, backend: &str, settings: ReplayPacing) -> Option<Arc<Pace>> {
        let mut paces = self.paces.lock().ok()?;
        if let Some(pace) = paces.get(backend).filter(|p| p.settings == settings) {
            return Some(pace.clone());
        }
        let limiter = settings.rate.and_then(|rate| {
            NonZeroU32::new(rate.count)?;
            let period = Duration::from_secs(u64::from(rate.per_secs)) / rate.count;
            // No burst: a backlog is spread evenly over time.
            Quota::with_period(period).map(|q| RateLimiter::direct(q.allow_burst(NonZeroU32::MIN)))
        });
        let pace = Arc::new(Pace {
            settings,
            permits: Arc::new(Semaphore::new(settings.concurrency)),
            limiter,
        });
        paces.insert(backend.to_string(), pace.clone());
        Some(pace)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use propylon_policies::limits::Rate;
    use std::time::Instant;

    #[tokio::test]
    async fn concurrency_is_bounded_per_backend() {
        let paces = ReplayPaces::default();
        let settings = ReplayPacing {
            concurrency: 2,
            rate: None,
        };
        let a = paces.enter("erp", settings).await.unwrap();
        let _b = paces.enter("erp", settings).await.unwrap();
        // A third waits for a slot; another backend does not.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), paces.enter("erp", settings))
                .await
                .is_err()
        );
        assert!(paces.enter("crm", settings).await.is_some());
        drop(a);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), paces.enter("erp", settings))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn the_rate_spaces_replays_out() {
        let paces = ReplayPaces::default();
        let settings = ReplayPacing {
            concurrency: 100,
            rate: Some(Rate {
                count: 20,
                per_secs: 1,
            }),
        };
        let started = Instant::now();
        let mut held = Vec::new();
        for _ in 0..6 {
            held.push(paces.enter("erp", settings).await.unwrap());
        }
        // 20/s with no burst: six replays take at least five periods of 50 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(240),
            "{:?}",
            started.elapsed()
        );
    }
}
