//! Medians over rounds (with min and max), the latency added over `direct`, the ratio to
//! nginx's CPU, and the markdown report.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::{procs, Options};

/// The rows of the main table, in order: the fixed-rate scenarios, which `SCENARIOS` lists
/// first.
pub const LATENCY_ROWS: &[&str] = crate::SCENARIOS.split_at(7).0;
pub const IDLE_PROXIES: [&str; 3] = ["nginx", "haproxy", "propylon"];

fn round(x: f64, digits: i32) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    let f = 10f64.powi(digits);
    json!((x * f).round() / f)
}

fn num(r: &Map<String, Value>, key: &str) -> Option<f64> {
    r.get(key).and_then(Value::as_f64)
}

/// In each round, every fixed-rate run's p50 / p99 minus `direct`'s of that round.
pub fn fill_added_latency(runs: &mut [Map<String, Value>]) {
    let direct: Vec<(u64, f64, f64)> = runs
        .iter()
        .filter(|r| r.get("scenario") == Some(&json!("direct")))
        .filter_map(|r| {
            Some((
                r.get("round")?.as_u64()?,
                num(r, "p50_us")?,
                num(r, "p99_us")?,
            ))
        })
        .collect();
    for r in runs.iter_mut() {
        let scenario = r.get("scenario").and_then(Value::as_str).unwrap_or("");
        if !LATENCY_ROWS.contains(&scenario) {
            continue;
        }
        let round_no = r.get("round").and_then(Value::as_u64);
        let Some(&(_, d50, d99)) = direct.iter().find(|(n, ..)| Some(*n) == round_no) else {
            continue;
        };
        if let (Some(p50), Some(p99)) = (num(r, "p50_us"), num(r, "p99_us")) {
            r.insert("added_p50_us".into(), round(p50 - d50, 1));
            r.insert("added_p99_us".into(), round(p99 - d99, 1));
        }
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.is_empty() {
        f64::NAN
    } else if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// `{median, min, max, runs}` of the runs in one group; every numeric field that all the
/// runs have. Counts of failures (`non_2xx`, `non_202`, `non_200`, `errors`) are also summed.
pub fn summarize(runs: &[Map<String, Value>]) -> Value {
    let (mut med, mut min, mut max, mut total) = (Map::new(), Map::new(), Map::new(), Map::new());
    if let Some(first) = runs.first() {
        for key in first.keys() {
            let mut values: Vec<f64> = runs.iter().filter_map(|r| num(r, key)).collect();
            if values.len() != runs.len() || key == "round" {
                continue;
            }
            med.insert(key.clone(), round(median(&mut values), 2));
            min.insert(
                key.clone(),
                round(values.iter().copied().fold(f64::INFINITY, f64::min), 2),
            );
            max.insert(
                key.clone(),
                round(values.iter().copied().fold(f64::NEG_INFINITY, f64::max), 2),
            );
            if ["non_2xx", "non_202", "non_200", "errors"].contains(&key.as_str()) {
                total.insert(key.clone(), round(values.iter().sum(), 0));
            }
        }
    }
    json!({"median": med, "min": min, "max": max, "total": total, "runs": runs})
}

fn get(summary: &Map<String, Value>, group: &str, part: &str, key: &str) -> Option<f64> {
    summary.get(group)?.get(part)?.get(key)?.as_f64()
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or_else(|| "–".to_string(), |x| format!("{x:.digits$}"))
}

/// The markdown report. `summary`: group name → [`summarize`] output.
pub fn markdown(summary: &Map<String, Value>, header: &str, idle_note: &str, rate: u64) -> String {
    let mut md = String::new();
    let mut behind = false;
    md.push_str(header);
    let rows: Vec<&str> = LATENCY_ROWS
        .iter()
        .copied()
        .filter(|s| summary.contains_key(*s))
        .collect();
    if !rows.is_empty() {
        let nginx_cpu = get(summary, "nginx", "median", "cpu_us_per_req");
        md.push_str(
            "\n| scenario | CPU µs/req | × nginx CPU | added p50 (µs) | added p99 (µs) | achieved req/s | non-2xx | peak RSS (MiB) |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        );
        for s in &rows {
            let m = |k: &str| get(summary, s, "median", k);
            let (cpu, ratio, rss) = if *s == "direct" {
                let cpu = m("backend_cpu_us_per_req");
                (
                    format!("({} backend)", cell(cpu, 2)),
                    "–".into(),
                    "–".into(),
                )
            } else {
                let cpu = m("cpu_us_per_req");
                let ratio = match (cpu, nginx_cpu) {
                    (Some(c), Some(n)) if n > 0.0 => Some(c / n),
                    _ => None,
                };
                (cell(cpu, 2), cell(ratio, 2), cell(m("peak_rss_mib"), 1))
            };
            let achieved = m("achieved_rps");
            // Below 95 % of the rate: the proxy (or the load generator) did not keep up.
            let mark = if achieved.is_some_and(|a| a < 0.95 * rate as f64) {
                behind = true;
                " ⚠"
            } else {
                ""
            };
            md.push_str(&format!(
                "| {s} | {cpu} | {ratio} | {} | {} | {}{mark} | {} | {rss} |\n",
                cell(m("added_p50_us"), 0),
                cell(m("added_p99_us"), 0),
                cell(achieved, 0),
                cell(get(summary, s, "total", "non_2xx"), 0),
            ));
        }
        if let (Some(p50), Some(p99)) = (
            get(summary, "direct", "median", "p50_us"),
            get(summary, "direct", "median", "p99_us"),
        ) {
            md.push_str(&format!(
                "\n`direct` (oha straight to the backend): p50 {p50:.0} µs, p99 {p99:.0} µs; its CPU \
                 column is the backend nginx's. Added latency = the proxy's percentile minus \
                 `direct`'s of the same round; non-2xx is the total over all rounds.\n"
            ));
        }
    }
    md.push_str(&paired_cpu(summary));
    md.push_str(&paired_p99(summary));
    if behind {
        md.push_str(&format!(
            "\n⚠ below 95 % of the {rate} req/s asked: that run did not keep up, so its \
             latency (corrected for coordinated omission) is mostly queueing.\n"
        ));
    }
    if summary.contains_key("propylon-async") {
        let m = |k: &str| get(summary, "propylon-async", "median", k);
        md.push_str(&format!(
            "\n**propylon-async** (backend down, `async: fallback`, no mapping, max rate): \
             **{} jobs/s** (202 answers per second; min {} – max {}), non-202: {} (all rounds), \
             CPU {} µs/job, peak RSS {} MiB, p50 {} µs / p99 {} µs.\n",
            cell(m("jobs_per_s"), 0),
            cell(get(summary, "propylon-async", "min", "jobs_per_s"), 0),
            cell(get(summary, "propylon-async", "max", "jobs_per_s"), 0),
            cell(get(summary, "propylon-async", "total", "non_202"), 0),
            cell(m("cpu_us_per_req"), 1),
            cell(m("peak_rss_mib"), 1),
            cell(m("p50_us"), 0),
            cell(m("p99_us"), 0),
        ));
    }
    let idle: Vec<&str> = IDLE_PROXIES
        .iter()
        .copied()
        .filter(|p| summary.contains_key(&format!("idle-{p}")))
        .collect();
    if !idle.is_empty() {
        md.push_str(&format!(
            "\nIdle keep-alive connections{idle_note}:\n\n\
             | proxy | connections open | RSS before (MiB) | RSS with them (MiB) | KiB per connection | non-200 + errors |\n\
             | --- | --- | --- | --- | --- | --- |\n"
        ));
        for p in idle {
            let g = format!("idle-{p}");
            let m = |k: &str| get(summary, &g, "median", k);
            let bad = get(summary, &g, "total", "non_200").unwrap_or(0.0)
                + get(summary, &g, "total", "errors").unwrap_or(0.0);
            md.push_str(&format!(
                "| {p} | {} | {} | {} | {} | {bad:.0} |\n",
                cell(m("open"), 0),
                cell(m("rss_before_mib"), 1),
                cell(m("rss_with_mib"), 1),
                cell(m("kib_per_connection"), 2),
            ));
        }
    }
    md
}

/// `field` of each run of `group`, by round.
fn per_round(summary: &Map<String, Value>, group: &str, field: &str) -> Vec<(u64, f64)> {
    summary
        .get(group)
        .and_then(|g| g.get("runs"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r.get("round")?.as_u64()?, r.get(field)?.as_f64()?)))
        .collect()
}

/// `compare(proxy's, nginx's)` for each round both ran, in round order.
fn against_nginx(
    summary: &Map<String, Value>,
    proxy: &str,
    field: &str,
    compare: impl Fn(f64, f64) -> f64,
) -> Vec<f64> {
    let nginx = per_round(summary, "nginx", field);
    per_round(summary, proxy, field)
        .iter()
        .filter_map(|(n, ours)| {
            let (_, theirs) = nginx.iter().find(|(m, _)| m == n)?;
            Some(compare(*ours, *theirs))
        })
        .collect()
}

/// Each pass-through run's p99 against nginx's in the same round: one round's p99 moves by
/// hundreds of µs with the machine's stalls, so two medians of five can differ by noise
/// alone; the round-by-round difference shows whether one proxy is steadily behind.
fn paired_p99(summary: &Map<String, Value>) -> String {
    let mut lines = Vec::new();
    for proxy in ["propylon", "propylon-plain"] {
        let mut diffs = against_nginx(summary, proxy, "p99_us", |ours, theirs| ours - theirs);
        if diffs.is_empty() {
            continue;
        }
        let at_most = diffs.iter().filter(|d| **d <= 0.0).count();
        let rounds = diffs.len();
        // `median` sorts: the first and last are then the least and the most.
        let mid = median(&mut diffs);
        let (least, most) = (diffs[0], diffs[rounds - 1]);
        lines.push(format!(
            "{proxy} − nginx: median {mid:+.0} µs (from {least:+.0} to {most:+.0}); at or \
             below nginx's in {at_most} of {rounds} rounds"
        ));
    }
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "\np99 round by round (the proxy's p99 minus nginx's in the same round): {}.\n",
        lines.join("; ")
    )
}

/// Each proxy's CPU per request over nginx's in the same round. The table's ratio divides
/// two medians taken over the whole run; when the machine's pace drifts from one minute to
/// the next (nginx 21.9 to 29.5 µs across the rounds of one run), the ratio within each
/// round is the steadier figure.
fn paired_cpu(summary: &Map<String, Value>) -> String {
    let mut lines = Vec::new();
    for proxy in LATENCY_ROWS
        .iter()
        .filter(|s| !matches!(**s, "direct" | "nginx"))
    {
        let mut ratios = against_nginx(summary, proxy, "cpu_us_per_req", |ours, theirs| {
            ours / theirs
        });
        if ratios.is_empty() {
            continue;
        }
        let rounds = ratios.len();
        let mid = median(&mut ratios);
        let (least, most) = (ratios[0], ratios[rounds - 1]);
        lines.push(format!("{proxy} {mid:.2} ({least:.2}–{most:.2})"));
    }
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "\nCPU round by round (the proxy's CPU per request over nginx's in the same round; \
         median, least–most): {}.\n",
        lines.join(", ")
    )
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_string()
}

/// nproc, CPU model, kernel, the tools' versions.
pub fn machine(opts: &Options) -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string());
    let version = |program: &Path, flag: &str| {
        let text = procs::output_of(&program.display().to_string(), &[flag])
            .unwrap_or_else(|e| e.to_string());
        first_line(&text)
    };
    json!({
        "nproc": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu_model": model,
        "kernel": first_line(&std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default()),
        "nginx": version(&opts.nginx, "-v"),
        "haproxy": version(&opts.haproxy, "-v"),
        "oha": version(&opts.oha, "--version"),
        "propylon": version(&opts.propylon, "--version"),
        "propylon_plain": opts.propylon_plain.as_ref().map(|p| p.display().to_string()),
        "nofile_hard": procs::hard_nofile(),
        "clk_tck": procs::clock_ticks(),
    })
}

pub fn now_utc() -> String {
    procs::output_of("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .map(|d| d.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A scenario's runs, one per round, with `field` set to each of `values`.
    fn group(field: &str, values: &[f64]) -> Value {
        let runs: Vec<Value> = values
            .iter()
            .enumerate()
            .map(|(i, v)| json!({"round": i + 1, field: v}))
            .collect();
        json!({ "runs": runs })
    }

    #[test]
    fn p99_is_compared_round_by_round() {
        let mut summary = Map::new();
        let p99 = |values: &[f64]| group("p99_us", values);
        summary.insert("nginx".into(), p99(&[700.0, 900.0, 650.0]));
        summary.insert("propylon".into(), p99(&[680.0, 950.0, 600.0]));
        let text = paired_p99(&summary);
        assert!(
            text.contains("propylon − nginx: median -20 µs (from -50 to +50); at or below nginx's in 2 of 3 rounds"),
            "{text}"
        );
        assert!(!text.contains("propylon-plain"), "{text}");
        summary.remove("nginx");
        assert_eq!(paired_p99(&summary), "");
    }

    #[test]
    fn cpu_is_compared_round_by_round() {
        let cpu = |values: &[f64]| group("cpu_us_per_req", values);
        let mut summary = Map::new();
        summary.insert("nginx".into(), cpu(&[20.0, 30.0, 25.0]));
        // Medians 30 against 25 (1.20), but 1.5, 1.0 and 1.2 round by round.
        summary.insert("propylon-chain".into(), cpu(&[30.0, 30.0, 30.0]));
        summary.insert("haproxy".into(), cpu(&[22.0, 33.0]));
        let text = paired_cpu(&summary);
        assert!(
            text.contains(": haproxy 1.10 (1.10–1.10), propylon-chain 1.20 (1.00–1.50)."),
            "{text}"
        );
        summary.remove("nginx");
        assert_eq!(paired_cpu(&summary), "");
    }
}
