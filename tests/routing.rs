//! Routing through the gateway: facade operation → backend request, bodies, headers,
//! gateway-made errors and the merged OpenAPI document.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn mapped_operation_reaches_backend_with_mapped_method_path_and_query() {
    let (_backend, gw) = echo_gateway();
    let resp = gw.get("/customers/42?x=1");
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    let seen = resp.json();
    assert_eq!(seen["backend"], "echo");
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/crm/customers/42/fetch");
    assert_eq!(seen["query"], "x=1");
}

#[test]
fn query_string_is_passed_upstream_unchanged() {
    let (_backend, gw) = echo_gateway();
    let resp = gw.get("/customers/7?x=a%20b&x=2&empty=");
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    assert_eq!(resp.json()["query"], "x=a%20b&x=2&empty=");
}

#[test]
fn operation_without_request_mapping_keeps_method_and_facade_path() {
    let (_backend, gw) = echo_gateway();
    let resp = gw.request("DELETE", "/customers/7", &[], None);
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    let seen = resp.json();
    assert_eq!(seen["method"], "DELETE");
    assert_eq!(seen["path"], "/customers/7");
    assert_eq!(seen["query"], "");
}

#[test]
fn path_parameter_is_percent_encoded_when_substituted() {
    let (_backend, gw) = echo_gateway();

    let resp = gw.get("/customers/a%20b");
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    assert_eq!(resp.json()["path"], "/crm/customers/a%20b/fetch");

    // An encoded slash stays inside its segment: it must not become a path separator.
    let resp = gw.get("/customers/a%2Fb");
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    assert_eq!(resp.json()["path"], "/crm/customers/a%2Fb/fetch");
}

#[test]
fn json_body_passes_through_unchanged() {
    let (_backend, gw) = echo_gateway();
    let body = r#"{"name":"Ada Lovelace","tags":["a","b"],"n":1.5}"#;
    let resp = gw.post_json("/customers", body.as_bytes());
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    let seen = resp.json();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/customers");
    assert_eq!(seen["body"], body);
    assert_eq!(seen["headers"]["content-type"], "application/json");
}

#[test]
fn large_binary_body_streams_through_byte_for_byte() {
    let (_backend, gw) = echo_gateway();
    let body = pseudo_random_bytes(300 * 1024 + 17, 0x5eed);
    let resp = gw.request(
        "POST",
        "/uploads",
        &[("content-type", "application/octet-stream")],
        Some(&body),
    );
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    assert_eq!(resp.body.len(), body.len(), "echoed body length");
    assert!(resp.body == body, "echoed body differs from the sent body");
}

#[test]
fn request_id_is_generated_when_client_sends_none() {
    let (_backend, gw) = echo_gateway();
    let resp = gw.get("/customers/1");
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    let upstream_id = resp.json()["headers"]["x-request-id"]
        .as_str()
        .map(str::to_string)
        .expect("backend must receive x-request-id");
    assert!(
        is_uuid(&upstream_id),
        "generated id is not a UUID: {upstream_id:?}"
    );
    assert_eq!(
        resp.header("x-request-id").as_deref(),
        Some(upstream_id.as_str()),
        "client must get the same x-request-id the backend saw"
    );

    let second = gw.get("/customers/1");
    assert_ne!(
        second.header("x-request-id"),
        Some(upstream_id),
        "each request must get its own id"
    );
}

#[test]
fn client_request_id_is_kept() {
    let (_backend, gw) = echo_gateway();
    let id = "client-chosen-id-123";
    let resp = gw.request("GET", "/customers/1", &[("x-request-id", id)], None);
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    assert_eq!(resp.json()["headers"]["x-request-id"], id);
    assert_eq!(resp.header("x-request-id").as_deref(), Some(id));
}

#[test]
fn forwarding_headers_are_set_and_traceparent_passes_through() {
    let (_backend, gw) = echo_gateway();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let resp = gw.request("GET", "/customers/1", &[("traceparent", traceparent)], None);
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    let headers = &resp.json()["headers"];
    assert_eq!(
        headers["x-forwarded-for"], "127.0.0.1",
        "headers: {headers}"
    );
    assert_eq!(headers["x-forwarded-proto"], "http", "headers: {headers}");
    assert_eq!(headers["traceparent"], traceparent, "headers: {headers}");
}

#[test]
fn unknown_path_is_404_problem() {
    let (_backend, gw) = echo_gateway();
    let resp = gw.get("/no/such/path");
    assert_problem(&resp, 404);

    let resp = gw.get("/customers/1/extra");
    assert_problem(&resp, 404);
}

#[test]
fn wrong_method_on_known_path_is_405_with_allow() {
    let (_backend, gw) = echo_gateway();
    let resp = gw.request("PATCH", "/customers/1", &[], None);
    assert_problem(&resp, 405);
    let allow = resp
        .header("allow")
        .expect("a 405 must carry an Allow header");
    let methods: HashSet<String> = allow
        .split(',')
        .map(|m| m.trim().to_ascii_uppercase())
        .collect();
    for defined in ["GET", "DELETE"] {
        assert!(methods.contains(defined), "Allow {allow:?} lacks {defined}");
    }
    assert!(
        !methods.contains("POST") && !methods.contains("PATCH"),
        "Allow {allow:?} lists a method not defined on /customers/{{id}}"
    );
}

#[test]
fn unreachable_backend_is_502_problem() {
    let gw = Gateway::start_with_files(&customers_config(&closed_port_url()), &customers_files());
    let resp = gw.get("/customers/1");
    assert_problem(&resp, 502);
}

#[test]
fn backend_slower_than_its_timeout_is_504_problem() {
    let backend = MockBackend::start(slow_router(Duration::from_secs(2)));
    let gw = Gateway::start_with_files(
        &customers_config_with_timeout(&backend.url(), "300ms"),
        &customers_files(),
    );
    let started = Instant::now();
    let resp = gw.get("/customers/1");
    let elapsed = started.elapsed();
    assert_problem(&resp, 504);
    assert!(
        elapsed < Duration::from_millis(1800),
        "the 504 must come from the 300ms timeout, not after the backend answered; took {elapsed:?}"
    );
}

#[test]
fn backend_error_status_passes_through_unchanged() {
    let backend = MockBackend::start(status_router(503));
    let gw = Gateway::start_with_files(&customers_config(&backend.url()), &customers_files());
    let resp = gw.get("/customers/1");
    assert_eq!(resp.status, 503, "body: {}", resp.text());
    let content_type = resp.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "backend's content-type must pass through, got {content_type:?}"
    );
    assert_eq!(resp.header("x-backend").as_deref(), Some("status"));
    assert_eq!(resp.json(), serde_json::json!({ "backend_status": 503 }));
}

const TWO_APIS_CONFIG: &str = r#"server:
  listen: "{{LISTEN}}"
  admin_listen: "{{ADMIN}}"
  admin_token: "{{TOKEN}}"
backends:
  crm:
    url: "@CRM@"
    timeout: 2s
apis:
  - name: customers
    spec: ./customers.yaml
    operations:
      getCustomer:
        backend: crm
      createCustomer:
        backend: crm
      deleteCustomer:
        backend: crm
      upload:
        backend: crm
  - name: orders
    spec: ./specs/orders.yaml
    operations:
      listOrders:
        backend: crm
      getOrder:
        backend: crm
        request:
          path: "/legacy/order/{orderId}"
"#;

fn two_apis_gateway() -> (MockBackend, Gateway) {
    let backend = MockBackend::start(echo_router());
    let gateway = Gateway::start_with_files(
        &TWO_APIS_CONFIG.replace("@CRM@", &backend.url()),
        &[
            ("customers.yaml", CUSTOMERS_SPEC),
            ("specs/orders.yaml", ORDERS_SPEC),
        ],
    );
    (backend, gateway)
}

#[test]
fn openapi_json_is_the_merged_spec_of_all_apis() {
    let (_backend, gw) = two_apis_gateway();
    let resp = gw.get("/openapi.json");
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    let content_type = resp.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "content-type {content_type:?}"
    );
    let spec = resp.json();
    let version = spec["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3."), "openapi version {version:?}");

    let expected = [
        ("/customers", "post", "customers", "createCustomer"),
        ("/customers/{id}", "get", "customers", "getCustomer"),
        ("/customers/{id}", "delete", "customers", "deleteCustomer"),
        ("/uploads", "post", "customers", "upload"),
        ("/orders", "get", "orders", "listOrders"),
        ("/orders/{orderId}", "get", "orders", "getOrder"),
    ];
    for (path, method, api, operation_id) in expected {
        let op = &spec["paths"][path][method];
        assert!(
            op.is_object(),
            "merged spec lacks {method} {path}; paths: {}",
            spec["paths"]
        );
        assert_eq!(op["operationId"], operation_id, "{method} {path}: {op}");
        assert_eq!(op["x-propylon-api"], api, "{method} {path}: {op}");
    }
}

#[test]
fn second_api_routes_to_its_own_mapping() {
    let (_backend, gw) = two_apis_gateway();
    let resp = gw.get("/orders/o-9");
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    let seen = resp.json();
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["path"], "/legacy/order/o-9");

    let resp = gw.get("/orders");
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    assert_eq!(resp.json()["path"], "/orders");
}

#[test]
fn admin_routes_are_not_served_on_the_main_listener() {
    let (_backend, gw) = echo_gateway();
    let auth = format!("Bearer {TOKEN}");
    let resp = gw.request(
        "GET",
        "/admin/config",
        &[("authorization", auth.as_str())],
        None,
    );
    assert_problem(&resp, 404);
    assert!(!resp.text().contains(TOKEN));
}

#[test]
fn upstream_connections_are_kept_alive_and_reused() {
    let (crm, accepted) = MockBackend::start_counting(echo_router());
    let gw = Gateway::start_with_files(&customers_config(&crm.url()), &customers_files());
    for i in 0..30 {
        let resp = gw.get(&format!("/customers/{i}"));
        assert_eq!(resp.status, 200, "request {i}: {}", resp.text());
    }
    let connections = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..=4).contains(&connections),
        "30 sequential calls opened {connections} upstream connections; keepalive should reuse them"
    );
    // With several worker threads, a pooled connection must be handed between them without
    // Pingora giving up on it (it did with one runtime per thread).
    let log = gw.log();
    assert!(
        !log.contains("failed to acquire reusable stream"),
        "the pool dropped reusable connections:\n{log}"
    );
}

/// Reads one HTTP/1.1 answer with a Content-Length body from a raw connection.
fn read_answer(stream: &mut std::net::TcpStream) -> (u16, String) {
    use std::io::Read;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).expect("read the answer");
        assert!(
            n > 0,
            "connection closed mid-answer: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&raw).to_string();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let head = &text[..end];
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .expect("content-length");
        if raw.len() >= end + 4 + length {
            let status = head[9..12].parse().expect("status code");
            return (status, text[end + 4..end + 4 + length].to_string());
        }
    }
}

#[test]
fn client_keepalive_connection_serves_requests_after_idle_pauses_and_split_writes() {
    use std::io::Write;
    let (_backend, gw) = echo_gateway();
    let mut conn = std::net::TcpStream::connect(gw.listen).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for i in 0..3 {
        let request = format!("GET /customers/k{i} HTTP/1.1\r\nHost: gw\r\n\r\n");
        // The first byte alone, then the rest: the gateway waits for a request's first byte
        // before handing the connection to the proxy, and must keep it for the parser.
        conn.write_all(&request.as_bytes()[..1]).expect("write");
        std::thread::sleep(Duration::from_millis(150));
        conn.write_all(&request.as_bytes()[1..]).expect("write");
        let (status, body) = read_answer(&mut conn);
        assert_eq!(status, 200, "request {i}: {body}");
        assert!(
            body.contains(&format!("/customers/k{i}")),
            "request {i}: {body}"
        );
        // Idle between requests, as a keep-alive client is.
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn sigterm_closes_idle_keepalive_connections_at_once_and_the_gateway_exits() {
    use std::io::{Read, Write};
    let (_backend, mut gw) = echo_gateway();
    // Two idle clients: one served a request first (the lean path's wait for the next one),
    // one that never sent anything (the wait for the first).
    let mut served = std::net::TcpStream::connect(gw.listen).expect("connect");
    served
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    served
        .write_all(b"GET /customers/idle HTTP/1.1\r\nHost: gw\r\n\r\n")
        .expect("write");
    let (status, body) = read_answer(&mut served);
    assert_eq!(status, 200, "{body}");
    let silent = std::net::TcpStream::connect(gw.listen).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    std::thread::sleep(Duration::from_millis(200));
    // Each connection's end, seen from the client: when, and whether it was a close.
    let watch = |mut conn: std::net::TcpStream| {
        std::thread::spawn(move || {
            let mut rest = Vec::new();
            let closed = match conn.read_to_end(&mut rest) {
                Ok(0) => true,
                Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
                Ok(_) => false,
            };
            (Instant::now(), closed, rest)
        })
    };
    let watchers = [("served", watch(served)), ("silent", watch(silent))];

    let status = gw.terminate(Duration::from_secs(15));
    let exited = Instant::now();
    assert!(status.success(), "exit status {status}; log:\n{}", gw.log());
    for (name, watcher) in watchers {
        let (ended, closed, rest) = watcher.join().expect("watcher");
        assert!(
            closed,
            "the {name} connection got {rest:?} instead of a close"
        );
        // An idle connection is closed on the signal, not when the process ends after the
        // one-second grace period for background services.
        assert!(
            ended + Duration::from_millis(400) < exited,
            "the {name} connection was closed only {:?} before the exit",
            exited.saturating_duration_since(ended)
        );
    }
}
