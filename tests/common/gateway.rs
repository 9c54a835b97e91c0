//! The gateway process: `Gateway` runs `propylon run` in its own temp dir on fresh loopback
//! ports and is killed on Drop (printing its log if the test is failing); it can be reloaded,
//! restarted in place and terminated. Also one-shot commands (`run_propylon`, `run_check`)
//! and config folders for them (`write_config_dir`).

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::{agent, send, try_send, Resp};
use super::{free_port, poll_until, BIN, TOKEN};

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
        let (listen, admin) = (loopback_addr(), loopback_addr());
        write_files(dir.path(), files);
        let config_path = dir.path().join("propylon.yaml");
        fs::write(&config_path, substitute(config_yaml, listen, admin)).expect("write config");

        let log = fs::File::create(dir.path().join("gateway.log")).expect("create gateway.log");
        let child = spawn_run(dir.path(), extra_args, log);

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

    /// Waits until `GET /admin/health` answers 200 with `"status": "ok"` (with the token)
    /// and the main listener accepts connections; at most 30 s.
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
            // "starting" until the reloader listens: a SIGHUP or an edit before then has
            // nobody to act on it.
            .map(|r| r.status == 200 && r.json()["status"] == "ok")
            .unwrap_or(false);
            if healthy && TcpStream::connect_timeout(&self.listen, Duration::from_secs(1)).is_ok() {
                // Pingora retries a listen address in use: what accepted was someone else.
                let log = self.log();
                assert!(
                    !log.contains(" is in use"),
                    "the gateway's listen port {} was taken by another server; log:\n{log}",
                    self.listen
                );
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

    /// `POST path` with `content-type: application/json` and this body.
    pub fn post_json(&self, path: &str, body: &[u8]) -> Resp {
        self.request(
            "POST",
            path,
            &[("content-type", "application/json")],
            Some(body),
        )
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

    /// The gateway's threads, from `/proc/PID/task` (Linux): each one's name and how many
    /// times it has run (the third field of `schedstat`: timeslices, one per wake-up for a
    /// thread that sleeps in between).
    pub fn threads(&self) -> Vec<GatewayThread> {
        let tasks = fs::read_dir(format!("/proc/{}/task", self.pid())).expect("/proc task list");
        tasks
            .filter_map(|task| {
                let dir = task.ok()?.path();
                let name = fs::read_to_string(dir.join("comm"))
                    .ok()?
                    .trim()
                    .to_string();
                let stat = fs::read_to_string(dir.join("schedstat")).ok()?;
                let runs = stat.split_whitespace().nth(2)?.parse().ok()?;
                Some(GatewayThread { name, runs })
            })
            .collect()
    }

    /// How many times the thread `name` has run (see [`Gateway::threads`]).
    pub fn thread_runs(&self, name: &str) -> u64 {
        self.threads()
            .into_iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no thread {name}"))
            .runs
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
    write_files(dir.path(), files);
    fs::write(
        dir.path().join("propylon.yaml"),
        substitute(config_yaml, loopback_addr(), loopback_addr()),
    )
    .expect("write config");
    dir
}

/// Writes each `(relative path, content)` under `dir`, creating folders as needed.
fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (rel, content) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create file's folder");
        }
        fs::write(&path, content).expect("write fixture file");
    }
}

/// `127.0.0.1` on a fresh free port.
fn loopback_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
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
        let mut log = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.path().join("gateway.log"))
            .expect("open gateway.log for appending");
        let _ = writeln!(log, "===== restarted by the test =====");
        self.child = spawn_run(self.dir.path(), &[], log);
        self.wait_ready();
    }
}

/// Spawns `propylon run --config propylon.yaml EXTRA_ARGS` in `dir`, stdout and stderr to
/// `log`.
fn spawn_run(dir: &Path, extra_args: &[&str], log: fs::File) -> Child {
    let log_err = log.try_clone().expect("clone log handle");
    Command::new(BIN)
        .arg("run")
        .arg("--config")
        .arg(dir.join("propylon.yaml"))
        .args(extra_args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .spawn()
        .expect("spawn the propylon binary")
}

/// One of the gateway's threads (see [`Gateway::threads`]).
pub struct GatewayThread {
    pub name: String,
    pub runs: u64,
}
