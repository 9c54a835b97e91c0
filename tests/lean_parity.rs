//! The lean path and Pingora's full path give the same answers. Each request is sent twice
//! to one gateway: kept alive (the lean path serves it) and with `Connection: close` (which
//! sends it through Pingora's proxy session, docs/config.md), and both the client's answers
//! and what the backend received must match.

mod common;

use serde_json::{json, Value};

use common::*;

const SPEC: &str = r#"openapi: 3.0.3
info: { title: Customers, version: "1" }
paths:
  /customers/{id}:
    get:
      operationId: getCustomer
      parameters:
        - { name: id, in: path, required: true, schema: { type: integer } }
        - { name: verbose, in: query, schema: { type: boolean } }
      responses:
        "200": { description: the record }
    put:
      operationId: updateCustomer
      parameters:
        - { name: id, in: path, required: true, schema: { type: integer } }
        - { name: dry, in: query, schema: { type: boolean } }
        - { name: x-channel, in: header, required: true, schema: { type: string, enum: [web, store] } }
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [name, email]
              properties:
                name: { type: string, minLength: 1 }
                email: { type: string, format: email }
                tags: { type: array, items: { type: string }, maxItems: 3 }
      responses:
        "200": { description: updated }
"#;

const CONFIG: &str = r#"server:
  listen: "{{LISTEN}}"
  admin_listen: "{{ADMIN}}"
  admin_token: "{{TOKEN}}"
backends:
  crm:
    url: "@CRM@/base"
    timeout: 5s
apis:
  - name: customers
    spec: ./customers.yaml
    operations:
      getCustomer:
        backend: crm
      updateCustomer:
        backend: crm
        request:
          method: post
          path: /crm/update/{id}
          query: { set: { channel: "$.headers.x-channel" }, remove: [dry] }
          headers:
            set: { x-tenant-id: "$.headers.x-tenant" }
            remove: [x-debug]
            rename: { x-old: x-new }
          body: { CustId: "$.path.id", FullName: "$.body.name", Contact: { Email: "$.body.email" }, Tags: "$.body.tags" }
        response:
          errors: problem
          status: { 201: 200 }
          headers: { set: { x-crm-ref: "$.body.Ref" } }
          body: { id: "$.body.CustId", name: "$.body.FullName", ref: "$.body.Ref", http: "$.status" }
"#;

/// What one request gave: the client's answer and what the backend received, with the
/// parts that differ per request by design (request ids, dates) left out.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    /// The answer's fields but `Date`, `X-Request-Id` and the connection's own.
    headers: Vec<(String, String)>,
    extra_header: Option<String>,
    body: Value,
    backend: Option<Sent>,
}

/// What the backend received (less `X-Request-Id` and the connection's own fields).
#[derive(Debug, PartialEq)]
struct Sent {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// One request: method, path, fields, body.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Option<&'a [u8]>);

fn normalise(mut body: Value) -> Value {
    if let Some(problem) = body.as_object_mut() {
        problem.remove("request_id");
    }
    body
}

/// Sends `method path` with `headers` and `body`, kept alive or closing, and reports what
/// the client and the backend saw.
fn exchange(
    gw: &Gateway,
    crm: &RecordingBackend,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    close: bool,
) -> Seen {
    let before = crm.call_count();
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if close {
        all.push(("connection", "close"));
    }
    let resp = gw.request(method, path, &all, body);
    let text = resp.text();
    let body = serde_json::from_str(&text).map_or(Value::String(text), normalise);
    let backend = (crm.call_count() > before).then(|| {
        let seen = crm.last();
        let kept: Vec<(String, String)> = seen
            .headers
            .iter()
            .filter(|(n, _)| !matches!(n.as_str(), "x-request-id" | "connection" | "keep-alive"))
            .cloned()
            .collect();
        let mut kept = kept;
        kept.sort();
        Sent {
            method: seen.method,
            path: seen.path,
            query: seen.query,
            headers: kept,
            body: seen.body,
        }
    });
    let mut fields: Vec<(String, String)> = resp
        .headers
        .iter()
        .filter(|(n, _)| {
            !matches!(
                n.as_str(),
                "date" | "x-request-id" | "connection" | "keep-alive" | "retry-after"
            )
        })
        .map(|(n, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            // The count left changes from one request to the next: the policy is compared.
            let value = match n.as_str() {
                "ratelimit" => value.split(';').next().unwrap_or("").to_string(),
                _ => value,
            };
            (n.to_string(), value)
        })
        .collect();
    fields.sort();
    Seen {
        status: resp.status,
        headers: fields,
        extra_header: resp.header("x-crm-ref"),
        body,
        backend,
    }
}

/// Sends the request both ways and asserts the two paths agree; what the lean path gave.
fn both_ways(
    gw: &Gateway,
    crm: &RecordingBackend,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Seen {
    let lean = exchange(gw, crm, method, path, headers, body, false);
    let full = exchange(gw, crm, method, path, headers, body, true);
    assert_eq!(lean, full, "{method} {path} {headers:?}");
    lean
}

#[test]
fn both_paths_answer_alike_and_send_the_backend_the_same_request() {
    let crm = RecordingBackend::start(
        Reply::json(
            201,
            json!({"CustId": "7", "FullName": "Ada", "Ref": "R-1", "Internal": [1, 2]}),
        )
        .with_header("x-backend", "crm-1"),
    );
    let config = CONFIG.replace("@CRM@", &crm.url());
    let gw = Gateway::start_with_files(&config, &[("customers.yaml", SPEC)]);
    let json_type = ("content-type", "application/json");
    let good = br#"{"name":"Ada","email":"ada@example.com","tags":["a","b"]}"#;
    let cases: Vec<Case> = vec![
        ("GET", "/customers/7?verbose=true", vec![], None),
        ("GET", "/customers/7?verbose=maybe", vec![], None),
        ("GET", "/customers/x", vec![], None),
        ("HEAD", "/customers/7", vec![], None),
        (
            "GET",
            "/customers/7?verbose=true&x=a%20b+c&x=2",
            vec![("x-tenant", "t1")],
            None,
        ),
        ("GET", "/customers/%37", vec![], None),
        (
            "PUT",
            "/customers/7?dry=true",
            vec![
                json_type,
                ("x-channel", "web"),
                ("x-tenant", "acme"),
                ("x-debug", "1"),
                ("x-old", "o1"),
                ("x-forwarded-for", "10.0.0.1"),
            ],
            Some(good),
        ),
        (
            "PUT",
            "/customers/%37",
            vec![
                json_type,
                ("x-channel", "web"),
                ("x-tenant", "a"),
                ("x-tenant", "b"),
            ],
            Some(good),
        ),
        (
            "PUT",
            "/customers/7",
            vec![json_type, ("x-channel", "phone")],
            Some(good),
        ),
        ("PUT", "/customers/7", vec![json_type], Some(good)),
        (
            "PUT",
            "/customers/7",
            vec![json_type, ("x-channel", "web")],
            Some(br#"{"name":"","email":"nope","tags":["a","b","c","d"]}"#),
        ),
        (
            "PUT",
            "/customers/7",
            vec![json_type, ("x-channel", "web")],
            Some(b"{not json"),
        ),
        (
            "PUT",
            "/customers/7",
            vec![("content-type", "text/plain"), ("x-channel", "web")],
            Some(b"hi"),
        ),
    ];
    for (method, path, headers, body) in &cases {
        both_ways(&gw, &crm, method, path, headers, *body);
    }
    // The cases did what they say: a mapped call, then refusals that never reach the CRM.
    let mapped = exchange(
        &gw,
        &crm,
        "PUT",
        "/customers/7?dry=true",
        &cases[6].2,
        Some(good),
        false,
    );
    assert_eq!(mapped.status, 200, "{mapped:?}");
    assert_eq!(mapped.extra_header.as_deref(), Some("R-1"));
    assert_eq!(
        mapped.body,
        json!({"id": "7", "name": "Ada", "ref": "R-1", "http": 201})
    );
    let sent = mapped.backend.expect("called");
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/base/crm/update/7")
    );
    assert_eq!(sent.query.as_deref(), Some("channel=web"));
    let sent_headers = sent.headers;
    let has = |name: &str, value: &str| sent_headers.iter().any(|(n, v)| n == name && v == value);
    assert!(
        has("x-tenant-id", "acme") && has("x-new", "o1"),
        "{sent_headers:?}"
    );
    assert!(!sent_headers
        .iter()
        .any(|(n, _)| n == "x-debug" || n == "x-old"));
    for refused in &cases[8..] {
        let seen = exchange(
            &gw, &crm, refused.0, refused.1, &refused.2, refused.3, false,
        );
        assert!(matches!(seen.status, 400 | 415), "{seen:?}");
        assert!(seen.backend.is_none(), "{seen:?}");
    }
}

#[test]
fn a_backend_error_is_the_same_problem_on_both_paths() {
    let crm = RecordingBackend::start(Reply::json(404, json!({"Error": "no such customer"})));
    let config = CONFIG.replace("@CRM@", &crm.url());
    let gw = Gateway::start_with_files(&config, &[("customers.yaml", SPEC)]);
    let headers = [("content-type", "application/json"), ("x-channel", "store")];
    let body = br#"{"name":"Ada","email":"ada@example.com"}"#;
    let lean = both_ways(&gw, &crm, "PUT", "/customers/9", &headers, Some(body));
    assert_eq!(lean.status, 404, "{lean:?}");
    assert_eq!(lean.body["type"], "urn:propylon:problem:backend-error");
    let relayed = both_ways(&gw, &crm, "GET", "/customers/9", &[], None);
    assert_eq!(relayed.status, 404);
    assert_eq!(relayed.body, json!({"Error": "no such customer"}));
}

#[test]
fn an_unusable_answer_and_a_client_request_id_are_treated_alike() {
    let crm = RecordingBackend::start(Reply::new(200, "application/json", b"{\"CustId\": 7,"));
    let config = CONFIG.replace("@CRM@", &crm.url());
    let gw = Gateway::start_with_files(&config, &[("customers.yaml", SPEC)]);
    let headers = [
        ("content-type", "application/json"),
        ("x-channel", "web"),
        ("x-request-id", "client-chose-this"),
    ];
    let body = br#"{"name":"Ada","email":"ada@example.com"}"#;
    let mut ids = Vec::new();
    for close in [false, true] {
        let mut all = headers.to_vec();
        if close {
            all.push(("connection", "close"));
        }
        let resp = gw.request("PUT", "/customers/7", &all, Some(body));
        let problem = assert_problem(&resp, 502);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or("")
                .contains("cannot be read"),
            "{problem}"
        );
        ids.push((
            resp.header("x-request-id"),
            crm.last().header("x-request-id"),
        ));
    }
    let expected = Some("client-chose-this".to_string());
    assert_eq!(ids, vec![(expected.clone(), expected.clone()); 2]);
    both_ways(&gw, &crm, "PUT", "/customers/7", &headers, Some(body));
}

const SECURED_SPEC: &str = r#"openapi: 3.0.3
info: { title: Customers, version: "1" }
components:
  securitySchemes:
    apiKey: { type: apiKey, in: header, name: X-API-Key }
security:
  - apiKey: []
paths:
  /customers/{id}:
    get:
      operationId: getCustomer
      parameters:
        - { name: id, in: path, required: true, schema: { type: integer } }
      responses:
        "200": { description: the record }
    put:
      operationId: updateCustomer
      parameters:
        - { name: id, in: path, required: true, schema: { type: integer } }
      requestBody:
        content:
          application/json:
            schema: { type: object, required: [name], properties: { name: { type: string } } }
      responses:
        "200": { description: updated }
"#;

const SECURED_CONFIG: &str = r#"server:
  listen: "{{LISTEN}}"
  admin_listen: "{{ADMIN}}"
  admin_token: "{{TOKEN}}"
backends:
  crm:
    url: "@CRM@"
auth:
  api_keys:
    - consumer: erp-batch
      key_sha256: 3605a9e4358da4302f8acea41f0f52cef85d0e3f727c7b020fc7305aec8d56b4
quotas:
  default: { rate: 1000/s, burst: 1000, quota: 100000/day }
apis:
  - name: customers
    spec: ./customers.yaml
    operations:
      getCustomer:
        backend: crm
        quotas: { quota: 4/day }
      updateCustomer:
        backend: crm
        request:
          body: { Name: "$.body.name", By: "$.consumer" }
"#;

#[test]
fn keys_and_quotas_are_applied_alike() {
    let crm = RecordingBackend::start(Reply::json(200, json!({"ok": true})));
    let config = SECURED_CONFIG.replace("@CRM@", &crm.url());
    let gw = Gateway::start_with_files(&config, &[("customers.yaml", SECURED_SPEC)]);
    let json_type = ("content-type", "application/json");
    let body: &[u8] = br#"{"name":"Ada"}"#;
    let cases: Vec<Case> = vec![
        ("GET", "/customers/7", vec![], None),
        ("GET", "/customers/7", vec![("x-api-key", "wrong")], None),
        ("GET", "/customers/7", vec![("x-api-key", "k-123")], None),
        ("PUT", "/customers/7", vec![json_type], Some(body)),
        (
            "PUT",
            "/customers/7",
            vec![json_type, ("x-api-key", "k-123")],
            Some(body),
        ),
    ];
    for (method, path, headers, body) in &cases {
        let lean = both_ways(&gw, &crm, method, path, headers, *body);
        let keyed = headers.iter().any(|(_, v)| *v == "k-123");
        assert_eq!(lean.status, if keyed { 200 } else { 401 }, "{lean:?}");
        if keyed {
            assert!(
                lean.headers.iter().any(|(n, _)| n == "ratelimit"),
                "{lean:?}"
            );
        }
    }
    assert_eq!(
        crm.last().body_json(),
        json!({"Name": "Ada", "By": "erp-batch"})
    );
    // `getCustomer`'s own quota (4 a day, two keyed GETs above): two more, then refusals.
    let keyed = [("x-api-key", "k-123")];
    let mut last = Vec::new();
    for close in [false, true, false, true] {
        last.push(exchange(
            &gw,
            &crm,
            "GET",
            "/customers/7",
            &keyed,
            None,
            close,
        ));
    }
    assert_eq!((last[0].status, last[1].status), (200, 200));
    assert_eq!((last[2].status, last[3].status), (429, 429), "{last:?}");
    assert_eq!(last[2], last[3]);
    let refused = gw.request("GET", "/customers/7", &keyed, None);
    assert!(refused.header("retry-after").is_some());
}

const XML_CONFIG: &str = r#"server:
  listen: "{{LISTEN}}"
  admin_listen: "{{ADMIN}}"
  admin_token: "{{TOKEN}}"
backends:
  crm:
    url: "@CRM@"
    format: xml
    xml: { root: m:UpdateCustomer, namespace: "urn:crm", envelope: soap11 }
apis:
  - name: customers
    spec: ./customers.yaml
    operations:
      getCustomer:
        backend: crm
        response:
          body: { id: "$.body.Customer.Id", tags: { $each: "$.body.Customer.Tag", $to: "$" } }
      updateCustomer:
        backend: crm
        request:
          path: /soap
          body: { CustId: "$.path.id", Name: "$.body.name", "@version": "2", Tags: { Tag: "$.body.tags" } }
        response:
          errors: pass
          headers: { set: { x-crm-ref: "$.body.Customer.Id" } }
"#;

#[test]
fn an_xml_backend_is_spoken_to_alike() {
    let soap = r#"<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><R><Customer kind="gold"><Id>7</Id><Tag>a</Tag><Tag>b &amp; c</Tag></Customer></R></s:Body></s:Envelope>"#;
    let crm = RecordingBackend::start(Reply::new(200, "text/xml", soap.as_bytes()));
    let config = XML_CONFIG.replace("@CRM@", &crm.url());
    let gw = Gateway::start_with_files(&config, &[("customers.yaml", SPEC)]);
    let json_type = ("content-type", "application/json");
    let cases: Vec<Case> = vec![
        ("GET", "/customers/7", vec![], None),
        (
            "PUT",
            "/customers/7",
            vec![json_type, ("x-channel", "web")],
            Some(br#"{"name":"Ada <&>","email":"ada@example.com","tags":["x","y"]}"#),
        ),
        (
            "PUT",
            "/customers/7",
            vec![json_type, ("x-channel", "web")],
            Some(br#"{"name":"Ada","email":"ada@example.com","tags":[["nested"]]}"#),
        ),
    ];
    for (method, path, headers, body) in &cases {
        both_ways(&gw, &crm, method, path, headers, *body);
    }
    let got = exchange(&gw, &crm, "GET", "/customers/7", &[], None, false);
    assert_eq!(got.body, json!({"id": "7", "tags": ["a", "b & c"]}));
    crm.set_reply(Reply::new(
        500,
        "text/xml",
        b"<Fault><Code>x</Code></Fault>",
    ));
    let (put, headers) = (&cases[1], &cases[1].2);
    let lean = both_ways(&gw, &crm, put.0, put.1, headers, put.3);
    assert_eq!(lean.status, 500, "errors: pass relays the fault: {lean:?}");
}
