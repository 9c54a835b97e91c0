//! Hot reload: file changes (config and referenced spec), SIGHUP, broken configs, and no
//! failed request while reloading.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

/// Polls `GET path` until the answer's `backend` tag equals `tag`; at most 10 s. Returns
/// how long it took.
fn wait_for_backend(gw: &Gateway, path: &str, tag: &str) -> Duration {
    let started = Instant::now();
    let mut last = String::new();
    let found = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
        let resp = gw.get(path);
        last = format!("{} {}", resp.status, resp.text());
        (resp.status == 200 && resp.json()["backend"] == tag).then_some(())
    });
    assert!(
        found.is_some(),
        "GET {path} never reached backend {tag:?} within 10 s; last answer: {last}"
    );
    started.elapsed()
}

fn two_backends() -> (MockBackend, MockBackend) {
    (
        MockBackend::start(tagged_echo_router("a")),
        MockBackend::start(tagged_echo_router("b")),
    )
}

#[test]
fn config_file_change_is_picked_up() {
    let (a, b) = two_backends();
    let gw = Gateway::start_with_files(&customers_config(&a.url()), &customers_files());
    assert_eq!(gw.get("/customers/1").json()["backend"], "a");

    gw.rewrite_config(&customers_config(&b.url()));
    let took = wait_for_backend(&gw, "/customers/1", "b");
    assert!(
        took < Duration::from_secs(5),
        "reload took {took:?}, expected ~2 s"
    );

    let config = gw.admin_config();
    assert!(config["version"].as_u64().unwrap_or(0) >= 2, "{config}");
    assert!(config["last_reload_error"].is_null(), "{config}");
}

#[test]
fn spec_file_change_is_picked_up() {
    let (a, _b) = two_backends();
    let gw = Gateway::start_with_files(&customers_config(&a.url()), &customers_files());
    assert_eq!(gw.get("/customers/1").status, 200);
    assert_problem(&gw.get("/clients/1"), 404);

    // Same operations, the facade path renamed in the spec only.
    gw.write_file(
        "customers.yaml",
        &CUSTOMERS_SPEC.replace("/customers/{id}:", "/clients/{id}:"),
    );
    let found = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
        (gw.get("/clients/1").status == 200).then_some(())
    });
    assert!(
        found.is_some(),
        "the changed spec was not picked up within 10 s"
    );
    let resp = gw.get("/clients/1?x=1");
    assert_eq!(resp.json()["path"], "/crm/customers/1/fetch");
    assert_eq!(resp.json()["query"], "x=1");
    assert_problem(&gw.get("/customers/1"), 404);
    assert!(gw.config_version() >= 2);
}

#[test]
fn sighup_reloads() {
    let (a, _b) = two_backends();
    let mut gw = Gateway::start_with_files(&customers_config(&a.url()), &customers_files());
    assert_eq!(gw.config_version(), 1);
    let success = "propylon_config_reloads_total{result=\"success\"}";
    let successes_before = metric_value(&gw.metrics(), success).unwrap_or(0.0);
    gw.sighup();
    let version = gw.wait_version_above(1, Duration::from_secs(10));
    assert_eq!(version, 2, "one SIGHUP, one reload");
    assert!(gw.is_running(), "the gateway must survive SIGHUP");
    assert_eq!(gw.get("/customers/1").status, 200);
    let metrics = gw.metrics();
    assert_eq!(
        metric_value(&metrics, success),
        Some(successes_before + 1.0),
        "{metrics}"
    );
}

#[test]
fn sighup_applies_a_changed_config() {
    let (a, b) = two_backends();
    let gw = Gateway::start_with_files(&customers_config(&a.url()), &customers_files());
    // Whether the watcher or the signal gets there first, the new backend must win.
    gw.rewrite_config(&customers_config(&b.url()));
    gw.sighup();
    wait_for_backend(&gw, "/customers/1", "b");
}

#[test]
fn admin_reload_applies_a_changed_config() {
    let (a, b) = two_backends();
    let gw = Gateway::start_with_files(&customers_config(&a.url()), &customers_files());
    gw.rewrite_config(&customers_config(&b.url()));
    let resp = gw.admin_post("/admin/reload");
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    assert_eq!(resp.json()["result"], "reloaded");
    // After an explicit reload answered 200, the new config is in effect at once.
    assert_eq!(gw.get("/customers/1").json()["backend"], "b");
}

/// Writes `broken` over a working config and checks that nothing changed and the failure
/// is reported; `fault` must appear in `last_reload_error`.
fn assert_broken_config_changes_nothing(broken: &str, fault: &[&str]) {
    let (a, _b) = two_backends();
    let gw = Gateway::start_with_files(&customers_config(&a.url()), &customers_files());
    let failure = "propylon_config_reloads_total{result=\"failure\"}";
    let failures_before = metric_value(&gw.metrics(), failure).unwrap_or(0.0);

    gw.rewrite_config(&broken.replace("@CRM@", &a.url()));
    let error = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
        gw.admin_config()["last_reload_error"]
            .as_str()
            .map(str::to_string)
    })
    .unwrap_or_else(|| {
        panic!(
            "no last_reload_error within 10 s of writing a broken config: {}",
            gw.admin_config()
        )
    });
    assert!(
        fault.iter().any(|f| error.contains(f)),
        "last_reload_error should mention one of {fault:?}: {error}"
    );
    let config = gw.admin_config();
    assert_eq!(config["version"], 1, "{config}");
    assert!(
        !config.to_string().contains(TOKEN),
        "token leaked in /admin/config after a failed reload"
    );

    for i in 0..5 {
        let resp = gw.get(&format!("/customers/{i}"));
        assert_eq!(
            resp.status,
            200,
            "old config must keep serving: {}",
            resp.text()
        );
        assert_eq!(resp.json()["backend"], "a");
        assert_eq!(resp.json()["path"], format!("/crm/customers/{i}/fetch"));
    }
    let metrics = gw.metrics();
    assert!(
        metric_value(&metrics, failure).unwrap_or(0.0) > failures_before,
        "failure counter did not go up:\n{metrics}"
    );
    assert_eq!(metric_value(&metrics, "propylon_config_version"), Some(1.0));
}

#[test]
fn config_with_unknown_backend_is_rejected_and_old_config_keeps_serving() {
    let broken = CUSTOMERS_CONFIG_TEMPLATE
        .replace("@TIMEOUT@", "2s")
        .replacen("backend: crm", "backend: ghost", 1);
    assert!(broken.contains("backend: ghost"));
    assert_broken_config_changes_nothing(&broken, &["ghost", "unknown backend"]);
}

#[test]
fn config_with_yaml_syntax_error_is_rejected_and_old_config_keeps_serving() {
    let broken = CUSTOMERS_CONFIG_TEMPLATE
        .replace("@TIMEOUT@", "2s")
        .replace("apis:\n", "apis: [\n  - {name: customers\n");
    assert_broken_config_changes_nothing(&broken, &["propylon.yaml", "yaml", "YAML", "line"]);
}

#[test]
fn broken_spec_file_is_rejected_and_old_config_keeps_serving() {
    let (a, _b) = two_backends();
    let gw = Gateway::start_with_files(&customers_config(&a.url()), &customers_files());
    // getCustomer disappears from the spec while the config still maps it.
    gw.write_file(
        "customers.yaml",
        &CUSTOMERS_SPEC.replace("operationId: getCustomer", "operationId: fetchCustomer"),
    );
    let error = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
        gw.admin_config()["last_reload_error"]
            .as_str()
            .map(str::to_string)
    })
    .unwrap_or_else(|| panic!("no last_reload_error: {}", gw.admin_config()));
    assert!(error.contains("getCustomer"), "{error}");
    assert_eq!(gw.config_version(), 1);
    let resp = gw.get("/customers/1");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["path"], "/crm/customers/1/fetch");
}

#[test]
fn in_flight_request_finishes_on_the_config_it_started_with() {
    let slow = MockBackend::start(slow_router(Duration::from_millis(1500)));
    let (_a, b) = two_backends();
    let gw = Gateway::start_with_files(&customers_config(&slow.url()), &customers_files());
    let in_flight = std::thread::scope(|s| {
        let handle = s.spawn(|| gw.get("/customers/1"));
        std::thread::sleep(Duration::from_millis(300));
        let resp = gw.admin_post("/admin/reload");
        assert_eq!(resp.status, 200, "{}", resp.text());
        gw.rewrite_config(&customers_config(&b.url()));
        assert_eq!(gw.admin_post("/admin/reload").status, 200);
        assert_eq!(gw.get("/customers/2").json()["backend"], "b");
        handle.join().expect("in-flight request thread")
    });
    assert_eq!(in_flight.status, 200, "{}", in_flight.text());
    assert_eq!(in_flight.json()["backend"], "slow");
}

#[test]
fn no_request_fails_while_config_is_reloaded_repeatedly() {
    const CLIENTS: usize = 4;
    const MAX_PER_CLIENT: usize = 5000;
    const MIN_DURING_RELOADS: u64 = 50;

    let (a, b) = two_backends();
    let configs = [customers_config(&a.url()), customers_config(&b.url())];
    let gw = Gateway::start_with_files(&configs[0], &customers_files());

    let stop = AtomicBool::new(false);
    let total = AtomicU64::new(0);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let seen_b = AtomicBool::new(false);
    let test_deadline = Instant::now() + Duration::from_secs(30);

    let (during, versions) = std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            s.spawn(|| {
                let client = agent();
                let url = gw.url("/customers/1");
                for _ in 0..MAX_PER_CLIENT {
                    if stop.load(Ordering::Relaxed) || Instant::now() >= test_deadline {
                        break;
                    }
                    match try_send(&client, "GET", &url, &[], None) {
                        Ok(resp) if resp.status == 200 => {
                            if resp.json()["backend"] == "b" {
                                seen_b.store(true, Ordering::Relaxed);
                            }
                        }
                        Ok(resp) => failures
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(format!("status {}: {}", resp.status, resp.text())),
                        Err(e) => failures
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(format!("transport error: {e}")),
                    }
                    total.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
        }

        // Let the clients get going.
        let warm = poll_until(Duration::from_secs(10), Duration::from_millis(10), || {
            (total.load(Ordering::Relaxed) >= 20).then_some(())
        });
        let start_count = total.load(Ordering::Relaxed);
        let mut versions = vec![gw.config_version()];
        if warm.is_some() {
            for i in 1..=6 {
                gw.rewrite_config(&configs[i % 2]);
                let prev = *versions.last().unwrap_or(&0);
                let v = poll_until(Duration::from_secs(10), Duration::from_millis(20), || {
                    let v = gw.config_version();
                    (v > prev).then_some(v)
                });
                match v {
                    Some(v) => versions.push(v),
                    None => {
                        stop.store(true, Ordering::Relaxed);
                        panic!("rewrite {i} not picked up within 10 s (versions {versions:?})");
                    }
                }
                // Give the watcher time to settle before the next write.
                std::thread::sleep(Duration::from_millis(150));
            }
        }
        let during = total.load(Ordering::Relaxed) - start_count;
        stop.store(true, Ordering::Relaxed);
        (warm.map(|_| during), versions)
    });

    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    let total = total.load(Ordering::Relaxed);
    let during =
        during.unwrap_or_else(|| panic!("clients made fewer than 20 requests in 10 s ({total})"));
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed during reloads; first ones: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        during >= MIN_DURING_RELOADS,
        "only {during} requests were made during the reloads"
    );
    assert_eq!(versions.len(), 7, "versions seen: {versions:?}");
    assert!(
        seen_b.load(Ordering::Relaxed),
        "no request ever reached backend b"
    );
    assert_eq!(
        gw.get("/customers/1").json()["backend"],
        "a",
        "last config points to a"
    );
}
