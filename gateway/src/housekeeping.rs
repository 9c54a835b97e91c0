//! Background upkeep, as a Pingora `BackgroundService` (it gets the shutdown signal):
//! persisting quota counters, evicting idle rate-limit keys, the first JWKS fetch.

use crate::exchange::BackendClient;
use crate::jobs::store::JobStore;
use crate::state::GatewayState;
use crate::store::EmbeddedStore;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::sync::Arc;
use std::time::Duration;

/// How often changed quota counters are written: a crash loses at most this much counting.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often idle rate-limit keys are dropped, so memory stays bounded.
const EVICT_EVERY: Duration = Duration::from_secs(60);

pub struct Housekeeping {
    pub state: Arc<GatewayState>,
    pub store: Arc<EmbeddedStore>,
    pub jobs: Arc<dyn JobStore>,
}

#[async_trait]
impl BackgroundService for Housekeeping {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let snapshot = self.state.current();
        if let Some(source) = &snapshot.auth.jwks_url {
            self.state
                .jwks
                .refresh(&BackendClient::default(), source, Duration::ZERO)
                .await;
        }
        let mut flush = tokio::time::interval(FLUSH_EVERY);
        let mut evict = tokio::time::interval(EVICT_EVERY);
        let mut published = self.state.published.subscribe();
        loop {
            // With no limit configured no counter can change: wait for a reload rather than
            // wake every second to find nothing to write.
            let flushing = !self.state.current().limits.all.is_empty()
                || self.state.quota_counters.dirty_since_export();
            tokio::select! {
                _ = shutdown.changed() => {
                    // Saved in place: the runtime is about to stop and may not run a
                    // spawned blocking task any more.
                    let counters = &self.state.quota_counters;
                    if let Err(e) = self.store.save_quota_counters(&counters.export()) {
                        tracing::error!(error = %e, "cannot save quota counters at shutdown");
                    }
                    return;
                }
                _ = flush.tick(), if flushing => self.flush().await,
                // The sender lives in the state held here: `changed` cannot fail.
                _ = published.changed(), if !flushing => {}
                _ = evict.tick() => {
                    for limit in &self.state.current().limits.all {
                        limit.evict_idle();
                    }
                    self.state.quota_counters.retain_current(unix_now());
                    let retention = self.state.current().server.result_retention;
                    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX / 2);
                    let before = crate::jobs::submit::unix_ms() - retention_ms;
                    if let Err(e) = self.jobs.purge_succeeded(before).await {
                        tracing::warn!(error = %e, "cannot purge old job results");
                    }
                }
            }
        }
    }
}

impl Housekeeping {
    async fn flush(&self) {
        let counters = &self.state.quota_counters;
        if !counters.dirty_since_export() {
            return;
        }
        let rows = counters.export();
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.save_quota_counters(&rows)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot save quota counters"),
            Err(e) => tracing::error!(error = %e, "the quota save task failed"),
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
