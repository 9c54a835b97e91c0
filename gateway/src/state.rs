//! What the data plane, the admin API and the reloader share.

use crate::health::BackendHealth;
use crate::jobs::alerts::Alerts;
use crate::jobs::idempotency::KeysInProgress;
use crate::jwks::JwksCache;
use crate::metrics::Metrics;
use crate::snapshot::Snapshot;
use arc_swap::ArcSwap;
use propylon_policies::limits::MemoryQuotaCounters;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct GatewayState {
    snapshot: ArcSwap<Snapshot>,
    last_reload_error: Mutex<Option<String>>,
    /// Set once the reloader listens for SIGHUP and file changes; health reports it.
    reloader_ready: AtomicBool,
    pub config_path: PathBuf,
    pub metrics: Metrics,
    /// Keys fetched from `auth.jwt.jwks_url`; kept across reloads.
    pub jwks: JwksCache,
    /// Quota counters, persisted by the embedded store; kept across reloads.
    pub quota_counters: Arc<MemoryQuotaCounters>,
    /// Woken when a job is stored, so the worker need not wait for its next poll.
    pub jobs_due: tokio::sync::Notify,
    /// Changes with every published snapshot: what sleeps while the config asks nothing of it
    /// (the health checker with no check, housekeeping's flush with no limit) waits on it.
    pub published: tokio::sync::watch::Sender<u64>,
    pub alerts: Alerts,
    pub idempotency: KeysInProgress,
    /// Circuit breakers, health checks and maintenance windows per backend; kept across reloads.
    pub backend_health: Arc<BackendHealth>,
}

impl GatewayState {
    pub fn new(config_path: PathBuf, snapshot: Snapshot, metrics: Metrics, alerts: Alerts) -> Self {
        let snapshot_version = snapshot.version;
        metrics
            .config_version
            .set(i64::try_from(snapshot.version).unwrap_or(i64::MAX));
        GatewayState {
            snapshot: ArcSwap::from_pointee(snapshot),
            last_reload_error: Mutex::new(None),
            reloader_ready: AtomicBool::new(false),
            config_path,
            metrics,
            jwks: JwksCache::default(),
            quota_counters: Arc::new(MemoryQuotaCounters::new()),
            jobs_due: tokio::sync::Notify::new(),
            published: tokio::sync::watch::Sender::new(snapshot_version),
            alerts,
            idempotency: KeysInProgress::default(),
            backend_health: Arc::new(BackendHealth::new()),
        }
    }

    /// The snapshot a request holds from start to end.
    pub fn current(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Swaps in a fully compiled snapshot; cannot fail and is never partial.
    pub fn publish(&self, snapshot: Snapshot) {
        self.metrics
            .config_version
            .set(i64::try_from(snapshot.version).unwrap_or(i64::MAX));
        let version = snapshot.version;
        self.snapshot.store(Arc::new(snapshot));
        self.published.send_replace(version);
        self.set_last_reload_error(None);
    }

    pub fn last_reload_error(&self) -> Option<String> {
        self.last_reload_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or(None)
    }

    pub fn set_last_reload_error(&self, error: Option<String>) {
        if let Ok(mut slot) = self.last_reload_error.lock() {
            *slot = error;
        }
    }

    pub fn reloader_ready(&self) -> bool {
        self.reloader_ready.load(Ordering::Acquire)
    }

    pub fn set_reloader_ready(&self) {
        self.reloader_ready.store(true, Ordering::Release);
    }
}
