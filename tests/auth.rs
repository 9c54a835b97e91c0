//! Authentication and authorization, end to end: JWT (RS256 / ES256 / HS256, JWKS file and
//! URL with rotation and stale keys), API keys, scopes from the facade spec's `security`,
//! the 401 / 403 problems and their `WWW-Authenticate` challenges, and the attacks a
//! verifier must refuse. The backend must never be called on a refusal.
//!
//! Keys come from `tests/fixtures/` (test-only keys, see its README).

mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use common::*;

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

const RSA1_PEM: &[u8] = include_bytes!("fixtures/rsa1.pem");
const RSA1_PUBLIC_PEM: &[u8] = include_bytes!("fixtures/rsa1.pub.pem");
const RSA2_PEM: &[u8] = include_bytes!("fixtures/rsa2.pem");
const EC1_PEM: &[u8] = include_bytes!("fixtures/ec1.pem");
const JWKS: &str = include_str!("fixtures/jwks.json");
const JWKS_ROTATED: &str = include_str!("fixtures/jwks-rotated.json");

const ISSUER: &str = "https://idp.test/";
const AUDIENCE: &str = "propylon-e2e";
/// The HS256 secret of kid `hs1` (test-only, ≥ 32 bytes).
const HMAC_SECRET: &str = "e2e-hmac-secret-hs1-0123456789-abcdefghij";
// The API key of consumer `erp-batch`, `API_KEY` / `API_KEY_SHA256`, comes from `common`.

const INVALID_TOKEN: &str = "urn:propylon:problem:invalid-token";
const INSUFFICIENT_SCOPE: &str = "urn:propylon:problem:insufficient-scope";

/// The facade: a public operation, operations that need a bearer token (any scope, or
/// `orders:write`), and ones that take a bearer token OR an API key.
const SECURE_SPEC: &str = r#"openapi: 3.0.3
info:
  title: Secure
  version: "1.0"
components:
  securitySchemes:
    bearer:
      type: http
      scheme: bearer
      bearerFormat: JWT
    apiKey:
      type: apiKey
      in: header
      name: X-API-Key
security:
  - bearer: []
paths:
  /public:
    get:
      operationId: getPublic
      security: []
      responses:
        "200": { description: open to all }
  /orders:
    get:
      operationId: listOrders
      responses:
        "200": { description: any valid token }
    post:
      operationId: createOrder
      security:
        - bearer: [orders:write]
        - apiKey: []
      responses:
        "200": { description: token with orders:write, or an API key }
  /whoami:
    get:
      operationId: whoami
      security:
        - bearer: []
        - apiKey: []
      responses:
        "200": { description: the caller as the backend sees it }
  /whoami/mapped:
    post:
      operationId: whoamiMapped
      responses:
        "200": { description: the caller, in the body the backend gets }
"#;

/// `@APP@` is the backend URL, `@KEYS@` the key source line(s) of `auth.jwt`.
const CONFIG_TEMPLATE: &str = r#"server:
  listen: "{{LISTEN}}"
  admin_listen: "{{ADMIN}}"
  admin_token: "{{TOKEN}}"
auth:
  jwt:
    issuer: https://idp.test/
    audiences: [propylon-e2e]
    algorithms: [RS256, ES256, HS256]
@KEYS@
    leeway: 30s
    hmac_secrets:
      - { kid: hs1, secret: "@HMAC@" }
  api_keys:
    - { consumer: erp-batch, key_sha256: @KEYSHA@ }
backends:
  app:
    url: "@APP@"
    timeout: 5s
apis:
  - name: secure
    spec: ./secure.yaml
    operations:
      getPublic:
        backend: app
      listOrders:
        backend: app
      createOrder:
        backend: app
      whoami:
        backend: app
        request:
          headers:
            set:
              x-consumer: "$.consumer"
              x-sub: "$.claims.sub"
      whoamiMapped:
        backend: app
        request:
          body:
            consumer: "$.consumer"
            sub: "$.claims.sub"
"#;

fn config(app_url: &str, keys: &str) -> String {
    CONFIG_TEMPLATE
        .replace("@APP@", app_url)
        .replace("@KEYS@", keys)
        .replace("@HMAC@", HMAC_SECRET)
        .replace("@KEYSHA@", API_KEY_SHA256)
}

/// The `auth.jwt` lines for the JWKS file of the fixtures.
const JWKS_FILE_KEYS: &str = "    jwks_file: ./jwks.json";

/// A gateway with the JWKS file, in front of a recording backend.
fn start_with_jwks_file() -> (Gateway, RecordingBackend) {
    let backend = RecordingBackend::start(Reply::json(200, json!({ "ok": true })));
    let gw = Gateway::start_with_files(
        &config(&backend.url(), JWKS_FILE_KEYS),
        &[("secure.yaml", SECURE_SPEC), ("jwks.json", JWKS)],
    );
    (gw, backend)
}

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i64::try_from(secs).expect("seconds fit i64")
}

/// Valid claims for `sub`, with `scope` if given, and a unique `jti` (so that no two tokens
/// are equal and a verified-token cache cannot hide a key lookup).
fn claims(sub: &str, scope: Option<&str>) -> Value {
    static JTI: AtomicU64 = AtomicU64::new(0);
    let now = now();
    let mut c = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now,
        "nbf": now - 1,
        "exp": now + 300,
        "jti": format!("e2e-{}", JTI.fetch_add(1, Ordering::SeqCst)),
    });
    if let Some(scope) = scope {
        c["scope"] = json!(scope);
    }
    c
}

fn rsa1() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA1_PEM).expect("rsa1.pem")
}

fn rsa2() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA2_PEM).expect("rsa2.pem")
}

fn ec1() -> EncodingKey {
    EncodingKey::from_ec_pem(EC1_PEM).expect("ec1.pem")
}

fn hs1() -> EncodingKey {
    EncodingKey::from_secret(HMAC_SECRET.as_bytes())
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    encode(&header, claims, key).expect("sign test token")
}

fn rs256(sub: &str, scope: Option<&str>) -> String {
    sign(Algorithm::RS256, Some("rsa1"), &rsa1(), &claims(sub, scope))
}

fn es256(sub: &str, scope: Option<&str>) -> String {
    sign(Algorithm::ES256, Some("ec1"), &ec1(), &claims(sub, scope))
}

fn hs256(sub: &str, scope: Option<&str>) -> String {
    sign(Algorithm::HS256, Some("hs1"), &hs1(), &claims(sub, scope))
}

/// base64url without padding.
fn b64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len() * 4 / 3 + 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(ALPHABET[idx as usize]));
        }
    }
    out
}

/// An unsigned token (`alg: none`), with an empty signature.
fn alg_none_token(claims: &Value) -> String {
    let header = json!({ "alg": "none", "typ": "JWT", "kid": "rsa1" });
    format!(
        "{}.{}.",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

// ---------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------

/// Every `WWW-Authenticate` field value of `resp`, in order.
fn challenges(resp: &Resp) -> Vec<String> {
    resp.headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// The `Bearer` challenge, which must come first among the `WWW-Authenticate` fields (an
/// operation that also takes API keys may add an `ApiKey` challenge after it).
fn bearer_challenge(resp: &Resp, what: &str) -> String {
    let all = challenges(resp);
    match all.first() {
        Some(first) if first.starts_with("Bearer") => first.clone(),
        _ => panic!(
            "{what}: status {}: WWW-Authenticate must start with a Bearer challenge; \
             WWW-Authenticate fields: {all:?}; body {}",
            resp.status,
            resp.text()
        ),
    }
}

/// Sends `method path` with `headers`, asserts a 401 invalid-token problem with its
/// challenge, and that the backend was not called.
fn assert_invalid_token(
    gw: &Gateway,
    backend: &RecordingBackend,
    what: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) {
    let before = backend.call_count();
    let resp = gw.request(method, path, headers, None);
    assert_eq!(
        resp.status,
        401,
        "{what}: expected 401, got {} {}",
        resp.status,
        resp.text()
    );
    let problem = assert_problem(&resp, 401);
    assert_eq!(
        problem["type"], INVALID_TOKEN,
        "{what}: problem type: {problem}"
    );
    let challenge = bearer_challenge(&resp, what);
    assert!(
        challenge.starts_with("Bearer "),
        "{what}: challenge must be a Bearer one: {challenge:?}"
    );
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{what}: challenge must say error=\"invalid_token\": {challenge:?}"
    );
    assert!(
        challenge.contains(r#"error_description=""#),
        "{what}: challenge must carry an error_description: {challenge:?}"
    );
    assert_eq!(
        backend.call_count(),
        before,
        "{what}: the backend was called although the request was refused"
    );
}

/// A 401 for missing credentials: a problem, a challenge starting with `Bearer`, no backend call.
fn assert_missing_credentials(
    gw: &Gateway,
    backend: &RecordingBackend,
    what: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) {
    let before = backend.call_count();
    let resp = gw.request(method, path, headers, None);
    assert_problem(&resp, 401);
    let challenge = bearer_challenge(&resp, what);
    assert!(
        challenge.starts_with("Bearer"),
        "{what}: challenge must start with Bearer: {challenge:?}"
    );
    assert_eq!(
        backend.call_count(),
        before,
        "{what}: the backend was called although the request was refused"
    );
}

/// Sends and asserts 200 from the backend; returns what the backend received.
fn assert_passes(
    gw: &Gateway,
    backend: &RecordingBackend,
    what: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Recorded {
    let before = backend.call_count();
    let resp = gw.request(method, path, headers, None);
    assert_eq!(
        resp.status,
        200,
        "{what}: expected 200 from the backend, got {} {}",
        resp.status,
        resp.text()
    );
    assert_eq!(
        resp.json(),
        json!({ "ok": true }),
        "{what}: not the backend's answer"
    );
    assert_eq!(
        backend.call_count(),
        before + 1,
        "{what}: the backend was not called exactly once"
    );
    backend.last()
}

/// `assert_passes` with `Authorization: Bearer TOKEN` as the only header.
fn assert_token_passes(
    gw: &Gateway,
    backend: &RecordingBackend,
    what: &str,
    method: &str,
    path: &str,
    token: &str,
) -> Recorded {
    let auth = bearer(token);
    assert_passes(gw, backend, what, method, path, &[("authorization", &auth)])
}

/// `assert_invalid_token` with `Authorization: Bearer TOKEN` as the only header.
fn assert_token_refused(
    gw: &Gateway,
    backend: &RecordingBackend,
    what: &str,
    method: &str,
    path: &str,
    token: &str,
) {
    let auth = bearer(token);
    assert_invalid_token(gw, backend, what, method, path, &[("authorization", &auth)]);
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn public_operation_needs_no_credentials() {
    let (gw, backend) = start_with_jwks_file();
    let got = assert_passes(
        &gw,
        &backend,
        "public, no credentials",
        "GET",
        "/public",
        &[],
    );
    assert_eq!(got.path, "/public");
}

#[test]
fn missing_credentials_get_401_with_bearer_challenge() {
    let (gw, backend) = start_with_jwks_file();
    assert_missing_credentials(&gw, &backend, "bearer-only, nothing", "GET", "/orders", &[]);
    assert_missing_credentials(
        &gw,
        &backend,
        "bearer or key, nothing",
        "GET",
        "/whoami",
        &[],
    );
    assert_missing_credentials(&gw, &backend, "scoped, nothing", "POST", "/orders", &[]);
    // Another scheme in Authorization is no bearer token.
    assert_missing_credentials(
        &gw,
        &backend,
        "Basic credentials",
        "GET",
        "/orders",
        &[("authorization", "Basic dXNlcjpwYXNz")],
    );
    // An API key is not accepted where the spec asks for a bearer token only.
    assert_missing_credentials(
        &gw,
        &backend,
        "API key on a bearer-only operation",
        "GET",
        "/orders",
        &[("x-api-key", API_KEY)],
    );
    assert_eq!(backend.call_count(), 0);
}

#[test]
fn valid_rs256_es256_hs256_tokens_pass_and_backend_sees_consumer_and_claims() {
    let (gw, backend) = start_with_jwks_file();
    for (what, token, sub) in [
        ("RS256 kid rsa1", rs256("alice", None), "alice"),
        ("ES256 kid ec1", es256("bob", None), "bob"),
        ("HS256 kid hs1", hs256("carol", None), "carol"),
    ] {
        assert_token_passes(&gw, &backend, what, "GET", "/orders", &token);
        let auth = bearer(&token);
        let got = assert_passes(
            &gw,
            &backend,
            what,
            "GET",
            "/whoami",
            // A client cannot choose its consumer: the mapping's value wins.
            &[("authorization", &auth), ("x-consumer", "mallory")],
        );
        assert_eq!(
            got.header_all("x-consumer"),
            vec![sub.to_string()],
            "{what}: consumer seen by the backend; headers {:?}",
            got.headers
        );
        assert_eq!(
            got.header("x-sub").as_deref(),
            Some(sub),
            "{what}: claim sub seen by the backend; headers {:?}",
            got.headers
        );
    }
}

#[test]
fn leeway_accepts_slightly_expired_and_slightly_early_tokens() {
    let (gw, backend) = start_with_jwks_file();
    let now = now();
    let mut c = claims("alice", None);
    c["exp"] = json!(now - 10);
    assert_token_passes(
        &gw,
        &backend,
        "expired 10 s ago, leeway 30 s",
        "GET",
        "/orders",
        &sign(Algorithm::RS256, Some("rsa1"), &rsa1(), &c),
    );

    let mut c = claims("alice", None);
    c["nbf"] = json!(now + 10);
    assert_token_passes(
        &gw,
        &backend,
        "valid in 10 s, leeway 30 s",
        "GET",
        "/orders",
        &sign(Algorithm::RS256, Some("rsa1"), &rsa1(), &c),
    );
}

#[test]
fn bad_tokens_get_401_invalid_token_and_never_reach_the_backend() {
    let (gw, backend) = start_with_jwks_file();
    let now = now();
    let mut cases: Vec<(&str, String)> = Vec::new();

    // Forged: header says rsa1, signed by another RSA key.
    cases.push((
        "forged (kid rsa1, signed by rsa2)",
        sign(
            Algorithm::RS256,
            Some("rsa1"),
            &rsa2(),
            &claims("alice", None),
        ),
    ));
    // Signature tampered: valid token, payload swapped for another subject's.
    {
        let good = rs256("alice", None);
        let other = rs256("root", None);
        let parts: Vec<&str> = good.split('.').collect();
        let other_parts: Vec<&str> = other.split('.').collect();
        cases.push((
            "payload swapped under a valid signature",
            format!("{}.{}.{}", parts[0], other_parts[1], parts[2]),
        ));
    }
    let mut c = claims("alice", None);
    c["exp"] = json!(now - 120);
    cases.push((
        "expired 120 s ago (leeway 30 s)",
        sign(Algorithm::RS256, Some("rsa1"), &rsa1(), &c),
    ));
    let mut c = claims("alice", None);
    c["nbf"] = json!(now + 120);
    cases.push((
        "not valid before now + 120 s",
        sign(Algorithm::ES256, Some("ec1"), &ec1(), &c),
    ));
    let mut c = claims("alice", None);
    c["iss"] = json!("https://evil.test/");
    cases.push((
        "wrong issuer",
        sign(Algorithm::RS256, Some("rsa1"), &rsa1(), &c),
    ));
    let mut c = claims("alice", None);
    c["aud"] = json!("another-api");
    cases.push((
        "wrong audience",
        sign(Algorithm::RS256, Some("rsa1"), &rsa1(), &c),
    ));
    let mut c = claims("alice", None);
    c.as_object_mut().expect("claims object").remove("exp");
    cases.push(("no exp", sign(Algorithm::RS256, Some("rsa1"), &rsa1(), &c)));
    cases.push((
        "unknown kid",
        sign(
            Algorithm::RS256,
            Some("nope"),
            &rsa1(),
            &claims("alice", None),
        ),
    ));
    cases.push(("malformed: not a JWT", "not-a-jwt".to_string()));
    cases.push(("malformed: three garbage parts", "abc.def.ghi".to_string()));
    cases.push(("alg none", alg_none_token(&claims("alice", None))));
    // Key confusion: HS256 whose HMAC secret is rsa1's public key PEM.
    cases.push((
        "HS256 signed with the RSA public key PEM (kid rsa1)",
        sign(
            Algorithm::HS256,
            Some("rsa1"),
            &EncodingKey::from_secret(RSA1_PUBLIC_PEM),
            &claims("alice", None),
        ),
    ));
    cases.push((
        "HS256 signed with the RSA public key PEM (no kid)",
        sign(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(RSA1_PUBLIC_PEM),
            &claims("alice", None),
        ),
    ));
    // Algorithms outside the allow-list [RS256, ES256, HS256], with otherwise good keys.
    cases.push((
        "RS384 (not allowed) with rsa1",
        sign(
            Algorithm::RS384,
            Some("rsa1"),
            &rsa1(),
            &claims("alice", None),
        ),
    ));
    cases.push((
        "HS384 (not allowed) with the hs1 secret",
        sign(
            Algorithm::HS384,
            Some("hs1"),
            &hs1(),
            &claims("alice", None),
        ),
    ));
    // HS256 with a wrong secret.
    cases.push((
        "HS256 kid hs1, wrong secret",
        sign(
            Algorithm::HS256,
            Some("hs1"),
            &EncodingKey::from_secret(b"not-the-secret-not-the-secret-000000"),
            &claims("alice", None),
        ),
    ));

    for (what, token) in &cases {
        assert_token_refused(&gw, &backend, what, "GET", "/orders", token);
        assert_token_refused(&gw, &backend, what, "GET", "/whoami", token);
    }
    assert_eq!(
        backend.call_count(),
        0,
        "no refused request may reach the backend"
    );

    // The gateway still serves good tokens afterwards.
    assert_token_passes(
        &gw,
        &backend,
        "good token after the attacks",
        "GET",
        "/orders",
        &rs256("alice", None),
    );
}

#[test]
fn scopes_from_the_spec_give_403_when_missing() {
    let (gw, backend) = start_with_jwks_file();

    for (what, token) in [
        ("no scope", rs256("alice", None)),
        (
            "other scopes",
            rs256("alice", Some("orders:read customers:write")),
        ),
        ("scope prefix only", es256("alice", Some("orders"))),
    ] {
        let before = backend.call_count();
        let auth = bearer(&token);
        let resp = gw.request("POST", "/orders", &[("authorization", &auth)], None);
        let problem = assert_problem(&resp, 403);
        assert_eq!(problem["type"], INSUFFICIENT_SCOPE, "{what}: {problem}");
        let challenge = bearer_challenge(&resp, what);
        assert!(challenge.starts_with("Bearer "), "{what}: {challenge:?}");
        assert!(
            challenge.contains(r#"error="insufficient_scope""#),
            "{what}: {challenge:?}"
        );
        assert!(
            challenge.contains(r#"scope="orders:write""#),
            "{what}: the challenge must name the scope needed: {challenge:?}"
        );
        assert_eq!(
            backend.call_count(),
            before,
            "{what}: backend called on a 403"
        );
    }

    // `scope`, space-separated.
    assert_token_passes(
        &gw,
        &backend,
        "scope has orders:write",
        "POST",
        "/orders",
        &rs256("alice", Some("orders:read orders:write")),
    );
    assert_token_passes(
        &gw,
        &backend,
        "HS256, scope orders:write",
        "POST",
        "/orders",
        &hs256("alice", Some("orders:write")),
    );
    // `scp` as a list.
    let mut c = claims("alice", None);
    c["scp"] = json!(["orders:read", "orders:write"]);
    assert_token_passes(
        &gw,
        &backend,
        "scp list has orders:write",
        "POST",
        "/orders",
        &sign(Algorithm::ES256, Some("ec1"), &ec1(), &c),
    );
    // The other alternative of the same operation: an API key.
    assert_passes(
        &gw,
        &backend,
        "API key alternative",
        "POST",
        "/orders",
        &[("x-api-key", API_KEY)],
    );
}

#[test]
fn api_keys_identify_their_consumer_and_wrong_keys_get_401() {
    let (gw, backend) = start_with_jwks_file();
    let got = assert_passes(
        &gw,
        &backend,
        "good API key",
        "GET",
        "/whoami",
        &[("x-api-key", API_KEY), ("x-consumer", "mallory")],
    );
    assert_eq!(
        got.header_all("x-consumer"),
        vec!["erp-batch".to_string()],
        "consumer of the API key; headers {:?}",
        got.headers
    );
    assert_eq!(
        got.header("x-sub"),
        None,
        "an API key has no claims: x-sub must be left out; headers {:?}",
        got.headers
    );

    for (what, key) in [
        ("wrong API key", "e2e-not-the-key-0000"),
        ("the key's digest instead of the key", API_KEY_SHA256),
        ("the key with a suffix", "e2e-erp-batch-key-9Vb3LqT0x"),
    ] {
        let before = backend.call_count();
        let resp = gw.request("GET", "/whoami", &[("x-api-key", key)], None);
        assert_problem(&resp, 401);
        assert_eq!(
            backend.call_count(),
            before,
            "{what}: backend called on a 401"
        );
        let resp = gw.request("POST", "/orders", &[("x-api-key", key)], None);
        assert_problem(&resp, 401);
        assert_eq!(
            backend.call_count(),
            before,
            "{what}: backend called on a 401"
        );
    }
}

#[test]
fn admin_config_redacts_hmac_secrets() {
    let (gw, _backend) = start_with_jwks_file();
    let resp = gw.admin_get("/admin/config");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let text = resp.text();
    assert!(
        !text.contains(HMAC_SECRET),
        "/admin/config shows the HMAC secret: {text}"
    );
    assert!(
        text.contains("***redacted***"),
        "/admin/config must show the secret as \"***redacted***\": {text}"
    );
}

// ---------------------------------------------------------------------------------------
// JWKS over HTTP: rotation, stale keys, cooldown
// ---------------------------------------------------------------------------------------

/// A JWKS endpoint whose answer (status, body) the test switches; counts its hits.
struct JwksMock {
    server: Option<MockBackend>,
    answer: Arc<Mutex<(u16, String)>>,
    hits: Arc<AtomicUsize>,
}

impl JwksMock {
    fn start(body: &str) -> JwksMock {
        let answer = Arc::new(Mutex::new((200u16, body.to_string())));
        let hits = Arc::new(AtomicUsize::new(0));
        let (answer_in, hits_in) = (answer.clone(), hits.clone());
        let router = Router::new().fallback(move || {
            let (answer, hits) = (answer_in.clone(), hits_in.clone());
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                let (status, body) = answer.lock().unwrap_or_else(|e| e.into_inner()).clone();
                (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    [("content-type", "application/json")],
                    body,
                )
                    .into_response()
            }
        });
        JwksMock {
            server: Some(MockBackend::start(router)),
            answer,
            hits,
        }
    }

    fn url(&self) -> String {
        let server = self.server.as_ref().expect("JWKS mock running");
        format!("{}/jwks.json", server.url())
    }

    fn serve(&self, status: u16, body: &str) {
        *self.answer.lock().unwrap_or_else(|e| e.into_inner()) = (status, body.to_string());
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops listening. Connections the gateway still holds answer 500 from now on.
    fn stop(&mut self) {
        self.serve(500, "{\"error\": \"down\"}");
        self.server = None;
    }
}

fn start_with_jwks_url(jwks: &JwksMock, cooldown: &str) -> (Gateway, RecordingBackend) {
    let backend = RecordingBackend::start(Reply::json(200, json!({ "ok": true })));
    let keys = format!(
        "    jwks_url: \"{}\"\n    jwks_cooldown: {cooldown}",
        jwks.url()
    );
    let gw = Gateway::start_with_files(
        &config(&backend.url(), &keys),
        &[("secure.yaml", SECURE_SPEC)],
    );
    (gw, backend)
}

fn rsa2_token(sub: &str) -> String {
    sign(Algorithm::RS256, Some("rsa2"), &rsa2(), &claims(sub, None))
}

#[test]
fn jwks_url_rotation_accepts_the_new_key_after_refetch() {
    let mut jwks = JwksMock::start(JWKS);
    let (gw, backend) = start_with_jwks_url(&jwks, "0s");

    assert_token_passes(
        &gw,
        &backend,
        "rsa1 from the JWKS URL",
        "GET",
        "/orders",
        &rs256("alice", None),
    );
    assert_token_passes(
        &gw,
        &backend,
        "ec1 from the JWKS URL",
        "GET",
        "/orders",
        &es256("alice", None),
    );
    assert!(jwks.hits() >= 1, "the JWKS URL was never fetched");

    // rsa2 is not published yet: refetching (cooldown 0 s) does not find it.
    let hits = jwks.hits();
    assert_token_refused(
        &gw,
        &backend,
        "rsa2 before rotation",
        "GET",
        "/orders",
        &rsa2_token("alice"),
    );
    assert!(
        jwks.hits() > hits,
        "an unknown kid must trigger a JWKS refetch (cooldown 0 s); hits {} → {}",
        hits,
        jwks.hits()
    );

    // The IdP rotates: the very next token signed by rsa2 is accepted.
    jwks.serve(200, JWKS_ROTATED);
    let got = assert_token_passes(
        &gw,
        &backend,
        "rsa2 after rotation",
        "GET",
        "/whoami",
        &rsa2_token("alice"),
    );
    assert_eq!(got.header("x-sub").as_deref(), Some("alice"));

    // The endpoint fails (500): known kids keep working on the keys already fetched.
    jwks.serve(500, "{\"error\": \"boom\"}");
    for (what, token) in [
        ("rsa1 while JWKS answers 500", rs256("bob", None)),
        ("rsa2 while JWKS answers 500", rsa2_token("bob")),
        ("ec1 while JWKS answers 500", es256("bob", None)),
    ] {
        assert_token_passes(&gw, &backend, what, "GET", "/orders", &token);
    }
    // An unknown kid while the endpoint fails is still a 401 (not a 5xx).
    assert_token_refused(
        &gw,
        &backend,
        "unknown kid while JWKS answers 500",
        "GET",
        "/orders",
        &sign(
            Algorithm::RS256,
            Some("rsa9"),
            &rsa1(),
            &claims("bob", None),
        ),
    );
    // ... and it did not throw the stale keys away.
    assert_token_passes(
        &gw,
        &backend,
        "rsa2 after a failed refetch",
        "GET",
        "/orders",
        &rsa2_token("bob"),
    );

    // The endpoint goes away entirely.
    jwks.stop();
    assert_token_refused(
        &gw,
        &backend,
        "unknown kid while JWKS is down",
        "GET",
        "/orders",
        &sign(
            Algorithm::ES256,
            Some("ec7"),
            &ec1(),
            &claims("carol", None),
        ),
    );
    for (what, token) in [
        ("rsa1 while JWKS is down", rs256("carol", None)),
        ("rsa2 while JWKS is down", rsa2_token("carol")),
        ("ec1 while JWKS is down", es256("carol", None)),
    ] {
        assert_token_passes(&gw, &backend, what, "GET", "/orders", &token);
    }
}

#[test]
fn jwks_refetch_on_unknown_kids_respects_the_cooldown() {
    let jwks = JwksMock::start(JWKS);
    let (gw, backend) = start_with_jwks_url(&jwks, "60s");
    assert_token_passes(
        &gw,
        &backend,
        "rsa1 from the JWKS URL",
        "GET",
        "/orders",
        &rs256("alice", None),
    );
    let hits = jwks.hits();
    assert!(hits >= 1, "the JWKS URL was never fetched");

    // A flood of unknown kids must not turn into a flood of JWKS fetches.
    for i in 0..20 {
        let kid = format!("unknown-{i}");
        assert_token_refused(
            &gw,
            &backend,
            &format!("unknown kid #{i}"),
            "GET",
            "/orders",
            &sign(Algorithm::RS256, Some(&kid), &rsa1(), &claims("eve", None)),
        );
    }
    assert!(
        jwks.hits() <= hits + 1,
        "20 unknown kids within the 60 s cooldown caused {} JWKS fetches (at most 1 allowed)",
        jwks.hits() - hits
    );
    // Within the cooldown, a newly published key is not fetched yet: rsa2 stays unknown.
    jwks.serve(200, JWKS_ROTATED);
    assert_token_refused(
        &gw,
        &backend,
        "rsa2 within the cooldown",
        "GET",
        "/orders",
        &rsa2_token("alice"),
    );
    assert!(
        jwks.hits() <= hits + 1,
        "JWKS fetched again within the cooldown"
    );
    // Known keys are unaffected.
    assert_token_passes(
        &gw,
        &backend,
        "ec1 within the cooldown",
        "GET",
        "/orders",
        &es256("alice", None),
    );
}

/// `request` (head and body) on an open keep-alive connection; the answer's status. The
/// answer is read whole, and nothing may follow it.
fn status_on(conn: &mut std::net::TcpStream, request: &str) -> u16 {
    use std::io::Write;
    conn.write_all(request.as_bytes()).expect("send");
    let mut buf = Vec::new();
    let answer = read_answer(conn, &mut buf, false);
    assert!(buf.is_empty(), "nothing after the answer: {buf:?}");
    answer.status
}

/// The lean path remembers a connection's last token (a client reuses it): a request with
/// another token, or a forged one, on the same connection must still be judged by its own.
#[test]
fn each_request_on_a_keep_alive_connection_is_judged_by_its_own_token() {
    let (gw, backend) = start_with_jwks_file();
    let mut conn = std::net::TcpStream::connect(gw.listen).expect("connect");
    conn.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let alice = rs256("alice", Some("orders:read"));
    let bob = es256("bob", None);
    // Alice's token with one character of its signature changed.
    let mut forged = alice.clone().into_bytes();
    let at = forged.len() - 3;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ASCII");
    let mut calls = 0;
    for (token, expected) in [
        (&alice, Some("alice")),
        (&alice, Some("alice")),
        (&bob, Some("bob")),
        (&forged, None),
        (&alice, Some("alice")),
        (&forged, None),
    ] {
        // Relayed (`GET /orders`: any valid token), then mapped (the claims in the body).
        let relayed = status_on(
            &mut conn,
            &format!("GET /orders HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\r\n"),
        );
        let mapped = status_on(
            &mut conn,
            &format!(
                "POST /whoami/mapped HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\
                 Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
            ),
        );
        match expected {
            Some(sub) => {
                calls += 2;
                assert_eq!((relayed, mapped), (200, 200), "{sub}'s token");
                assert_eq!(backend.call_count(), calls, "{sub}: one backend call each");
                let got = backend.last();
                let body: Value = serde_json::from_slice(&got.body).expect("a JSON body");
                assert_eq!(body, json!({"consumer": sub, "sub": sub}));
            }
            None => {
                assert_eq!((relayed, mapped), (401, 401), "the forged token");
                assert_eq!(backend.call_count(), calls, "no backend call on a refusal");
            }
        }
    }
}
