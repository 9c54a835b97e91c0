//! One run of one scenario: a fresh proxy on CPU 1 in a directory of its own, a warm-up,
//! the measured oha run between two CPU readings, the proxy's memory; and the idle runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::configs::{self, PropylonKind, ORDERS_PATH, PASS_PATH, TENANT};
use crate::http;
use crate::oha::{self, Load, Outcome};
use crate::procs::{self, Probe, Proc, Spec};
use crate::Options;

const STARTUP: Duration = Duration::from_secs(20);
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A proxy under test.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Proxy {
    Nginx,
    Haproxy,
    Propylon(PropylonKind, Build),
}

/// Which gateway binary: `--propylon` (the profile-guided build, from `bench/load.sh`) or
/// `--propylon-plain` (the same code from a plain `cargo build --release`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Build {
    Main,
    Plain,
}

/// What every run shares: options, the temp dir, the backend, the token and the bodies.
pub struct Bench<'a> {
    pub opts: &'a Options,
    pub dir: PathBuf,
    pub backend: Proc,
    pub backend_port: u16,
    pub nofile: u64,
    pub clk_tck: u64,
    pub root: bool,
    pub exe: PathBuf,
    pub token: String,
    pub chain_body: String,
    pub async_body: String,
}

pub struct Running {
    pub proc: Proc,
    pub addr: SocketAddr,
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Starts the fixed-answer backend (nginx on CPU 0) and waits until `/` answers 200.
pub fn start_backend(
    opts: &Options,
    dir: &Path,
    nofile: u64,
    root: bool,
) -> Result<(Proc, u16), String> {
    let port = procs::free_port()?;
    let (customer, chain) = (configs::customer_answer()?, configs::chain_answer());
    let conf = dir.join("backend.conf");
    write(
        &conf,
        &configs::backend_nginx(dir, port, nofile, root, &customer, &chain)?,
    )?;
    std::fs::create_dir_all(dir.join("backend-temp")).map_err(|e| format!("temp: {e}"))?;
    let mut proc = Proc::spawn(nginx_spec("backend", 0, nofile, opts, dir, &conf))?;
    let addr = loopback(port);
    let request = http::request("GET", addr, "/", &[], &[]);
    procs::wait_ready(&mut proc, STARTUP, || probe(addr, &request, 200, any_body))?;
    Ok((proc, port))
}

fn nginx_spec<'a>(
    name: &'a str,
    cpu: u32,
    nofile: u64,
    opts: &'a Options,
    dir: &'a Path,
    conf: &Path,
) -> Spec<'a> {
    Spec {
        name,
        cpu,
        nofile,
        program: &opts.nginx,
        args: vec![
            "-e".into(),
            "stderr".into(),
            "-p".into(),
            dir.display().to_string(),
            "-c".into(),
            conf.display().to_string(),
        ],
        env: Vec::new(),
        dir,
        stdout_file: None,
        piped: false,
    }
}

/// Whether `request` is answered `want` (`check` then looks at the body).
fn probe(
    addr: SocketAddr,
    request: &[u8],
    want: u16,
    check: impl Fn(&[u8]) -> Result<(), String>,
) -> Probe {
    if std::net::TcpStream::connect_timeout(&addr, CHECK_TIMEOUT).is_err() {
        return Probe::NotYet(format!("nothing listens on {addr}"));
    }
    match http::exchange(addr, request, CHECK_TIMEOUT) {
        Err(e) => Probe::NotYet(e),
        Ok(answer) if answer.status != want => Probe::Wrong(format!(
            "answered {} instead of {want}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        )),
        Ok(answer) => match check(&answer.body) {
            Ok(()) => Probe::Ready,
            Err(e) => Probe::Wrong(e),
        },
    }
}

fn any_body(_: &[u8]) -> Result<(), String> {
    Ok(())
}

impl Bench<'_> {
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// The request a scenario sends (method, path, headers, body), for checks and oha.
    fn request_of(&self, proxy: Proxy) -> (&'static str, &'static str, Vec<(&str, String)>, &str) {
        match proxy {
            Proxy::Propylon(PropylonKind::Chain, _) => (
                "POST",
                ORDERS_PATH,
                vec![
                    ("Authorization", self.bearer()),
                    (TENANT.0, TENANT.1.to_string()),
                    ("Content-Type", "application/json".into()),
                ],
                &self.chain_body,
            ),
            Proxy::Propylon(PropylonKind::Async, _) => (
                "POST",
                ORDERS_PATH,
                vec![("Content-Type", "application/json".into())],
                &self.async_body,
            ),
            _ => ("GET", PASS_PATH, Vec::new(), ""),
        }
    }

    /// A fresh proxy on CPU 1 in `dir`, answering its scenario's request as it should
    /// (the chain: 200 and mapped, checked here; async: 202).
    pub fn start_proxy(&self, proxy: Proxy, dir: &Path) -> Result<Running, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let port = procs::free_port()?;
        let (nofile, opts) = (self.nofile, self.opts);
        let mut proc = match proxy {
            Proxy::Nginx => {
                let conf = dir.join("nginx.conf");
                let text = configs::proxy_nginx(dir, port, self.backend_port, nofile, self.root);
                write(&conf, &text)?;
                std::fs::create_dir_all(dir.join("nginx-temp"))
                    .map_err(|e| format!("temp: {e}"))?;
                Proc::spawn(nginx_spec("nginx", 1, nofile, opts, dir, &conf))?
            }
            Proxy::Haproxy => {
                let conf = dir.join("haproxy.cfg");
                write(&conf, &configs::haproxy(port, self.backend_port, nofile))?;
                Proc::spawn(Spec {
                    name: "haproxy",
                    cpu: 1,
                    nofile,
                    program: &opts.haproxy,
                    args: vec!["-db".into(), "-f".into(), conf.display().to_string()],
                    env: Vec::new(),
                    dir,
                    stdout_file: None,
                    piped: false,
                })?
            }
            Proxy::Propylon(kind, build) => {
                let program = match build {
                    Build::Main => &opts.propylon,
                    Build::Plain => opts
                        .propylon_plain
                        .as_ref()
                        .ok_or("a -plain scenario needs --propylon-plain")?,
                };
                // Async: a reserved port where nothing listens.
                let backend = match kind {
                    PropylonKind::Async => procs::free_port()?,
                    _ => self.backend_port,
                };
                let (config, spec) = configs::propylon(kind, port, backend);
                let conf = dir.join("propylon.yaml");
                write(&conf, &config)?;
                write(&dir.join("facade.yaml"), &spec)?;
                write(&dir.join("jwks.json"), configs::JWKS)?;
                let path = conf.display().to_string();
                let check = procs::output_of(
                    &program.display().to_string(),
                    &["check", "--config", &path],
                )
                .map_err(|e| format!("propylon check --config {path} failed: {e}"))?;
                if check.contains("warning") {
                    eprintln!("  propylon check: {}", check.trim());
                }
                Proc::spawn(Spec {
                    name: "propylon",
                    cpu: 1,
                    nofile,
                    program,
                    args: vec!["run".into(), "--config".into(), path],
                    env: vec![("PROPYLON_LOG", "warn".into())],
                    dir,
                    stdout_file: None,
                    piped: false,
                })?
            }
        };
        let addr = loopback(port);
        let (method, path, headers, body) = self.request_of(proxy);
        let request = http::request(method, addr, path, &headers, body.as_bytes());
        match proxy {
            // The chain: 200 and the mapped answer (not the backend's own), or a failure.
            Proxy::Propylon(PropylonKind::Chain, _) => {
                procs::wait_ready(&mut proc, STARTUP, || {
                    probe(addr, &request, 200, configs::check_chain_answer)
                })
                .map_err(|e| format!("the chain check failed: {e}"))?;
            }
            Proxy::Propylon(PropylonKind::Async, _) => {
                procs::wait_ready(&mut proc, STARTUP, || probe(addr, &request, 202, any_body))?;
            }
            _ => procs::wait_ready(&mut proc, STARTUP, || probe(addr, &request, 200, any_body))?,
        }
        Ok(Running { proc, addr })
    }

    fn load<'b>(&'b self, name: &'b str, proxy: Option<Proxy>, addr: SocketAddr) -> Load<'b> {
        let (method, path, headers, body) = self.request_of(proxy.unwrap_or(Proxy::Nginx));
        let fixed = !matches!(proxy, Some(Proxy::Propylon(PropylonKind::Async, _)));
        Load {
            name,
            url: format!("http://{addr}{path}"),
            method,
            headers: headers.iter().map(|(n, v)| format!("{n}: {v}")).collect(),
            body: (!body.is_empty()).then_some(body),
            connections: if fixed {
                self.opts.connections
            } else {
                self.opts.async_connections
            },
            rate: fixed.then_some(self.opts.rate),
            duration: self.opts.duration,
        }
    }

    fn us_per(&self, ticks: u64, count: u64) -> Value {
        if count == 0 {
            return Value::Null;
        }
        let us = ticks as f64 * 1e6 / self.clk_tck as f64 / count as f64;
        json!((us * 100.0).round() / 100.0)
    }

    /// A measured run: `None` is `direct` (oha straight to the backend).
    pub fn load_run(&self, proxy: Option<Proxy>, dir: &Path) -> Result<Map<String, Value>, String> {
        let running = match proxy {
            Some(p) => Some(self.start_proxy(p, dir)?),
            None => {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                None
            }
        };
        let addr = running
            .as_ref()
            .map_or(loopback(self.backend_port), |r| r.addr);
        let fail = |e: String| match running.as_ref() {
            Some(r) => format!("{e}\n{}", r.proc.log_tail(30)),
            None => format!("{e}\n{}", self.backend.log_tail(30)),
        };
        let mut warmup = self.load("oha-warmup", proxy, addr);
        warmup.duration = self.opts.warmup;
        oha::run(&self.opts.oha, dir, self.nofile, &warmup).map_err(fail)?;
        let cpu = || -> Result<(u64, u64), String> {
            let proxy_ticks = match running.as_ref() {
                Some(r) => r.proc.cpu_ticks()?,
                None => 0,
            };
            Ok((proxy_ticks, self.backend.cpu_ticks()?))
        };
        let (p0, b0) = cpu().map_err(fail)?;
        let out = oha::run(
            &self.opts.oha,
            dir,
            self.nofile,
            &self.load("oha", proxy, addr),
        )
        .map_err(fail)?;
        let (p1, b1) = cpu().map_err(fail)?;
        let is_async = matches!(proxy, Some(Proxy::Propylon(PropylonKind::Async, _)));
        let mut r = outcome_fields(&out, is_async);
        r.insert(
            "backend_cpu_us_per_req".into(),
            self.us_per(b1 - b0, out.completed),
        );
        if let Some(running) = running.as_ref() {
            if !running.proc.alive() {
                return Err(fail(format!("{} exited during the run", running.proc.name)));
            }
            let count = if is_async {
                out.count("202")
            } else {
                out.completed
            };
            r.insert("cpu_ticks".into(), json!(p1 - p0));
            r.insert("cpu_us_per_req".into(), self.us_per(p1 - p0, count));
            let (_, hwm) = running.proc.rss_kib();
            r.insert("peak_rss_mib".into(), json!(mib(hwm)));
            r.insert("processes".into(), json!(running.proc.process_count()));
            // HAProxy's start-up notices (version, path) and its expected nofile alert
            // (see `configs::haproxy`) are not worth a line.
            let log: Vec<String> = running
                .proc
                .log_text()
                .lines()
                .filter(|l| !l.contains("[NOTICE]") && !l.contains("too low for maxconn"))
                .take(5)
                .map(str::to_string)
                .collect();
            r.insert("log_lines".into(), json!(log));
        }
        Ok(r)
    }

    /// Idle connections to a pass-through proxy.
    pub fn idle_run(&self, proxy: Proxy, dir: &Path) -> Result<Map<String, Value>, String> {
        let running = self.start_proxy(proxy, dir)?;
        let result = crate::idle::measure(
            &running.proc,
            running.addr,
            self.opts.idle_connections,
            &self.exe,
            dir,
            self.nofile,
        );
        result.map_err(|e| format!("{e}\n{}", running.proc.log_tail(30)))
    }
}

fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

fn round(x: f64, digits: i32) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    let f = 10f64.powi(digits);
    json!((x * f).round() / f)
}

/// The fields every measured run has, from oha.
fn outcome_fields(out: &Outcome, is_async: bool) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("requests".into(), json!(out.completed));
    r.insert("seconds".into(), round(out.seconds, 3));
    r.insert("achieved_rps".into(), round(out.achieved(), 0));
    r.insert("p50_us".into(), round(out.p50_us, 1));
    r.insert("p99_us".into(), round(out.p99_us, 1));
    r.insert("p999_us".into(), round(out.p999_us, 1));
    r.insert("non_2xx".into(), json!(out.non_2xx()));
    r.insert("statuses".into(), json!(out.statuses));
    r.insert("errors".into(), json!(out.errors));
    if is_async {
        let accepted = out.count("202");
        let errors: u64 = out.errors.values().sum();
        r.insert("answers_202".into(), json!(accepted));
        r.insert("non_202".into(), json!(out.completed - accepted + errors));
        let rate = if out.seconds > 0.0 {
            accepted as f64 / out.seconds
        } else {
            0.0
        };
        r.insert("jobs_per_s".into(), round(rate, 0));
    }
    r
}
