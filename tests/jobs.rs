//! Durable jobs, end to end: `async: fallback` (refused connection, timeout, a retryable
//! status), `async: always` and `Prefer: respond-async`, `Idempotency-Key`, per-consumer
//! visibility of `/jobs/{id}`, retries to a dead letter with its webhook alert and metric,
//! admin replay / replay-dead / purge, a final 4xx, and a `kill -9` of the gateway while
//! jobs are being accepted (no accepted job may be lost).

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;
use serde_json::{json, Value};

use common::*;

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// A second consumer's API key (test-only) and its SHA-256.
const OTHER_KEY: &str = "e2e-crm-sync-key-Qw7RtY2p";
const OTHER_KEY_SHA256: &str = "dc9be46bcdcedcb620915b6bb8f505b10d789bf8f6d96705af0f5fabf287a264";

const IDEMPOTENCY_REUSED: &str = "urn:propylon:problem:idempotency-key-reused";

/// The facade: every operation needs an API key.
const JOBS_SPEC: &str = r#"openapi: 3.0.3
info:
  title: Jobs
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
  /batches:
    post:
      operationId: submitBatch
      requestBody:
        content:
          application/json:
            schema: { type: object }
      responses:
        "200": { description: accepted by the backend }
  /quotes:
    post:
      operationId: createQuote
      requestBody:
        content:
          application/json:
            schema: { type: object }
      responses:
        "200": { description: quoted }
"#;

/// `@APP@` backend URL, `@TIMEOUT@` its timeout, `@RETRY@` the retry policy of the async
/// operations, `@HOOK@` the alert webhook URL.
const CONFIG_TEMPLATE: &str = r#"server:
  listen: "{{LISTEN}}"
  admin_listen: "{{ADMIN}}"
  admin_token: "{{TOKEN}}"
auth:
  api_keys:
    - { consumer: erp-batch, key_sha256: @KEYSHA@ }
    - { consumer: crm-sync, key_sha256: @OTHERSHA@ }
backends:
  app:
    url: "@APP@"
    timeout: @TIMEOUT@
apis:
  - name: jobs
    spec: ./jobs.yaml
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
      submitBatch:
        backend: app
        request:
          path: /erp/batches
        async: always
        retry: @RETRY@
      createQuote:
        backend: app
        request:
          path: /erp/quotes
        async: never
alerts:
  webhook: "@HOOK@"
"#;

/// Short backoffs, many attempts: jobs keep retrying for the whole test.
const RETRY_PATIENT: &str = "{ max_attempts: 1000, backoff: 100ms, max_backoff: 300ms }";

fn config(app_url: &str, timeout: &str, retry: &str, hook_url: &str) -> String {
    CONFIG_TEMPLATE
        .replace("@APP@", app_url)
        .replace("@TIMEOUT@", timeout)
        .replace("@RETRY@", retry)
        .replace("@HOOK@", hook_url)
        .replace("@KEYSHA@", API_KEY_SHA256)
        .replace("@OTHERSHA@", OTHER_KEY_SHA256)
}

fn start_gateway(app_url: &str, timeout: &str, retry: &str, hook_url: &str) -> Gateway {
    Gateway::start_with_files(
        &config(app_url, timeout, retry, hook_url),
        &[("jobs.yaml", JOBS_SPEC)],
    )
}

/// What the backend answers when it is up: the mapping turns `OrderNo` into `order`.
fn order_reply() -> Reply {
    Reply::json(200, json!({ "OrderNo": "A-77", "Internal": "x" }))
}

/// The mapped answer of `createOrder` for `order_reply()`.
fn mapped_order() -> Value {
    json!({ "order": "A-77", "source": "propylon" })
}

// ---------------------------------------------------------------------------------------
// Client helpers
// ---------------------------------------------------------------------------------------

/// `POST path` as consumer erp-batch, with JSON `body` and extra headers.
fn post_as(gw: &Gateway, key: &str, path: &str, body: &Value, extra: &[(&str, &str)]) -> Resp {
    let mut headers = vec![("content-type", "application/json"), ("x-api-key", key)];
    headers.extend_from_slice(extra);
    gw.request("POST", path, &headers, Some(body.to_string().as_bytes()))
}

fn post(gw: &Gateway, path: &str, body: &Value, extra: &[(&str, &str)]) -> Resp {
    post_as(gw, API_KEY, path, body, extra)
}

/// Asserts a 202 job acceptance (`assert_job_accepted`), plus its Retry-After and JSON body;
/// returns the job id.
fn assert_accepted(resp: &Resp, what: &str) -> String {
    let id = assert_job_accepted(resp, what);
    assert_eq!(
        resp.header("retry-after").as_deref(),
        Some("1"),
        "{what}: Retry-After"
    );
    assert!(
        resp.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json"),
        "{what}: the 202 body is JSON: {:?}",
        resp.header("content-type")
    );
    id
}

/// `GET /jobs/{id}/result` as erp-batch.
fn job_result(gw: &Gateway, id: &str) -> Resp {
    gw.request(
        "GET",
        &format!("/jobs/{id}/result"),
        &[("x-api-key", API_KEY)],
        None,
    )
}

/// Asserts the succeeded job's fields and that its result is the mapped order.
fn assert_succeeded_with_mapped_order(gw: &Gateway, id: &str, job: &Value) {
    assert_eq!(job["id"], id, "{job}");
    assert_eq!(job["operation"], "createOrder", "{job}");
    assert_eq!(
        job["result"].as_str(),
        Some(format!("/jobs/{id}/result").as_str()),
        "a succeeded job links its result: {job}"
    );
    assert!(job["attempts"].as_u64().unwrap_or(0) >= 1, "{job}");
    let result = job_result(gw, id);
    assert_eq!(result.status, 200, "result of {id}: {}", result.text());
    assert_eq!(
        result.json(),
        mapped_order(),
        "the result is the MAPPED backend answer"
    );
}

/// The backend calls that carried this `Idempotency-Key`.
fn deliveries(calls: &[Recorded], key: &str) -> usize {
    calls
        .iter()
        .filter(|c| c.header("idempotency-key").as_deref() == Some(key))
        .count()
}

/// The jobs listed by `GET /admin/jobs?QUERY` (asserting 200).
fn admin_jobs(gw: &Gateway, query: &str) -> Vec<Value> {
    let resp = gw.admin_get(&format!("/admin/jobs{query}"));
    assert_eq!(resp.status, 200, "GET /admin/jobs{query}: {}", resp.text());
    let body = resp.json();
    body["jobs"]
        .as_array()
        .unwrap_or_else(|| panic!("/admin/jobs has no jobs array: {body}"))
        .clone()
}

/// The value of a labelled series, labels in any order (e.g. `propylon_jobs_total` with
/// `operation="createOrder"` and `event="dead"`).
fn labelled_metric(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            let (label_text, value) = rest.split_once("} ")?;
            let mut have: Vec<&str> = label_text.split(',').collect();
            let mut want: Vec<&str> = labels.to_vec();
            have.sort_unstable();
            want.sort_unstable();
            (have == want).then(|| value.trim().parse().ok())?
        })
}

/// Waits until `port` on loopback can be bound (the gateway that held it is gone).
fn wait_port_free(addr: SocketAddr) {
    let free = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
        TcpListener::bind(addr).ok().map(drop)
    });
    assert!(free.is_some(), "{addr} still in use after 10 s");
}

// ---------------------------------------------------------------------------------------
// A recording backend on a chosen port: "the backend comes back" on the very port the
// gateway was refused on.
// ---------------------------------------------------------------------------------------

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("jobs-port-backend")
            .enable_all()
            .build()
            .expect("build the port backends' runtime")
    })
}

/// Records every request and answers `order_reply()`-like JSON with the current status.
struct PortBackend {
    task: tokio::task::JoinHandle<()>,
    calls: Arc<Mutex<Vec<Recorded>>>,
}

impl PortBackend {
    /// Binds 127.0.0.1:`port` (retrying for at most 5 s) and serves.
    fn start_on(port: u16) -> PortBackend {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
            TcpListener::bind(addr).ok()
        })
        .unwrap_or_else(|| panic!("cannot bind the backend again on {addr} within 5 s"));
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let calls: Arc<Mutex<Vec<Recorded>>> = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (calls_in, status_in) = (calls.clone(), status.clone());
        let router = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (calls, status) = (calls_in.clone(), status_in.clone());
                async move {
                    let recorded = Recorded::of(&method, &uri, &headers, &body);
                    calls
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(recorded);
                    let code = StatusCode::from_u16(status.load(Ordering::SeqCst))
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    (
                        code,
                        [("content-type", "application/json")],
                        json!({ "OrderNo": "A-77", "Internal": "x" }).to_string(),
                    )
                }
            },
        );
        let task = runtime().spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("port backend {addr} stopped: {e}");
            }
        });
        PortBackend { task, calls }
    }

    fn calls(&self) -> Vec<Recorded> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for PortBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The port of a `http://127.0.0.1:PORT` URL.
fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

/// A webhook receiver that answers 200 and records every alert.
fn webhook() -> RecordingBackend {
    RecordingBackend::start(Reply::json(200, json!({ "ok": true })))
}

// ---------------------------------------------------------------------------------------
// 1–3: async: fallback
// ---------------------------------------------------------------------------------------

/// A refused connection becomes a 202 job; once the backend is back on the same port, the
/// worker delivers it and `/jobs/{id}/result` serves the mapped answer.
#[test]
fn fallback_on_refused_connection_queues_a_job_that_succeeds_when_the_backend_returns() {
    let hook = webhook();
    let down = closed_port_url();
    let gw = start_gateway(&down, "2s", RETRY_PATIENT, &hook.url());

    let resp = post(&gw, "/orders", &json!({ "sku": "S-1", "qty": 2 }), &[]);
    let id = assert_accepted(&resp, "POST /orders with the backend refusing");
    assert!(
        resp.header("preference-applied").is_none(),
        "no Prefer was sent, so no Preference-Applied"
    );

    // While the backend is down the job stays pending (queued or in flight, never dead).
    let pending = job(&gw, &id);
    for field in [
        "id",
        "status",
        "attempts",
        "max_attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "operation",
        "result",
    ] {
        assert!(
            pending.get(field).is_some(),
            "GET /jobs/{{id}} must have `{field}`: {pending}"
        );
    }
    assert_eq!(pending["operation"], "createOrder", "{pending}");
    assert_eq!(pending["max_attempts"], 1000, "{pending}");
    assert!(
        pending["status"] == "queued" || pending["status"] == "in_flight",
        "a job whose backend is down is pending: {pending}"
    );
    assert!(pending["result"].is_null(), "no result yet: {pending}");
    let early = job_result(&gw, &id);
    assert_problem(&early, 404);

    // Some retries happen while it is down, and record why.
    let retried = poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
        let j = job(&gw, &id);
        (j["attempts"].as_u64().unwrap_or(0) >= 2 && j["last_error"].is_string()).then_some(j)
    })
    .unwrap_or_else(|| {
        panic!(
            "job not retried while the backend is down: {}",
            job(&gw, &id)
        )
    });
    assert_ne!(retried["status"], "succeeded", "{retried}");

    // The backend comes back on the very port that refused.
    let backend = PortBackend::start_on(port_of(&down));
    let done = wait_status(&gw, &id, "succeeded", Duration::from_secs(5));
    assert_succeeded_with_mapped_order(&gw, &id, &done);

    let calls = backend.calls();
    assert!(
        deliveries(&calls, &id) >= 1,
        "the worker sends the job id as Idempotency-Key; backend saw {calls:?}"
    );
    let call = calls
        .iter()
        .find(|c| c.header("idempotency-key").as_deref() == Some(id.as_str()))
        .expect("a delivery with the job id as Idempotency-Key");
    assert_eq!(
        call.path, "/erp/orders",
        "the replay is mapped like a live call"
    );
    assert_eq!(
        call.body_json(),
        json!({ "sku": "S-1", "qty": 2 }),
        "the stored body is delivered"
    );
    assert!(
        call.header("x-api-key").is_none(),
        "the API key is a credential, never stored or replayed: {call:?}"
    );

    let metrics = gw.metrics();
    for event in ["created", "succeeded"] {
        let series = labelled_metric(
            &metrics,
            "propylon_jobs_total",
            &["operation=\"createOrder\"", &format!("event=\"{event}\"")],
        );
        assert_eq!(
            series,
            Some(1.0),
            "propylon_jobs_total {event}; metrics:\n{metrics}"
        );
    }
}

/// A backend slower than its `timeout` becomes a 202 job too.
#[test]
fn fallback_on_backend_timeout_queues_a_job() {
    let hook = webhook();
    let slow = MockBackend::start(slow_router(Duration::from_secs(3)));
    let gw = start_gateway(&slow.url(), "300ms", RETRY_PATIENT, &hook.url());

    let started = Instant::now();
    let resp = post(&gw, "/orders", &json!({ "sku": "S-2" }), &[]);
    let elapsed = started.elapsed();
    let id = assert_accepted(&resp, "POST /orders with a backend slower than its timeout");
    assert!(
        elapsed < Duration::from_secs(2),
        "the 202 comes after the 300ms timeout, not after the backend's 3 s: {elapsed:?}"
    );
    let status = job(&gw, &id);
    assert_ne!(status["status"], "succeeded", "{status}");
    assert_ne!(status["status"], "dead", "a timeout is retryable: {status}");
}

/// A 503 becomes a job (delivered once the backend answers 200); a 200 is answered
/// directly, mapped, and is NOT a job.
#[test]
fn fallback_on_503_queues_a_job_but_a_200_is_answered_directly() {
    let hook = webhook();
    let backend = RecordingBackend::start(Reply::json(503, json!({ "error": "maintenance" })));
    let gw = start_gateway(&backend.url(), "2s", RETRY_PATIENT, &hook.url());

    let id = assert_accepted(
        &post(&gw, "/orders", &json!({ "sku": "S-3" }), &[]),
        "POST /orders with the backend answering 503",
    );
    let retried = poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
        let j = job(&gw, &id);
        (j["attempts"].as_u64().unwrap_or(0) >= 1).then_some(j)
    })
    .unwrap_or_else(|| panic!("the job was never replayed: {}", job(&gw, &id)));
    assert!(
        retried["last_error"].as_str().unwrap_or("").contains("503"),
        "last_error names the 503: {retried}"
    );

    backend.set_reply(order_reply());
    let done = wait_status(&gw, &id, "succeeded", Duration::from_secs(5));
    assert_succeeded_with_mapped_order(&gw, &id, &done);

    // Now that the backend answers 200, a call is a plain mapped answer.
    let resp = post(&gw, "/orders", &json!({ "sku": "S-4" }), &[]);
    assert_eq!(resp.status, 200, "a 200 is not a job: {}", resp.text());
    assert!(
        resp.header("location").is_none(),
        "no job Location on a 200"
    );
    assert_eq!(resp.json(), mapped_order());

    let jobs = admin_jobs(&gw, "");
    assert_eq!(jobs.len(), 1, "only the 503 call made a job: {jobs:?}");
    assert_eq!(jobs[0]["id"], id.as_str());
    assert_eq!(jobs[0]["consumer"], "erp-batch", "{jobs:?}");
}

// ---------------------------------------------------------------------------------------
// 4: async: always, Prefer: respond-async
// ---------------------------------------------------------------------------------------

#[test]
fn async_always_and_prefer_respond_async_answer_202() {
    let hook = webhook();
    let backend = RecordingBackend::start(order_reply());
    let gw = start_gateway(&backend.url(), "2s", RETRY_PATIENT, &hook.url());

    // async: always, backend up: still a job.
    let resp = post(&gw, "/batches", &json!({ "batch": 1 }), &[]);
    let batch = assert_accepted(&resp, "POST /batches (async: always)");
    assert!(resp.header("preference-applied").is_none());
    let done = wait_status(&gw, &batch, "succeeded", Duration::from_secs(5));
    assert_eq!(done["operation"], "submitBatch", "{done}");
    let result = job_result(&gw, &batch);
    assert_eq!(result.status, 200, "{}", result.text());
    assert_eq!(
        result.json(),
        json!({ "OrderNo": "A-77", "Internal": "x" }),
        "no body mapping on submitBatch: the backend's body as is"
    );
    assert_eq!(deliveries(&backend.calls(), &batch), 1);

    // Prefer: respond-async on a fallback operation whose backend is up.
    let resp = post(
        &gw,
        "/orders",
        &json!({ "sku": "S-5" }),
        &[("prefer", "respond-async")],
    );
    let order = assert_accepted(&resp, "POST /orders with Prefer: respond-async");
    assert_eq!(
        resp.header("preference-applied").as_deref(),
        Some("respond-async"),
        "Preference-Applied"
    );
    let done = wait_status(&gw, &order, "succeeded", Duration::from_secs(5));
    assert_succeeded_with_mapped_order(&gw, &order, &done);

    // Prefer among other preferences (RFC 7240 list syntax).
    let resp = post(
        &gw,
        "/orders",
        &json!({ "sku": "S-6" }),
        &[("prefer", "return=minimal, respond-async; wait=5")],
    );
    assert_accepted(&resp, "Prefer: return=minimal, respond-async; wait=5");

    // async: never ignores Prefer.
    let resp = post(
        &gw,
        "/quotes",
        &json!({ "sku": "S-7" }),
        &[("prefer", "respond-async")],
    );
    assert_eq!(
        resp.status,
        200,
        "async: never answers directly: {}",
        resp.text()
    );
    assert!(resp.header("preference-applied").is_none());
    assert!(resp.header("location").is_none());
}

// ---------------------------------------------------------------------------------------
// 5: Idempotency-Key
// ---------------------------------------------------------------------------------------

#[test]
fn idempotency_key_returns_the_same_job_and_the_backend_sees_one_delivery() {
    let hook = webhook();
    let backend = RecordingBackend::start(order_reply());
    let gw = start_gateway(&backend.url(), "2s", RETRY_PATIENT, &hook.url());
    let key = "e2e-idem-4711";
    let body = json!({ "batch": 42, "lines": [1, 2, 3] });

    let first = assert_accepted(
        &post(&gw, "/batches", &body, &[("idempotency-key", key)]),
        "first POST with Idempotency-Key",
    );
    let again = post(&gw, "/batches", &body, &[("idempotency-key", key)]);
    assert_eq!(again.status, 202, "repeat: {}", again.text());
    assert_eq!(
        again.json()["id"].as_str(),
        Some(first.as_str()),
        "the same key and request give the same job"
    );
    assert_eq!(
        again.header("location").as_deref(),
        Some(format!("/jobs/{first}").as_str())
    );

    wait_status(&gw, &first, "succeeded", Duration::from_secs(5));
    // After success, the same key still answers the same job, not a new one.
    let late = post(&gw, "/batches", &body, &[("idempotency-key", key)]);
    assert_eq!(late.status, 202, "{}", late.text());
    assert_eq!(late.json()["id"].as_str(), Some(first.as_str()));

    // Same key, different body: 422.
    let reused = post(
        &gw,
        "/batches",
        &json!({ "batch": 43 }),
        &[("idempotency-key", key)],
    );
    let problem = assert_problem(&reused, 422);
    assert_eq!(problem["type"], IDEMPOTENCY_REUSED, "{problem}");

    // Give the worker time for any (wrong) second delivery.
    std::thread::sleep(Duration::from_millis(800));
    let calls = backend.calls();
    assert_eq!(
        deliveries(&calls, key),
        1,
        "the backend sees the client's Idempotency-Key exactly once; calls: {calls:?}"
    );
    assert_eq!(calls.len(), 1, "one job, one delivery: {calls:?}");
    let jobs = admin_jobs(&gw, "");
    assert_eq!(jobs.len(), 1, "only one job was created: {jobs:?}");

    // The key is per consumer: another consumer's same key is its own job.
    let other = assert_accepted(
        &post_as(
            &gw,
            OTHER_KEY,
            "/batches",
            &body,
            &[("idempotency-key", key)],
        ),
        "same key from another consumer",
    );
    assert_ne!(
        other, first,
        "another consumer's key does not reach erp-batch's job"
    );

    // Repeats are not creations: the counter counts jobs, not 202s.
    let metrics = gw.metrics();
    assert_eq!(
        labelled_metric(
            &metrics,
            "propylon_jobs_total",
            &["operation=\"submitBatch\"", "event=\"created\""]
        ),
        Some(2.0),
        "two jobs created (erp-batch's, crm-sync's), the 2 repeats not counted; metrics:\n{metrics}"
    );
}

// ---------------------------------------------------------------------------------------
// 6: visibility
// ---------------------------------------------------------------------------------------

#[test]
fn a_job_is_visible_only_to_the_consumer_who_made_it() {
    let hook = webhook();
    let backend = RecordingBackend::start(order_reply());
    let gw = start_gateway(&backend.url(), "2s", RETRY_PATIENT, &hook.url());

    let id = assert_accepted(
        &post(&gw, "/batches", &json!({ "batch": 7 }), &[]),
        "POST /batches as erp-batch",
    );
    wait_status(&gw, &id, "succeeded", Duration::from_secs(5));
    assert_eq!(job_result(&gw, &id).status, 200);

    // Another consumer: 404, for the status and the result, like an unknown id.
    let other = job_as(&gw, OTHER_KEY, &id);
    assert_problem(&other, 404);
    let other_result = gw.request(
        "GET",
        &format!("/jobs/{id}/result"),
        &[("x-api-key", OTHER_KEY)],
        None,
    );
    assert_problem(&other_result, 404);
    assert!(
        !other.text().contains("succeeded") && !other_result.text().contains("A-77"),
        "nothing of the job leaks: {} / {}",
        other.text(),
        other_result.text()
    );
    let unknown = job_as(&gw, API_KEY, "00000000-0000-4000-8000-000000000000");
    assert_problem(&unknown, 404);

    // No credentials at all: not the owner either.
    let anon = gw.request("GET", &format!("/jobs/{id}"), &[], None);
    assert!(
        anon.status == 401 || anon.status == 404,
        "an anonymous caller cannot read the job: {} {}",
        anon.status,
        anon.text()
    );
    assert!(!anon.text().contains("succeeded"), "{}", anon.text());

    // The other consumer's own job is its own.
    let theirs = assert_accepted(
        &post_as(&gw, OTHER_KEY, "/batches", &json!({ "batch": 8 }), &[]),
        "POST /batches as crm-sync",
    );
    assert_eq!(job_as(&gw, OTHER_KEY, &theirs).status, 200);
    assert_problem(&job_as(&gw, API_KEY, &theirs), 404);
}

// ---------------------------------------------------------------------------------------
// 7–8: dead letters, alerts, admin replay
// ---------------------------------------------------------------------------------------

/// The alerts received for job `id`.
fn alerts_for(hook: &RecordingBackend, id: &str) -> Vec<Value> {
    hook.calls()
        .iter()
        .filter_map(|c| serde_json::from_slice::<Value>(&c.body).ok())
        .filter(|a| a["job"]["id"] == id)
        .collect()
}

#[test]
fn a_job_whose_backend_stays_down_dies_alerts_and_can_be_replayed() {
    let hook = webhook();
    let down = closed_port_url();
    let gw = start_gateway(
        &down,
        "2s",
        "{ max_attempts: 3, backoff: 100ms, max_backoff: 300ms }",
        &hook.url(),
    );

    let id = assert_accepted(
        &post(&gw, "/orders", &json!({ "sku": "S-8" }), &[]),
        "POST /orders with the backend down",
    );
    let dead = wait_status(&gw, &id, "dead", Duration::from_secs(8));
    assert_eq!(dead["attempts"], 3, "dead after max_attempts: {dead}");
    assert_eq!(dead["max_attempts"], 3, "{dead}");
    assert!(
        dead["last_error"].is_string(),
        "a dead job says why: {dead}"
    );
    assert!(dead["result"].is_null(), "{dead}");
    assert_problem(&job_result(&gw, &id), 404);

    // The alert.
    let alert = poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
        alerts_for(&hook, &id).into_iter().next()
    })
    .unwrap_or_else(|| panic!("no job.dead alert for {id}; webhook got {:?}", hook.calls()));
    assert_eq!(alert["event"], "job.dead", "{alert}");
    assert_eq!(alert["job"]["operation"], "createOrder", "{alert}");
    assert_eq!(alert["job"]["attempts"], 3, "{alert}");
    assert!(alert["job"]["reason"].is_string(), "{alert}");
    let call = hook.last();
    assert_eq!(call.method, "POST");
    assert!(
        call.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json"),
        "{call:?}"
    );

    // Logged at error level, counted, listed.
    let log = gw.log();
    assert!(
        log.lines()
            .any(|l| l.contains(&id) && l.to_ascii_uppercase().contains("ERROR")),
        "the dead letter is logged at error level with its id; log:\n{log}"
    );
    let metrics = gw.metrics();
    assert_eq!(
        labelled_metric(
            &metrics,
            "propylon_jobs_total",
            &["operation=\"createOrder\"", "event=\"dead\""]
        ),
        Some(1.0),
        "metrics:\n{metrics}"
    );
    // The status gauges, counted from the store at each scrape, count it.
    let gauge = poll_until(Duration::from_secs(3), Duration::from_millis(100), || {
        let m = gw.metrics();
        (metric_value(&m, "propylon_jobs{status=\"dead\"}") == Some(1.0)).then_some(m)
    });
    assert!(
        gauge.is_some(),
        "propylon_jobs{{status=\"dead\"}} not 1 within 3 s; metrics:\n{}",
        gw.metrics()
    );
    assert!(
        metric_value(&metrics, "propylon_jobs_oldest_due_seconds").is_some(),
        "propylon_jobs_oldest_due_seconds is exported; metrics:\n{metrics}"
    );
    assert!(
        metric_value(&metrics, "propylon_job_replay_duration_seconds_count").unwrap_or(0.0) >= 3.0,
        "three replays timed; metrics:\n{metrics}"
    );
    let listed = admin_jobs(&gw, "?status=dead");
    let entry = listed
        .iter()
        .find(|j| j["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not in /admin/jobs?status=dead: {listed:?}"));
    assert_eq!(entry["status"], "dead");
    assert_eq!(entry["operation"], "createOrder");
    assert_eq!(entry["consumer"], "erp-batch");
    assert_eq!(entry["attempts"], 3);
    assert!(admin_jobs(&gw, "?status=queued")
        .iter()
        .all(|j| j["id"] != id.as_str()));

    // No further attempts on a dead job.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(job(&gw, &id)["attempts"], 3, "a dead job is not retried");

    // The admin API needs its token.
    let anon = send(
        gw.agent(),
        "POST",
        &gw.admin_url(&format!("/admin/jobs/{id}/replay")),
        &[],
        None,
    );
    assert_eq!(
        anon.status,
        401,
        "replay without the token: {}",
        anon.text()
    );

    // The backend comes back; the admin replays the job.
    let backend = PortBackend::start_on(port_of(&down));
    let replay = gw.admin_post(&format!("/admin/jobs/{id}/replay"));
    assert_eq!(replay.status, 200, "replay: {}", replay.text());
    let done = wait_status(&gw, &id, "succeeded", Duration::from_secs(5));
    assert_succeeded_with_mapped_order(&gw, &id, &done);
    assert!(deliveries(&backend.calls(), &id) >= 1);
    assert_eq!(
        alerts_for(&hook, &id).len(),
        1,
        "one alert per dead letter: {:?}",
        hook.calls()
    );
}

/// A final 4xx (400) kills the job at once: one backend call, `last_error` names the 400.
#[test]
fn a_final_4xx_kills_the_job_at_once() {
    let hook = webhook();
    let backend = RecordingBackend::start(Reply::json(400, json!({ "error": "bad sku" })));
    let gw = start_gateway(&backend.url(), "2s", RETRY_PATIENT, &hook.url());

    let id = assert_accepted(
        &post(&gw, "/batches", &json!({ "batch": "bad" }), &[]),
        "POST /batches",
    );
    let dead = wait_status(&gw, &id, "dead", Duration::from_secs(5));
    assert_eq!(dead["attempts"], 1, "no retry after a final answer: {dead}");
    assert!(
        dead["last_error"].as_str().unwrap_or("").contains("400"),
        "last_error names the 400: {dead}"
    );
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        backend.call_count(),
        1,
        "exactly one delivery: {:?}",
        backend.calls()
    );
    assert_eq!(job(&gw, &id)["attempts"], 1);
    let alert = poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
        alerts_for(&hook, &id).into_iter().next()
    })
    .unwrap_or_else(|| panic!("no alert for {id}: {:?}", hook.calls()));
    assert_eq!(alert["event"], "job.dead");
    assert!(
        alert["job"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("400"),
        "{alert}"
    );
}

/// `POST /admin/jobs/replay-dead` requeues every dead job; `DELETE /admin/jobs/{id}` purges.
#[test]
fn admin_replays_all_dead_jobs_and_purges_one() {
    let hook = webhook();
    let backend = RecordingBackend::start(Reply::json(400, json!({ "error": "not yet" })));
    let gw = start_gateway(&backend.url(), "2s", RETRY_PATIENT, &hook.url());

    let ids: Vec<String> = (0..2)
        .map(|n| {
            assert_accepted(
                &post(&gw, "/batches", &json!({ "batch": n }), &[]),
                "POST /batches",
            )
        })
        .collect();
    for id in &ids {
        wait_status(&gw, id, "dead", Duration::from_secs(5));
    }
    assert_eq!(admin_jobs(&gw, "?status=dead").len(), 2);

    backend.set_reply(order_reply());
    let resp = gw.admin_post("/admin/jobs/replay-dead");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["requeued"], 2, "{}", resp.text());
    for id in &ids {
        let done = wait_status(&gw, id, "succeeded", Duration::from_secs(5));
        assert!(done["attempts"].as_u64().unwrap_or(0) >= 1, "{done}");
    }
    assert!(admin_jobs(&gw, "?status=dead").is_empty());

    let resp = gw.admin_request("DELETE", &format!("/admin/jobs/{}", ids[0]));
    assert_eq!(resp.status, 200, "purge: {}", resp.text());
    assert_problem(&job_as(&gw, API_KEY, &ids[0]), 404);
    assert_eq!(
        job_as(&gw, API_KEY, &ids[1]).status,
        200,
        "only that one is purged"
    );
    let again = gw.admin_request("DELETE", &format!("/admin/jobs/{}", ids[0]));
    assert_eq!(again.status, 404, "{}", again.text());
}

// ---------------------------------------------------------------------------------------
// 9: kill -9 while accepting
// ---------------------------------------------------------------------------------------

#[test]
fn kill_9_while_accepting_jobs_loses_no_accepted_job() {
    let hook = webhook();
    let down = closed_port_url();
    let mut gw = start_gateway(&down, "2s", RETRY_PATIENT, &hook.url());
    let pid = gw.pid().to_string();
    let (listen, admin) = (gw.listen, gw.admin);

    let accepted_count = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let killer = {
        let (count, killed) = (accepted_count.clone(), killed.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while count.load(Ordering::SeqCst) < 20 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            let status = Command::new("kill")
                .args(["-9", pid.as_str()])
                .status()
                .expect("run kill -9");
            killed.store(true, Ordering::SeqCst);
            status.success()
        })
    };

    let client = agent();
    let url = gw.url("/batches");
    let mut accepted: Vec<String> = Vec::new();
    let mut failed = 0;
    for n in 0..50 {
        let body = json!({ "batch": n }).to_string();
        match try_send(
            &client,
            "POST",
            &url,
            &[("content-type", "application/json"), ("x-api-key", API_KEY)],
            Some(body.as_bytes()),
        ) {
            Ok(resp) if resp.status == 202 => {
                accepted.push(assert_accepted(&resp, &format!("POST #{n}")));
                accepted_count.fetch_add(1, Ordering::SeqCst);
            }
            Ok(resp) => panic!(
                "POST #{n}: a running gateway answers 202, got {} {}",
                resp.status,
                resp.text()
            ),
            Err(_) => failed += 1,
        }
    }
    assert!(killer.join().expect("killer thread"), "kill -9 failed");
    assert!(killed.load(Ordering::SeqCst));
    assert!(
        accepted.len() >= 20 && accepted.len() < 50 && failed > 0,
        "the gateway must die mid-way: {} accepted, {failed} failed",
        accepted.len()
    );

    // Start it again in the same folder (the process is already gone, so `restart` sends
    // no SIGTERM; it waits for the ports and for readiness).
    wait_port_free(listen);
    wait_port_free(admin);
    gw.restart();
    assert!(gw.is_running());

    let backend = PortBackend::start_on(port_of(&down));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut pending: Vec<String> = accepted.clone();
    let mut last_seen: Vec<Value> = Vec::new();
    while !pending.is_empty() && Instant::now() < deadline {
        last_seen.clear();
        pending.retain(|id| {
            let resp = job_as(&gw, API_KEY, id);
            if resp.status != 200 {
                last_seen.push(json!({ "id": id, "http": resp.status, "body": resp.text() }));
                return true;
            }
            let j = resp.json();
            let done = j["status"] == "succeeded";
            if !done {
                last_seen.push(j);
            }
            !done
        });
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert!(
        pending.is_empty(),
        "{} of {} accepted jobs not succeeded 20 s after the restart: {last_seen:#?}",
        pending.len(),
        accepted.len()
    );
    let calls = backend.calls();
    for id in &accepted {
        assert!(
            deliveries(&calls, id) >= 1,
            "the backend never saw Idempotency-Key {id}"
        );
    }
}

/// A repeat of an `Idempotency-Key` while its first request is still with the backend is a
/// 409; once the first has become a job, a repeat is that job and never reaches the backend.
#[test]
fn a_key_in_progress_is_a_409_and_a_repeat_of_a_job_is_not_sent_again() {
    let hook = webhook();
    let slow = MockBackend::start(slow_router(Duration::from_millis(1500)));
    let gw = start_gateway(&slow.url(), "1s", RETRY_PATIENT, &hook.url());
    let body = json!({ "sku": "S-9" });
    let first = std::thread::scope(|scope| {
        let first = scope.spawn(|| post(&gw, "/orders", &body, &[("idempotency-key", "slow-1")]));
        std::thread::sleep(Duration::from_millis(300));
        let repeat = post(&gw, "/orders", &body, &[("idempotency-key", "slow-1")]);
        let problem = assert_problem(&repeat, 409);
        assert_eq!(
            problem["type"],
            "urn:propylon:problem:idempotency-key-in-progress"
        );
        first.join().expect("first request thread")
    });
    // The backend did not answer within its 1 s timeout: the first call became a job.
    let id = assert_accepted(&first, "the first request (backend too slow)");
    let asked = Instant::now();
    let again = post(&gw, "/orders", &body, &[("idempotency-key", "slow-1")]);
    // Answered from the store: it did not wait out the backend's 1 s timeout again.
    assert!(
        asked.elapsed() < Duration::from_millis(800),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(again.status, 202, "{}", again.text());
    let location = format!("/jobs/{id}");
    assert_eq!(again.header("location").as_deref(), Some(location.as_str()));
    // The same job, in whatever state it has reached by now.
    assert_eq!(again.json()["id"], id.as_str());
    let other = post(
        &gw,
        "/orders",
        &json!({ "sku": "S-10" }),
        &[("idempotency-key", "slow-1")],
    );
    assert_eq!(assert_problem(&other, 422)["type"], IDEMPOTENCY_REUSED);
}

/// A call answered at once, made with an `Idempotency-Key`: a repeat gets the same answer
/// from the store and the backend is not called a second time (no second order).
#[test]
fn a_repeat_of_a_call_answered_live_gets_the_same_answer_without_a_second_delivery() {
    let hook = webhook();
    let backend = RecordingBackend::start(order_reply());
    let gw = start_gateway(&backend.url(), "2s", RETRY_PATIENT, &hook.url());
    let body = json!({ "sku": "L-1" });
    let first = post(&gw, "/orders", &body, &[("idempotency-key", "live-1")]);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json(), mapped_order());
    let again = post(&gw, "/orders", &body, &[("idempotency-key", "live-1")]);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json(), mapped_order());
    assert_eq!(backend.call_count(), 1, "calls: {:?}", backend.calls());
    let other = post(
        &gw,
        "/orders",
        &json!({ "sku": "L-2" }),
        &[("idempotency-key", "live-1")],
    );
    assert_eq!(assert_problem(&other, 422)["type"], IDEMPOTENCY_REUSED);
    assert_eq!(backend.call_count(), 1);
    // Without a key every call goes to the backend.
    assert_eq!(post(&gw, "/orders", &body, &[]).status, 200);
    assert_eq!(backend.call_count(), 2);
}
