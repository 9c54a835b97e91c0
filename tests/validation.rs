//! Request validation against the facade spec, body limits and media types, end to end:
//! a rejected request is a 400/413/415 problem and never reaches the backend.

mod common;

use std::collections::BTreeSet;

use serde_json::{json, Value};

use common::*;

const SPEC: &str = r#"openapi: 3.0.3
info:
  title: Inventory
  version: "1.0"
paths:
  /items:
    get:
      operationId: listItems
      parameters:
        - name: limit
          in: query
          required: true
          schema: { type: integer, minimum: 1, maximum: 100 }
        - name: sort
          in: query
          schema: { type: string, enum: [asc, desc] }
        - name: code
          in: query
          schema: { type: string, pattern: "^[A-Z]{3}$" }
        - name: x-tenant
          in: header
          required: true
          schema: { type: string, pattern: "^[a-z]+$" }
      responses:
        "200": { description: items }
  /items/{id}:
    get:
      operationId: getItem
      parameters:
        - name: id
          in: path
          required: true
          schema: { type: integer }
      responses:
        "200": { description: one item }
  /orders:
    post:
      operationId: createOrder
      parameters:
        - name: x-channel
          in: header
          schema: { type: string, enum: [web, store] }
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [customer, items]
              properties:
                customer: { type: string }
                priority: { type: integer }
                items:
                  type: array
                  items:
                    type: object
                    required: [sku]
                    properties:
                      sku: { type: string }
                      qty: { type: integer, minimum: 1 }
      responses:
        "201": { description: created }
  /uploads:
    post:
      operationId: upload
      requestBody:
        content:
          application/octet-stream: {}
      responses:
        "200": { description: echoed }
"#;

const CONFIG_TEMPLATE: &str = r#"server:
  listen: "{{LISTEN}}"
  admin_listen: "{{ADMIN}}"
  admin_token: "{{TOKEN}}"
@MAX_BODY@
backends:
  inv:
    url: "@INV@"
    timeout: 5s
  files:
    url: "@FILES@"
    timeout: 10s
apis:
  - name: inventory
    spec: ./inventory.yaml
    operations:
      listItems:
        backend: inv
      getItem:
        backend: inv
      createOrder:
        backend: inv
        request:
          path: /orders/new
          body: { Customer: "$.body.customer", Lines: { $each: "$.body.items[*]", $to: { Sku: "$.sku", Qty: { $path: "$.qty", $default: 1 } } } }
        max_body: 2KiB
      upload:
        backend: files
"#;

struct Setup {
    inv: RecordingBackend,
    files: RecordingBackend,
    gw: Gateway,
}

fn setup() -> Setup {
    setup_with_server_max_body(None)
}

fn setup_with_server_max_body(max_body: Option<&str>) -> Setup {
    let inv = RecordingBackend::start(Reply::json(200, json!({ "ok": true })));
    let files = RecordingBackend::start(Reply::echo_body());
    let max_body_line = match max_body {
        Some(limit) => format!("  max_body: {limit}"),
        None => String::new(),
    };
    let config = CONFIG_TEMPLATE
        .replace("@MAX_BODY@", &max_body_line)
        .replace("@INV@", &inv.url())
        .replace("@FILES@", &files.url());
    let gw = Gateway::start_with_files(&config, &[("inventory.yaml", SPEC)]);
    Setup { inv, files, gw }
}

/// Asserts a 400 invalid-request problem and returns its `errors` as (pointer, reason).
fn invalid_request_errors(resp: &Resp) -> Vec<(String, String)> {
    let problem = assert_problem(resp, 400);
    assert_eq!(
        problem["type"], "urn:propylon:problem:invalid-request",
        "problem: {problem}"
    );
    let errors = problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("problem.errors must be an array: {problem}"));
    errors
        .iter()
        .map(|e| {
            let pointer = e["pointer"]
                .as_str()
                .unwrap_or_else(|| panic!("error without a string pointer: {e}"));
            let reason = e["reason"]
                .as_str()
                .unwrap_or_else(|| panic!("error without a string reason: {e}"));
            assert!(!reason.is_empty(), "empty reason: {e}");
            (pointer.to_string(), reason.to_string())
        })
        .collect()
}

/// The pointers of a 400's errors, as a set.
fn pointers(resp: &Resp) -> BTreeSet<String> {
    invalid_request_errors(resp)
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A JSON body of `customer` padded so that the whole body is exactly `len` bytes.
fn order_body_of_len(len: usize) -> Vec<u8> {
    let empty = br#"{"customer":"","items":[{"sku":"A"}]}"#.len();
    assert!(len >= empty);
    let body = json!({ "customer": "x".repeat(len - empty), "items": [ { "sku": "A" } ] })
        .to_string()
        .into_bytes();
    assert_eq!(body.len(), len);
    body
}

/// `POST /orders` with a JSON body sent chunked, `chunk` bytes per chunk, on a raw connection.
fn post_json_chunked(gw: &Gateway, body: &[u8], chunk: usize) -> RawResp {
    let mut request = format!(
        "POST /orders HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        gw.listen
    )
    .into_bytes();
    request.extend_from_slice(&chunked_body(body, chunk));
    raw_http(gw.listen, &request)
}

// ---------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------

#[test]
fn each_bad_parameter_is_a_400_naming_its_pointer_and_the_backend_is_not_called() {
    let s = setup();
    let tenant = [("x-tenant", "acme")];
    // (path and query, headers, the one pointer expected)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        ("/items", tenant.to_vec(), "/query/limit"), // required, missing
        ("/items?limit=ten", tenant.to_vec(), "/query/limit"), // not an integer
        ("/items?limit=1.5", tenant.to_vec(), "/query/limit"), // not an integer
        ("/items?limit=0", tenant.to_vec(), "/query/limit"), // below minimum
        ("/items?limit=5&sort=up", tenant.to_vec(), "/query/sort"), // not in enum
        ("/items?limit=5&code=ab1", tenant.to_vec(), "/query/code"), // pattern
        ("/items?limit=5", vec![], "/headers/x-tenant"), // required header missing
        (
            "/items?limit=5",
            vec![("x-tenant", "ACME!")],
            "/headers/x-tenant",
        ), // pattern
        ("/items/abc", vec![], "/path/id"),          // not an integer
    ];
    for (path, headers, pointer) in &cases {
        let resp = s.gw.request("GET", path, headers, None);
        assert_eq!(
            pointers(&resp),
            set(&[pointer]),
            "GET {path} {headers:?}: {}",
            resp.text()
        );
    }
    assert_eq!(
        s.inv.call_count(),
        0,
        "rejected requests must not reach the backend: {:?}",
        s.inv.calls()
    );
}

#[test]
fn several_bad_parameters_are_listed_together() {
    let s = setup();
    let resp =
        s.gw.request("GET", "/items?limit=x&sort=up&code=abc", &[], None);
    assert_eq!(
        pointers(&resp),
        set(&[
            "/query/limit",
            "/query/sort",
            "/query/code",
            "/headers/x-tenant"
        ]),
        "{}",
        resp.text()
    );
    assert_eq!(s.inv.call_count(), 0);
}

#[test]
fn valid_parameters_pass_and_reach_the_backend() {
    let s = setup();
    let resp = s.gw.request(
        "GET",
        "/items?limit=100&sort=desc&code=ABC",
        &[("x-tenant", "acme")],
        None,
    );
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    assert_eq!(resp.json(), json!({ "ok": true }));
    let resp = s.gw.get("/items/17");
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    assert_eq!(s.inv.call_count(), 2);
    let calls = s.inv.calls();
    assert_eq!(calls[0].path, "/items");
    assert_eq!(
        calls[0].query.as_deref(),
        Some("limit=100&sort=desc&code=ABC")
    );
    assert_eq!(calls[1].path, "/items/17");
}

// ---------------------------------------------------------------------------------------
// JSON bodies
// ---------------------------------------------------------------------------------------

#[test]
fn a_body_with_several_faults_is_one_400_listing_each() {
    let s = setup();
    let body = json!({
        "priority": "high",
        "items": [
            { "sku": "A", "qty": 1 },
            { "sku": "B", "qty": "two" },
            { "qty": 0 }
        ]
    });
    let resp = s.gw.post_json("/orders", body.to_string().as_bytes());
    let errors = invalid_request_errors(&resp);
    let found: BTreeSet<String> = errors.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(
        found,
        set(&[
            "/body/customer",    // missing required property
            "/body/priority",    // wrong type
            "/body/items/1/qty", // wrong type in an array item
            "/body/items/2/qty", // below minimum in an array item
            "/body/items/2/sku", // missing required property in an array item
        ]),
        "errors: {errors:?}"
    );
    assert_eq!(errors.len(), 5, "one entry per fault: {errors:?}");
    assert_eq!(s.inv.call_count(), 0, "calls: {:?}", s.inv.calls());
}

#[test]
fn invalid_json_is_a_400_at_body() {
    let s = setup();
    for bad in [
        &br#"{"customer": "C-1", "items": ["#[..],
        b"not json at all",
        b"",
    ] {
        let resp = s.gw.post_json("/orders", bad);
        assert_eq!(
            pointers(&resp),
            set(&["/body"]),
            "body {:?}: {}",
            String::from_utf8_lossy(bad),
            resp.text()
        );
    }
    assert_eq!(s.inv.call_count(), 0, "calls: {:?}", s.inv.calls());
}

#[test]
fn wrong_content_type_is_a_415() {
    let s = setup();
    let body = br#"{"customer":"C-1","items":[{"sku":"A"}]}"#;
    for content_type in ["text/plain", "application/xml"] {
        let resp = s.gw.request(
            "POST",
            "/orders",
            &[("content-type", content_type)],
            Some(body),
        );
        let problem = assert_problem(&resp, 415);
        assert_eq!(
            problem["type"], "urn:propylon:problem:unsupported-media-type",
            "{content_type}: {problem}"
        );
    }
    assert_eq!(s.inv.call_count(), 0, "calls: {:?}", s.inv.calls());
}

/// A buffered operation (the lean path's whole lane) checks its header parameters too.
#[test]
fn a_header_parameter_of_a_mapped_operation_is_checked() {
    let s = setup();
    let body = br#"{"customer":"C-1","items":[{"sku":"A"}]}"#;
    let send = |channel: &str| {
        let headers = [("content-type", "application/json"), ("x-channel", channel)];
        s.gw.request("POST", "/orders", &headers, Some(body))
    };
    let resp = send("phone");
    let errors = invalid_request_errors(&resp);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "/headers/x-channel");
    assert_eq!(s.inv.call_count(), 0, "calls: {:?}", s.inv.calls());
    let resp = send("web");
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    assert_eq!(s.inv.call_count(), 1);
}

#[test]
fn json_with_charset_is_accepted_and_mapped() {
    let s = setup();
    let resp = s.gw.request(
        "POST",
        "/orders",
        &[("content-type", "application/json; charset=utf-8")],
        Some(br#"{"customer":"C-1","items":[{"sku":"A","qty":2},{"sku":"B"}]}"#),
    );
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    assert_eq!(s.inv.call_count(), 1);
    let seen = s.inv.last();
    assert_eq!(seen.path, "/orders/new");
    assert_eq!(
        seen.body_json(),
        json!({ "Customer": "C-1", "Lines": [ { "Sku": "A", "Qty": 2 }, { "Sku": "B", "Qty": 1 } ] })
    );
}

// ---------------------------------------------------------------------------------------
// Body size limits
// ---------------------------------------------------------------------------------------

#[test]
fn body_at_the_limit_passes_and_one_byte_more_is_a_413() {
    let s = setup();
    let at_limit = order_body_of_len(2048);
    let resp = s.gw.post_json("/orders", &at_limit);
    assert_eq!(
        resp.status,
        200,
        "2 KiB exactly is allowed: {}",
        resp.text()
    );
    assert_eq!(s.inv.call_count(), 1);

    let over = order_body_of_len(2049);
    let resp = s.gw.post_json("/orders", &over);
    let problem = assert_problem(&resp, 413);
    assert_eq!(problem["type"], "urn:propylon:problem:payload-too-large");
    assert_eq!(s.inv.call_count(), 1, "a 413 must not reach the backend");
}

#[test]
fn chunked_body_over_the_limit_is_a_413() {
    let s = setup();
    let body = order_body_of_len(6000);
    let resp = post_json_chunked(&s.gw, &body, 500).into_resp();
    let problem = assert_problem(&resp, 413);
    assert_eq!(problem["type"], "urn:propylon:problem:payload-too-large");
    assert_eq!(s.inv.call_count(), 0, "calls: {:?}", s.inv.calls());
}

#[test]
fn chunked_body_under_the_limit_is_validated_and_mapped() {
    let s = setup();
    let body = br#"{"customer":"C-9","items":[{"sku":"Z","qty":4}]}"#;
    let resp = post_json_chunked(&s.gw, body, 7);
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    assert_eq!(s.inv.call_count(), 1);
    let seen = s.inv.last();
    assert_eq!(
        seen.body_json(),
        json!({ "Customer": "C-9", "Lines": [ { "Sku": "Z", "Qty": 4 } ] })
    );
    assert_eq!(
        seen.header_all("content-length"),
        vec![seen.body.len().to_string()]
    );

    // And a chunked body with faults is still validated.
    let resp = post_json_chunked(&s.gw, br#"{"customer":5,"items":[]}"#, 4).into_resp();
    assert_eq!(pointers(&resp), set(&["/body/customer"]), "{}", resp.text());
    assert_eq!(s.inv.call_count(), 1);
}

#[test]
fn unmapped_unschema_body_streams_through_untouched() {
    let s = setup();
    let data = pseudo_random_bytes(300 * 1024, 0x5eed);
    let resp = s.gw.request(
        "POST",
        "/uploads",
        &[("content-type", "application/octet-stream")],
        Some(&data),
    );
    assert_eq!(
        resp.status,
        200,
        "upload failed: {}",
        String::from_utf8_lossy(&resp.body[..resp.body.len().min(500)])
    );
    assert_eq!(s.files.call_count(), 1);
    let seen = s.files.last();
    assert_eq!(seen.path, "/uploads");
    assert!(
        seen.body == data,
        "the backend got {} bytes, not the 300 KiB sent",
        seen.body.len()
    );
    assert!(
        resp.body == data,
        "the client got {} bytes back, not the 300 KiB sent",
        resp.body.len()
    );
}

#[test]
fn streamed_body_is_not_limited_by_server_max_body() {
    // server.max_body limits bodies the gateway buffers (mapping, validation, jobs); a body
    // that is only streamed is not buffered, so it is not cut at that limit.
    let s = setup_with_server_max_body(Some("64KiB"));
    let data = pseudo_random_bytes(300 * 1024, 0xfeed);
    let resp = s.gw.request(
        "POST",
        "/uploads",
        &[("content-type", "application/octet-stream")],
        Some(&data),
    );
    assert_eq!(
        resp.status,
        200,
        "body: {}",
        String::from_utf8_lossy(&resp.body[..resp.body.len().min(500)])
    );
    assert!(
        s.files.last().body == data,
        "the backend did not get the 300 KiB intact"
    );
}

// ---------------------------------------------------------------------------------------
// The merged spec documents the gateway's own answers
// ---------------------------------------------------------------------------------------

#[test]
fn openapi_json_lists_the_gateways_own_answers() {
    let s = setup();
    let resp = s.gw.get("/openapi.json");
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    let spec = resp.json();
    let ops: [(&str, &str, bool); 4] = [
        ("/items", "get", false),
        ("/items/{id}", "get", false),
        ("/orders", "post", true),
        ("/uploads", "post", true),
    ];
    for (path, method, has_body) in ops {
        let op = &spec["paths"][path][method];
        assert!(op.is_object(), "merged spec lacks {method} {path}");
        let responses = &op["responses"];
        let mut expected = vec!["400", "413", "429", "502", "504"];
        if has_body {
            expected.push("415");
        }
        for code in expected {
            let response = &responses[code];
            assert!(
                response.is_object(),
                "{method} {path} does not list {code}: {responses}"
            );
            let content = resolve(&spec, response);
            assert!(
                content["content"]["application/problem+json"].is_object(),
                "{method} {path} {code} is not application/problem+json: {content}"
            );
        }
        if !has_body {
            assert!(
                responses["415"].is_null(),
                "{method} {path} has no requestBody, so no 415: {responses}"
            );
        }
    }
    // The spec's own responses are kept.
    assert!(spec["paths"]["/orders"]["post"]["responses"]["201"].is_object());
}

/// Follows a local `$ref` (one level) inside the document.
fn resolve<'a>(spec: &'a Value, node: &'a Value) -> &'a Value {
    match node["$ref"].as_str() {
        Some(r) => spec
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {r}")),
        None => node,
    }
}
