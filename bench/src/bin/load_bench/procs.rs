//! The processes the harness starts: each pinned to one CPU (`taskset`), with its soft
//! nofile limit raised (`ulimit -S -n`, at most the hard limit), its output in a log file of
//! the temp dir, and killed and reaped on drop (its descendants too: nginx's workers). Also
//! the `/proc` readings: CPU ticks and resident set sizes summed over a process tree.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Root pids of the live processes and the temp dir, for the Ctrl-C handler.
static LIVE: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());
static TEMP_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

/// How long a process has to exit after SIGINT before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// `sh -c` script: `$1` the soft nofile limit, `$2` the CPU, then the command.
const WRAPPER: &str =
    r#"n="$1"; cpu="$2"; shift 2; ulimit -S -n "$n" || exit 111; exec taskset -c "$cpu" "$@""#;

/// A free loopback port: bound, read, released.
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("a free loopback port: {e}"))
}

/// The hard nofile limit of this process (`Max open files` of `/proc/self/limits`).
pub fn hard_nofile() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().nth(1).map(str::to_string))
        .map_or(1024, |hard| {
            if hard == "unlimited" {
                1 << 20
            } else {
                hard.parse().unwrap_or(1024)
            }
        })
}

/// Clock ticks per second (`getconf CLK_TCK`, normally 100).
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|t: &u64| *t > 0)
        .unwrap_or(100)
}

/// Whether this process runs as root (`Uid:` of `/proc/self/status`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next().map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The temp dir the Ctrl-C handler removes.
pub fn register_temp_dir(path: &Path) {
    if let Ok(mut dir) = TEMP_DIR.lock() {
        *dir = Some(path.to_path_buf());
    }
}

/// On Ctrl-C (or SIGTERM): kill every live process tree, remove the temp dir, exit 130.
pub fn install_interrupt_handler() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = term => {}
            }
        });
        eprintln!("\nload-bench: interrupted; stopping every process it started");
        let pids: Vec<u32> = LIVE
            .lock()
            .map(|l| l.iter().copied().collect())
            .unwrap_or_default();
        for pid in pids {
            let tree = descendants(pid);
            signal(&[pid], "KILL");
            signal(&tree, "KILL");
        }
        if let Ok(Some(dir)) = TEMP_DIR.lock().map(|d| d.clone()) {
            let _ = std::fs::remove_dir_all(dir);
        }
        std::process::exit(130);
    });
}

/// `kill -SIG pid…` (std can only send SIGKILL, to its own children).
fn signal(pids: &[u32], sig: &str) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Every descendant of `pid` (from `/proc/<pid>/task/*/children`), depth first, bounded.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if out.len() < 1024 && !out.contains(&child) {
                    out.push(child);
                    stack.push(child);
                }
            }
        }
    }
    out
}

/// utime + stime of one process (all its threads), in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from the closing parenthesis.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split(' ').collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` field of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// What a process is started with.
pub struct Spec<'a> {
    pub name: &'a str,
    pub cpu: u32,
    pub nofile: u64,
    pub program: &'a Path,
    pub args: Vec<String>,
    pub env: Vec<(&'a str, String)>,
    pub dir: &'a Path,
    /// stdout to this file instead of the log.
    pub stdout_file: Option<PathBuf>,
    /// stdin and stdout as pipes (the idle holder).
    pub piped: bool,
}

/// A started process; SIGINT, then SIGKILL (with its descendants), then reaped, on drop.
pub struct Proc {
    pub name: String,
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl Proc {
    pub fn spawn(spec: Spec<'_>) -> Result<Proc, String> {
        let log = spec.dir.join(format!("{}.log", spec.name));
        let err = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let stdout = match (&spec.stdout_file, spec.piped) {
            (_, true) => Stdio::piped(),
            (Some(path), false) => {
                Stdio::from(File::create(path).map_err(|e| format!("{}: {e}", path.display()))?)
            }
            (None, false) => Stdio::from(err.try_clone().map_err(|e| format!("log: {e}"))?),
        };
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WRAPPER)
            .arg("load-bench-wrapper")
            .arg(spec.nofile.to_string())
            .arg(spec.cpu.to_string())
            .arg(spec.program)
            .args(&spec.args)
            .current_dir(spec.dir)
            .stdin(if spec.piped {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(stdout)
            .stderr(Stdio::from(err));
        for (k, v) in &spec.env {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .map_err(|e| format!("starting {} ({}): {e}", spec.name, spec.program.display()))?;
        let pid = child.id();
        if let Ok(mut live) = LIVE.lock() {
            live.insert(pid);
        }
        Ok(Proc {
            name: spec.name.to_string(),
            child,
            pid,
            log,
        })
    }

    pub fn take_pipes(&mut self) -> (Option<ChildStdin>, Option<ChildStdout>) {
        (self.child.stdin.take(), self.child.stdout.take())
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    /// Whether the process is still running (not gone, not a zombie), without reaping it.
    pub fn alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|s| {
                let rest = s.get(s.rfind(')')? + 2..)?;
                rest.chars().next()
            })
            .is_some_and(|state| state != 'Z' && state != 'X')
    }

    /// Waits up to `limit` for the process to exit; its exit status, or an error (it is
    /// then killed on drop).
    pub fn wait_exit(&mut self, limit: Duration) -> Result<std::process::ExitStatus, String> {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => return Err(format!("{} still running after {limit:?}", self.name)),
                Err(e) => return Err(format!("waiting for {}: {e}", self.name)),
            }
        }
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        format!("--- last lines of {} ---\n{tail}", self.log.display())
    }

    /// The whole log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn tree(&self) -> Vec<u32> {
        let mut pids = vec![self.pid];
        pids.extend(descendants(self.pid));
        pids
    }

    /// How many processes the tree has (nginx: master + workers).
    pub fn process_count(&self) -> usize {
        self.tree().len()
    }

    /// utime + stime summed over the process and its descendants, in clock ticks.
    pub fn cpu_ticks(&self) -> Result<u64, String> {
        let mut total = 0;
        for pid in self.tree() {
            total += cpu_ticks(pid)
                .ok_or_else(|| format!("cannot read /proc/{pid}/stat of {}", self.name))?;
        }
        Ok(total)
    }

    /// (VmRSS, VmHWM) summed over the process tree, in KiB.
    pub fn rss_kib(&self) -> (u64, u64) {
        self.tree().iter().fold((0, 0), |(rss, hwm), &pid| {
            (
                rss + status_kib(pid, "VmRSS:").unwrap_or(0),
                hwm + status_kib(pid, "VmHWM:").unwrap_or(0),
            )
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let tree = descendants(self.pid);
            signal(&[self.pid], "INT");
            if self.wait_exit(STOP_GRACE).is_err() {
                let _ = self.child.kill();
            }
            // Descendants still there (a worker whose master was killed): killed by id.
            let left: Vec<u32> = tree
                .into_iter()
                .filter(|p| Path::new(&format!("/proc/{p}")).exists())
                .collect();
            signal(&left, "KILL");
        }
        let _ = self.child.wait();
        if let Ok(mut live) = LIVE.lock() {
            live.remove(&self.pid);
        }
    }
}

/// What a readiness probe found.
pub enum Probe {
    Ready,
    /// Not answering yet (refused, reset): try again.
    NotYet(String),
    /// A wrong answer: fail at once.
    Wrong(String),
}

/// Polls `ready` every 50 ms until it is ready, answers wrong, the process exits, or
/// `limit` passes.
pub fn wait_ready(
    proc: &mut Proc,
    limit: Duration,
    mut ready: impl FnMut() -> Probe,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = proc.exited() {
            return Err(format!(
                "{} exited during startup ({status})\n{}",
                proc.name,
                proc.log_tail(30)
            ));
        }
        match ready() {
            Probe::Ready => return Ok(()),
            Probe::NotYet(last) if Instant::now() >= deadline => {
                return Err(format!(
                    "{} not ready after {limit:?}: {last}\n{}",
                    proc.name,
                    proc.log_tail(30)
                ));
            }
            Probe::NotYet(_) => {}
            Probe::Wrong(e) => return Err(format!("{}: {e}\n{}", proc.name, proc.log_tail(30))),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `program args…` to completion (a version query, `propylon check`): its output.
pub fn output_of(program: &str, args: &[&str]) -> io::Result<String> {
    let out = Command::new(program).args(args).output()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        Err(io::Error::other(format!("{}: {text}", out.status)))
    }
}
