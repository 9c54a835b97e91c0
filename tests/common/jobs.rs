//! The consumer side of durable jobs: the 202 that accepts one, `GET /jobs/{id}`, and
//! waiting for a status. Shared by the jobs and backend-health tests.

use std::time::Duration;

use serde_json::Value;

use super::asserts::poll_until;
use super::gateway::Gateway;
use super::http::Resp;
use super::API_KEY;

/// Asserts a 202 job acceptance (Location, `{id, status: queued}`) and returns the job id.
pub fn assert_job_accepted(resp: &Resp, what: &str) -> String {
    assert_eq!(
        resp.status,
        202,
        "{what}: expected 202, got {} with body {}",
        resp.status,
        resp.text()
    );
    let body = resp.json();
    let id = body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: 202 body has no string id: {body}"))
        .to_string();
    assert!(!id.is_empty(), "{what}: empty job id: {body}");
    assert_eq!(
        body["status"], "queued",
        "{what}: a new job is queued: {body}"
    );
    assert_eq!(
        resp.header("location").as_deref(),
        Some(format!("/jobs/{id}").as_str()),
        "{what}: Location of the job"
    );
    id
}

/// `GET /jobs/{id}` as `key`.
pub fn job_as(gw: &Gateway, key: &str, id: &str) -> Resp {
    gw.request("GET", &format!("/jobs/{id}"), &[("x-api-key", key)], None)
}

/// `GET /jobs/{id}` as erp-batch (`API_KEY`), asserting 200; the JSON.
pub fn job(gw: &Gateway, id: &str) -> Value {
    let resp = job_as(gw, API_KEY, id);
    assert_eq!(resp.status, 200, "GET /jobs/{id}: {}", resp.text());
    resp.json()
}

/// Polls `GET /jobs/{id}` until its status is `want` (at most `max`); returns the job JSON,
/// or panics with the last one seen.
pub fn wait_status(gw: &Gateway, id: &str, want: &str, max: Duration) -> Value {
    let mut last = Value::Null;
    poll_until(max, Duration::from_millis(50), || {
        last = job(gw, id);
        (last["status"] == want).then(|| last.clone())
    })
    .unwrap_or_else(|| panic!("job {id} not {want} within {max:?}; last seen: {last}"))
}
