//! `jobs-bench`: how many durable jobs the gateway accepts per second while the backend is
//! down, and how fast the replay worker drains them once a fast backend is up (issue 5).
//!
//! One run, per scenario (`async: fallback`, `async: always`):
//! 1. a temp dir with a config and a spec (one public `POST /orders`, backend on a port that
//!    was reserved and released, so every connection to it is refused); `propylon run`
//!    started on free loopback ports, its output in `gateway.log` of the temp dir;
//! 2. accept phase: C keep-alive connections POST a ~500 B JSON body for D seconds (at most
//!    `--max-jobs` requests); every 202 is a job committed to SQLite before the answer;
//! 3. drain phase: a fast backend (axum, `201 {"ok":true}`) comes up on the reserved port;
//!    `/metrics` is polled until every accepted job has succeeded and the queue gauges are 0
//!    (at most `--drain-max` seconds);
//! 4. the gateway's peak RSS (VmHWM) and CPU time are read, and it is killed.
//!
//! The median of `--runs` runs is printed and written, with every run, to
//! `bench/results/jobs.json`. Everything is on loopback; every loop is bounded in count and
//! time; the gateway is killed on drop (also on panic). Run it with `bench/jobs.sh`.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "jobs-bench-admin-token-5Kp9";
/// A single request (or admin call) that takes longer than this is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Larger answer headers than this are an error.
const MAX_HEAD: usize = 64 * 1024;
const POLL: Duration = Duration::from_millis(100);

const TARGET_ACCEPTED: f64 = 5_000.0;
const TARGET_REPLAYED: f64 = 2_000.0;

const USAGE: &str = "\
jobs-bench: durable jobs accepted/s with the backend down, and replay drain rate.

Options (defaults in brackets):
  --propylon PATH       the gateway binary [target/release/propylon of this workspace]
  --connections N       concurrent keep-alive connections in the accept phase [64]
  --duration SECS       length of the accept phase [10]
  --max-jobs N          most requests sent in one accept phase [200000]
  --drain-max SECS      longest drain phase [120]
  --runs N              runs per scenario; the median is reported [3]
  --scenarios LIST      fallback,always [fallback,always]
  --body-bytes N        size of the JSON body [500]
  --threads N           `server.threads` of the gateway [unset: one per core]
  --out PATH            the JSON report [bench/results/jobs.json]
";

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Fallback,
    Always,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Fallback => "fallback",
            Mode::Always => "always",
        }
    }
}

struct Options {
    propylon: PathBuf,
    connections: usize,
    duration: Duration,
    max_jobs: u64,
    drain_max: Duration,
    runs: usize,
    scenarios: Vec<Mode>,
    body_bytes: usize,
    threads: Option<usize>,
    out: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        propylon: workspace_root().join("target/release/propylon"),
        connections: 64,
        duration: Duration::from_secs(10),
        max_jobs: 200_000,
        drain_max: Duration::from_secs(120),
        runs: 3,
        scenarios: vec![Mode::Fallback, Mode::Always],
        body_bytes: 500,
        threads: None,
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("results/jobs.json"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag}: `{v}` is not a positive integer"))
        };
        let size = |v: &str| number(v).map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        match flag.as_str() {
            "--propylon" => o.propylon = PathBuf::from(value),
            "--connections" => o.connections = size(&value)?,
            "--duration" => o.duration = Duration::from_secs(number(&value)?),
            "--max-jobs" => o.max_jobs = number(&value)?,
            "--drain-max" => o.drain_max = Duration::from_secs(number(&value)?),
            "--runs" => o.runs = size(&value)?,
            "--body-bytes" => o.body_bytes = size(&value)?,
            "--threads" => o.threads = Some(size(&value)?),
            "--out" => o.out = PathBuf::from(value),
            "--scenarios" => {
                o.scenarios = value
                    .split(',')
                    .map(|s| match s.trim() {
                        "fallback" => Ok(Mode::Fallback),
                        "always" => Ok(Mode::Always),
                        other => Err(format!("unknown scenario `{other}`")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    if o.connections > 10_000 || o.runs > 100 {
        return Err("--connections is at most 10000 and --runs at most 100".into());
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------
// The gateway process
// ---------------------------------------------------------------------------------------

/// A free loopback port: bound, then released.
fn free_port() -> io::Result<u16> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn config(listen: u16, admin: u16, backend: u16, mode: Mode, threads: Option<usize>) -> String {
    let threads = threads.map_or(String::new(), |n| format!("  threads: {n}\n"));
    format!(
        r#"server:
  listen: "127.0.0.1:{listen}"
  admin_listen: "127.0.0.1:{admin}"
  admin_token: "{TOKEN}"
{threads}store:
  kind: embedded
  path: ./data
backends:
  erp:
    url: http://127.0.0.1:{backend}
    timeout: 2s
apis:
  - name: orders
    spec: ./orders.yaml
    operations:
      createOrder:
        backend: erp
        async: {mode}
        retry: {{ max_attempts: 1000, backoff: 200ms, max_backoff: 1s }}
"#,
        mode = mode.name()
    )
}

/// `propylon run` in its own temp dir; killed (SIGKILL) and reaped on drop, then the dir
/// is removed.
struct Gateway {
    child: Child,
    pid: u32,
    listen: SocketAddr,
    admin: SocketAddr,
    backend_port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    async fn start(opts: &Options, mode: Mode) -> Result<Gateway, String> {
        let dir = tempfile::Builder::new()
            .prefix("propylon-jobs-bench-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let port = |what: &str| free_port().map_err(|e| format!("a free port for {what}: {e}"));
        let (listen, admin, backend) = (port("listen")?, port("admin")?, port("the backend")?);
        let path = dir.path();
        std::fs::write(
            path.join("propylon.yaml"),
            config(listen, admin, backend, mode, opts.threads),
        )
        .and_then(|()| std::fs::write(path.join("orders.yaml"), propylon_bench::ASYNC_ORDERS_SPEC))
        .map_err(|e| format!("writing the config: {e}"))?;
        let log = std::fs::File::create(path.join("gateway.log"))
            .map_err(|e| format!("gateway.log: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("gateway.log: {e}"))?;
        let child = Command::new(&opts.propylon)
            .arg("run")
            .arg("--config")
            .arg(path.join("propylon.yaml"))
            .current_dir(path)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|e| format!("starting {}: {e}", opts.propylon.display()))?;
        let mut gateway = Gateway {
            pid: child.id(),
            child,
            listen: SocketAddr::from(([127, 0, 0, 1], listen)),
            admin: SocketAddr::from(([127, 0, 0, 1], admin)),
            backend_port: backend,
            dir,
        };
        gateway.wait_ready().await?;
        Ok(gateway)
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "propylon exited during startup with {status}; log:\n{}",
                    self.log()
                ));
            }
            let healthy = matches!(admin_get(self.admin, "/admin/health").await, Ok((200, _)));
            if healthy && TcpStream::connect(self.listen).await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "propylon not healthy after {STARTUP_TIMEOUT:?}; log:\n{}",
                    self.log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    async fn metrics(&self) -> Result<Metrics, String> {
        match admin_get(self.admin, "/metrics").await {
            Ok((200, body)) => Ok(Metrics::parse(&String::from_utf8_lossy(&body))),
            Ok((status, _)) => Err(format!("/metrics answered {status}")),
            Err(e) => Err(format!("/metrics: {e}")),
        }
    }

    /// Peak resident set size (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }

    fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds(&format!("/proc/{}/stat", self.pid))
    }
}

/// utime + stime of a process, in seconds (USER_HZ is 100 on Linux).
fn cpu_seconds(stat_path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // The command name (field 2) may hold spaces: count from the closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

// ---------------------------------------------------------------------------------------
// A small HTTP/1.1 client
// ---------------------------------------------------------------------------------------

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// One answer read from `stream` into `buf` (which may hold bytes already read): its
/// status, its body, and whether the server will close the connection.
async fn read_answer(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> io::Result<(u16, Vec<u8>, bool)> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).map_err(|_| bad("head is not UTF-8"))?;
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or_default();
            let status: u16 = status_line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad(format!("status line `{status_line}`")))?;
            let (mut length, mut chunked, mut close) = (None, false, false);
            for line in lines {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
                match name.as_str() {
                    "content-length" => length = value.parse::<usize>().ok(),
                    "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                    "connection" => close = value.eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
            if status == 204 || status == 304 || status < 200 {
                length = Some(0);
            }
            let body_start = end + 4;
            // Enough for the answers of this bench: a chunked body ends at `0\r\n\r\n`.
            let total = loop {
                if chunked {
                    if let Some(at) = find(&buf[body_start..], b"0\r\n\r\n") {
                        break body_start + at + 5;
                    }
                } else if let Some(length) = length {
                    if buf.len() >= body_start + length {
                        break body_start + length;
                    }
                }
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    // Neither a length nor chunks: the body ends with the connection.
                    if length.is_none() && !chunked {
                        break buf.len();
                    }
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            };
            let body = buf[body_start..total].to_vec();
            buf.drain(..total);
            return Ok((status, body, close));
        }
        if buf.len() > MAX_HEAD {
            return Err(bad("answer head too large"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `GET path` on the admin listener with the bearer token, on a connection of its own.
async fn admin_get(addr: SocketAddr, path: &str) -> io::Result<(u16, Vec<u8>)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
             Connection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::new();
        let (status, body, _) = read_answer(&mut stream, &mut buf).await?;
        Ok((status, body))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}

/// `POST /orders` with a fixed JSON body of about `size` bytes, as raw bytes.
fn order_request(addr: SocketAddr, size: usize) -> Vec<u8> {
    let mut body = json!({
        "reference": "PO-2026-000187",
        "currency": "EUR",
        "customer": {"id": "C-100234", "name": "Ada Lovelace", "email": "ada@example.com"},
        "items": [{"sku": "SKU-0001", "qty": 2}, {"sku": "SKU-0002", "qty": 1}],
        "notes": ""
    });
    let base = body.to_string().len();
    body["notes"] = Value::String("x".repeat(size.saturating_sub(base)));
    let body = body.to_string();
    let mut request = format!(
        "POST /orders HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body.as_bytes());
    request
}

// ---------------------------------------------------------------------------------------
// Accept phase
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct AcceptTally {
    accepted: u64,
    /// Latencies of the 202s, in microseconds.
    latencies_us: Vec<u32>,
    /// Answers other than 202, by status.
    other: BTreeMap<u16, u64>,
    /// Connect, read and write failures and timeouts.
    io_errors: u64,
    /// The first few error messages.
    samples: Vec<String>,
}

impl AcceptTally {
    fn error(&mut self, what: String) {
        self.io_errors += 1;
        if self.samples.len() < 3 {
            self.samples.push(what);
        }
    }

    fn merge(&mut self, other: AcceptTally) {
        self.accepted += other.accepted;
        self.latencies_us.extend(other.latencies_us);
        for (status, n) in other.other {
            *self.other.entry(status).or_default() += n;
        }
        self.io_errors += other.io_errors;
        for s in other.samples {
            if self.samples.len() < 3 {
                self.samples.push(s);
            }
        }
    }
}

/// One keep-alive connection sending `request` until `deadline` or until `sent` (shared)
/// reaches `max`.
async fn load_connection(
    addr: SocketAddr,
    request: Arc<Vec<u8>>,
    deadline: Instant,
    sent: Arc<AtomicU64>,
    max: u64,
) -> AcceptTally {
    let mut tally = AcceptTally::default();
    let mut conn: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(4096);
    while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < max {
        let mut stream = match conn.take() {
            Some(stream) => stream,
            None => match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    buf.clear();
                    stream
                }
                Ok(Err(e)) => {
                    tally.error(format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Err(_) => {
                    tally.error("connect timed out".into());
                    continue;
                }
            },
        };
        let started = Instant::now();
        let exchange = async {
            stream.write_all(&request).await?;
            read_answer(&mut stream, &mut buf).await
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok((status, _, close))) => {
                if status == 202 {
                    tally.accepted += 1;
                    let us = started.elapsed().as_micros();
                    tally
                        .latencies_us
                        .push(u32::try_from(us).unwrap_or(u32::MAX));
                } else {
                    *tally.other.entry(status).or_default() += 1;
                }
                if !close {
                    conn = Some(stream);
                }
            }
            Ok(Err(e)) => tally.error(format!("exchange: {e}")),
            Err(_) => tally.error(format!("no answer within {REQUEST_TIMEOUT:?}")),
        }
    }
    tally
}

struct AcceptResult {
    tally: AcceptTally,
    seconds: f64,
}

async fn accept_phase(gateway: &Gateway, opts: &Options) -> AcceptResult {
    let request = Arc::new(order_request(gateway.listen, opts.body_bytes));
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + opts.duration;
    let tasks: Vec<_> = (0..opts.connections)
        .map(|_| {
            tokio::spawn(load_connection(
                gateway.listen,
                request.clone(),
                deadline,
                sent.clone(),
                opts.max_jobs,
            ))
        })
        .collect();
    let mut tally = AcceptTally::default();
    for task in tasks {
        match task.await {
            Ok(t) => tally.merge(t),
            Err(e) => tally.error(format!("a load task failed: {e}")),
        }
    }
    AcceptResult {
        tally,
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    f64::from(sorted_us[rank.clamp(1, sorted_us.len()) - 1]) / 1000.0
}

// ---------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------

#[derive(Default, Debug, Clone, Copy)]
struct Metrics {
    queued: f64,
    in_flight: f64,
    dead: f64,
    created: f64,
    succeeded: f64,
    dead_total: f64,
    replay_sum: f64,
    replay_count: f64,
}

impl Metrics {
    fn parse(text: &str) -> Metrics {
        let mut m = Metrics::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.trim().parse::<f64>() else {
                continue;
            };
            let label = |l: &str| series.contains(l);
            if series.starts_with("propylon_jobs{") {
                if label(r#"status="queued""#) {
                    m.queued = value;
                } else if label(r#"status="in_flight""#) {
                    m.in_flight = value;
                } else if label(r#"status="dead""#) {
                    m.dead = value;
                }
            } else if series.starts_with("propylon_jobs_total{") {
                if label(r#"event="created""#) {
                    m.created += value;
                } else if label(r#"event="succeeded""#) {
                    m.succeeded += value;
                } else if label(r#"event="dead""#) {
                    m.dead_total += value;
                }
            } else if series.starts_with("propylon_job_replay_duration_seconds_sum") {
                m.replay_sum += value;
            } else if series.starts_with("propylon_job_replay_duration_seconds_count") {
                m.replay_count += value;
            }
        }
        m
    }
}

// ---------------------------------------------------------------------------------------
// Drain phase: the fast backend
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct BackendState {
    calls: AtomicU64,
    /// Calls after which `reached` is set.
    target: u64,
    first: OnceLock<Instant>,
    reached: OnceLock<Instant>,
}

/// An axum server answering `201 {"ok":true}` to everything; aborted on drop.
struct FastBackend {
    state: Arc<BackendState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FastBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FastBackend {
    async fn start(port: u16, target: u64) -> Result<FastBackend, String> {
        let state = Arc::new(BackendState {
            target,
            ..BackendState::default()
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| format!("the fast backend cannot bind port {port}: {e}"))?;
        let shared = state.clone();
        let router = axum::Router::new().fallback(move || {
            let state = shared.clone();
            async move {
                let now = Instant::now();
                let _ = state.first.set(now);
                if state.calls.fetch_add(1, Ordering::Relaxed) + 1 == state.target {
                    let _ = state.reached.set(now);
                }
                (
                    axum::http::StatusCode::CREATED,
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    r#"{"ok":true}"#,
                )
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(FastBackend { state, task })
    }
}

struct DrainResult {
    /// Seconds from the backend's start until `propylon_jobs_total{event="succeeded"}`
    /// reached the accepted count (None: not within --drain-max).
    seconds: Option<f64>,
    /// Seconds until the queue gauges (refreshed by the gateway every second) read 0.
    gauge_zero_seconds: Option<f64>,
    /// From the backend's start to its first call, and to the accepted-th call.
    first_call_seconds: Option<f64>,
    backend_reached_seconds: Option<f64>,
    succeeded: f64,
    backend_calls: u64,
    elapsed: f64,
    last: Metrics,
    metric_errors: u64,
}

async fn drain_phase(
    gateway: &Gateway,
    accepted: u64,
    opts: &Options,
) -> Result<DrainResult, String> {
    let before = gateway.metrics().await?;
    let backend = FastBackend::start(gateway.backend_port, accepted).await?;
    let started = Instant::now();
    let deadline = started + opts.drain_max;
    let target = before.succeeded + accepted as f64;
    let (mut seconds, mut gauge_zero_seconds) = (None, None);
    let mut last = before;
    let mut metric_errors = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
        match gateway.metrics().await {
            Ok(m) => last = m,
            Err(_) => {
                metric_errors += 1;
                continue;
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        if seconds.is_none() && last.succeeded >= target {
            seconds = Some(elapsed);
        }
        if seconds.is_some() && last.queued + last.in_flight == 0.0 {
            gauge_zero_seconds = Some(elapsed);
            break;
        }
    }
    let since = |t: Option<&Instant>| t.map(|t| t.duration_since(started).as_secs_f64());
    Ok(DrainResult {
        seconds,
        gauge_zero_seconds,
        first_call_seconds: since(backend.state.first.get()),
        backend_reached_seconds: since(backend.state.reached.get()),
        succeeded: last.succeeded - before.succeeded,
        backend_calls: backend.state.calls.load(Ordering::Relaxed),
        elapsed: started.elapsed().as_secs_f64(),
        last,
        metric_errors,
    })
}

// ---------------------------------------------------------------------------------------
// One run
// ---------------------------------------------------------------------------------------

fn round(x: f64, digits: i32) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    let f = 10f64.powi(digits);
    json!((x * f).round() / f)
}

async fn run_once(opts: &Options, mode: Mode) -> Result<Map<String, Value>, String> {
    let gateway = Gateway::start(opts, mode).await?;
    let client_cpu0 = cpu_seconds("/proc/self/stat").unwrap_or(0.0);
    let cpu0 = gateway.cpu_seconds().unwrap_or(0.0);

    let accept = accept_phase(&gateway, opts).await;
    let cpu1 = gateway.cpu_seconds().unwrap_or(0.0);
    let client_cpu1 = cpu_seconds("/proc/self/stat").unwrap_or(0.0);
    let mut tally = accept.tally;
    tally.latencies_us.sort_unstable();
    let accepted = tally.accepted;
    let errors = tally.io_errors + tally.other.values().sum::<u64>();
    let after_accept = gateway.metrics().await?;

    let drain = if accepted > 0 {
        Some(drain_phase(&gateway, accepted, opts).await?)
    } else {
        None
    };
    let cpu2 = gateway.cpu_seconds().unwrap_or(0.0);
    let peak_rss_kib = gateway.peak_rss_kib();
    let db_bytes = std::fs::metadata(gateway.dir.path().join("data/propylon.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    let log = gateway.log();
    let log_lines = log.lines().count();
    let log_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("\"error\"") || l.contains("WARN"))
        .take(5)
        .collect();

    let mut r = Map::new();
    r.insert("scenario".into(), json!(mode.name()));
    r.insert("accepted".into(), json!(accepted));
    r.insert("accept_seconds".into(), round(accept.seconds, 3));
    r.insert(
        "accepted_per_s".into(),
        round(accepted as f64 / accept.seconds, 0),
    );
    r.insert(
        "p50_ms".into(),
        round(percentile_ms(&tally.latencies_us, 50.0), 2),
    );
    r.insert(
        "p99_ms".into(),
        round(percentile_ms(&tally.latencies_us, 99.0), 2),
    );
    r.insert(
        "max_ms".into(),
        round(percentile_ms(&tally.latencies_us, 100.0), 2),
    );
    r.insert("errors".into(), json!(errors));
    r.insert("io_errors".into(), json!(tally.io_errors));
    r.insert(
        "other_statuses".into(),
        json!(tally
            .other
            .iter()
            .map(|(s, n)| (s.to_string(), json!(n)))
            .collect::<Map<_, _>>()),
    );
    r.insert("error_samples".into(), json!(tally.samples));
    r.insert("jobs_created_metric".into(), json!(after_accept.created));
    r.insert(
        "replays_during_accept".into(),
        json!(after_accept.replay_count),
    );
    r.insert(
        "gateway_cpu_percent_accept".into(),
        round(100.0 * (cpu1 - cpu0) / accept.seconds, 0),
    );
    r.insert(
        "client_cpu_percent_accept".into(),
        round(100.0 * (client_cpu1 - client_cpu0) / accept.seconds, 0),
    );
    if let Some(d) = &drain {
        let complete = d.seconds.is_some();
        let rate = match d.seconds {
            Some(s) => accepted as f64 / s,
            None => d.succeeded / d.elapsed,
        };
        r.insert("drain_complete".into(), json!(complete));
        r.insert("drained".into(), round(d.succeeded, 0));
        r.insert(
            "drain_seconds".into(),
            round(d.seconds.unwrap_or(d.elapsed), 2),
        );
        r.insert("drained_per_s".into(), round(rate, 0));
        r.insert(
            "gauges_zero_seconds".into(),
            d.gauge_zero_seconds.map_or(Value::Null, |s| round(s, 2)),
        );
        r.insert(
            "backend_first_call_seconds".into(),
            d.first_call_seconds.map_or(Value::Null, |s| round(s, 3)),
        );
        r.insert(
            "backend_all_calls_seconds".into(),
            d.backend_reached_seconds
                .map_or(Value::Null, |s| round(s, 2)),
        );
        // The rate once replays reach the backend (excludes e.g. an open circuit's wait).
        let after_first = match (d.seconds, d.first_call_seconds) {
            (Some(s), Some(first)) if s > first => round(accepted as f64 / (s - first), 0),
            _ => Value::Null,
        };
        r.insert("drained_per_s_after_first_call".into(), after_first);
        r.insert("backend_calls".into(), json!(d.backend_calls));
        let replays = d.last.replay_count - after_accept.replay_count;
        let replay_time = d.last.replay_sum - after_accept.replay_sum;
        r.insert(
            "replay_mean_ms".into(),
            round(1000.0 * replay_time / replays.max(1.0), 2),
        );
        r.insert("dead".into(), json!(d.last.dead_total));
        r.insert(
            "left_queued".into(),
            json!(d.last.queued + d.last.in_flight),
        );
        r.insert("metric_errors".into(), json!(d.metric_errors));
        r.insert(
            "gateway_cpu_percent_drain".into(),
            round(100.0 * (cpu2 - cpu1) / d.elapsed, 0),
        );
    }
    r.insert(
        "peak_rss_mib".into(),
        peak_rss_kib.map_or(Value::Null, |k| round(k as f64 / 1024.0, 1)),
    );
    r.insert(
        "db_mib".into(),
        round(db_bytes as f64 / (1024.0 * 1024.0), 1),
    );
    r.insert("log_lines".into(), json!(log_lines));
    r.insert("log_problems".into(), json!(log_errors));
    Ok(r)
}

/// Per numeric field, the median over the runs.
fn median(runs: &[Map<String, Value>]) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(first) = runs.first() else {
        return out;
    };
    for key in first.keys() {
        let mut values: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.get(key).and_then(Value::as_f64))
            .collect();
        if values.len() != runs.len() {
            continue;
        }
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        let m = if values.len() % 2 == 1 {
            values[mid]
        } else {
            (values[mid - 1] + values[mid]) / 2.0
        };
        out.insert(key.clone(), round(m, 2));
    }
    if runs
        .iter()
        .any(|r| r.get("drain_complete") == Some(&Value::Bool(false)))
    {
        out.insert("drain_complete".into(), json!(false));
    }
    out
}

fn cell(r: &Map<String, Value>, key: &str) -> String {
    match r.get(key) {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => "-".into(),
    }
}

fn print_row(label: &str, r: &Map<String, Value>) {
    println!(
        "{label:<16} {:>10} {:>8} {:>8} {:>7} {:>10} {:>8} {:>9} {:>8} {:>9}",
        cell(r, "accepted_per_s"),
        cell(r, "p50_ms"),
        cell(r, "p99_ms"),
        cell(r, "errors"),
        cell(r, "drained_per_s"),
        // `+`: not every job was replayed within --drain-max.
        if r.get("drain_complete") == Some(&Value::Bool(false)) {
            format!("{}+", cell(r, "drain_seconds"))
        } else {
            cell(r, "drain_seconds")
        },
        cell(r, "backend_calls"),
        cell(r, "accepted"),
        cell(r, "peak_rss_mib"),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut opts = match parse_options() {
        Ok(o) => o,
        // `--help`: the usage, asked for.
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("jobs-bench: {e}\n");
            eprint!("{USAGE}");
            std::process::exit(2);
        }
    };
    // Absolute: the gateway is started in its temp dir.
    if let Ok(path) = std::fs::canonicalize(&opts.propylon) {
        opts.propylon = path;
    }
    if !opts.propylon.exists() {
        eprintln!(
            "jobs-bench: no gateway binary at {}; build it (cargo build --release -p propylon) or pass --propylon",
            opts.propylon.display()
        );
        std::process::exit(2);
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "jobs-bench: {} connections, {} s accept phase (at most {} requests), body {} B, drain at most {} s, {} run(s), {cores} cores",
        opts.connections,
        opts.duration.as_secs(),
        opts.max_jobs,
        opts.body_bytes,
        opts.drain_max.as_secs(),
        opts.runs
    );
    let mut scenarios = Map::new();
    let mut summary = Vec::new();
    for &mode in &opts.scenarios {
        let mut runs = Vec::new();
        for i in 1..=opts.runs {
            match run_once(&opts, mode).await {
                Ok(r) => {
                    eprintln!("  {} run {i}: {}", mode.name(), Value::Object(r.clone()));
                    runs.push(r);
                }
                Err(e) => {
                    eprintln!("jobs-bench: {} run {i} failed: {e}", mode.name());
                    std::process::exit(1);
                }
            }
        }
        let med = median(&runs);
        summary.push((mode, med.clone(), runs.clone()));
        scenarios.insert(
            mode.name().into(),
            json!({"median": Value::Object(med), "runs": runs}),
        );
    }

    println!(
        "\n{:<16} {:>10} {:>8} {:>8} {:>7} {:>10} {:>8} {:>9} {:>8} {:>9}",
        "async:",
        "accepted/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "drained/s",
        "drain s",
        "backend",
        "jobs",
        "RSS MiB"
    );
    for (mode, med, runs) in &summary {
        print_row(&format!("{} (median)", mode.name()), med);
        for (i, r) in runs.iter().enumerate() {
            print_row(&format!("  run {}", i + 1), r);
        }
    }
    println!(
        "\ntargets: >= {TARGET_ACCEPTED} accepted jobs/s, >= {TARGET_REPLAYED} replayed jobs/s"
    );
    for (mode, med, _) in &summary {
        let get = |k: &str| med.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        println!(
            "  {}: accepted {} ({:.0}/s), replayed {} ({:.0}/s)",
            mode.name(),
            verdict(get("accepted_per_s") >= TARGET_ACCEPTED),
            get("accepted_per_s"),
            verdict(get("drained_per_s") >= TARGET_REPLAYED),
            get("drained_per_s"),
        );
    }

    let report = json!({
        "bench": "jobs-bench",
        "cores": cores,
        "options": {
            "connections": opts.connections,
            "duration_s": opts.duration.as_secs(),
            "max_jobs": opts.max_jobs,
            "drain_max_s": opts.drain_max.as_secs(),
            "runs": opts.runs,
            "body_bytes": opts.body_bytes,
            "threads": opts.threads,
        },
        "targets": {"accepted_per_s": TARGET_ACCEPTED, "drained_per_s": TARGET_REPLAYED},
        "scenarios": scenarios,
    });
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    if let Some(dir) = opts.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&opts.out, text + "\n") {
        Ok(()) => println!("\nwritten to {}", opts.out.display()),
        Err(e) => {
            eprintln!("jobs-bench: cannot write {}: {e}", opts.out.display());
            std::process::exit(1);
        }
    }
}
