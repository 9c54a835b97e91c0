//! The load generator: `oha` pinned to CPU 0, one worker thread, JSON output, and what the
//! harness reads from that JSON.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::procs::{Proc, Spec};

/// One oha invocation.
pub struct Load<'a> {
    pub name: &'a str,
    pub url: String,
    pub method: &'a str,
    pub headers: Vec<String>,
    /// The body, written to a file of the run dir (`-D`).
    pub body: Option<&'a str>,
    pub connections: usize,
    /// Fixed rate with latency correction; `None`: as fast as it goes.
    pub rate: Option<u64>,
    pub duration: Duration,
}

/// What one oha run measured.
pub struct Outcome {
    /// Answers received (every status).
    pub completed: u64,
    pub statuses: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    /// oha's own run time, seconds.
    pub seconds: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
}

impl Outcome {
    /// Answers with `status`.
    pub fn count(&self, status: &str) -> u64 {
        self.statuses.get(status).copied().unwrap_or(0)
    }

    /// Answers outside 2xx plus transport errors.
    pub fn non_2xx(&self) -> u64 {
        let bad: u64 = self
            .statuses
            .iter()
            .filter(|(s, _)| !s.starts_with('2'))
            .map(|(_, n)| n)
            .sum();
        bad + self.errors.values().sum::<u64>()
    }

    /// Answers per second.
    pub fn achieved(&self) -> f64 {
        if self.seconds > 0.0 {
            self.completed as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// The command line (without the program) for `load`.
pub fn arguments(load: &Load<'_>, body_file: Option<&Path>) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--no-tui".into(),
        "--output-format".into(),
        "json".into(),
        "--worker-threads".into(),
        "1".into(),
        // Requests in flight at the deadline are waited for, not counted as errors.
        "-w".into(),
        "-z".into(),
        format!("{}ms", load.duration.as_millis()),
        "-c".into(),
        load.connections.to_string(),
        "-m".into(),
        load.method.into(),
    ];
    if let Some(rate) = load.rate {
        args.extend(["-q".into(), rate.to_string(), "--latency-correction".into()]);
    }
    for h in &load.headers {
        args.extend(["-H".into(), h.clone()]);
    }
    if let Some(file) = body_file {
        args.extend([
            "-T".into(),
            "application/json".into(),
            "-D".into(),
            file.display().to_string(),
        ]);
    }
    args.push(load.url.clone());
    args
}

/// Runs oha on CPU 0 in `dir` and reads its JSON.
pub fn run(oha: &Path, dir: &Path, nofile: u64, load: &Load<'_>) -> Result<Outcome, String> {
    let body_file: Option<PathBuf> = match load.body {
        Some(body) => {
            let path = dir.join(format!("{}.body", load.name));
            std::fs::write(&path, body).map_err(|e| format!("{}: {e}", path.display()))?;
            Some(path)
        }
        None => None,
    };
    let json_path = dir.join(format!("{}.json", load.name));
    let mut proc = Proc::spawn(Spec {
        name: load.name,
        cpu: 0,
        nofile,
        program: oha,
        args: arguments(load, body_file.as_deref()),
        env: vec![("NO_COLOR", "1".into())],
        dir,
        stdout_file: Some(json_path.clone()),
        piped: false,
    })?;
    let status = proc.wait_exit(load.duration + Duration::from_secs(60))?;
    if !status.success() {
        return Err(format!("oha exited with {status}\n{}", proc.log_tail(20)));
    }
    let text =
        std::fs::read_to_string(&json_path).map_err(|e| format!("{}: {e}", json_path.display()))?;
    parse(&text).map_err(|e| format!("oha's JSON ({}): {e}", json_path.display()))
}

fn counts(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// oha's JSON report: statuses, errors, run time, latency percentiles (seconds → µs).
pub fn parse(text: &str) -> Result<Outcome, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let seconds = v["summary"]["total"].as_f64().ok_or("no summary.total")?;
    let statuses = counts(&v["statusCodeDistribution"]);
    let errors = counts(&v["errorDistribution"]);
    let percentile = |p: &str| {
        v["latencyPercentiles"][p]
            .as_f64()
            .map_or(f64::NAN, |s| s * 1e6)
    };
    Ok(Outcome {
        completed: statuses.values().sum(),
        statuses,
        errors,
        seconds,
        p50_us: percentile("p50"),
        p99_us: percentile("p99"),
        p999_us: percentile("p99.9"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn reads_oha_json() {
        let text = r#"{"summary": {"total": 2.0}, "latencyPercentiles": {"p50": 0.0003, "p99": 0.002, "p99.9": 0.004},
            "statusCodeDistribution": {"200": 15990, "502": 5}, "errorDistribution": {"aborted due to deadline": 1}}"#;
        let out = super::parse(text).unwrap();
        assert_eq!(out.completed, 15995);
        assert_eq!(out.non_2xx(), 6);
        assert_eq!(out.p50_us.round(), 300.0);
        assert_eq!(out.achieved().round(), 7998.0);
    }
}
