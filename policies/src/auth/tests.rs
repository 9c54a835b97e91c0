#![allow(clippy::unwrap_used)]

use jsonwebtoken::Algorithm;
use serde_json::json;

use super::test_keys::{jwks, sign};
use super::*;

const NOW: u64 = 1_700_000_000;
const ERP_KEY: &str = "key-for-erp";

fn jwt(scopes: &[&str]) -> Requirement {
    Requirement {
        scheme: "bearer".into(),
        kind: SchemeKind::Jwt,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

fn api_key(scopes: &[&str]) -> Requirement {
    Requirement {
        scheme: "key".into(),
        kind: SchemeKind::ApiKeyHeader("x-api-key".into()),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

fn any_of(alternatives: Vec<Vec<Requirement>>) -> Security {
    Security::AnyOf(alternatives)
}

struct Fixture {
    verifier: JwtVerifier,
    keys: KeySet,
    cache: TokenCache,
    api_keys: ApiKeys,
}

fn fixture() -> Fixture {
    let digest = "99b4d1ab75cdb94b3d01ff907751c0bd6f03d609d1a6c8e5790dec694301ed58"; // of ERP_KEY
    Fixture {
        verifier: JwtVerifier::new(JwtSettings {
            issuer: None,
            audiences: vec![],
            algorithms: vec![Algorithm::RS256],
            leeway_secs: 0,
        })
        .unwrap(),
        keys: KeySet::from_jwks(jwks().as_bytes()).unwrap(),
        cache: TokenCache::new(16),
        api_keys: ApiKeys::new(&[("erp-batch".into(), digest.into())]).unwrap(),
    }
}

impl Fixture {
    fn auth(&self) -> Authenticator<'_> {
        Authenticator {
            verifier: Some(&self.verifier),
            keys: &self.keys,
            cache: &self.cache,
            last_token: None,
            api_keys: &self.api_keys,
            consumer_claim: "sub",
        }
    }
}

fn token(claims: Value) -> String {
    sign(Algorithm::RS256, Some("rsa1"), &claims)
}

fn alice(scope: &str) -> String {
    token(json!({"sub": "alice", "exp": NOW + 60, "scope": scope}))
}

fn run(
    auth: &Authenticator<'_>,
    security: &Security,
    bearer: Option<&str>,
    key: Option<&str>,
) -> AuthOutcome {
    let header = move |name: &str| if name == "x-api-key" { key } else { None };
    let creds = Credentials {
        bearer,
        header: &header,
    };
    auth.authenticate(security, &creds, NOW)
}

fn consumer(outcome: &AuthOutcome) -> &str {
    match outcome {
        AuthOutcome::Allowed(identity) => &identity.consumer,
        other => panic!("expected Allowed, got {other:?}"),
    }
}

fn denied(outcome: AuthOutcome) -> AuthFailure {
    match outcome {
        AuthOutcome::Denied(failure) => failure,
        other => panic!("expected Denied, got {other:?}"),
    }
}

#[test]
fn public_operations_need_nothing() {
    let f = fixture();
    assert_eq!(
        run(&f.auth(), &Security::Public, None, None),
        AuthOutcome::Public
    );
}

#[test]
fn a_valid_token_with_the_scopes_is_allowed_with_its_claims() {
    let f = fixture();
    let security = any_of(vec![vec![jwt(&["orders:read"])]]);
    let outcome = run(
        &f.auth(),
        &security,
        Some(&alice("orders:read orders:write")),
        None,
    );
    assert_eq!(consumer(&outcome), "alice");
    let AuthOutcome::Allowed(identity) = outcome else {
        unreachable!()
    };
    assert_eq!(
        identity.claims.unwrap()["scope"],
        "orders:read orders:write"
    );
}

#[test]
fn missing_invalid_and_insufficient_are_told_apart() {
    let f = fixture();
    let security = any_of(vec![vec![jwt(&["orders:write"])]]);
    assert_eq!(
        denied(run(&f.auth(), &security, None, None)),
        AuthFailure::MissingCredentials
    );
    let expired = token(json!({"sub": "alice", "exp": NOW - 1}));
    assert_eq!(
        denied(run(&f.auth(), &security, Some(&expired), None)),
        AuthFailure::InvalidToken(TokenError::Expired)
    );
    assert_eq!(
        denied(run(&f.auth(), &security, Some(&alice("orders:read")), None)),
        AuthFailure::InsufficientScope {
            required: vec!["orders:write".into()]
        }
    );
}

#[test]
fn a_present_but_invalid_credential_beats_a_missing_one() {
    let f = fixture();
    let security = any_of(vec![vec![jwt(&[])], vec![api_key(&[])]]);
    assert_eq!(
        denied(run(&f.auth(), &security, Some("garbage"), None)),
        AuthFailure::InvalidToken(TokenError::Malformed)
    );
    assert_eq!(
        denied(run(&f.auth(), &security, None, Some("wrong-key"))),
        AuthFailure::InvalidApiKey
    );
    assert_eq!(
        denied(run(&f.auth(), &security, None, None)),
        AuthFailure::MissingCredentials
    );
}

#[test]
fn any_one_alternative_suffices() {
    let f = fixture();
    let security = any_of(vec![
        vec![jwt(&["admin"])],
        vec![jwt(&["orders:read"])],
        vec![api_key(&[])],
    ]);
    assert_eq!(
        consumer(&run(
            &f.auth(),
            &security,
            Some(&alice("orders:read")),
            None
        )),
        "alice"
    );
    let by_key = run(&f.auth(), &security, None, Some(ERP_KEY));
    assert_eq!(consumer(&by_key), "erp-batch");
    let AuthOutcome::Allowed(identity) = by_key else {
        unreachable!()
    };
    assert!(identity.claims.is_none());
}

#[test]
fn every_requirement_of_an_alternative_must_hold() {
    let f = fixture();
    let security = any_of(vec![vec![jwt(&[]), api_key(&[])]]);
    let tok = alice("");
    assert_eq!(
        denied(run(&f.auth(), &security, Some(&tok), None)),
        AuthFailure::MissingCredentials
    );
    assert_eq!(
        denied(run(&f.auth(), &security, None, Some(ERP_KEY))),
        AuthFailure::MissingCredentials
    );
    assert_eq!(
        denied(run(&f.auth(), &security, Some(&tok), Some("bad"))),
        AuthFailure::InvalidApiKey
    );
    // Both: the API key names the application, the token supplies the claims.
    let AuthOutcome::Allowed(identity) = run(&f.auth(), &security, Some(&tok), Some(ERP_KEY))
    else {
        panic!("expected Allowed");
    };
    assert_eq!(identity.consumer, "erp-batch");
    assert_eq!(identity.claims.unwrap()["sub"], "alice");
}

#[test]
fn api_keys_carry_no_scopes() {
    let f = fixture();
    let security = any_of(vec![vec![api_key(&["orders:read"])]]);
    assert_eq!(
        denied(run(&f.auth(), &security, None, Some(ERP_KEY))),
        AuthFailure::InsufficientScope {
            required: vec!["orders:read".into()]
        }
    );
}

#[test]
fn the_consumer_comes_from_the_configured_claim() {
    let f = fixture();
    let auth = Authenticator {
        consumer_claim: "client_id",
        ..f.auth()
    };
    let security = any_of(vec![vec![jwt(&[])]]);
    let tok = token(json!({"sub": "alice", "client_id": "billing-app", "exp": NOW + 60}));
    assert_eq!(
        consumer(&run(&auth, &security, Some(&tok), None)),
        "billing-app"
    );
    let no_claim = alice("");
    assert_eq!(
        denied(run(&auth, &security, Some(&no_claim), None)),
        AuthFailure::InvalidToken(TokenError::MissingClaim("client_id".into()))
    );
    let numeric = token(json!({"client_id": 7, "exp": NOW + 60}));
    assert!(matches!(
        denied(run(&auth, &security, Some(&numeric), None)),
        AuthFailure::InvalidToken(TokenError::MissingClaim(_))
    ));
}

#[test]
fn an_unknown_kid_asks_for_a_refresh_unless_another_alternative_holds() {
    let f = fixture();
    let tok = sign(
        Algorithm::RS256,
        Some("rotated"),
        &json!({"sub": "a", "exp": NOW + 60}),
    );
    let security = any_of(vec![vec![jwt(&[])], vec![api_key(&[])]]);
    let outcome = run(&f.auth(), &security, Some(&tok), None);
    assert_eq!(outcome, AuthOutcome::UnknownKey(Some("rotated".into())));
    assert_eq!(
        outcome.unknown_key_denied(),
        AuthOutcome::Denied(AuthFailure::InvalidToken(TokenError::UnknownKey(Some(
            "rotated".into()
        ))))
    );
    assert_eq!(
        consumer(&run(&f.auth(), &security, Some(&tok), Some(ERP_KEY))),
        "erp-batch"
    );
}

#[test]
fn verified_tokens_are_served_from_the_cache_until_exp() {
    let f = fixture();
    let security = any_of(vec![vec![jwt(&[])]]);
    let tok = alice("");
    assert_eq!(
        consumer(&run(&f.auth(), &security, Some(&tok), None)),
        "alice"
    );
    assert_eq!(f.cache.len(), 1);
    // Without a verifier only the cache can answer: it does.
    let cached_only = Authenticator {
        verifier: None,
        ..f.auth()
    };
    assert_eq!(
        consumer(&run(&cached_only, &security, Some(&tok), None)),
        "alice"
    );
    // Past exp the cache does not answer and verification refuses.
    let creds = Credentials {
        bearer: Some(&tok),
        header: &|_| None,
    };
    assert_eq!(
        f.auth().authenticate(&security, &creds, NOW + 60),
        AuthOutcome::Denied(AuthFailure::InvalidToken(TokenError::Expired))
    );
}

#[test]
fn without_jwt_configured_a_token_cannot_hold() {
    let f = fixture();
    let auth = Authenticator {
        verifier: None,
        ..f.auth()
    };
    let security = any_of(vec![vec![jwt(&[])]]);
    assert!(matches!(
        denied(run(&auth, &security, Some(&alice("")), None)),
        AuthFailure::InvalidToken(_)
    ));
}

fn challenges(problem: &Problem) -> Vec<&str> {
    problem
        .headers
        .iter()
        .filter(|(name, _)| *name == "www-authenticate")
        .map(|(_, value)| value.as_str())
        .collect()
}

#[test]
fn failures_become_401_or_403_problems_with_challenges() {
    let missing = AuthFailure::MissingCredentials.to_problem();
    assert_eq!(missing.status, 401);
    assert_eq!(missing.type_uri, "urn:propylon:problem:invalid-token");
    assert_eq!(challenges(&missing), vec![r#"Bearer realm="propylon""#]);

    let invalid = AuthFailure::InvalidToken(TokenError::Expired).to_problem();
    assert_eq!(invalid.status, 401);
    assert_eq!(
        challenges(&invalid),
        vec![
            r#"Bearer realm="propylon", error="invalid_token", error_description="the token has expired""#
        ]
    );

    let scope = AuthFailure::InsufficientScope {
        required: vec!["a".into(), "b".into()],
    }
    .to_problem();
    assert_eq!(scope.status, 403);
    assert_eq!(scope.type_uri, "urn:propylon:problem:insufficient-scope");
    assert_eq!(
        challenges(&scope),
        vec![r#"Bearer realm="propylon", error="insufficient_scope", scope="a b""#]
    );

    let key = AuthFailure::InvalidApiKey.to_problem();
    assert_eq!(key.status, 401);
    assert_eq!(challenges(&key), vec![r#"ApiKey realm="propylon""#]);
}

#[test]
fn challenges_follow_the_schemes_the_operation_accepts() {
    let both = any_of(vec![vec![jwt(&[])], vec![api_key(&[])]]);
    let keys_only = any_of(vec![vec![api_key(&[])]]);
    assert_eq!(
        challenges(&AuthFailure::MissingCredentials.to_problem_for(&both)),
        vec![r#"Bearer realm="propylon""#, r#"ApiKey realm="propylon""#]
    );
    assert_eq!(
        challenges(&AuthFailure::MissingCredentials.to_problem_for(&keys_only)),
        vec![r#"ApiKey realm="propylon""#]
    );
    assert_eq!(
        challenges(&AuthFailure::InvalidApiKey.to_problem_for(&both)),
        vec![r#"Bearer realm="propylon""#, r#"ApiKey realm="propylon""#]
    );
    let invalid = AuthFailure::InvalidToken(TokenError::BadSignature).to_problem_for(&both);
    assert!(challenges(&invalid)[0].contains(r#"error="invalid_token""#));
    assert_eq!(challenges(&invalid).len(), 2);
}

#[test]
fn descriptions_in_challenges_stay_quotable() {
    let problem =
        AuthFailure::InvalidToken(TokenError::MissingClaim("we\"ird\\claim".into())).to_problem();
    let challenge = challenges(&problem)[0];
    assert!(
        challenge.ends_with(r#"error_description="the token has no weirdclaim claim""#),
        "{challenge}"
    );
}

#[test]
fn bearer_tokens_are_taken_from_authorization() {
    assert_eq!(bearer_token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
    assert_eq!(bearer_token("bearer  abc "), Some("abc"));
    assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
    assert_eq!(bearer_token("Bearer"), None);
    assert_eq!(bearer_token(" BEARER t "), Some("t"));
    assert_eq!(bearer_token("Bearer\tabc"), None);
    assert_eq!(bearer_token("Bearerabc def"), None);
    assert_eq!(bearer_token("Béarer abc"), None);
    assert_eq!(bearer_token("Bearer "), None);
}

#[test]
fn a_connection_that_changes_token_is_judged_by_the_new_one() {
    let f = fixture();
    let last = LastToken::default();
    let auth = Authenticator {
        last_token: Some(&last),
        ..f.auth()
    };
    let security = any_of(vec![vec![jwt(&["orders:write"])]]);
    let writer = alice("orders:write");
    let bob = token(json!({"sub": "bob", "exp": NOW + 60, "scope": "orders:read"}));
    assert_eq!(
        consumer(&run(&auth, &security, Some(&writer), None)),
        "alice"
    );
    assert_eq!(
        consumer(&run(&auth, &security, Some(&writer), None)),
        "alice"
    );
    // The next request on the connection brings another token, without the scope.
    assert_eq!(
        denied(run(&auth, &security, Some(&bob), None)),
        AuthFailure::InsufficientScope {
            required: vec!["orders:write".into()]
        }
    );
    // A forged token (alice's with one byte of the signature changed) is verified, not
    // matched against the last one.
    let mut forged = writer.clone().into_bytes();
    let at = forged.len() - 2;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(
        consumer(&run(&auth, &security, Some(&writer), None)),
        "alice"
    );
    assert!(matches!(
        denied(run(&auth, &security, Some(&forged), None)),
        AuthFailure::InvalidToken(_)
    ));
}
