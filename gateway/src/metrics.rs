//! Prometheus metrics, in a registry of our own (served on the admin listener's `/metrics`).

use crate::jobs::store::JobCounts;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub upstream_errors: IntCounterVec,
    pub reloads: IntCounterVec,
    pub config_version: IntGauge,
    pub jobs: IntCounterVec,
    pub job_queue: IntGaugeVec,
    pub oldest_due_seconds: prometheus::Gauge,
    pub replay_duration: prometheus::Histogram,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "propylon_requests_total",
                "Requests answered, by API, operation and status.",
            ),
            &["api", "operation", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "propylon_request_duration_seconds",
                "Time from request to the end of the answer.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ]),
            &["api", "operation"],
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "propylon_upstream_errors_total",
                "Failed upstream calls, by backend and kind.",
            ),
            &["backend", "kind"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "propylon_config_reloads_total",
                "Config reloads, by result.",
            ),
            &["result"],
        )?;
        let config_version = IntGauge::new(
            "propylon_config_version",
            "Version of the config being served.",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(config_version.clone()))?;
        let jobs = IntCounterVec::new(
            Opts::new(
                "propylon_jobs_total",
                "Jobs by operation and event: created, succeeded, dead.",
            ),
            &["operation", "event"],
        )?;
        let job_queue = IntGaugeVec::new(
            Opts::new("propylon_jobs", "Jobs in the store, by status."),
            &["status"],
        )?;
        let oldest_due_seconds = prometheus::Gauge::new(
            "propylon_jobs_oldest_due_seconds",
            "Age of the oldest job waiting for a replay.",
        )?;
        let replay_duration = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "propylon_job_replay_duration_seconds",
                "Time of one replay attempt.",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0]),
        )?;
        registry.register(Box::new(jobs.clone()))?;
        registry.register(Box::new(job_queue.clone()))?;
        registry.register(Box::new(oldest_due_seconds.clone()))?;
        registry.register(Box::new(replay_duration.clone()))?;
        // Both results show from the start, so a dashboard can alert on `failure` increasing.
        reloads.with_label_values(&["success"]);
        reloads.with_label_values(&["failure"]);
        Ok(Metrics {
            registry,
            requests,
            duration,
            upstream_errors,
            reloads,
            config_version,
            jobs,
            job_queue,
            oldest_due_seconds,
            replay_duration,
        })
    }

    /// The job store's counts as the `propylon_jobs{status}` and oldest-due gauges.
    pub fn set_job_counts(&self, counts: &JobCounts, now_ms: i64) {
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for (status, n) in [
            ("queued", counts.queued),
            ("in_flight", counts.in_flight),
            ("succeeded", counts.succeeded),
            ("dead", counts.dead),
        ] {
            self.job_queue.with_label_values(&[status]).set(as_i64(n));
        }
        let age = counts
            .oldest_due
            .map_or(0.0, |due| (now_ms - due).max(0) as f64 / 1000.0);
        self.oldest_due_seconds.set(age);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let families = self.registry.gather();
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// An operation's request counter (per status) and duration histogram, looked up once
/// instead of by label values (a hash and a lock) on every request.
#[derive(Default)]
pub struct RouteMetrics {
    duration: std::sync::OnceLock<prometheus::Histogram>,
    by_status: std::sync::Mutex<Vec<(u16, prometheus::IntCounter)>>,
}

impl RouteMetrics {
    /// Counts one request of `api`/`operation` answered `status` that took `seconds`.
    pub fn observe(&self, all: &Metrics, labels: [&str; 2], status: u16, seconds: f64) {
        self.duration
            .get_or_init(|| all.duration.with_label_values(&labels))
            .observe(seconds);
        let Ok(mut by_status) = self.by_status.lock() else {
            return;
        };
        match by_status.iter().find(|(s, _)| *s == status) {
            Some((_, counter)) => counter.inc(),
            None => {
                let counter = with_status_label(status, |label| {
                    all.requests
                        .with_label_values(&[labels[0], labels[1], label])
                });
                counter.inc();
                by_status.push((status, counter));
            }
        }
    }
}

/// Calls `f` with the `status` label of a request: the three digits, `0` when no answer was
/// written (borrowed from `http`'s table, no string made).
pub fn with_status_label<R>(status: u16, f: impl FnOnce(&str) -> R) -> R {
    let code = http::StatusCode::from_u16(status).ok();
    f(code.as_ref().map_or("0", http::StatusCode::as_str))
}
