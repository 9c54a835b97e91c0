//! Is a backend known down? Three sources, in this order: its `maintenance` windows (from the
//! snapshot), its active health check (`health: { path, interval }`, run by
//! [`HealthChecker`]), and its circuit breaker (consecutive failures of live calls and
//! replays). While a backend is known down, `async: fallback` calls become jobs at once and
//! the worker leaves its jobs queued, instead of waiting out a connect timeout per call.
//!
//! [`BackendHealth`] lives in `GatewayState`, so circuits and health verdicts survive reloads;
//! entries are keyed by backend name and created on first use.

// Until the proxy, the worker and the server use this module (see the wiring notes of issue 5).

use crate::exchange::BackendClient;
use crate::snapshot::{Backend, Snapshot};
use crate::state::GatewayState;
use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use pingora_http::RequestHeader;
use propylon_policies::circuit::{CircuitBreaker, CircuitSettings, CircuitState};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::task::JoinSet;

/// Why a backend is not called now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Down {
    /// Too many consecutive failures; no probe is due (or one is already out).
    Circuit,
    /// The last active health check failed.
    HealthCheck,
    /// Inside one of the backend's `maintenance` windows.
    Maintenance,
}

impl Down {
    /// A stable label, for logs, metrics and a job's `last_error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Down::Circuit => "circuit_open",
            Down::HealthCheck => "health_check_failed",
            Down::Maintenance => "maintenance",
        }
    }

    /// A sentence for a job's `last_error` or a log line.
    pub fn describe(self, backend: &str) -> String {
        match self {
            Down::Circuit => format!("backend `{backend}` is failing (circuit open)"),
            Down::HealthCheck => format!("backend `{backend}` fails its health check"),
            Down::Maintenance => format!("backend `{backend}` is in a maintenance window"),
        }
    }
}

struct Entry {
    circuit: CircuitBreaker,
    /// The last active health check failed.
    check_down: AtomicBool,
}

/// One entry per backend name: its circuit breaker and its health-check verdict.
pub struct BackendHealth {
    settings: CircuitSettings,
    entries: RwLock<HashMap<String, Arc<Entry>>>,
}

impl Default for BackendHealth {
    fn default() -> Self {
        BackendHealth::new()
    }
}

impl BackendHealth {
    /// Circuits open after 5 consecutive failures, for 10 s before a probe.
    pub fn new() -> Self {
        BackendHealth::with_settings(CircuitSettings::default())
    }

    pub fn with_settings(settings: CircuitSettings) -> Self {
        BackendHealth {
            settings,
            entries: RwLock::new(HashMap::new()),
        }
    }

    fn entry(&self, name: &str) -> Arc<Entry> {
        if let Some(entry) = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
        {
            return entry.clone();
        }
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(Entry {
                    circuit: CircuitBreaker::new(self.settings),
                    check_down: AtomicBool::new(false),
                })
            })
            .clone()
    }

    /// Is `backend` known down at `now_ms` (unix ms)? Maintenance first, then the health
    /// check, then the circuit. `None` means "call it" — and when the circuit was open and
    /// its time is up, this caller is the one half-open probe, so every `None` must be
    /// followed by the call and a [`record`](Self::record) of its outcome.
    pub fn down(&self, backend: &Backend, now_ms: i64) -> Option<Down> {
        let now_secs = now_ms.div_euclid(1000);
        if backend.maintenance.iter().any(|w| w.contains(now_secs)) {
            return Some(Down::Maintenance);
        }
        let entry = self.entry(&backend.name);
        // A verdict of a check that a reload removed since is not honoured.
        if backend.health.is_some() && entry.check_down.load(Ordering::Acquire) {
            return Some(Down::HealthCheck);
        }
        if !entry.circuit.allow(now_ms) {
            return Some(Down::Circuit);
        }
        None
    }

    /// The outcome of a call to `backend_name`: `ok` when it answered (see the wiring notes:
    /// a "try later" status counts as a failure), `false` when it could not be reached.
    pub fn record(&self, backend_name: &str, ok: bool, now_ms: i64) {
        let entry = self.entry(backend_name);
        if ok {
            let was = entry.circuit.state(now_ms);
            entry.circuit.record_success();
            if was != CircuitState::Closed {
                tracing::info!(
                    backend = backend_name,
                    "backend answers again: circuit closed"
                );
            }
        } else {
            let was = entry.circuit.state(now_ms);
            entry.circuit.record_failure(now_ms);
            let now_open = matches!(entry.circuit.state(now_ms), CircuitState::Open { .. });
            if was == CircuitState::HalfOpen && now_open {
                tracing::debug!(backend = backend_name, "probe failed: circuit open again");
            } else if was == CircuitState::Closed && now_open {
                tracing::warn!(
                    backend = backend_name,
                    open_for_ms = u64::try_from(self.settings.open_for.as_millis()).unwrap_or(u64::MAX),
                    "backend failing: circuit open, calls are refused (fallback operations queue at once)"
                );
            }
        }
    }

    /// When it is worth looking at a backend that `down` reported as down again (unix ms):
    /// the end of its maintenance window(s), the end of its circuit's open time, or its next
    /// health check. The worker reschedules a job there without spending an attempt.
    pub fn retry_at(&self, backend: &Backend, down: Down, now_ms: i64) -> i64 {
        match down {
            Down::Maintenance => {
                // Windows may overlap or follow each other: walk to the end of the last one
                // (a bounded walk: windows may also cover every hour of the week).
                let mut at = now_ms.div_euclid(1000);
                for _ in 0..16 {
                    let Some(left) = backend
                        .maintenance
                        .iter()
                        .filter_map(|w| w.ends_after(at))
                        .max()
                    else {
                        break;
                    };
                    at += left;
                }
                (at * 1000).max(now_ms + 1000)
            }
            Down::HealthCheck => {
                let interval = backend
                    .health
                    .as_ref()
                    .map_or(Duration::from_secs(10), |h| h.interval);
                now_ms + i64::try_from(interval.as_millis()).unwrap_or(10_000)
            }
            Down::Circuit => match self.entry(&backend.name).circuit.state(now_ms) {
                CircuitState::Open { until_ms } => until_ms,
                CircuitState::Closed | CircuitState::HalfOpen => {
                    now_ms + i64::try_from(self.settings.open_for.as_millis()).unwrap_or(10_000)
                }
            },
        }
    }

    /// The health check's verdict; logs a transition. `true`: up.
    fn set_checked(&self, backend: &str, up: bool, detail: &str, now_ms: i64) {
        let entry = self.entry(backend);
        let was_down = entry.check_down.swap(!up, Ordering::AcqRel);
        if up {
            if was_down {
                tracing::info!(backend, "health check passes again: backend up");
            }
            // A live answer: it also closes a circuit opened by failed calls.
            self.record(backend, true, now_ms);
        } else if !was_down {
            tracing::warn!(
                backend,
                error = detail,
                "health check failed: backend down, fallback operations queue at once"
            );
        }
    }

    /// `{name: {circuit, failures, health_check}}` for `/admin/health`.
    pub fn report(&self, now_ms: i64) -> serde_json::Value {
        let entries = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = serde_json::Map::new();
        for (name, entry) in entries.iter() {
            let circuit = match entry.circuit.state(now_ms) {
                CircuitState::Closed => "closed",
                CircuitState::Open { .. } => "open",
                CircuitState::HalfOpen => "half_open",
            };
            out.insert(
                name.clone(),
                serde_json::json!({
                    "circuit": circuit,
                    "failures": entry.circuit.failures(),
                    "health_check": if entry.check_down.load(Ordering::Acquire) { "down" } else { "up" },
                }),
            );
        }
        serde_json::Value::Object(out)
    }
}

/// How often the checker looks for due checks.
const TICK: Duration = Duration::from_secs(1);
/// A health answer larger than this counts as a failure.
const MAX_HEALTH_ANSWER: usize = 64 * 1024;

/// Runs every backend's `health` check on its interval, as a Pingora background service.
/// Checks run concurrently, at most one per backend at a time; a check that takes longer than
/// its interval fails.
pub struct HealthChecker {
    pub state: Arc<GatewayState>,
    pub health: Arc<BackendHealth>,
    pub client: Arc<BackendClient>,
}

#[async_trait]
impl BackgroundService for HealthChecker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // When each backend's last check started, in tick time: checks stay on the interval.
        let mut last_started: HashMap<String, tokio::time::Instant> = HashMap::new();
        // Checks in flight: task id → backend name.
        let mut in_flight: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut checks: JoinSet<Result<(), String>> = JoinSet::new();
        let mut published = self.state.published.subscribe();
        loop {
            // With no check configured and none running, wait for a reload, not a tick: an
            // idle gateway should not wake every second for nothing.
            let asleep = checks.is_empty() && checked_backends(&self.state.current()).is_empty();
            tokio::select! {
                _ = shutdown.changed() => {
                    checks.abort_all();
                    return;
                }
                Some(done) = checks.join_next_with_id(), if !checks.is_empty() => {
                    let now = crate::jobs::submit::unix_ms();
                    match done {
                        Ok((id, result)) => {
                            let Some(name) = in_flight.remove(&id) else { continue };
                            match result {
                                Ok(()) => self.health.set_checked(&name, true, "", now),
                                Err(e) => self.health.set_checked(&name, false, &e, now),
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "a health check task failed");
                            in_flight.remove(&e.id());
                        }
                    }
                }
                // The sender lives in the state this checker holds: `changed` cannot fail.
                _ = published.changed(), if asleep => {}
                at = tick.tick(), if !asleep => {
                    let snapshot = self.state.current();
                    let backends = checked_backends(&snapshot);
                    last_started.retain(|name, _| backends.iter().any(|b| &b.name == name));
                    for backend in backends {
                        let Some(check) = &backend.health else { continue };
                        if in_flight.values().any(|n| n == &backend.name)
                            || last_started
                                .get(&backend.name)
                                .is_some_and(|t| at.duration_since(*t) < check.interval)
                        {
                            continue;
                        }
                        last_started.insert(backend.name.clone(), at);
                        let client = self.client.clone();
                        let name = backend.name.clone();
                        let task = checks.spawn(async move { check_once(&client, &backend).await });
                        in_flight.insert(task.id(), name);
                    }
                }
            }
        }
    }
}

/// The backends of the snapshot that have a `health` check, once each.
fn checked_backends(snapshot: &Snapshot) -> Vec<Arc<Backend>> {
    let mut seen = HashSet::new();
    snapshot
        .operations
        .values()
        .map(|route| &route.backend)
        .filter(|b| b.health.is_some() && seen.insert(b.name.clone()))
        .cloned()
        .collect()
}

/// One `GET health.path`: a 2xx or 3xx answer within the interval is up.
async fn check_once(client: &BackendClient, backend: &Backend) -> Result<(), String> {
    let Some(check) = &backend.health else {
        return Ok(());
    };
    let mut header = RequestHeader::build("GET", check.path.as_bytes(), None)
        .map_err(|e| format!("cannot build the request: {e}"))?;
    header
        .insert_header(http::header::HOST, backend.authority.clone())
        .and_then(|()| header.insert_header(http::header::USER_AGENT, "propylon-health-check"))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let call = client.call(&backend.peer, header, Bytes::new(), MAX_HEALTH_ANSWER);
    match tokio::time::timeout(check.interval, call).await {
        Err(_) => Err(format!(
            "no answer within {}",
            humantime::format_duration(check.interval)
        )),
        Ok(Err(e)) => Err(format!("{} ({})", e.etype().as_str(), e)),
        Ok(Ok(answer)) if answer.header.status.as_u16() < 400 => Ok(()),
        Ok(Ok(answer)) => Err(format!("answered {}", answer.header.status.as_u16())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::snapshot::HealthCheck;
    use http::HeaderValue;
    use pingora_core::upstreams::peer::HttpPeer;
    use propylon_policies::maintenance::MaintenanceWindow;

    /// 2024-01-07 was a Sunday; its midnight UTC in unix ms.
    const SUN_MS: i64 = 1_704_585_600_000;
    const HOUR_MS: i64 = 3_600_000;

    fn backend(name: &str, maintenance: &[&str], health: bool) -> Backend {
        Backend {
            name: name.into(),
            peer: HttpPeer::new("127.0.0.1:1", false, String::new()),
            authority: HeaderValue::from_static("127.0.0.1:1"),
            xml: None,
            base_path: String::new(),
            maintenance: maintenance
                .iter()
                .map(|w| MaintenanceWindow::parse(w).unwrap())
                .collect(),
            health: health.then(|| HealthCheck {
                path: "/ping".into(),
                interval: Duration::from_secs(5),
            }),
            replay: crate::snapshot::ReplayPacing {
                concurrency: 8,
                rate: None,
            },
        }
    }

    fn registry() -> BackendHealth {
        BackendHealth::with_settings(CircuitSettings {
            failure_threshold: 3,
            open_for: Duration::from_secs(10),
        })
    }

    #[test]
    fn down_labels() {
        assert_eq!(Down::Circuit.as_str(), "circuit_open");
        assert_eq!(Down::HealthCheck.as_str(), "health_check_failed");
        assert_eq!(Down::Maintenance.as_str(), "maintenance");
        assert!(Down::Maintenance.describe("crm").contains("`crm`"));
    }

    #[test]
    fn a_new_backend_is_up() {
        let health = registry();
        assert_eq!(health.down(&backend("crm", &[], true), SUN_MS), None);
    }

    #[test]
    fn circuit_opens_after_consecutive_failures_and_probes() {
        let health = registry();
        let crm = backend("crm", &[], false);
        let t = SUN_MS;
        for i in 0..3 {
            assert_eq!(health.down(&crm, t + i), None);
            health.record("crm", false, t + i);
        }
        assert_eq!(health.down(&crm, t + 10), Some(Down::Circuit));
        // Another backend is not affected.
        assert_eq!(health.down(&backend("erp", &[], false), t + 10), None);
        // After open_for: one probe, the others still refused.
        let later = t + 2 + 10_000;
        assert_eq!(health.down(&crm, later), None);
        assert_eq!(health.down(&crm, later), Some(Down::Circuit));
        health.record("crm", true, later + 5);
        assert_eq!(health.down(&crm, later + 6), None);
        assert_eq!(health.down(&crm, later + 6), None);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let health = registry();
        let crm = backend("crm", &[], false);
        health.record("crm", false, SUN_MS);
        health.record("crm", false, SUN_MS);
        health.record("crm", true, SUN_MS);
        health.record("crm", false, SUN_MS);
        health.record("crm", false, SUN_MS);
        assert_eq!(health.down(&crm, SUN_MS), None);
    }

    #[test]
    fn maintenance_beats_everything() {
        let health = registry();
        let crm = backend("crm", &["Sun 00:00-01:00 UTC"], true);
        for _ in 0..3 {
            health.record("crm", false, SUN_MS);
        }
        health.set_checked("crm", false, "refused", SUN_MS);
        assert_eq!(health.down(&crm, SUN_MS + 6), Some(Down::Maintenance));
        // Without the window the health check comes next, then the circuit.
        let checked = backend("crm", &[], true);
        assert_eq!(health.down(&checked, SUN_MS + 6), Some(Down::HealthCheck));
        let unchecked = backend("crm", &[], false);
        assert_eq!(health.down(&unchecked, SUN_MS + 6), Some(Down::Circuit));
        assert_eq!(
            health.retry_at(&crm, Down::Maintenance, SUN_MS + 6),
            SUN_MS + HOUR_MS
        );
        // Maintenance alone, on a healthy backend, only while the window lasts.
        let other = backend("erp", &["Sun 00:00-01:00 UTC"], false);
        assert_eq!(
            health.down(&other, SUN_MS + HOUR_MS - 1),
            Some(Down::Maintenance)
        );
        assert_eq!(health.down(&other, SUN_MS + HOUR_MS), None);
    }

    #[test]
    fn a_passing_health_check_closes_the_circuit() {
        let health = registry();
        let crm = backend("crm", &[], true);
        for _ in 0..3 {
            health.record("crm", false, SUN_MS);
        }
        health.set_checked("crm", false, "refused", SUN_MS);
        assert_eq!(health.down(&crm, SUN_MS + 1), Some(Down::HealthCheck));
        health.set_checked("crm", true, "", SUN_MS + 2);
        assert_eq!(health.down(&crm, SUN_MS + 3), None);
        assert_eq!(health.down(&crm, SUN_MS + 3), None, "closed, not half-open");
    }

    #[test]
    fn a_check_verdict_is_ignored_once_the_check_is_removed() {
        let health = registry();
        health.set_checked("crm", false, "refused", SUN_MS);
        assert_eq!(health.down(&backend("crm", &[], false), SUN_MS), None);
    }

    #[test]
    fn retry_at() {
        let health = registry();
        let crm = backend("crm", &["Sun 02:00-04:00", "Sun 03:30-05:00"], true);
        let inside = SUN_MS + 3 * HOUR_MS;
        assert_eq!(
            health.retry_at(&crm, Down::Maintenance, inside),
            SUN_MS + 5 * HOUR_MS
        );
        assert_eq!(
            health.retry_at(&crm, Down::HealthCheck, SUN_MS),
            SUN_MS + 5_000
        );
        for _ in 0..3 {
            health.record("crm", false, SUN_MS);
        }
        assert_eq!(
            health.retry_at(&crm, Down::Circuit, SUN_MS + 1),
            SUN_MS + 10_000
        );
    }

    #[test]
    fn report_lists_circuits() {
        let health = registry();
        for _ in 0..3 {
            health.record("crm", false, SUN_MS);
        }
        health.record("erp", true, SUN_MS);
        let report = health.report(SUN_MS);
        assert_eq!(report["crm"]["circuit"], "open");
        assert_eq!(report["erp"]["circuit"], "closed");
        assert_eq!(report["erp"]["health_check"], "up");
    }

    fn peer_backend(addr: std::net::SocketAddr, path: &str) -> Backend {
        let mut b = backend("crm", &[], true);
        b.peer = HttpPeer::new(addr, false, String::new());
        b.authority = HeaderValue::from_str(&addr.to_string()).unwrap();
        b.health = Some(HealthCheck {
            path: path.into(),
            interval: Duration::from_secs(2),
        });
        b
    }

    #[tokio::test]
    async fn check_once_reads_the_status() {
        use axum::routing::get;
        let app = axum::Router::new()
            .route("/ping", get(|| async { "pong" }))
            .route("/moved", get(|| async { (http::StatusCode::FOUND, "") }))
            .route(
                "/sick",
                get(|| async { (http::StatusCode::SERVICE_UNAVAILABLE, "") }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    ""
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let client = BackendClient::default();
        assert_eq!(
            check_once(&client, &peer_backend(addr, "/ping")).await,
            Ok(())
        );
        assert_eq!(
            check_once(&client, &peer_backend(addr, "/moved")).await,
            Ok(())
        );
        let sick = check_once(&client, &peer_backend(addr, "/sick")).await;
        assert!(sick.unwrap_err().contains("503"));
        let slow = check_once(&client, &peer_backend(addr, "/slow")).await;
        assert!(slow.unwrap_err().contains("no answer within 2s"));
        server.abort();
        // Nobody listens any more (a port of our own that we closed).
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gone = closed.local_addr().unwrap();
        drop(closed);
        assert!(check_once(&client, &peer_backend(gone, "/ping"))
            .await
            .is_err());
    }

    #[test]
    fn maintenance_all_week_still_gives_a_time() {
        let health = registry();
        let crm = backend("crm", &["00:00-24:00"], false);
        let at = health.retry_at(&crm, Down::Maintenance, SUN_MS);
        assert!(at > SUN_MS);
    }
}
