//! `propylon check --config FILE`: exit 0 + `ok` for a good config; exit 1 with every fault
//! at once, each with `FILE:LINE` and a `help:` line, for a bad one.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A good config: every spec operation mapped, one of them with a request mapping.
fn good_dir() -> tempfile::TempDir {
    write_config_dir(&customers_config("http://127.0.0.1:9"), &customers_files())
}

#[test]
fn check_accepts_a_valid_config() {
    let dir = good_dir();
    let (code, stdout, stderr) = run_check(&dir.path().join("propylon.yaml"));
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("ok"), "stdout: {stdout}\nstderr: {stderr}");
}

#[test]
fn check_accepts_two_apis_with_specs_in_subfolders() {
    let config = customers_config("http://127.0.0.1:9")
        .replace("spec: ./customers.yaml", "spec: ./specs/customers.yaml")
        + "  - name: orders\n    spec: specs/orders.yaml\n    operations:\n      listOrders:\n        backend: crm\n      getOrder:\n        backend: crm\n        request:\n          path: \"/legacy/order/{orderId}\"\n";
    let dir = write_config_dir(
        &config,
        &[
            ("specs/customers.yaml", CUSTOMERS_SPEC),
            ("specs/orders.yaml", ORDERS_SPEC),
        ],
    );
    let (code, stdout, stderr) = run_check(&dir.path().join("propylon.yaml"));
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
}

/// Five independent faults, one per kind.
const FIVE_FAULTS: &str = r#"server:
  listen: "{{LISTEN}}"
  admin_listen: "{{ADMIN}}"
  admin_token: "{{TOKEN}}"
backends:
  crm:
    url: "http://127.0.0.1:9"
    timeout: 2 parsecs
  erp:
    url: "not a url"
apis:
  - name: customers
    spec: ./customers.yaml
    operations:
      getCustomer:
        backend: nowhere
      createCustomer:
        backend: crm
      deleteCustomer:
        backend: erp
      upload:
        backend: crm
      listInvoices:
        backend: crm
  - name: orders
    spec: ./specs/missing-orders.yaml
    operations:
      getOrder:
        backend: crm
"#;

/// 1-based number of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in the fixture"))
}

/// True if `out` contains `propylon.yaml:LINE` not followed by another digit.
fn mentions_line(out: &str, line: usize) -> bool {
    let needle = format!("propylon.yaml:{line}");
    out.match_indices(&needle).any(|(i, _)| {
        !out[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// Number of places `propylon.yaml:` is followed by a digit.
fn located_count(out: &str) -> usize {
    out.match_indices("propylon.yaml:")
        .filter(|(i, m)| {
            out[i + m.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
        .count()
}

fn check_five_faults() -> (i32, String, String) {
    let dir = write_config_dir(FIVE_FAULTS, &customers_files());
    run_check(&dir.path().join("propylon.yaml"))
}

#[test]
fn check_reports_all_faults_in_one_run() {
    let (code, stdout, stderr) = check_five_faults();
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    let lower = stderr.to_lowercase();
    assert!(
        lower.contains("unknown backend"),
        "unknown backend:\n{stderr}"
    );
    assert!(
        stderr.contains("nowhere"),
        "the unknown backend's name:\n{stderr}"
    );
    assert!(
        stderr.contains("listInvoices"),
        "the missing operationId:\n{stderr}"
    );
    assert!(
        stderr.contains("missing-orders.yaml"),
        "the missing spec path:\n{stderr}"
    );
    assert!(
        lower.contains("timeout"),
        "the bad duration's field:\n{stderr}"
    );
    assert!(lower.contains("url"), "the bad url:\n{stderr}");
    assert!(
        located_count(&stderr) == 5,
        "each of the five faults, once, with propylon.yaml:LINE:\n{stderr}"
    );
    assert!(
        stderr.matches("help:").count() == 5,
        "each of the five faults, once, with a help: line:\n{stderr}"
    );
    assert!(
        !stdout.trim().eq_ignore_ascii_case("ok"),
        "a failing check must not print ok: {stdout}"
    );
}

#[test]
fn check_reports_each_fault_at_the_line_of_its_key() {
    let (code, stdout, stderr) = check_five_faults();
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    for needle in [
        "backend: nowhere",
        "listInvoices:",
        "spec: ./specs/missing-orders.yaml",
        "timeout: 2 parsecs",
        "url: \"not a url\"",
    ] {
        let line = line_of(FIVE_FAULTS, needle);
        assert!(
            mentions_line(&stderr, line),
            "expected propylon.yaml:{line} for `{needle}`:\n{stderr}"
        );
    }
}

#[test]
fn check_reports_yaml_syntax_error_with_its_line() {
    let config = customers_config("http://127.0.0.1:9")
        .replace("    timeout: 2s\n", "    timeout: 2s\n   bad_indent: [\n");
    let dir = write_config_dir(&config, &customers_files());
    let (code, stdout, stderr) = run_check(&dir.path().join("propylon.yaml"));
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        located_count(&stderr) >= 1,
        "needs propylon.yaml:LINE:\n{stderr}"
    );
}

#[test]
fn check_reports_a_spec_that_is_not_openapi() {
    let dir = write_config_dir(
        &customers_config("http://127.0.0.1:9"),
        &[("customers.yaml", "just: [a, yaml, file]\n")],
    );
    let (code, stdout, stderr) = run_check(&dir.path().join("propylon.yaml"));
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("customers.yaml"), "{stderr}");
}

const UNSET: &str = "PROPYLON_E2E_SURELY_UNSET_VAR";

#[test]
fn check_rejects_an_unset_env_var_naming_it() {
    let config = customers_config("http://127.0.0.1:9").replace(
        "admin_token: \"{{TOKEN}}\"",
        &format!("admin_token: \"${{{UNSET}}}\""),
    );
    assert!(config.contains(&format!("${{{UNSET}}}")));
    let dir = write_config_dir(&config, &customers_files());
    let (code, stdout, stderr) =
        run_check_with_env(&dir.path().join("propylon.yaml"), &[], &[UNSET]);
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.contains(UNSET),
        "the variable must be named:\n{stderr}"
    );
    assert!(
        located_count(&stderr) >= 1,
        "needs propylon.yaml:LINE:\n{stderr}"
    );
}

#[test]
fn check_uses_the_default_of_an_unset_env_var() {
    let config = customers_config("http://127.0.0.1:9").replace(
        "admin_token: \"{{TOKEN}}\"",
        &format!("admin_token: \"${{{UNSET}:-fallback-token}}\""),
    );
    let dir = write_config_dir(&config, &customers_files());
    let (code, stdout, stderr) =
        run_check_with_env(&dir.path().join("propylon.yaml"), &[], &[UNSET]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("ok"), "stdout: {stdout}");
}

#[test]
fn check_validates_the_substituted_value_of_an_env_var() {
    let var = "PROPYLON_E2E_CRM_URL";
    let config = customers_config(&format!("${{{var}}}"));
    let dir = write_config_dir(&config, &customers_files());
    let path = dir.path().join("propylon.yaml");

    let (code, stdout, stderr) = run_check_with_env(&path, &[(var, "http://127.0.0.1:9")], &[]);
    assert_eq!(code, 0, "good value: stdout: {stdout}\nstderr: {stderr}");

    let (code, stdout, stderr) = run_check_with_env(&path, &[(var, "not a url")], &[]);
    assert_eq!(code, 1, "bad value: stdout: {stdout}\nstderr: {stderr}");
}

fn example_configs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut configs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    configs.sort();
    configs
}

#[test]
fn every_shipped_example_config_passes_check() {
    let configs = example_configs();
    assert!(
        !configs.is_empty(),
        "no *.yaml config directly under examples/: the repo must ship at least one"
    );
    let mut failures = Vec::new();
    for config in &configs {
        // The design's own example takes the admin token from this variable.
        let (code, stdout, stderr) =
            run_check_with_env(config, &[("PROPYLON_ADMIN_TOKEN", "example-token")], &[]);
        if code != 0 {
            failures.push(format!(
                "{} → exit {code}\nstdout: {stdout}\nstderr: {stderr}",
                config.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn openapi_command_prints_the_merged_spec() {
    let dir = write_config_dir(&customers_config("http://127.0.0.1:9"), &customers_files());
    let config = dir.path().join("propylon.yaml");
    let (code, stdout, stderr) = run_propylon(
        &["openapi", "--config", &config.to_string_lossy()],
        &[],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is the JSON spec");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    assert!(
        doc["paths"]["/customers/{id}"]["get"].is_object(),
        "{stdout}"
    );
    assert_eq!(
        doc["paths"]["/customers/{id}"]["get"]["x-propylon-api"],
        "customers"
    );
}

#[test]
fn help_names_every_command() {
    let (code, stdout, _) = run_propylon(&["--help"], &[], &[]);
    assert_eq!(code, 0);
    for word in ["run", "check", "openapi", "--config", "--log-format"] {
        assert!(stdout.contains(word), "--help lacks {word}:\n{stdout}");
    }
}
