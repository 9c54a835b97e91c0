#![allow(clippy::unwrap_used)]

use jsonwebtoken::EncodingKey;
use serde_json::json;

use super::*;
use crate::auth::test_keys::{jwks, sign, sign_with, HMAC_SECRET, RSA_PUBLIC_PEM};

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://idp.example.com/";
/// base64url of `{"alg":"none","typ":"JWT"}`.
const NONE_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";

fn settings(algorithms: &[Algorithm]) -> JwtSettings {
    JwtSettings {
        issuer: Some(ISS.to_owned()),
        audiences: vec!["enterprise-api".to_owned(), "other-api".to_owned()],
        algorithms: algorithms.to_vec(),
        leeway_secs: 30,
    }
}

fn verifier() -> JwtVerifier {
    use Algorithm::*;
    JwtVerifier::new(settings(&[RS256, ES256, ES384, HS256])).unwrap()
}

fn keys() -> KeySet {
    KeySet::from_jwks(jwks().as_bytes())
        .unwrap()
        .with_hmac_secret(Some("hs1"), HMAC_SECRET)
}

fn claims() -> Value {
    json!({"sub": "alice", "iss": ISS, "aud": "enterprise-api", "exp": NOW + 600, "iat": NOW})
}

fn with(changes: Value) -> Value {
    let mut claims = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn verify(token: &str) -> Result<VerifiedToken, TokenError> {
    verifier().verify(token, &keys(), NOW)
}

#[test]
fn rs256_es256_es384_and_hs256_tokens_verify() {
    for (alg, kid) in [
        (Algorithm::RS256, "rsa1"),
        (Algorithm::ES256, "ec1"),
        (Algorithm::ES384, "ec384"),
        (Algorithm::HS256, "hs1"),
    ] {
        let verified =
            verify(&sign(alg, Some(kid), &claims())).unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
        assert_eq!(verified.claims["sub"], "alice");
        assert_eq!(verified.expires_at, NOW + 600);
    }
}

#[test]
fn without_a_kid_the_single_key_of_the_family_is_used() {
    assert!(verify(&sign(Algorithm::RS256, None, &claims())).is_ok());
    assert!(verify(&sign(Algorithm::HS256, None, &claims())).is_ok());
    // Two HMAC secrets and no kid: nothing to choose by.
    let two = keys().with_hmac_secret(Some("hs2"), b"another");
    let token = sign(Algorithm::HS256, None, &claims());
    assert_eq!(
        verifier().verify(&token, &two, NOW).unwrap_err(),
        TokenError::UnknownKey(None)
    );
}

#[test]
fn alg_none_is_refused() {
    let signed = sign(Algorithm::RS256, Some("rsa1"), &claims());
    let payload = signed.split('.').nth(1).unwrap();
    for token in [
        format!("{NONE_HEADER}.{payload}."),
        format!("{NONE_HEADER}.{payload}.c2ln"),
    ] {
        assert_eq!(verify(&token).unwrap_err(), TokenError::Malformed);
        assert_eq!(token_kid(&token).unwrap_err(), TokenError::Malformed);
    }
}

#[test]
fn algorithms_outside_the_allow_list_are_refused() {
    let only_rsa = JwtVerifier::new(settings(&[Algorithm::RS256])).unwrap();
    let token = sign(Algorithm::HS256, Some("hs1"), &claims());
    assert_eq!(
        only_rsa.verify(&token, &keys(), NOW).unwrap_err(),
        TokenError::AlgorithmNotAllowed("HS256".to_owned())
    );
    // RS384 would fit the RSA family, but rsa1's JWK says RS256 and the list lacks RS384.
    let token = sign(Algorithm::RS384, Some("rsa1"), &claims());
    assert!(matches!(
        verify(&token),
        Err(TokenError::AlgorithmNotAllowed(_))
    ));
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() {
    // The classic key-confusion attack: the public key PEM used as an HMAC secret.
    let secret = EncodingKey::from_secret(RSA_PUBLIC_PEM.as_bytes());
    let by_kid = sign_with(Algorithm::HS256, Some("rsa1"), &claims(), &secret);
    assert_eq!(
        verify(&by_kid).unwrap_err(),
        TokenError::AlgorithmNotAllowed("HS256".to_owned())
    );
    // Without a kid, only HMAC secrets are candidates: the real one does not match.
    let no_kid = sign_with(Algorithm::HS256, None, &claims(), &secret);
    assert_eq!(verify(&no_kid).unwrap_err(), TokenError::BadSignature);
    // With only the JWKS, there is no HMAC key at all.
    let jwks_only = KeySet::from_jwks(jwks().as_bytes()).unwrap();
    assert_eq!(
        verifier().verify(&no_kid, &jwks_only, NOW).unwrap_err(),
        TokenError::UnknownKey(None)
    );
}

#[test]
fn a_key_never_verifies_another_family() {
    // An ES256 token naming the RSA key's kid.
    let token = sign(Algorithm::ES256, Some("rsa1"), &claims());
    assert!(matches!(
        verify(&token),
        Err(TokenError::AlgorithmNotAllowed(_))
    ));
    // An HS256 token naming the EC key.
    let token = sign(Algorithm::HS256, Some("ec1"), &claims());
    assert!(matches!(
        verify(&token),
        Err(TokenError::AlgorithmNotAllowed(_))
    ));
}

#[test]
fn a_tampered_payload_or_another_secret_fails_the_signature() {
    let good = sign(Algorithm::RS256, Some("rsa1"), &claims());
    let other = sign(
        Algorithm::RS256,
        Some("rsa1"),
        &with(json!({"sub": "mallory"})),
    );
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        other.split('.').nth(1).unwrap(),
        parts[2]
    );
    assert_eq!(verify(&forged).unwrap_err(), TokenError::BadSignature);

    let wrong_secret = EncodingKey::from_secret(b"not-the-secret");
    let token = sign_with(Algorithm::HS256, Some("hs1"), &claims(), &wrong_secret);
    assert_eq!(verify(&token).unwrap_err(), TokenError::BadSignature);

    let es = sign(Algorithm::ES256, Some("ec1"), &claims());
    let mut sig: Vec<char> = es.rsplit('.').next().unwrap().chars().collect();
    sig[5] = if sig[5] == 'A' { 'B' } else { 'A' };
    let head = es.rsplit_once('.').unwrap().0;
    let forged = format!("{head}.{}", sig.into_iter().collect::<String>());
    assert_eq!(verify(&forged).unwrap_err(), TokenError::BadSignature);
}

#[test]
fn expiry_is_checked_against_now_with_leeway() {
    let token = |exp: u64| sign(Algorithm::RS256, Some("rsa1"), &with(json!({"exp": exp})));
    assert_eq!(verify(&token(NOW - 31)).unwrap_err(), TokenError::Expired);
    assert_eq!(verify(&token(NOW - 30)).unwrap_err(), TokenError::Expired);
    // Within the 30 s leeway.
    assert_eq!(verify(&token(NOW - 29)).unwrap().expires_at, NOW - 29);
    let strict = JwtVerifier::new(JwtSettings {
        leeway_secs: 0,
        ..settings(&[Algorithm::RS256])
    })
    .unwrap();
    assert_eq!(
        strict.verify(&token(NOW), &keys(), NOW).unwrap_err(),
        TokenError::Expired
    );
    assert!(strict.verify(&token(NOW + 1), &keys(), NOW).is_ok());
}

#[test]
fn exp_is_required_and_must_be_a_number() {
    let no_exp = sign(Algorithm::RS256, Some("rsa1"), &with(json!({"exp": null})));
    assert_eq!(verify(&no_exp).unwrap_err(), TokenError::MissingExp);
    let text_exp = sign(
        Algorithm::RS256,
        Some("rsa1"),
        &with(json!({"exp": "soon"})),
    );
    assert_eq!(verify(&text_exp).unwrap_err(), TokenError::Malformed);
    let float_exp = sign(
        Algorithm::RS256,
        Some("rsa1"),
        &with(json!({"exp": (NOW + 10) as f64 + 0.5})),
    );
    assert_eq!(verify(&float_exp).unwrap().expires_at, NOW + 10);
}

#[test]
fn not_before_is_checked_with_leeway() {
    let token = |nbf: u64| sign(Algorithm::ES256, Some("ec1"), &with(json!({"nbf": nbf})));
    assert_eq!(
        verify(&token(NOW + 31)).unwrap_err(),
        TokenError::NotYetValid
    );
    assert!(verify(&token(NOW + 30)).is_ok());
    assert!(verify(&token(NOW - 100)).is_ok());
}

#[test]
fn issuer_is_checked_when_configured() {
    let wrong = sign(
        Algorithm::RS256,
        Some("rsa1"),
        &with(json!({"iss": "https://evil/"})),
    );
    assert_eq!(verify(&wrong).unwrap_err(), TokenError::WrongIssuer);
    let missing = sign(Algorithm::RS256, Some("rsa1"), &with(json!({"iss": null})));
    assert_eq!(verify(&missing).unwrap_err(), TokenError::WrongIssuer);
    let any_issuer = JwtVerifier::new(JwtSettings {
        issuer: None,
        ..settings(&[Algorithm::RS256])
    })
    .unwrap();
    assert!(any_issuer.verify(&wrong, &keys(), NOW).is_ok());
}

#[test]
fn audience_must_name_one_of_the_configured() {
    let token = |aud: Value| sign(Algorithm::RS256, Some("rsa1"), &with(json!({"aud": aud})));
    assert_eq!(
        verify(&token(json!("elsewhere"))).unwrap_err(),
        TokenError::WrongAudience
    );
    assert_eq!(
        verify(&token(json!(["a", "b"]))).unwrap_err(),
        TokenError::WrongAudience
    );
    assert_eq!(
        verify(&token(Value::Null)).unwrap_err(),
        TokenError::WrongAudience
    );
    assert!(verify(&token(json!(["a", "other-api"]))).is_ok());
    let any_audience = JwtVerifier::new(JwtSettings {
        audiences: vec![],
        ..settings(&[Algorithm::RS256])
    })
    .unwrap();
    assert!(any_audience
        .verify(&token(json!("elsewhere")), &keys(), NOW)
        .is_ok());
}

#[test]
fn an_unknown_kid_is_reported_for_a_jwks_refresh() {
    let token = sign(Algorithm::RS256, Some("rotated"), &claims());
    assert_eq!(
        verify(&token).unwrap_err(),
        TokenError::UnknownKey(Some("rotated".to_owned()))
    );
    assert_eq!(token_kid(&token).unwrap(), Some("rotated".to_owned()));
    assert_eq!(
        token_kid(&sign(Algorithm::RS256, None, &claims())).unwrap(),
        None
    );
}

#[test]
fn malformed_tokens_are_refused() {
    let array_claims = sign(Algorithm::RS256, Some("rsa1"), &json!([1, 2]));
    let too_long = format!("{}.{}.{}", "a".repeat(9000), "b".repeat(9000), "c");
    for token in [
        "",
        "abc",
        "a.b.c",
        "a.b.c.d.e",
        "...",
        &array_claims,
        &too_long,
    ] {
        assert_eq!(
            verify(token).unwrap_err(),
            TokenError::Malformed,
            "{token:.40}"
        );
    }
    assert_eq!(token_kid("a.b.c").unwrap_err(), TokenError::Malformed);
}

#[test]
fn settings_need_algorithms_a_key_can_verify() {
    assert_eq!(
        JwtVerifier::new(settings(&[])).unwrap_err(),
        KeyError::NoAlgorithms
    );
    assert!(matches!(
        JwtVerifier::new(settings(&[Algorithm::RS256, Algorithm::EdDSA])),
        Err(KeyError::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn descriptions_are_safe_for_a_challenge() {
    let all = [
        TokenError::Malformed,
        TokenError::AlgorithmNotAllowed("HS256".into()),
        TokenError::UnknownKey(Some("k".into())),
        TokenError::BadSignature,
        TokenError::Expired,
        TokenError::NotYetValid,
        TokenError::WrongIssuer,
        TokenError::WrongAudience,
        TokenError::MissingExp,
        TokenError::MissingClaim("sub".into()),
    ];
    for error in all {
        let text = error.to_string();
        assert!(!text.is_empty() && !text.contains(['"', '\\']), "{text}");
    }
}
