//! The admin listener: bearer token, health, effective config, reload, metrics.

mod common;

use std::time::Duration;

use common::*;

const ADMIN_ROUTES: [(&str, &str); 4] = [
    ("GET", "/admin/health"),
    ("GET", "/admin/config"),
    ("GET", "/metrics"),
    ("POST", "/admin/reload"),
];

#[test]
fn admin_routes_without_token_are_401_problem() {
    let (_backend, gw) = echo_gateway();
    for (method, path) in ADMIN_ROUTES {
        let resp = send(gw.agent(), method, &gw.admin_url(path), &[], None);
        let problem = assert_problem(&resp, 401);
        assert!(!resp.text().contains(TOKEN), "{method} {path}: {problem}");
    }
}

#[test]
fn admin_routes_with_wrong_token_are_401_problem() {
    let (_backend, gw) = echo_gateway();
    let wrong_bearer = format!("Bearer {TOKEN}x");
    let truncated = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    let wrong_scheme = format!("Basic {TOKEN}");
    for (method, path) in ADMIN_ROUTES {
        for auth in [&wrong_bearer, &truncated, &wrong_scheme] {
            let resp = send(
                gw.agent(),
                method,
                &gw.admin_url(path),
                &[("authorization", auth.as_str())],
                None,
            );
            assert_problem(&resp, 401);
        }
    }
    // None of the rejected reloads may have reloaded anything.
    assert_eq!(gw.config_version(), 1);
}

#[test]
fn health_is_ok() {
    let (_backend, gw) = echo_gateway();
    let resp = gw.admin_get("/admin/health");
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    assert_eq!(resp.json()["status"], "ok");
}

#[test]
fn config_shows_version_load_time_and_effective_config_with_token_redacted() {
    let (backend, gw) = echo_gateway();
    let resp = gw.admin_get("/admin/config");
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    let text = resp.text();
    assert!(
        !text.contains(TOKEN),
        "the admin token appears in clear in /admin/config: {text}"
    );
    assert!(
        text.contains("***redacted***"),
        "the admin token must be shown as ***redacted***: {text}"
    );
    let body = resp.json();
    assert_eq!(body["version"], 1, "{body}");
    assert!(
        body["loaded_at"].as_str().is_some_and(|s| !s.is_empty()),
        "loaded_at must be a non-empty string: {body}"
    );
    assert!(body["last_reload_error"].is_null(), "{body}");
    assert!(
        body["config"].is_object(),
        "config must be an object: {body}"
    );
    assert!(
        body["config"].to_string().contains(&backend.url()),
        "the effective config must show the backend url {}: {body}",
        backend.url()
    );
}

#[test]
fn admin_token_can_come_from_an_env_default() {
    let backend = MockBackend::start(echo_router());
    let config = customers_config(&backend.url()).replace(
        "admin_token: \"{{TOKEN}}\"",
        "admin_token: \"${PROPYLON_E2E_SURELY_UNSET_TOKEN_VAR:-{{TOKEN}}}\"",
    );
    assert!(config.contains("PROPYLON_E2E_SURELY_UNSET_TOKEN_VAR"));
    // Starting at all proves it: the harness polls /admin/health with TOKEN.
    let gw = Gateway::start_with_files(&config, &customers_files());
    assert_eq!(gw.admin_get("/admin/health").status, 200);
    assert!(!gw.admin_get("/admin/config").text().contains(TOKEN));
}

#[test]
fn reload_endpoint_reloads_and_bumps_version() {
    let (_backend, gw) = echo_gateway();
    let before = gw.admin_config();
    assert_eq!(before["version"], 1, "{before}");

    let resp = gw.admin_post("/admin/reload");
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    let body = resp.json();
    assert_eq!(body["result"], "reloaded", "{body}");
    assert_eq!(body["version"], 2, "{body}");

    let after = gw.admin_config();
    assert_eq!(after["version"], 2, "{after}");
    assert!(after["last_reload_error"].is_null(), "{after}");

    let resp = gw.admin_post("/admin/reload");
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    assert_eq!(resp.json()["version"], 3);
    assert_eq!(gw.get("/customers/1").status, 200);
}

/// Two independent faults: an operation on an unknown backend, and a bad duration.
fn config_with_two_faults(crm_url: &str) -> String {
    customers_config_with_timeout(crm_url, "2 parsecs").replace(
        "      deleteCustomer:\n        backend: crm\n",
        "      deleteCustomer:\n        backend: nosuchbackend\n",
    )
}

#[test]
fn failed_reload_is_422_with_one_error_per_fault_and_changes_nothing() {
    let (backend, gw) = echo_gateway();
    let broken = config_with_two_faults(&backend.url());
    assert!(broken.contains("nosuchbackend") && broken.contains("2 parsecs"));
    gw.rewrite_config(&broken);

    let resp = gw.admin_post("/admin/reload");
    let problem = assert_problem(&resp, 422);
    let errors = problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("422 problem must have an errors array: {problem}"));
    assert_eq!(errors.len(), 2, "one entry per fault expected: {problem}");
    let all = problem["errors"].to_string();
    assert!(all.contains("nosuchbackend"), "{problem}");
    assert!(all.contains("timeout"), "{problem}");

    let config = gw.admin_config();
    assert_eq!(
        config["version"], 1,
        "a failed reload must not change the version: {config}"
    );
    let last_error = config["last_reload_error"]
        .as_str()
        .unwrap_or_else(|| panic!("last_reload_error must be a string after a failure: {config}"));
    assert!(
        last_error.contains("nosuchbackend") || last_error.contains("unknown backend"),
        "last_reload_error must mention the fault: {last_error}"
    );
    // Old config still serves, including the operation the broken config would have broken.
    assert_eq!(gw.get("/customers/1").status, 200);
    assert_eq!(gw.request("DELETE", "/customers/1", &[], None).status, 200);
}

fn requests_total(metrics: &str, operation: &str, status: u16) -> f64 {
    let series = format!(
        "propylon_requests_total{{api=\"customers\",operation=\"{operation}\",status=\"{status}\"}}"
    );
    metric_value(metrics, &series).unwrap_or(0.0)
}

#[test]
fn metrics_count_requests_per_operation_and_status() {
    let (_backend, gw) = echo_gateway();
    for i in 0..3 {
        assert_eq!(gw.get(&format!("/customers/{i}")).status, 200);
    }
    assert_eq!(gw.request("DELETE", "/customers/1", &[], None).status, 200);

    // Counters may be updated after the response is sent: wait (bounded) for them.
    let metrics = poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
        let m = gw.metrics();
        let done = requests_total(&m, "getCustomer", 200) >= 3.0
            && requests_total(&m, "deleteCustomer", 200) >= 1.0;
        done.then_some(m)
    })
    .unwrap_or_else(|| {
        panic!(
            "the request counts never reached 3 and 1:\n{}",
            gw.metrics()
        )
    });

    assert_eq!(
        requests_total(&metrics, "getCustomer", 200),
        3.0,
        "{metrics}"
    );
    assert_eq!(
        requests_total(&metrics, "deleteCustomer", 200),
        1.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("propylon_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert_eq!(
        metric_value(&metrics, "propylon_config_version"),
        Some(1.0),
        "{metrics}"
    );
}

#[test]
fn metrics_count_upstream_errors() {
    let gw = Gateway::start_with_files(&customers_config(&closed_port_url()), &customers_files());
    let before = metric_sum(&gw.metrics(), "propylon_upstream_errors_total");
    assert_eq!(gw.get("/customers/1").status, 502);
    // The upstream error is counted when the call fails, the request once its answer is
    // written: a scrape right after the 502 may see only the first.
    let after = poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
        let m = gw.metrics();
        let n = metric_sum(&m, "propylon_upstream_errors_total");
        (n > before && requests_total(&m, "getCustomer", 502) > 0.0).then_some(n)
    })
    .unwrap_or_else(|| {
        panic!(
            "propylon_upstream_errors_total or the 502's request count did not go up:\n{}",
            gw.metrics()
        )
    });
    assert_eq!(after, before + 1.0);
    let metrics = gw.metrics();
    assert_eq!(
        requests_total(&metrics, "getCustomer", 502),
        1.0,
        "{metrics}"
    );
}

#[test]
fn metrics_count_reload_successes_and_failures() {
    let (backend, gw) = echo_gateway();
    let success = "propylon_config_reloads_total{result=\"success\"}";
    let failure = "propylon_config_reloads_total{result=\"failure\"}";
    let m0 = gw.metrics();
    let (s0, f0) = (
        metric_value(&m0, success).unwrap_or(0.0),
        metric_value(&m0, failure).unwrap_or(0.0),
    );

    assert_eq!(gw.admin_post("/admin/reload").status, 200);
    let m1 = gw.metrics();
    assert_eq!(metric_value(&m1, success), Some(s0 + 1.0), "{m1}");
    assert_eq!(metric_value(&m1, failure).unwrap_or(0.0), f0, "{m1}");
    assert_eq!(
        metric_value(&m1, "propylon_config_version"),
        Some(2.0),
        "{m1}"
    );

    gw.rewrite_config(&config_with_two_faults(&backend.url()));
    assert_eq!(gw.admin_post("/admin/reload").status, 422);
    // The file watcher may also have tried (and failed) the broken file: at least one failure,
    // and no success, must be counted.
    let m2 = gw.metrics();
    assert!(
        metric_value(&m2, failure).unwrap_or(0.0) >= f0 + 1.0,
        "failure counter did not go up:\n{m2}"
    );
    assert_eq!(metric_value(&m2, success), Some(s0 + 1.0), "{m2}");
    assert_eq!(
        metric_value(&m2, "propylon_config_version"),
        Some(2.0),
        "{m2}"
    );
}

#[test]
fn json_logs_have_one_access_line_per_request() {
    let crm = MockBackend::start(echo_router());
    let gw = Gateway::start_with_args(
        &customers_config(&crm.url()),
        &customers_files(),
        &["--log-format", "json"],
    );
    let resp = send(
        gw.agent(),
        "GET",
        &gw.url("/customers/7"),
        &[("x-request-id", "json-log-1")],
        None,
    );
    assert_eq!(resp.status, 200);
    let line = poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
        gw.log()
            .lines()
            .find(|l| l.contains("json-log-1"))
            .map(str::to_string)
    })
    .expect("an access log line with the request id");
    let entry: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(entry["request_id"], "json-log-1");
    assert_eq!(entry["operation"], "getCustomer");
    assert_eq!(entry["api"], "customers");
    assert_eq!(entry["status"], 200);
    assert_eq!(entry["upstream"], "crm");
    assert!(
        entry["duration_ms"].as_f64().is_some_and(|d| d >= 0.0),
        "{line}"
    );
    assert_eq!(
        gw.log()
            .lines()
            .filter(|l| l.contains("json-log-1"))
            .count(),
        1
    );
}
