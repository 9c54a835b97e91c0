//! What every process is configured with: the fixed-answer backend (nginx), the three
//! proxies (nginx, HAProxy, Propylon: one worker thread, upstream keep-alive, no access
//! log), Propylon's facade specs, the request bodies and the JWT.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use propylon_bench::{
    legacy_answer, request_template, response_template, validated_order, ORDER_SCHEMAS,
};
use serde_json::{json, Value};

pub const JWKS: &str = include_str!("../../../../tests/fixtures/jwks.json");
const RSA_KEY: &str = include_str!("../../../../tests/fixtures/rsa1.pem");
const ISSUER: &str = "https://idp.test/";
const AUDIENCE: &str = "propylon-bench";

/// The path every pass-through run asks for.
pub const PASS_PATH: &str = "/customers/c-1001";
/// The facade path of the chain and async runs.
pub const ORDERS_PATH: &str = "/orders";
/// The header the chain's request template reads.
pub const TENANT: (&str, &str) = ("x-tenant", "acme");

/// The backend's answer on `/`: a JSON object of 185–195 bytes (190 when it can).
pub fn customer_answer() -> Result<String, String> {
    let mut v = json!({
        "id": "c-1001", "name": "Ada Lovelace", "email": "ada@example.com", "tier": "gold",
        "since": "2019-03-14T09:26:53Z", "city": "London", "country": "GB", "active": true,
        "balance": 1234.5, "note": ""
    });
    let base = v.to_string().len();
    v["note"] = Value::String("x".repeat(190usize.saturating_sub(base)));
    let text = v.to_string();
    if (185..=195).contains(&text.len()) {
        Ok(text)
    } else {
        Err(format!("the backend's answer is {} bytes", text.len()))
    }
}

/// The backend's answer on `/chain`: the legacy ERP's order (about 1 KB).
pub fn chain_answer() -> String {
    legacy_answer().to_string()
}

/// The chain's request body: the 1 KB order the validation bench checks.
pub fn chain_body() -> String {
    validated_order().to_string()
}

/// The async run's body: a JSON order of about `size` bytes.
pub fn async_body(size: usize) -> String {
    let mut body = json!({
        "reference": "PO-2026-000187",
        "currency": "EUR",
        "customer": {"id": "C-100234", "name": "Ada Lovelace", "email": "ada@example.com"},
        "items": [{"sku": "SKU-0001", "qty": 2}, {"sku": "SKU-0002", "qty": 1}],
        "notes": ""
    });
    let base = body.to_string().len();
    body["notes"] = Value::String("x".repeat(size.saturating_sub(base)));
    body.to_string()
}

/// An RS256 token signed with the test key `rsa1`, valid for a day, scope `orders:write`.
pub fn token() -> Result<String, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| format!("clock: {e}"))?
        .as_secs();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa1".into());
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-7",
                        "exp": now + 86_400, "iat": now, "scope": "orders:write"});
    let key = EncodingKey::from_rsa_pem(RSA_KEY.as_bytes()).map_err(|e| format!("rsa1: {e}"))?;
    encode(&header, &claims, &key).map_err(|e| format!("signing the token: {e}"))
}

/// Text that goes between single quotes in nginx's config.
fn nginx_quoted(text: &str) -> Result<&str, String> {
    if text.contains(['\'', '$', '\\']) {
        return Err("an nginx `return` text may not hold ', $ or \\".into());
    }
    Ok(text)
}

/// The part every nginx config starts with: foreground master, one worker, logs to stderr.
fn nginx_head(dir: &Path, name: &str, nofile: u64, root: bool) -> String {
    let d = dir.display();
    let connections = nofile.min(30_000);
    // Run as root, nginx's workers would be `nobody`, who cannot enter the temp dir.
    let user = if root { "user root;\n" } else { "" };
    format!(
        "daemon off;
master_process on;
worker_processes 1;
{user}pid {d}/{name}.pid;
error_log stderr warn;
worker_rlimit_nofile {nofile};
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {d}/{name}-temp/body;
    proxy_temp_path {d}/{name}-temp/proxy;
    fastcgi_temp_path {d}/{name}-temp/fastcgi;
    uwsgi_temp_path {d}/{name}-temp/uwsgi;
    scgi_temp_path {d}/{name}-temp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
"
    )
}

/// The fixed-answer backend: `/` a ~190 B JSON object, `/chain` the ~1 KB legacy order.
pub fn backend_nginx(
    dir: &Path,
    port: u16,
    nofile: u64,
    root: bool,
    customer: &str,
    chain: &str,
) -> Result<String, String> {
    Ok(format!(
        "{head}    server {{
        listen 127.0.0.1:{port};
        default_type application/json;
        location / {{ return 200 '{customer}'; }}
        location /chain {{ return 200 '{chain}'; }}
    }}
}}
",
        head = nginx_head(dir, "backend", nofile, root),
        customer = nginx_quoted(customer)?,
        chain = nginx_quoted(chain)?,
    ))
}

/// nginx as the proxy: an upstream block with keep-alive.
pub fn proxy_nginx(dir: &Path, listen: u16, backend: u16, nofile: u64, root: bool) -> String {
    format!(
        "{head}    upstream be {{
        server 127.0.0.1:{backend};
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }}
    server {{
        listen 127.0.0.1:{listen};
        location / {{
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
    }}
}}
",
        head = nginx_head(dir, "nginx", nofile, root)
    )
}

/// HAProxy: one thread, keep-alive both ways, connection reuse, no log. Its nofile limit is
/// the hard one; `maxconn 30000` wants twice as many descriptors as that allows (one client
/// and one server side each), hence `no strict-limits` (a warning instead of a refusal to
/// start): idle client connections hold no server connection (`http-reuse always`).
pub fn haproxy(listen: u16, backend: u16, nofile: u64) -> String {
    format!(
        "global
    nbthread 1
    maxconn 30000
    ulimit-n {nofile}
    no strict-limits

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-request 300s
    timeout http-keep-alive 300s

frontend fe
    bind 127.0.0.1:{listen}
    default_backend be

backend be
    server s1 127.0.0.1:{backend}
"
    )
}

/// Which Propylon setup.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PropylonKind {
    /// `GET /customers/{id}`, no mapping: Pingora's streaming proxy phases.
    Pass,
    /// `POST /orders`: JWT + scope, quota, body validation, mapping both ways.
    Chain,
    /// `POST /orders`, `async: fallback`, the backend down, no mapping.
    Async,
}

const PASS_SPEC: &str = r#"openapi: 3.0.3
info: { title: Customers, version: "1" }
paths:
  /customers/{id}:
    get:
      operationId: getCustomer
      parameters:
        - { name: id, in: path, required: true, schema: { type: string } }
      responses:
        "200": { description: the customer }
"#;

const CHAIN_SPEC_HEAD: &str = r##"openapi: 3.0.3
info: { title: Orders, version: "1" }
paths:
  /orders:
    post:
      operationId: createOrder
      security:
        - bearer: [orders:write]
      requestBody:
        required: true
        content:
          application/json:
            schema: { $ref: "#/components/schemas/Order" }
      responses:
        "200": { description: the order as the ERP took it }
components:
  securitySchemes:
    bearer: { type: http, scheme: bearer, bearerFormat: JWT }
  schemas:
"##;

/// Propylon's config and its spec (file `facade.yaml` beside it). `backend`: the port of
/// the backend (nothing listens there for `Async`).
pub fn propylon(kind: PropylonKind, listen: u16, backend: u16) -> (String, String) {
    let server = format!(
        "server:
  listen: \"127.0.0.1:{listen}\"
  threads: 1
store:
  kind: embedded
  path: ./data
backends:
  be:
    url: http://127.0.0.1:{backend}
    timeout: 5s
"
    );
    match kind {
        PropylonKind::Pass => (
            format!(
                "{server}apis:
  - name: customers
    spec: ./facade.yaml
    operations:
      getCustomer:
        backend: be
"
            ),
            PASS_SPEC.to_string(),
        ),
        PropylonKind::Chain => (
            format!(
                "{server}auth:
  jwt:
    issuer: {ISSUER}
    audiences: [{AUDIENCE}]
    algorithms: [RS256]
    jwks_file: ./jwks.json
quotas:
  default: {{ rate: 1000000/s, burst: 1000000, quota: 1000000000/day }}
apis:
  - name: orders
    spec: ./facade.yaml
    operations:
      createOrder:
        backend: be
        request:
          path: /chain
          body: {request}
        response:
          body: {response}
",
                request = request_template(),
                response = response_template(),
            ),
            format!("{CHAIN_SPEC_HEAD}{ORDER_SCHEMAS}"),
        ),
        PropylonKind::Async => (
            format!(
                "{server}apis:
  - name: orders
    spec: ./facade.yaml
    operations:
      createOrder:
        backend: be
        async: fallback
"
            ),
            propylon_bench::ASYNC_ORDERS_SPEC.to_string(),
        ),
    }
}

/// The chain's answer is the legacy order mapped by the response template: `Ok` when it is.
pub fn check_chain_answer(body: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(body);
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the chain's answer: {e}: {text}"))?;
    let mapped = v["id"] == "SO-0099817"
        && v["status"] == "ACCEPTED"
        && v["total"]["amount"] == 483.0
        && v["http_status"] == 200
        && v["lines"].as_array().map(Vec::len) == Some(8)
        && v.get("OrderNo").is_none();
    if mapped {
        Ok(())
    } else {
        Err(format!("the chain's answer is not the mapped one: {text}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use propylon_policies::mapping::{response_context, BodyTemplate};

    #[test]
    fn the_chain_check_takes_the_mapped_answer_and_refuses_the_raw_one() {
        let template = BodyTemplate::compile(&response_template()).unwrap();
        let ctx = response_context(
            &(),
            template.roots(),
            200,
            &http::HeaderMap::new(),
            Some(legacy_answer()),
        );
        let mapped = template.render_json(&ctx).unwrap();
        assert_eq!(check_chain_answer(&mapped), Ok(()));
        assert!(check_chain_answer(chain_answer().as_bytes()).is_err());
    }

    #[test]
    fn bodies_have_their_sizes() {
        assert!((185..=195).contains(&customer_answer().unwrap().len()));
        assert!((900..1300).contains(&chain_body().len()));
        assert!((900..1100).contains(&chain_answer().len()));
        assert_eq!(async_body(500).len(), 500);
        assert!(nginx_quoted(&chain_answer()).is_ok());
    }

    #[test]
    fn the_token_is_signed() {
        assert_eq!(token().unwrap().split('.').count(), 3);
    }
}
