//! Backend health, end to end: maintenance windows (queue at once without touching the
//! backend, jobs wait, a reload that ends the window delivers them), the circuit breaker
//! (5 consecutive failures open it for 10 s, ONE half-open probe, its failure re-opens and
//! its success closes it) and active health checks (`health: { path, interval }`), with
//! `/admin/health` showing each backend's circuit and check state.

mod common;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;
use serde_json::{json, Value};

use common::*;

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// The facade: one operation, an API key needed.
const SPEC: &str = r#"openapi: 3.0.3
info:
  title: Health
  version: "1.0"
components:
  securitySchemes:
    apiKey:
      type: apiKey
      in: header
      name: X-API-Key
security:
  - apiKey: []
paths:
  /orders:
    post:
      operationId: createOrder
      requestBody:
        content:
          application/json:
            schema: { type: object }
      responses:
        "200": { description: created }
"#;

/// `@APP@` backend URL, `@BACKEND_EXTRA@` more settings of the backend (health,
/// maintenance; indented lines), `@RETRY@` the retry policy of `createOrder`.
const CONFIG_TEMPLATE: &str = r#"server:
  listen: "{{LISTEN}}"
  admin_listen: "{{ADMIN}}"
  admin_token: "{{TOKEN}}"
auth:
  api_keys:
    - { consumer: erp-batch, key_sha256: @KEYSHA@ }
backends:
  app:
    url: "@APP@"
    timeout: 2s
@BACKEND_EXTRA@
apis:
  - name: health
    spec: ./health.yaml
    operations:
      createOrder:
        backend: app
        request:
          path: /erp/orders
        response:
          body:
            order: "$.body.OrderNo"
            source: propylon
        async: fallback
        retry: @RETRY@
"#;

/// The operation's path at the backend.
const OP_PATH: &str = "/erp/orders";

/// Short backoffs, many attempts: jobs keep retrying for the whole test.
const RETRY_PATIENT: &str = "{ max_attempts: 1000, backoff: 100ms, max_backoff: 200ms }";

fn config(app_url: &str, backend_extra: &str) -> String {
    CONFIG_TEMPLATE
        .replace("@APP@", app_url)
        .replace("@BACKEND_EXTRA@", backend_extra)
        .replace("@RETRY@", RETRY_PATIENT)
        .replace("@KEYSHA@", API_KEY_SHA256)
}

fn start_gateway(app_url: &str, backend_extra: &str) -> Gateway {
    Gateway::start_with_files(&config(app_url, backend_extra), &[("health.yaml", SPEC)])
}

/// The mapped answer of `createOrder` for the backend's `{"OrderNo": "A-77", …}`.
fn mapped_order() -> Value {
    json!({ "order": "A-77", "source": "propylon" })
}

/// A `maintenance:` line covering the whole day, every day: always inside.
const ALWAYS_IN_MAINTENANCE: &str = "    maintenance: [\"Daily 00:00-24:00 UTC\"]";

/// A daily one-hour window that starts 12 hours from now: outside it for the whole test.
fn maintenance_far_from_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let start_min = (now % 86_400 / 60 + 12 * 60) % (24 * 60);
    let end_min = (start_min + 60) % (24 * 60);
    format!(
        "    maintenance: [\"{:02}:{:02}-{:02}:{:02} UTC\"]",
        start_min / 60,
        start_min % 60,
        end_min / 60,
        end_min % 60
    )
}

// ---------------------------------------------------------------------------------------
// Client helpers
// ---------------------------------------------------------------------------------------

/// `POST /orders` as consumer erp-batch; also how long the gateway took to answer.
fn post_order(gw: &Gateway, body: &Value) -> (Resp, Duration) {
    let started = Instant::now();
    let resp = gw.request(
        "POST",
        "/orders",
        &[("content-type", "application/json"), ("x-api-key", API_KEY)],
        Some(body.to_string().as_bytes()),
    );
    (resp, started.elapsed())
}

/// Asserts a live 200 with the mapped order (the backend was called directly).
fn assert_live_order(resp: &Resp, what: &str) {
    assert_eq!(
        resp.status,
        200,
        "{what}: expected a live 200, got {} with body {}",
        resp.status,
        resp.text()
    );
    assert_eq!(resp.json(), mapped_order(), "{what}: the mapped answer");
}

/// Asserts that the job waits without having spent an attempt, and that its `last_error`
/// contains `reason` (case-insensitive).
fn assert_waiting(job: &Value, reason: &str) {
    assert!(
        job["status"] == "queued" || job["status"] == "in_flight",
        "the job waits: {job}"
    );
    assert_eq!(
        job["attempts"], 0,
        "a backend known down costs the job no attempt: {job}"
    );
    let error = job["last_error"].as_str().unwrap_or_default();
    assert!(
        error.to_ascii_lowercase().contains(reason),
        "last_error says `{reason}`: {job}"
    );
}

/// Asserts that the job succeeded with the mapped order as its result.
fn assert_succeeded(gw: &Gateway, id: &str, job: &Value) {
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(job["attempts"].as_u64().unwrap_or(0) >= 1, "{job}");
    let result = gw.request(
        "GET",
        &format!("/jobs/{id}/result"),
        &[("x-api-key", API_KEY)],
        None,
    );
    assert_eq!(result.status, 200, "result of {id}: {}", result.text());
    assert_eq!(result.json(), mapped_order(), "the result of {id}");
}

/// `GET /admin/health` (asserting 200 and a `backends` object); the JSON.
fn admin_health(gw: &Gateway) -> Value {
    let resp = gw.admin_get("/admin/health");
    assert_eq!(resp.status, 200, "GET /admin/health: {}", resp.text());
    let body = resp.json();
    assert!(
        body["backends"].is_object(),
        "/admin/health has a `backends` object: {body}"
    );
    body
}

/// `backends.app` of `/admin/health` (Null when absent).
fn app_health(gw: &Gateway) -> Value {
    admin_health(gw)["backends"]["app"].clone()
}

/// Polls `/admin/health` until `backends.app.FIELD` is `want` (at most `max`); returns the
/// `app` entry, or panics with the last one seen.
fn wait_app_health(gw: &Gateway, field: &str, want: &str, max: Duration) -> Value {
    let mut last = Value::Null;
    poll_until(max, Duration::from_millis(50), || {
        last = admin_health(gw);
        (last["backends"]["app"][field] == want).then(|| last["backends"]["app"].clone())
    })
    .unwrap_or_else(|| panic!("backends.app.{field} not {want:?} within {max:?}; last: {last}"))
}

// ---------------------------------------------------------------------------------------
// A backend with switchable answers: the operation's path and the health path each answer
// with their own status; every request is recorded.
// ---------------------------------------------------------------------------------------

struct SwitchBackend {
    backend: MockBackend,
    calls: Arc<Mutex<Vec<Recorded>>>,
    op_status: Arc<AtomicU16>,
    ping_status: Arc<AtomicU16>,
}

impl SwitchBackend {
    /// `/ping` answers `ping`; every other path answers `op` with the order JSON.
    fn start(op: u16, ping: u16) -> SwitchBackend {
        let calls: Arc<Mutex<Vec<Recorded>>> = Arc::new(Mutex::new(Vec::new()));
        let op_status = Arc::new(AtomicU16::new(op));
        let ping_status = Arc::new(AtomicU16::new(ping));
        let (calls_in, op_in, ping_in) = (calls.clone(), op_status.clone(), ping_status.clone());
        let router = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (calls, op, ping) = (calls_in.clone(), op_in.clone(), ping_in.clone());
                async move {
                    let is_ping = uri.path() == "/ping";
                    calls
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Recorded::of(&method, &uri, &headers, &body));
                    let code = if is_ping { &ping } else { &op }.load(Ordering::SeqCst);
                    (
                        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                        [("content-type", "application/json")],
                        json!({ "OrderNo": "A-77", "Internal": "x" }).to_string(),
                    )
                }
            },
        );
        SwitchBackend {
            backend: MockBackend::start(router),
            calls,
            op_status,
            ping_status,
        }
    }

    fn url(&self) -> String {
        self.backend.url()
    }

    fn calls(&self) -> Vec<Recorded> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Calls to the operation's path (live calls and replays).
    fn op_calls(&self) -> Vec<Recorded> {
        self.calls()
            .into_iter()
            .filter(|c| c.path == OP_PATH)
            .collect()
    }

    /// Live calls: the operation's path without an `Idempotency-Key` (the tests send none;
    /// the worker's replays always carry one).
    fn live_calls(&self) -> usize {
        self.op_calls()
            .iter()
            .filter(|c| c.header("idempotency-key").is_none())
            .count()
    }

    fn ping_calls(&self) -> usize {
        self.calls().iter().filter(|c| c.path == "/ping").count()
    }

    fn set_op(&self, status: u16) {
        self.op_status.store(status, Ordering::SeqCst);
    }

    fn set_ping(&self, status: u16) {
        self.ping_status.store(status, Ordering::SeqCst);
    }
}

/// The backend calls that carried this `Idempotency-Key` (replays of job `id`).
fn deliveries(calls: &[Recorded], id: &str) -> usize {
    calls
        .iter()
        .filter(|c| c.header("idempotency-key").as_deref() == Some(id))
        .count()
}

// ---------------------------------------------------------------------------------------
// 1. Maintenance window
// ---------------------------------------------------------------------------------------

/// Inside a maintenance window a fallback call is queued at once and the backend is never
/// called; the job waits (no attempt spent, `last_error` names the maintenance). A reload to
/// a config whose window is not now delivers the job, and live calls go through again.
#[test]
fn a_maintenance_window_queues_without_touching_the_backend_until_it_ends() {
    let backend = SwitchBackend::start(200, 200);
    let gw = start_gateway(&backend.url(), ALWAYS_IN_MAINTENANCE);

    let (resp, took) = post_order(&gw, &json!({ "sku": "M-1" }));
    let id = assert_job_accepted(&resp, "POST /orders in a maintenance window");
    assert!(
        took < Duration::from_secs(1),
        "queued at once, not after a backend timeout: {took:?}"
    );
    let (resp2, _) = post_order(&gw, &json!({ "sku": "M-2" }));
    let id2 = assert_job_accepted(&resp2, "a second POST /orders in the window");

    // The worker looks at the jobs (it polls every 200 ms) and leaves them waiting.
    std::thread::sleep(Duration::from_millis(1500));
    for id in [&id, &id2] {
        assert_waiting(&job(&gw, id), "maintenance");
    }
    assert!(
        backend.calls().is_empty(),
        "nothing reaches a backend in maintenance: {:?}",
        backend.calls()
    );
    // The admin health report stays available (and shows no open circuit for `app`).
    let health = admin_health(&gw);
    assert_ne!(health["backends"]["app"]["circuit"], "open", "{health}");

    // The window moves away from now: the jobs are delivered, live calls go through.
    let version = gw.config_version();
    gw.rewrite_config(&config(&backend.url(), &maintenance_far_from_now()));
    gw.wait_version_above(version, Duration::from_secs(5));
    for id in [&id, &id2] {
        let done = wait_status(&gw, id, "succeeded", Duration::from_secs(10));
        assert_succeeded(&gw, id, &done);
        assert_eq!(
            deliveries(&backend.calls(), id),
            1,
            "delivered once after the window: {:?}",
            backend.calls()
        );
    }
    let (live, _) = post_order(&gw, &json!({ "sku": "M-3" }));
    assert_live_order(&live, "POST /orders outside the window");
    assert_eq!(backend.live_calls(), 1, "{:?}", backend.calls());
    assert_eq!(backend.op_calls().len(), 3, "{:?}", backend.calls());
}

// ---------------------------------------------------------------------------------------
// 2. Circuit breaker
// ---------------------------------------------------------------------------------------

/// A backend that answers 503 to everything: after 5 failing calls (live calls and replays
/// together) the circuit opens; while open, fallback calls are 202 at once without reaching
/// the backend and the worker does not call it either; after 10 s exactly one probe goes
/// through, its failure re-opens the circuit; once the backend answers 200 the next probe
/// closes it, the queued jobs succeed and a live call is answered 200 directly.
#[test]
fn the_circuit_opens_after_five_failures_probes_once_and_closes() {
    let backend = SwitchBackend::start(503, 200);
    let gw = start_gateway(&backend.url(), "");
    let first_post = Instant::now();

    // Closed: every fallback call is tried, fails (503) and becomes a job, until the
    // circuit opens (replays of the jobs count as failures too).
    let mut ids = Vec::new();
    let mut opened = None;
    for n in 0..10 {
        let (resp, _) = post_order(&gw, &json!({ "sku": format!("C-{n}") }));
        ids.push(assert_job_accepted(
            &resp,
            &format!("POST #{n} to a failing backend"),
        ));
        // Health first, then the count: an open circuit has seen 5 failures by then.
        let app = app_health(&gw);
        let seen = backend.op_calls().len();
        if app["circuit"] == "open" {
            assert!(
                seen >= 5,
                "the circuit opened after {seen} failing calls (< 5): {app}"
            );
            opened = Some(app);
            break;
        }
        assert_ne!(app["circuit"], "half_open", "{app}");
        std::thread::sleep(Duration::from_millis(30));
    }
    let app = opened.unwrap_or_else(|| {
        panic!(
            "the circuit did not open after {} failing calls: /admin/health {}",
            backend.op_calls().len(),
            admin_health(&gw)
        )
    });
    let opened_seen = Instant::now();
    assert_eq!(
        app["failures"], 5,
        "the report counts the consecutive failures: {app}"
    );
    assert_eq!(
        app["health_check"], "up",
        "no health check configured: {app}"
    );
    assert!(
        backend.live_calls() >= 1 && backend.live_calls() <= 5,
        "at most 5 live calls reach the backend before it opens: {:?}",
        backend.op_calls()
    );

    // Open: let calls that were let through before it opened land, then nothing more.
    std::thread::sleep(Duration::from_millis(300));
    let frozen = backend.op_calls().len();
    assert!(frozen <= 7, "few calls in flight at the opening: {frozen}");
    let mut open_ids = Vec::new();
    for n in 0..5 {
        let (resp, took) = post_order(&gw, &json!({ "sku": format!("O-{n}") }));
        open_ids.push(assert_job_accepted(&resp, &format!("POST #{n} while open")));
        assert!(took < Duration::from_secs(1), "queued at once: {took:?}");
    }
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        opened_seen.elapsed() < Duration::from_secs(8),
        "the open phase was measured within the 10 s"
    );
    assert_eq!(
        backend.op_calls().len(),
        frozen,
        "while the circuit is open neither live calls nor replays reach the backend: {:?}",
        backend.op_calls()
    );
    for id in &open_ids {
        assert_waiting(&job(&gw, id), "circuit");
    }
    assert_eq!(app_health(&gw)["circuit"], "open");

    // After 10 s: ONE probe (by the worker: its jobs are due), still 503 → open again.
    let probe = poll_until(Duration::from_secs(14), Duration::from_millis(20), || {
        (backend.op_calls().len() > frozen).then(Instant::now)
    })
    .unwrap_or_else(|| {
        panic!(
            "no half-open probe within 14 s of the opening: {}",
            admin_health(&gw)
        )
    });
    assert!(
        probe.duration_since(first_post) >= Duration::from_millis(9_500),
        "the circuit stays open 10 s: probe {:?} after the first call",
        probe.duration_since(first_post)
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        backend.op_calls().len(),
        frozen + 1,
        "exactly one half-open probe: {:?}",
        backend.op_calls()
    );
    let reopened = app_health(&gw);
    assert_eq!(
        reopened["circuit"], "open",
        "a failed probe re-opens: {reopened}"
    );
    let (resp, _) = post_order(&gw, &json!({ "sku": "R-1" }));
    open_ids.push(assert_job_accepted(&resp, "POST after the failed probe"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(backend.op_calls().len(), frozen + 1, "still open");

    // The backend recovers: the next probe (10 s after the failed one) closes the circuit.
    backend.set_op(200);
    let switched = Instant::now();
    let closed = wait_app_health(&gw, "circuit", "closed", Duration::from_secs(13));
    assert!(
        switched.elapsed() >= Duration::from_secs(7),
        "closed only by the next probe, 10 s after the failed one: {:?}",
        switched.elapsed()
    );
    assert_eq!(closed["failures"], 0, "{closed}");
    let live_before = backend.live_calls();
    let (live, took) = post_order(&gw, &json!({ "sku": "L-1" }));
    assert_live_order(&live, "POST once the circuit is closed");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(backend.live_calls(), live_before + 1);

    // Every queued job is delivered and succeeds.
    for id in ids.iter().chain(open_ids.iter()) {
        let done = wait_status(&gw, id, "succeeded", Duration::from_secs(25));
        assert_succeeded(&gw, id, &done);
    }
    assert!(
        switched.elapsed() < Duration::from_secs(25),
        "{:?}",
        switched.elapsed()
    );
    let calls = backend.calls();
    for id in &open_ids {
        assert!(
            deliveries(&calls, id) >= 1,
            "job {id} was delivered after the circuit closed"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 3. Active health check
// ---------------------------------------------------------------------------------------

/// While `/ping` fails, the backend is down: a fallback call is queued at once and only
/// `/ping` is called, once per interval. When `/ping` passes again the job is delivered
/// within a few seconds and live calls are answered directly.
#[test]
fn a_failing_health_check_queues_calls_until_it_passes_again() {
    let backend = SwitchBackend::start(200, 500);
    let gw = start_gateway(&backend.url(), "    health: { path: /ping, interval: 1s }");

    let app = wait_app_health(&gw, "health_check", "down", Duration::from_secs(5));
    assert_eq!(app["circuit"], "closed", "only the check is down: {app}");
    let first_ping = backend.calls();
    assert!(!first_ping.is_empty());
    for call in &first_ping {
        assert_eq!(
            (call.method.as_str(), call.path.as_str()),
            ("GET", "/ping"),
            "{call:?}"
        );
    }

    let (resp, took) = post_order(&gw, &json!({ "sku": "H-1" }));
    let id = assert_job_accepted(&resp, "POST /orders while the health check fails");
    assert!(took < Duration::from_secs(1), "queued at once: {took:?}");

    // 4.5 seconds of a failing check: one /ping per 1 s interval (4 or 5), nothing else.
    let pings_before = backend.ping_calls();
    std::thread::sleep(Duration::from_millis(4500));
    let pings = backend.ping_calls() - pings_before;
    assert!(
        (4..=6).contains(&pings),
        "one check per 1 s interval: {pings} /ping calls in 4.5 s"
    );
    assert!(
        backend.op_calls().is_empty(),
        "only /ping is called while the check fails: {:?}",
        backend.op_calls()
    );
    assert_waiting(&job(&gw, &id), "health check");
    assert_eq!(app_health(&gw)["health_check"], "down");

    // The check passes again: the job is delivered, live calls go through.
    backend.set_ping(200);
    let up = Instant::now();
    let done = wait_status(&gw, &id, "succeeded", Duration::from_secs(5));
    assert_succeeded(&gw, &id, &done);
    assert!(
        up.elapsed() < Duration::from_millis(3500),
        "delivered within ~3 s of the check passing: {:?}",
        up.elapsed()
    );
    assert_eq!(
        deliveries(&backend.calls(), &id),
        1,
        "{:?}",
        backend.op_calls()
    );
    let app = app_health(&gw);
    assert_eq!(app["health_check"], "up", "{app}");
    assert_eq!(app["circuit"], "closed", "{app}");
    let (live, _) = post_order(&gw, &json!({ "sku": "H-2" }));
    assert_live_order(&live, "POST /orders once the check passes");
    assert_eq!(backend.live_calls(), 1, "{:?}", backend.op_calls());
    assert_eq!(backend.op_calls().len(), 2, "{:?}", backend.op_calls());
}

/// With no health check and no limit configured, the health checker and housekeeping sleep
/// instead of ticking every second (an idle gateway should not wake for nothing); a reload
/// that adds a check wakes the checker, and the check runs on its interval.
#[cfg(target_os = "linux")]
#[test]
fn without_checks_or_limits_the_background_threads_sleep_until_a_reload() {
    let backend = SwitchBackend::start(200, 500);
    let gw = start_gateway(&backend.url(), "");
    std::thread::sleep(Duration::from_millis(500));
    let threads = ["BG health check", "BG housekeeping"];
    let before = threads.map(|name| gw.thread_runs(name));
    std::thread::sleep(Duration::from_secs(3));
    for (name, before) in threads.iter().zip(before) {
        let runs = gw.thread_runs(name) - before;
        assert!(runs <= 1, "the idle thread {name} ran {runs} times in 3 s");
    }
    assert_eq!(backend.ping_calls(), 0);

    gw.rewrite_config(&config(
        &backend.url(),
        "    health: { path: /ping, interval: 1s }",
    ));
    let reload = gw.admin_post("/admin/reload");
    assert_eq!(reload.status, 200, "{}", reload.text());
    wait_app_health(&gw, "health_check", "down", Duration::from_secs(5));
    assert!(backend.ping_calls() >= 1);
}
