//! End-to-end test harness: starts the real `propylon` binary on loopback ports, against
//! mock backends (axum on a shared tokio runtime), and talks to it with a blocking client.
//!
//! Rules kept here: loopback only, no fixed ports, every wait bounded, every process and
//! server stopped on Drop, and the gateway's log printed when a test fails.

#![allow(dead_code)]

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

/// The admin token substituted for `{{TOKEN}}`.
pub const TOKEN: &str = "e2e-admin-token-7Hq2xZ";

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_propylon");

// ---------------------------------------------------------------------------------------
// Fixtures: specs and configs shared by the tests.
// ---------------------------------------------------------------------------------------

/// OpenAPI 3.0 facade of the `customers` API.
pub const CUSTOMERS_SPEC: &str = r#"openapi: 3.0.3
info:
  title: Customers
  version: "1.0"
paths:
  /customers:
    post:
      operationId: createCustomer
      requestBody:
        content:
          application/json:
            schema:
              type: object
      responses:
        "201":
          description: created
  /customers/{id}:
    parameters:
      - name: id
        in: path
        required: true
        schema:
          type: string
    get:
      operationId: getCustomer
      parameters:
        - name: x
          in: query
          required: false
          schema:
            type: string
      responses:
        "200":
          description: the customer
    delete:
      operationId: deleteCustomer
      responses:
        "204":
          description: deleted
  /uploads:
    post:
      operationId: upload
      requestBody:
        content:
          application/octet-stream:
            schema:
              type: string
              format: binary
      responses:
        "200":
          description: echoed
"#;

/// OpenAPI 3.0 facade of a second API, `orders`.
pub const ORDERS_SPEC: &str = r#"openapi: 3.0.3
info:
  title: Orders
  version: "1.0"
paths:
  /orders:
    get:
      operationId: listOrders
      responses:
        "200":
          description: orders
  /orders/{orderId}:
    get:
      operationId: getOrder
      parameters:
        - name: orderId
          in: path
          required: true
          schema:
            type: string
      responses:
        "200":
          description: one order
"#;

/// A config for the `customers` API with every spec operation mapped to backend `crm`
/// (at `@CRM@`, with timeout `@TIMEOUT@`).
pub const CUSTOMERS_CONFIG_TEMPLATE: &str = r#"server:
  listen: "{{LISTEN}}"
  admin_listen: "{{ADMIN}}"
  admin_token: "{{TOKEN}}"
backends:
  crm:
    url: "@CRM@"
    timeout: @TIMEOUT@
apis:
  - name: customers
    spec: ./customers.yaml
    operations:
      getCustomer:
        backend: crm
        request:
          method: POST
          path: "/crm/customers/{id}/fetch"
      createCustomer:
        backend: crm
      deleteCustomer:
        backend: crm
      upload:
        backend: crm
        request:
          path: /raw/uploads
"#;

/// The customers config pointing `crm` at `crm_url`, timeout 2s.
pub fn customers_config(crm_url: &str) -> String {
    customers_config_with_timeout(crm_url, "2s")
}

pub fn customers_config_with_timeout(crm_url: &str, timeout: &str) -> String {
    CUSTOMERS_CONFIG_TEMPLATE
        .replace("@CRM@", crm_url)
        .replace("@TIMEOUT@", timeout)
}

/// The files the customers config references.
pub fn customers_files() -> Vec<(&'static str, &'static str)> {
    vec![("customers.yaml", CUSTOMERS_SPEC)]
}

// ---------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------

/// A free loopback port: bound to 127.0.0.1:0, then dropped. Never hands out the same port
/// twice within this test process.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(|| Mutex::new(HashSet::new()));
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        drop(listener);
        let mut given = given.lock().unwrap_or_else(|e| e.into_inner());
        if given.insert(port) {
            return port;
        }
    }
    panic!("could not find a free port in 100 tries");
}

/// A URL on a loopback port that was bound and then released: connecting is refused.
pub fn closed_port_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

// ---------------------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------------------

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    /// A header's value (the first one), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body text if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}); status {}, body: {}",
                self.status,
                self.text()
            )
        })
    }
}

/// A blocking client that returns 4xx/5xx as responses, uses no proxy, and gives up after
/// 20 s per call.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// Sends one request; `Err` only on a transport error (connection refused, reset...).
pub fn try_send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Resp, ureq::Error> {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut response = match body {
        Some(bytes) => agent.run(builder.body(bytes.to_vec()).expect("build request"))?,
        None => agent.run(builder.body(()).expect("build request"))?,
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()?;
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// Sends one request; panics on a transport error.
pub fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Resp {
    try_send(agent, method, url, headers, body)
        .unwrap_or_else(|e| panic!("{method} {url} failed at the transport level: {e}"))
}

// ---------------------------------------------------------------------------------------
// Assertions shared by the tests
// ---------------------------------------------------------------------------------------

/// Asserts that `resp` is an RFC 9457 problem made by the gateway with this status, and
/// returns its JSON.
pub fn assert_problem(resp: &Resp, status: u16) -> Value {
    assert_eq!(
        resp.status,
        status,
        "expected status {status}, got {} with body {}",
        resp.status,
        resp.text()
    );
    let content_type = resp.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/problem+json"),
        "content-type of a gateway error must be application/problem+json, got {content_type:?}"
    );
    let problem = resp.json();
    assert!(
        problem["type"].is_string(),
        "problem.type must be a string: {problem}"
    );
    assert!(
        problem["title"].is_string(),
        "problem.title must be a string: {problem}"
    );
    assert_eq!(
        problem["status"].as_u64(),
        Some(u64::from(status)),
        "problem.status must equal the HTTP status: {problem}"
    );
    assert!(
        problem["detail"].is_string(),
        "problem.detail must be a string: {problem}"
    );
    let request_id = resp
        .header("x-request-id")
        .unwrap_or_else(|| panic!("a problem response must carry x-request-id: {problem}"));
    assert_eq!(
        problem["request_id"].as_str(),
        Some(request_id.as_str()),
        "problem.request_id must equal the x-request-id header: {problem}"
    );
    problem
}

/// True if `s` looks like a UUID (8-4-4-4-12 hex digits).
pub fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    lens == [8, 4, 4, 4, 12]
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The value of one Prometheus series, `series` written exactly as in the exposition, e.g.
/// `propylon_config_version` or `propylon_config_reloads_total{result="success"}`.
pub fn metric_value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        let value = rest.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Sum of every series of a metric family (all label sets), e.g. `propylon_upstream_errors_total`.
pub fn metric_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let after_labels = if let Some(labelled) = rest.strip_prefix('{') {
                let end = labelled.find("} ")?;
                &labelled[end + 1..]
            } else {
                rest
            };
            let value = after_labels.strip_prefix(' ')?;
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

/// `n` bytes of deterministic pseudo-random data (xorshift64*).
pub fn pseudo_random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Polls `f` every `every` until it returns `Some`, for at most `max`.
pub fn poll_until<T>(
    max: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + max;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

// ---------------------------------------------------------------------------------------
// The gateway process
// ---------------------------------------------------------------------------------------

/// A running `propylon run`, in its own temp dir; killed on Drop (printing its log if the
/// test is failing).
pub struct Gateway {
    child: Child,
    dir: tempfile::TempDir,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    agent: ureq::Agent,
}

impl Gateway {
    pub fn start(config_yaml: &str) -> Gateway {
        Gateway::start_with_files(config_yaml, &[])
    }

    pub fn start_with_files(config_yaml: &str, files: &[(&str, &str)]) -> Gateway {
        Gateway::start_with_args(config_yaml, files, &[])
    }

    /// Starts `propylon run --config … EXTRA_ARGS` (e.g. `--log-format json`).
    pub fn start_with_args(
        config_yaml: &str,
        files: &[(&str, &str)],
        extra_args: &[&str],
    ) -> Gateway {
        let dir = tempfile::Builder::new()
            .prefix("propylon-e2e-")
            .tempdir()
            .expect("create temp dir");
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("listen addr");
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port())
            .parse()
            .expect("admin addr");
        for (rel, content) in files {
            let path = dir.path().join(rel);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).expect("create file's folder");
            }
            fs::write(&path, content).expect("write fixture file");
        }
        let config_path = dir.path().join("propylon.yaml");
        fs::write(&config_path, substitute(config_yaml, listen, admin)).expect("write config");

        let log_path = dir.path().join("gateway.log");
        let log = fs::File::create(&log_path).expect("create gateway.log");
        let log_err = log.try_clone().expect("clone log handle");
        let child = Command::new(BIN)
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .args(extra_args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .expect("spawn the propylon binary");

        let mut gateway = Gateway {
            child,
            dir,
            listen,
            admin,
            agent: agent(),
        };
        gateway.wait_ready();
        gateway
    }

    /// Waits until `GET /admin/health` answers 200 (with the token) and the main listener
    /// accepts connections; at most 30 s.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let health = self.admin_url("/admin/health");
        let auth = format!("Bearer {TOKEN}");
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "propylon exited during startup with {status}; log:\n{}",
                    self.log()
                );
            }
            let healthy = try_send(
                &self.agent,
                "GET",
                &health,
                &[("authorization", auth.as_str())],
                None,
            )
            .map(|r| r.status == 200)
            .unwrap_or(false);
            if healthy && TcpStream::connect_timeout(&self.listen, Duration::from_secs(1)).is_ok() {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "propylon not ready after 30 s (admin {health}, listen {}); log:\n{}",
                    self.listen,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.listen, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// Any request to the main listener.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        send(&self.agent, method, &self.url(path), headers, body)
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], None)
    }

    /// Any request to the admin listener, with the bearer token.
    pub fn admin_request(&self, method: &str, path: &str) -> Resp {
        let auth = format!("Bearer {TOKEN}");
        send(
            &self.agent,
            method,
            &self.admin_url(path),
            &[("authorization", auth.as_str())],
            None,
        )
    }

    pub fn admin_get(&self, path: &str) -> Resp {
        self.admin_request("GET", path)
    }

    pub fn admin_post(&self, path: &str) -> Resp {
        self.admin_request("POST", path)
    }

    /// `GET /admin/config`, as JSON (asserting 200).
    pub fn admin_config(&self) -> Value {
        let resp = self.admin_get("/admin/config");
        assert_eq!(resp.status, 200, "GET /admin/config: {}", resp.text());
        resp.json()
    }

    /// The `version` shown by `/admin/config`.
    pub fn config_version(&self) -> u64 {
        let config = self.admin_config();
        config["version"]
            .as_u64()
            .unwrap_or_else(|| panic!("/admin/config has no numeric version: {config}"))
    }

    /// `GET /metrics` text (asserting 200).
    pub fn metrics(&self) -> String {
        let resp = self.admin_get("/metrics");
        assert_eq!(resp.status, 200, "GET /metrics: {}", resp.text());
        resp.text()
    }

    /// Waits (at most `max`) until `/admin/config` shows a version greater than `after`;
    /// returns it, or panics.
    pub fn wait_version_above(&self, after: u64, max: Duration) -> u64 {
        poll_until(max, Duration::from_millis(50), || {
            let v = self.config_version();
            (v > after).then_some(v)
        })
        .unwrap_or_else(|| {
            panic!(
                "config version did not go above {after} within {max:?}; /admin/config: {}",
                self.admin_config()
            )
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("propylon.yaml")
    }

    /// Replaces the config file atomically (write a temp file, rename over), with the same
    /// placeholder substitution and ports as at start.
    pub fn rewrite_config(&self, new_yaml: &str) {
        self.write_file(
            "propylon.yaml",
            &substitute(new_yaml, self.listen, self.admin),
        );
    }

    /// Writes a file under the gateway's folder atomically (temp file + rename).
    pub fn write_file(&self, rel: &str, content: &str) {
        let path = self.dir.path().join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create file's folder");
        }
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{file_name}.tmp"));
        {
            let mut f = fs::File::create(&tmp).expect("create temp file");
            f.write_all(content.as_bytes()).expect("write temp file");
            f.sync_all().expect("sync temp file");
        }
        fs::rename(&tmp, &path).expect("rename temp file over the target");
    }

    /// The gateway's stdout+stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("gateway.log"))
            .unwrap_or_else(|e| format!("<cannot read gateway.log: {e}>"))
    }

    /// Sends SIGHUP to the gateway process.
    pub fn sighup(&self) {
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill -HUP");
        assert!(status.success(), "kill -HUP {} failed", self.pid());
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "===== propylon log ({}) =====\n{}\n===== end of propylon log =====",
                self.dir.path().display(),
                self.log()
            );
        }
    }
}

fn substitute(text: &str, listen: SocketAddr, admin: SocketAddr) -> String {
    text.replace("{{LISTEN}}", &listen.to_string())
        .replace("{{ADMIN}}", &admin.to_string())
        .replace("{{TOKEN}}", TOKEN)
}

// ---------------------------------------------------------------------------------------
// `propylon check`
// ---------------------------------------------------------------------------------------

/// Runs `propylon check --config FILE` (cwd `/`, so relative paths must be resolved against
/// the config's folder); returns (exit code, stdout, stderr). At most 60 s.
pub fn run_check(config_path: &Path) -> (i32, String, String) {
    run_check_with_env(config_path, &[], &[])
}

/// `run_check` with environment variables set and removed.
pub fn run_check_with_env(
    config_path: &Path,
    set: &[(&str, &str)],
    remove: &[&str],
) -> (i32, String, String) {
    let config = config_path.to_string_lossy();
    run_propylon(&["check", "--config", &config], set, remove)
}

/// Runs `propylon ARGS` to completion (cwd `/`, at most 60 s); returns (exit code, stdout,
/// stderr).
pub fn run_propylon(args: &[&str], set: &[(&str, &str)], remove: &[&str]) -> (i32, String, String) {
    let out_dir = tempfile::tempdir().expect("temp dir for command output");
    let out_path = out_dir.path().join("stdout");
    let err_path = out_dir.path().join("stderr");
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            fs::File::create(&out_path).expect("create stdout file"),
        ))
        .stderr(Stdio::from(
            fs::File::create(&err_path).expect("create stderr file"),
        ));
    for (k, v) in set {
        cmd.env(k, v);
    }
    for k in remove {
        cmd.env_remove(k);
    }
    let mut child = cmd.spawn().expect("spawn propylon");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        match child.try_wait().expect("wait for propylon check") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "propylon {args:?} did not exit within 60 s; stdout: {} stderr: {}",
                    fs::read_to_string(&out_path).unwrap_or_default(),
                    fs::read_to_string(&err_path).unwrap_or_default()
                );
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    let code = status
        .code()
        .unwrap_or_else(|| panic!("propylon {args:?} killed by a signal; stderr: {stderr}"));
    (code, stdout, stderr)
}

/// A temp dir holding `propylon.yaml` (placeholders substituted with fresh ports) and files.
pub fn write_config_dir(config_yaml: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("propylon-check-")
        .tempdir()
        .expect("create temp dir");
    for (rel, content) in files {
        let path = dir.path().join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create file's folder");
        }
        fs::write(&path, content).expect("write fixture file");
    }
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    fs::write(
        dir.path().join("propylon.yaml"),
        substitute(config_yaml, listen, admin),
    )
    .expect("write config");
    dir
}

// ---------------------------------------------------------------------------------------
// Mock backends
// ---------------------------------------------------------------------------------------

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .thread_name("mock-backend")
            .enable_all()
            .build()
            .expect("build the mock backends' tokio runtime")
    })
}

/// An axum server on 127.0.0.1:0, stopped on Drop.
pub struct MockBackend {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MockBackend {
    /// Like `start`, and counts the TCP connections the backend accepts.
    pub fn start_counting(router: Router) -> (MockBackend, Arc<AtomicUsize>) {
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind mock backend");
        listener
            .set_nonblocking(true)
            .expect("set mock listener non-blocking");
        let addr = listener.local_addr().expect("mock local_addr");
        let task = runtime().spawn(async move {
            use axum::serve::ListenerExt;
            let listener = tokio::net::TcpListener::from_std(listener)
                .expect("tokio listener from std")
                .tap_io(move |_| {
                    counter.fetch_add(1, Ordering::SeqCst);
                });
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("mock backend {addr} stopped: {e}");
            }
        });
        (MockBackend { addr, task }, accepted)
    }

    pub fn start(router: Router) -> MockBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind mock backend");
        listener
            .set_nonblocking(true)
            .expect("set mock listener non-blocking");
        let addr = listener.local_addr().expect("mock local_addr");
        let task = runtime().spawn(async move {
            let listener =
                tokio::net::TcpListener::from_std(listener).expect("tokio listener from std");
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("mock backend {addr} stopped: {e}");
            }
        });
        MockBackend { addr, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for MockBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Echoes every request as 200 JSON `{backend, method, path, query, headers, body}`, except
/// paths under `/raw`, which get the exact request bytes back as application/octet-stream.
pub fn echo_router() -> Router {
    tagged_echo_router("echo")
}

/// `echo_router` whose answers carry `"backend": tag`, to tell backends apart.
pub fn tagged_echo_router(tag: &str) -> Router {
    echo_router_with(tag, None)
}

/// An echo backend (tag "slow") that waits `delay` before answering.
pub fn slow_router(delay: Duration) -> Router {
    echo_router_with("slow", Some(delay))
}

fn echo_router_with(tag: &str, delay: Option<Duration>) -> Router {
    let tag = tag.to_string();
    Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let tag = tag.clone();
            async move {
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                echo(&tag, method, uri, headers, body)
            }
        },
    )
}

fn echo(tag: &str, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if uri.path() == "/raw" || uri.path().starts_with("/raw/") {
        return (
            StatusCode::OK,
            [("content-type", "application/octet-stream")],
            body,
        )
            .into_response();
    }
    let mut header_map = serde_json::Map::new();
    for name in headers.keys() {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        header_map.insert(name.as_str().to_string(), Value::String(values.join(", ")));
    }
    let answer = json!({
        "backend": tag,
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query().unwrap_or(""),
        "headers": header_map,
        "body": String::from_utf8_lossy(&body),
    });
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        answer.to_string(),
    )
        .into_response()
}

/// Answers every request with `code` and JSON `{"backend_status": code}`, plus header
/// `x-backend: status`.
pub fn status_router(code: u16) -> Router {
    Router::new().fallback(move || async move {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [
                ("content-type", "application/json"),
                ("x-backend", "status"),
            ],
            json!({ "backend_status": code }).to_string(),
        )
            .into_response()
    })
}

// ---------------------------------------------------------------------------------------
// Recording backends (mapping and validation tests): every request is kept, the answer is
// set by the test and may change between requests.
// ---------------------------------------------------------------------------------------

/// One request as a mock backend received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string (`None` when the URI has no `?`).
    pub query: Option<String>,
    /// Header names lower-case, in arrival order, one entry per value.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }

    /// Every value of a header (name case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<String> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body text if it is not JSON.
    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the backend received a body that is not JSON ({e}): {:?}",
                self.body_text()
            )
        })
    }

    /// The query string split into `(name, value)` pairs (not decoded), sorted.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = self
            .query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (p.to_string(), String::new()),
            })
            .collect();
        pairs.sort();
        pairs
    }
}

/// What a recording backend answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Answer with the request's own body (application/octet-stream) instead of `body`.
    pub echo_body: bool,
}

impl Reply {
    /// `status` with a JSON body (`content-type: application/json`).
    pub fn json(status: u16, value: Value) -> Reply {
        Reply::new(status, "application/json", value.to_string().as_bytes())
    }

    /// `status` with this content type and body.
    pub fn new(status: u16, content_type: &str, body: &[u8]) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".to_string(), content_type.to_string())],
            body: body.to_vec(),
            echo_body: false,
        }
    }

    /// 200 with the request's body echoed as application/octet-stream.
    pub fn echo_body() -> Reply {
        Reply {
            status: 200,
            headers: vec![(
                "content-type".to_string(),
                "application/octet-stream".to_string(),
            )],
            body: Vec::new(),
            echo_body: true,
        }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// A mock backend that records every request and answers with the current `Reply`.
pub struct RecordingBackend {
    pub backend: MockBackend,
    calls: Arc<Mutex<Vec<Recorded>>>,
    reply: Arc<Mutex<Reply>>,
}

impl RecordingBackend {
    pub fn start(reply: Reply) -> RecordingBackend {
        let calls: Arc<Mutex<Vec<Recorded>>> = Arc::new(Mutex::new(Vec::new()));
        let reply = Arc::new(Mutex::new(reply));
        let (calls_in, reply_in) = (calls.clone(), reply.clone());
        let router = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (calls, reply) = (calls_in.clone(), reply_in.clone());
                async move {
                    let recorded = Recorded {
                        method: method.as_str().to_string(),
                        path: uri.path().to_string(),
                        query: uri.query().map(str::to_string),
                        headers: headers
                            .iter()
                            .map(|(n, v)| {
                                (
                                    n.as_str().to_string(),
                                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                )
                            })
                            .collect(),
                        body: body.to_vec(),
                    };
                    calls
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(recorded);
                    let reply = reply.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let mut builder = axum::http::Response::builder().status(
                        StatusCode::from_u16(reply.status)
                            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    );
                    for (name, value) in &reply.headers {
                        builder = builder.header(name.as_str(), value.as_str());
                    }
                    let out = if reply.echo_body {
                        body.to_vec()
                    } else {
                        reply.body.clone()
                    };
                    builder
                        .body(axum::body::Body::from(out))
                        .expect("build mock reply")
                }
            },
        );
        RecordingBackend {
            backend: MockBackend::start(router),
            calls,
            reply,
        }
    }

    pub fn url(&self) -> String {
        self.backend.url()
    }

    /// Changes the answer for the next requests.
    pub fn set_reply(&self, reply: Reply) {
        *self.reply.lock().unwrap_or_else(|e| e.into_inner()) = reply;
    }

    /// Every request received so far.
    pub fn calls(&self) -> Vec<Recorded> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn call_count(&self) -> usize {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The last request received; panics if there was none.
    pub fn last(&self) -> Recorded {
        self.calls()
            .last()
            .cloned()
            .expect("the backend received no request")
    }
}

// ---------------------------------------------------------------------------------------
// Raw HTTP/1.1 over a TcpStream (for requests ureq will not shape, e.g. chunked bodies)
// ---------------------------------------------------------------------------------------

/// A response read off a raw connection.
#[derive(Debug)]
pub struct RawResp {
    pub status: u16,
    /// Header names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked if the response was chunked.
    pub body: Vec<u8>,
}

impl RawResp {
    pub fn header(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "raw response body is not JSON ({e}); status {}, body: {}",
                self.status,
                self.text()
            )
        })
    }

    /// As a `Resp`, so that `assert_problem` applies.
    pub fn into_resp(self) -> Resp {
        let mut headers = ureq::http::HeaderMap::new();
        for (name, value) in &self.headers {
            if let (Ok(n), Ok(v)) = (
                ureq::http::HeaderName::from_bytes(name.as_bytes()),
                ureq::http::HeaderValue::from_str(value),
            ) {
                headers.append(n, v);
            }
        }
        Resp {
            status: self.status,
            headers,
            body: self.body,
        }
    }
}

/// `data` encoded as an HTTP/1.1 chunked body of `chunk` bytes per chunk, with the final
/// zero-size chunk.
pub fn chunked_body(data: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / chunk.max(1) * 8 + 8);
    for piece in data.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Writes `request` (head and body, as bytes) on a new connection to `addr` and reads one
/// response. Write errors are ignored (a server may answer early and close); reads stop at
/// the end of the response, at EOF, or after 20 s.
pub fn raw_http(addr: SocketAddr, request: &[u8]) -> RawResp {
    use std::io::Read;
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to gateway");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("set read timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .expect("set write timeout");
    let _ = stream.write_all(request);
    let _ = stream.flush();

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut head_end: Option<usize> = None;
    loop {
        if let Some(end) = head_end {
            if raw_response_complete(&buf[..end], &buf[end..]) {
                break;
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
        if head_end.is_none() {
            head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
        }
    }
    let end = head_end.unwrap_or_else(|| {
        panic!(
            "no complete response head from {addr}; got: {:?}",
            String::from_utf8_lossy(&buf)
        )
    });
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &buf[end..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest).unwrap_or_else(|| rest.to_vec())
    } else if let Some(len) = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    RawResp {
        status,
        headers,
        body,
    }
}

fn raw_response_complete(head: &[u8], rest: &[u8]) -> bool {
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        return rest.ends_with(b"0\r\n\r\n") && dechunk(rest).is_some();
    }
    match head
        .split("\r\n")
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        Some(len) => rest.len() >= len,
        None => false,
    }
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

// ---------------------------------------------------------------------------------------
// Restarting the gateway (auth and limits tests): SIGTERM, then the same folder, ports and
// config again, so that state kept under `store.path` must survive.
// ---------------------------------------------------------------------------------------

impl Gateway {
    /// Sends SIGTERM and waits (at most `max`) for the process to exit; returns its exit
    /// status. Panics, after a SIGKILL, if it did not exit in time.
    pub fn terminate(&mut self, max: Duration) -> std::process::ExitStatus {
        if let Ok(Some(status)) = self.child.try_wait() {
            return status;
        }
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill -TERM");
        assert!(sent.success(), "kill -TERM {} failed", self.pid());
        let deadline = Instant::now() + max;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "propylon did not exit within {max:?} of SIGTERM; log:\n{}",
                        self.log()
                    );
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("waiting for propylon: {e}"),
            }
        }
    }

    /// Stops the gateway with SIGTERM (at most 20 s) and starts `propylon run` again in the
    /// same folder, on the same ports, with the same config file (as it is now on disk);
    /// waits until it is ready. The log file is appended to. Extra arguments given at the
    /// first start are not repeated.
    pub fn restart(&mut self) {
        self.terminate(Duration::from_secs(20));
        for addr in [self.listen, self.admin] {
            let free = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
                TcpListener::bind(addr).ok().map(drop)
            });
            assert!(
                free.is_some(),
                "port {addr} still in use 10 s after the gateway exited"
            );
        }
        let log_path = self.dir.path().join("gateway.log");
        let mut log = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log_path)
            .expect("open gateway.log for appending");
        let _ = writeln!(log, "===== restarted by the test =====");
        let log_err = log.try_clone().expect("clone log handle");
        self.child = Command::new(BIN)
            .arg("run")
            .arg("--config")
            .arg(self.config_path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .expect("spawn the propylon binary again");
        self.wait_ready();
    }
}
