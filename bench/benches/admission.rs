//! What admission costs per request: a cached RS256 token (the client reuses it) plus the
//! consumer's rate limit and daily quota. Target: under 2 µs together.

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use propylon_openapi::security::{Requirement, SchemeKind, Security};
use propylon_policies::auth::{
    ApiKeys, AuthOutcome, Authenticator, Credentials, JwtSettings, JwtVerifier, KeySet, TokenCache,
};
use propylon_policies::limits::{Limit, LimitDecision, LimitSpec, MemoryQuotaCounters};
use serde_json::json;
use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

const JWKS: &str = include_str!("../../tests/fixtures/jwks.json");
const RSA_KEY: &str = include_str!("../../tests/fixtures/rsa1.pem");

#[allow(clippy::unwrap_used)]
fn admission(c: &mut Criterion) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let keys = KeySet::from_jwks(JWKS.as_bytes()).unwrap();
    let verifier = JwtVerifier::new(JwtSettings {
        issuer: Some("https://idp.test/".into()),
        audiences: vec!["propylon-bench".into()],
        algorithms: vec![Algorithm::RS256],
        leeway_secs: 30,
    })
    .unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa1".into());
    let claims = json!({"iss": "https://idp.test/", "aud": "propylon-bench", "sub": "user-7", "exp": now + 3600, "scope": "orders:write"});
    let token = encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(RSA_KEY.as_bytes()).unwrap(),
    )
    .unwrap();
    let cache = TokenCache::new(10_000);
    let api_keys = ApiKeys::default();
    let authenticator = Authenticator {
        verifier: Some(&verifier),
        keys: &keys,
        cache: &cache,
        last_token: None,
        api_keys: &api_keys,
        consumer_claim: "sub",
    };
    let security = Security::AnyOf(vec![vec![Requirement {
        scheme: "bearer".into(),
        kind: SchemeKind::Jwt,
        scopes: vec!["orders:write".into()],
    }]]);
    let no_header = |_: &str| None;
    let creds = Credentials {
        bearer: Some(&token),
        header: &no_header,
    };
    // Limits high enough that the millions of iterations never hit them: the allowed path.
    let spec = LimitSpec::parse(
        Some("1000000000/s"),
        Some(1_000_000_000),
        Some("1000000000000/day"),
    )
    .unwrap();
    let limit = Limit::new("default", &spec);
    let counters = MemoryQuotaCounters::new();
    // Warm the token cache: the first request of a client pays the RS256 verify once.
    assert!(matches!(
        authenticator.authenticate(&security, &creds, now),
        AuthOutcome::Allowed(_)
    ));

    let mut group = c.benchmark_group("admission");
    group.bench_function("cached_token_auth", |b| {
        b.iter(|| black_box(authenticator.authenticate(&security, &creds, now)))
    });
    group.bench_function("cached_token_auth_and_quota", |b| {
        b.iter(|| {
            let AuthOutcome::Allowed(identity) = authenticator.authenticate(&security, &creds, now)
            else {
                panic!("token refused")
            };
            let decision = limit.check(&identity.consumer, &counters, now);
            assert!(matches!(decision, LimitDecision::Allow { .. }));
            black_box(decision)
        })
    });
    group.bench_function("rs256_verify_uncached", |b| {
        b.iter(|| black_box(verifier.verify(&token, &keys, now)))
    });
    group.finish();
}

criterion_group!(benches, admission);
criterion_main!(benches);
