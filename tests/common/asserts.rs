//! Assertions and checks shared by the tests: gateway-made problems, request ids, metrics,
//! and bounded polling.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::Resp;

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
