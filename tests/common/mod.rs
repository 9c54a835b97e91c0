//! End-to-end test harness: starts the real `propylon` binary on loopback ports, against
//! mock backends (axum on a shared tokio runtime), and talks to it with a blocking client.
//!
//! Rules kept here: loopback only, no fixed ports, every wait bounded, every process and
//! server stopped on Drop, and the gateway's log printed when a test fails.
//!
//! Every test binary compiles this folder on its own and uses only part of it, hence the
//! `dead_code` allowance. The modules, by concern:
//! - `gateway`: the `Gateway` process guard (start, reload helpers, restart, terminate, its
//!   threads) and one-shot commands (`run_propylon`, `run_check`, `write_config_dir`);
//! - `backends`: `MockBackend`, the echo/status routers, `RecordingBackend` and `Reply`;
//! - `http`: the blocking client (`agent`, `send`, `try_send`, `Resp`), raw HTTP/1.1
//!   (`raw_http`, `RawResp`, `chunked_body`) and keep-alive answers (`read_answer`, `Answer`);
//! - `asserts`: `assert_problem`, metric readers, `poll_until` and other checks;
//! - `jobs`: a job's 202 (`assert_job_accepted`), `job`, `job_as`, `wait_status`.
//!
//! Everything is re-exported here, so tests write `use common::*;`.

#![allow(dead_code)]

mod asserts;
mod backends;
mod gateway;
mod http;
mod jobs;

// Not every binary uses every module (e.g. `check` sends no HTTP request).
#[allow(unused_imports)]
pub use {asserts::*, backends::*, gateway::*, http::*, jobs::*};

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Mutex, OnceLock};

/// The admin token substituted for `{{TOKEN}}`.
pub const TOKEN: &str = "e2e-admin-token-7Hq2xZ";

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_propylon");

/// The API key of consumer `erp-batch` (test-only; auth and limits tests) and its SHA-256.
pub const API_KEY: &str = "e2e-erp-batch-key-9Vb3LqT0";
pub const API_KEY_SHA256: &str = "ce3f18705d5e119c20ba9297ae14dff2b2b0d526ee299909f73555773c7ce85b";

// ---------------------------------------------------------------------------------------
// Fixtures: specs and configs shared by the tests.
// ---------------------------------------------------------------------------------------

/// OpenAPI 3.0 facade of the `customers` API.
pub const CUSTOMERS_SPEC: &str = r#"openapi: 3.0.3
info:
  title: Customers
  version: "1.0"
paths:
  /customers:
    post:
      operationId: createCustomer
      requestBody:
        content:
          application/json:
            schema:
              type: object
      responses:
        "201":
          description: created
  /customers/{id}:
    parameters:
      - name: id
        in: path
        required: true
        schema:
          type: string
    get:
      operationId: getCustomer
      parameters:
        - name: x
          in: query
          required: false
          schema:
            type: string
      responses:
        "200":
          description: the customer
    delete:
      operationId: deleteCustomer
      responses:
        "204":
          description: deleted
  /uploads:
    post:
      operationId: upload
      requestBody:
        content:
          application/octet-stream:
            schema:
              type: string
              format: binary
      responses:
        "200":
          description: echoed
"#;

/// OpenAPI 3.0 facade of a second API, `orders`.
pub const ORDERS_SPEC: &str = r#"openapi: 3.0.3
info:
  title: Orders
  version: "1.0"
paths:
  /orders:
    get:
      operationId: listOrders
      responses:
        "200":
          description: orders
  /orders/{orderId}:
    get:
      operationId: getOrder
      parameters:
        - name: orderId
          in: path
          required: true
          schema:
            type: string
      responses:
        "200":
          description: one order
"#;

/// A config for the `customers` API with every spec operation mapped to backend `crm`
/// (at `@CRM@`, with timeout `@TIMEOUT@`).
pub const CUSTOMERS_CONFIG_TEMPLATE: &str = r#"server:
  listen: "{{LISTEN}}"
  admin_listen: "{{ADMIN}}"
  admin_token: "{{TOKEN}}"
backends:
  crm:
    url: "@CRM@"
    timeout: @TIMEOUT@
apis:
  - name: customers
    spec: ./customers.yaml
    operations:
      getCustomer:
        backend: crm
        request:
          method: POST
          path: "/crm/customers/{id}/fetch"
      createCustomer:
        backend: crm
      deleteCustomer:
        backend: crm
      upload:
        backend: crm
        request:
          path: /raw/uploads
"#;

/// The customers config pointing `crm` at `crm_url`, timeout 2s.
pub fn customers_config(crm_url: &str) -> String {
    customers_config_with_timeout(crm_url, "2s")
}

pub fn customers_config_with_timeout(crm_url: &str, timeout: &str) -> String {
    CUSTOMERS_CONFIG_TEMPLATE
        .replace("@CRM@", crm_url)
        .replace("@TIMEOUT@", timeout)
}

/// The files the customers config references.
pub fn customers_files() -> Vec<(&'static str, &'static str)> {
    vec![("customers.yaml", CUSTOMERS_SPEC)]
}

/// A gateway for the customers API in front of an echo backend.
pub fn echo_gateway() -> (MockBackend, Gateway) {
    let backend = MockBackend::start(echo_router());
    let gateway = Gateway::start_with_files(&customers_config(&backend.url()), &customers_files());
    (backend, gateway)
}

/// `n` bytes of deterministic pseudo-random data (xorshift64*).
pub fn pseudo_random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(n);
    out
}

// ---------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------

/// A free loopback port for a gateway to listen on, below the kernel's ephemeral range: the
/// test backends bind `127.0.0.1:0` and every outgoing connection takes an ephemeral port, so
/// a port from that range, free when checked, could be taken before the gateway binds it
/// (the gateway then retries while the test talks to someone else's server). Never hands out
/// the same port twice within this test process.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    static NEXT: OnceLock<Mutex<u16>> = OnceLock::new();
    let given = GIVEN.get_or_init(|| Mutex::new(HashSet::new()));
    let (low, high) = below_ephemeral_range();
    // Each test process starts at its own place in the range (test binaries run one after
    // another, but a port may linger in TIME_WAIT from the one before).
    let next = NEXT.get_or_init(|| {
        let spread = u32::from(high - low);
        Mutex::new(low + u16::try_from(std::process::id() % spread).unwrap_or(0))
    });
    for _ in 0..2000 {
        let port = {
            let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
            let port = *next;
            *next = if port + 1 >= high { low } else { port + 1 };
            port
        };
        let mut given = given.lock().unwrap_or_else(|e| e.into_inner());
        if given.insert(port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("could not find a free port below the ephemeral range in 2000 tries");
}

/// Ports `[low, high)` under the kernel's ephemeral range (`ip_local_port_range`, 32768 by
/// default), above the well-known and registered services most machines run.
fn below_ephemeral_range() -> (u16, u16) {
    let first_ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    (20000.min(first_ephemeral / 2), first_ephemeral)
}

/// A URL on a loopback port that was bound and then released: connecting is refused.
pub fn closed_port_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}
