#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::auth::test_keys::{jwks, EC_X, EC_Y, RSA_E, RSA_N};

fn algorithms_of(set: &KeySet, kid: &str) -> Vec<Algorithm> {
    let key = set.keys().iter().find(|k| k.kid.as_deref() == Some(kid));
    key.unwrap().algorithms.clone()
}

#[test]
fn reads_rsa_and_ec_keys_each_bound_to_its_own_algorithms() {
    let set = KeySet::from_jwks(jwks().as_bytes()).unwrap();
    assert_eq!(set.len(), 3);
    assert!(set.contains_kid("rsa1") && set.contains_kid("ec1") && set.contains_kid("ec384"));
    assert!(!set.contains_kid("nope"));
    // The JWK's `alg` narrows the RSA key; a curve fixes the EC algorithm.
    assert_eq!(algorithms_of(&set, "rsa1"), vec![Algorithm::RS256]);
    assert_eq!(algorithms_of(&set, "ec1"), vec![Algorithm::ES256]);
    assert_eq!(algorithms_of(&set, "ec384"), vec![Algorithm::ES384]);
}

#[test]
fn an_rsa_key_without_alg_allows_only_rsa_algorithms() {
    let doc = json!({"keys": [{"kty": "RSA", "kid": "r", "n": RSA_N, "e": RSA_E}]});
    let set = KeySet::from_jwks(doc.to_string().as_bytes()).unwrap();
    let algs = algorithms_of(&set, "r");
    assert!(algs.contains(&Algorithm::RS256) && algs.contains(&Algorithm::PS512));
    assert!(!algs.contains(&Algorithm::HS256));
}

#[test]
fn skips_encryption_and_unsupported_keys() {
    let doc = json!({"keys": [
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": RSA_N, "e": RSA_E},
        {"kty": "RSA", "kid": "oaep", "alg": "RSA-OAEP", "n": RSA_N, "e": RSA_E},
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "abc"},
        {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
        {"kty": "EC", "kid": "k1", "crv": "secp256k1", "x": EC_X, "y": EC_Y},
        {"kty": "EC", "kid": "ok", "crv": "P-256", "x": EC_X, "y": EC_Y},
    ]});
    let set = KeySet::from_jwks(doc.to_string().as_bytes()).unwrap();
    assert_eq!(set.len(), 1);
    assert!(set.contains_kid("ok"));
}

#[test]
fn a_jwks_without_usable_keys_is_an_error() {
    let doc = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]});
    assert_eq!(
        KeySet::from_jwks(doc.to_string().as_bytes()).unwrap_err(),
        KeyError::NoUsableKeys
    );
}

#[test]
fn malformed_documents_and_keys_are_errors() {
    assert!(matches!(KeySet::from_jwks(b"{"), Err(KeyError::Json(_))));
    assert_eq!(KeySet::from_jwks(b"[]").unwrap_err(), KeyError::NotAJwks);
    let no_n = json!({"keys": [{"kty": "RSA", "kid": "r", "e": RSA_E}]});
    let err = KeySet::from_jwks(no_n.to_string().as_bytes()).unwrap_err();
    assert!(
        matches!(err, KeyError::InvalidKey { index: 0, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("kid `r`"), "{err}");
    let wrong_alg =
        json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "RS256", "x": EC_X, "y": EC_Y}]});
    assert!(matches!(
        KeySet::from_jwks(wrong_alg.to_string().as_bytes()),
        Err(KeyError::InvalidKey { .. })
    ));
}

#[test]
fn hmac_secrets_allow_only_hs_algorithms_and_empty_ones_are_ignored() {
    let set = KeySet::default()
        .with_hmac_secret(Some("h"), b"secret")
        .with_hmac_secret(None, b"");
    assert_eq!(set.len(), 1);
    assert_eq!(
        algorithms_of(&set, "h"),
        vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
    );
    assert!(KeySet::default().is_empty());
}

#[test]
fn debug_output_shows_no_secret() {
    let set = KeySet::default().with_hmac_secret(Some("h"), b"very-secret-value");
    assert!(!format!("{set:?}").contains("very-secret"));
}
