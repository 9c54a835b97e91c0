//! `load-bench`: Propylon beside nginx and HAProxy on loopback (issue 6). Run it with
//! `bench/load.sh`, which installs nginx, HAProxy and oha and builds the binaries.
//!
//! Layout, the same for every proxy: a fixed-answer backend (nginx) and the load generator
//! (oha) on CPU 0, the proxy alone on CPU 1 with one worker thread, upstream keep-alive,
//! no access log. Each round runs every selected scenario in turn, a fresh proxy per run;
//! the figures are medians over rounds. Every process started here is killed and reaped
//! at the end, on error and on Ctrl-C, and the temp dir is removed.

mod configs;
mod http;
mod idle;
mod oha;
mod procs;
mod report;
mod runs;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Map, Value};

use configs::PropylonKind;
use runs::{Bench, Build, Proxy};

const USAGE: &str = "\
load-bench: Propylon beside nginx and HAProxy, loopback only (see bench/README.md).

Options (defaults in brackets):
  --propylon PATH          the gateway binary [target/release/propylon]
  --propylon-plain PATH    the same gateway built another way (bench/load.sh: without PGO),
                           run as propylon-plain and propylon-chain-plain [none]
  --oha PATH               the load generator [oha]
  --nginx PATH             [nginx]      --haproxy PATH   [haproxy]
  --rate N                 fixed rate of the latency runs, req/s [8000]
  --duration SECS          measured run [10]
  --warmup SECS            warm-up run before each measured one, not counted [2]
  --connections N          connections of the fixed-rate runs [32]
  --async-connections N    connections of the propylon-async run (max rate) [64]
  --async-body-bytes N     body of the propylon-async run [500]
  --idle-connections N     idle keep-alive connections per proxy [10000]
  --rounds N               rounds; the figures are medians [5]
  --scenarios LIST         direct,nginx,haproxy,propylon,propylon-chain,propylon-plain,
                           propylon-chain-plain,propylon-async,idle [all; the -plain ones
                           with --propylon-plain]
  --out PATH               JSON report [bench/results/load.json]; markdown beside it (.md)

bench/load.sh passes these on; it also takes --no-pgo (measure the plain build only).

Subcommand (used by the harness itself): load-bench idle-hold ADDR N PATH
";

/// Every scenario, in the order a round runs them; the fixed-rate ones (the main table's
/// rows, `report::LATENCY_ROWS`) first.
pub const SCENARIOS: [&str; 9] = [
    "direct",
    "nginx",
    "haproxy",
    "propylon",
    "propylon-chain",
    "propylon-plain",
    "propylon-chain-plain",
    "propylon-async",
    "idle",
];

/// Connections the nofile limit keeps for everything else.
const NOFILE_MARGIN: u64 = 256;

#[derive(Clone, Debug)]
pub struct Options {
    pub propylon: PathBuf,
    pub propylon_plain: Option<PathBuf>,
    pub oha: PathBuf,
    pub nginx: PathBuf,
    pub haproxy: PathBuf,
    pub rate: u64,
    pub duration: Duration,
    pub warmup: Duration,
    pub connections: usize,
    pub async_connections: usize,
    pub async_body_bytes: usize,
    pub idle_connections: usize,
    pub rounds: u64,
    pub scenarios: Vec<&'static str>,
    pub out: PathBuf,
}

fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        propylon: bench_dir().join("../target/release/propylon"),
        propylon_plain: None,
        oha: "oha".into(),
        nginx: "nginx".into(),
        haproxy: "haproxy".into(),
        rate: 8000,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        connections: 32,
        async_connections: 64,
        async_body_bytes: 500,
        idle_connections: 10_000,
        rounds: 5,
        scenarios: SCENARIOS.to_vec(),
        out: bench_dir().join("results/load.json"),
    };
    let mut picked_explicitly = false;
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag}: `{value}` is not a positive integer"))
        };
        let size = || number().map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        match flag.as_str() {
            "--propylon" => o.propylon = value.into(),
            "--propylon-plain" => o.propylon_plain = Some(value.into()),
            "--oha" => o.oha = value.into(),
            "--nginx" => o.nginx = value.into(),
            "--haproxy" => o.haproxy = value.into(),
            "--rate" => o.rate = number()?,
            "--duration" => o.duration = Duration::from_secs(number()?),
            "--warmup" => o.warmup = Duration::from_secs(number()?),
            "--connections" => o.connections = size()?,
            "--async-connections" => o.async_connections = size()?,
            "--async-body-bytes" => o.async_body_bytes = size()?,
            "--idle-connections" => o.idle_connections = size()?,
            "--rounds" => o.rounds = number()?,
            "--out" => o.out = value.into(),
            "--scenarios" => {
                picked_explicitly = true;
                let mut picked = Vec::new();
                for s in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let known = SCENARIOS
                        .iter()
                        .find(|k| **k == s)
                        .ok_or_else(|| format!("unknown scenario `{s}`"))?;
                    picked.push(*known);
                }
                // `direct` is the latency baseline of every fixed-rate scenario.
                let latency = &report::LATENCY_ROWS[1..];
                if picked.iter().any(|s| latency.contains(s)) && !picked.contains(&"direct") {
                    picked.push("direct");
                }
                o.scenarios = SCENARIOS
                    .iter()
                    .copied()
                    .filter(|s| picked.contains(s))
                    .collect();
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    if o.propylon_plain.is_none() {
        let plain = |s: &str| s.ends_with("-plain");
        if let Some(s) = o.scenarios.iter().find(|s| plain(s)) {
            if picked_explicitly {
                return Err(format!("scenario `{s}` needs --propylon-plain"));
            }
        }
        o.scenarios.retain(|s| !plain(s));
    }
    if o.rounds > 100 || o.connections > 10_000 || o.async_connections > 10_000 {
        return Err("--rounds is at most 100, connections at most 10000".into());
    }
    if o.duration > Duration::from_secs(600) || o.warmup > Duration::from_secs(600) {
        return Err("--duration and --warmup are at most 600 s".into());
    }
    Ok(o)
}

fn proxy_of(scenario: &str) -> Option<Proxy> {
    match scenario {
        "nginx" => Some(Proxy::Nginx),
        "haproxy" => Some(Proxy::Haproxy),
        "propylon" => Some(Proxy::Propylon(PropylonKind::Pass, Build::Main)),
        "propylon-chain" => Some(Proxy::Propylon(PropylonKind::Chain, Build::Main)),
        "propylon-plain" => Some(Proxy::Propylon(PropylonKind::Pass, Build::Plain)),
        "propylon-chain-plain" => Some(Proxy::Propylon(PropylonKind::Chain, Build::Plain)),
        "propylon-async" => Some(Proxy::Propylon(PropylonKind::Async, Build::Main)),
        _ => None,
    }
}

fn warn_problems(label: &str, r: &Map<String, Value>) {
    for key in ["non_2xx", "non_200", "errors"] {
        let n = r.get(key).and_then(Value::as_u64).unwrap_or(0);
        if n > 0 && !(label.contains("async") && key == "non_2xx") {
            eprintln!(
                "\n!!!!! WARNING: {label}: {key} = {n} (statuses {}, errors {}) !!!!!\n",
                r.get("statuses").unwrap_or(&Value::Null),
                r.get("errors")
                    .or(r.get("error_samples"))
                    .unwrap_or(&Value::Null)
            );
        }
    }
    if label.contains("async") && r.get("non_202").and_then(Value::as_u64).unwrap_or(0) > 0 {
        eprintln!(
            "\n!!!!! WARNING: {label}: answers other than 202: {} !!!!!\n",
            r.get("statuses").unwrap_or(&Value::Null)
        );
    }
    if let Some(lines) = r.get("log_lines").and_then(Value::as_array) {
        if !lines.is_empty() {
            eprintln!(
                "  {label}: the proxy logged: {}",
                Value::Array(lines.clone())
            );
        }
    }
}

fn run(opts: &mut Options, command_line: &str) -> Result<(), String> {
    // Absolute: the proxies run in their own directories.
    if let Ok(path) = std::fs::canonicalize(&opts.propylon) {
        opts.propylon = path;
    }
    if let Some(plain) = opts.propylon_plain.as_mut() {
        match std::fs::canonicalize(&*plain) {
            Ok(path) => *plain = path,
            Err(e) => return Err(format!("--propylon-plain {}: {e}", plain.display())),
        }
    }
    let needs_propylon = opts
        .scenarios
        .iter()
        .any(|s| s.starts_with("propylon") || *s == "idle");
    if needs_propylon && !opts.propylon.exists() {
        return Err(format!(
            "no gateway binary at {} (cargo build --release -p propylon, or --propylon)",
            opts.propylon.display()
        ));
    }
    let opts: &Options = opts;
    let nofile = procs::hard_nofile();
    let mut idle_note = String::new();
    let mut idle_connections = opts.idle_connections;
    let cap = usize::try_from(nofile.saturating_sub(NOFILE_MARGIN)).unwrap_or(usize::MAX);
    if opts.scenarios.contains(&"idle") && idle_connections > cap {
        idle_note = format!(
            " (capped from {idle_connections} to {cap}: the hard nofile limit is {nofile})"
        );
        eprintln!("load-bench: idle connections{idle_note}");
        idle_connections = cap;
    }
    let dir = tempfile::Builder::new()
        .prefix("propylon-load-bench-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    procs::register_temp_dir(dir.path());
    let root = procs::is_root();
    let (backend, backend_port) = runs::start_backend(opts, dir.path(), nofile, root)?;
    let exe = std::env::current_exe().map_err(|e| format!("this binary's path: {e}"))?;
    let mut capped = opts.clone();
    capped.idle_connections = idle_connections;
    let bench = Bench {
        opts: &capped,
        dir: dir.path().to_path_buf(),
        backend,
        backend_port,
        nofile,
        clk_tck: procs::clock_ticks(),
        root,
        exe,
        token: configs::token()?,
        chain_body: configs::chain_body(),
        async_body: configs::async_body(opts.async_body_bytes),
    };
    let machine = report::machine(opts);
    println!(
        "load-bench: {} round(s) of {:?}; fixed rate {} req/s, {} connections, {} s measured after {} s warm-up; nofile {nofile}",
        opts.rounds,
        opts.scenarios,
        opts.rate,
        opts.connections,
        opts.duration.as_secs(),
        opts.warmup.as_secs()
    );
    let mut all: Vec<Map<String, Value>> = Vec::new();
    for round in 1..=opts.rounds {
        for &scenario in &opts.scenarios {
            let run_dir = bench.dir.join(format!("r{round}-{scenario}"));
            if scenario == "idle" {
                for (name, proxy) in [
                    ("nginx", Proxy::Nginx),
                    ("haproxy", Proxy::Haproxy),
                    ("propylon", Proxy::Propylon(PropylonKind::Pass, Build::Main)),
                ] {
                    let label = format!("round {round} idle {name}");
                    let mut r = bench
                        .idle_run(proxy, &run_dir.join(name))
                        .map_err(|e| format!("{label}: {e}"))?;
                    r.insert("scenario".into(), json!(format!("idle-{name}")));
                    r.insert("round".into(), json!(round));
                    eprintln!("  {label}: {}", Value::Object(r.clone()));
                    warn_problems(&label, &r);
                    all.push(r);
                }
                continue;
            }
            let label = format!("round {round} {scenario}");
            let mut r = bench
                .load_run(proxy_of(scenario), &run_dir)
                .map_err(|e| format!("{label}: {e}"))?;
            if scenario.starts_with("propylon-chain") {
                r.insert("chain_answer_verified_mapped".into(), json!(true));
            }
            // The async run's store alone is ~200 MB: a finished run's files go at once.
            let _ = std::fs::remove_dir_all(&run_dir);
            r.insert("scenario".into(), json!(scenario));
            r.insert("round".into(), json!(round));
            eprintln!("  {label}: {}", Value::Object(r.clone()));
            warn_problems(&label, &r);
            all.push(r);
        }
    }
    report::fill_added_latency(&mut all);
    let mut summary = Map::new();
    let mut groups: Vec<String> = Vec::new();
    for r in &all {
        if let Some(s) = r.get("scenario").and_then(Value::as_str) {
            if !groups.iter().any(|g| g == s) {
                groups.push(s.to_string());
            }
        }
    }
    for g in &groups {
        let runs: Vec<Map<String, Value>> = all
            .iter()
            .filter(|r| r.get("scenario").and_then(Value::as_str) == Some(g.as_str()))
            .cloned()
            .collect();
        summary.insert(g.clone(), report::summarize(&runs));
    }
    let date = report::now_utc();
    let mut header = format!(
        "## Load: Propylon beside nginx and HAProxy ({date})\n\n\
         `{command_line}` — {} round(s), medians; fixed rate {} req/s over {} connections \
         for {} s after a {} s warm-up (oha, latency correction); proxy alone on CPU 1 with one \
         worker, backend (nginx) and oha on CPU 0. Machine: {} × {}, kernel {}.\n",
        opts.rounds,
        opts.rate,
        opts.connections,
        opts.duration.as_secs(),
        opts.warmup.as_secs(),
        machine["nproc"],
        machine["cpu_model"].as_str().unwrap_or("?"),
        machine["kernel"].as_str().unwrap_or("?"),
    );
    if let Some(plain) = &opts.propylon_plain {
        header.push_str(&format!(
            "\nGateway binaries: `propylon*` rows {}, `*-plain` rows {} (from `bench/load.sh`: \
             the profile-guided build of `bench/pgo.sh` and the plain `cargo build --release`).\n",
            opts.propylon.display(),
            plain.display()
        ));
    }
    let md = report::markdown(&summary, &header, &idle_note, opts.rate);
    println!("\n{md}");
    let report = json!({
        "bench": "load-bench",
        "date": date,
        "command": command_line,
        "argv": std::env::args().collect::<Vec<_>>(),
        "machine": machine,
        "options": {
            "rate": opts.rate, "duration_s": opts.duration.as_secs(),
            "warmup_s": opts.warmup.as_secs(), "connections": opts.connections,
            "async_connections": opts.async_connections,
            "async_body_bytes": opts.async_body_bytes,
            "idle_connections": idle_connections, "idle_requested": opts.idle_connections,
            "rounds": opts.rounds, "scenarios": opts.scenarios,
        },
        "scenarios": summary,
        "markdown": md,
    });
    if let Some(parent) = opts.out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&opts.out, text + "\n").map_err(|e| format!("{}: {e}", opts.out.display()))?;
    let md_path = opts.out.with_extension("md");
    std::fs::write(&md_path, &md).map_err(|e| format!("{}: {e}", md_path.display()))?;
    println!(
        "written to {} and {}",
        opts.out.display(),
        md_path.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("idle-hold") {
        return idle::hold_main(&args[1..]);
    }
    let mut opts = match parse_options(&args) {
        Ok(o) => o,
        // `--help`: the usage, asked for.
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("load-bench: {e}\n");
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    procs::install_interrupt_handler();
    let command_line = std::env::var("LOAD_BENCH_COMMAND")
        .unwrap_or_else(|_| std::env::args().collect::<Vec<_>>().join(" "));
    match run(&mut opts, &command_line) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load-bench: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn options(args: &[&str]) -> Result<Options, String> {
        parse_options(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn the_plain_build_runs_only_when_given() {
        let all = options(&[]).unwrap();
        assert!(all.scenarios.contains(&"propylon-chain"));
        assert!(!all.scenarios.iter().any(|s| s.ends_with("-plain")));
        let both = options(&["--propylon-plain", "/bin/plain"]).unwrap();
        assert!(both.scenarios.contains(&"propylon-chain-plain"));
        assert!(both.scenarios.contains(&"propylon-plain"));
        let asked = options(&["--scenarios", "propylon-chain-plain"]).unwrap_err();
        assert!(asked.contains("needs --propylon-plain"), "{asked}");
        let picked = options(&["--scenarios", "propylon-plain", "--propylon-plain", "p"]).unwrap();
        assert_eq!(picked.scenarios, ["direct", "propylon-plain"]);
    }

    #[test]
    fn the_main_table_has_the_fixed_rate_scenarios() {
        assert_eq!(report::LATENCY_ROWS.first(), Some(&"direct"));
        assert_eq!(report::LATENCY_ROWS.last(), Some(&"propylon-chain-plain"));
        assert!(!report::LATENCY_ROWS.contains(&"propylon-async"));
    }
}
