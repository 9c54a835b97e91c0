#![allow(clippy::unwrap_used)]

use super::*;

/// A spec whose `paths` hold one `get` per operation id, each with the given `security`
/// (None: the key is absent), plus the given top-level `security` and schemes.
fn spec(top: Option<&str>, ops: &[(&str, Option<&str>)], schemes: &str) -> FacadeSpec {
    let mut text = String::from("openapi: 3.1.0\ninfo: {title: t, version: '1'}\n");
    if let Some(top) = top {
        text.push_str(&format!("security: {top}\n"));
    }
    text.push_str("paths:\n");
    for (id, security) in ops {
        text.push_str(&format!("  /{id}:\n    get:\n      operationId: {id}\n"));
        if let Some(security) = security {
            text.push_str(&format!("      security: {security}\n"));
        }
    }
    text.push_str(&format!("components:\n  securitySchemes: {schemes}\n"));
    FacadeSpec::parse(&text).unwrap()
}

const SCHEMES: &str = r##"{
    bearer: {type: http, scheme: Bearer, bearerFormat: JWT},
    oauth: {type: oauth2, flows: {}},
    oidc: {type: openIdConnect, openIdConnectUrl: "https://idp/.well-known/openid-configuration"},
    key: {type: apiKey, in: header, name: X-Api-Key},
    aliased: {$ref: "#/components/securitySchemes/key"},
    basic: {type: http, scheme: basic},
    query_key: {type: apiKey, in: query, name: key},
    cookie_key: {type: apiKey, in: cookie, name: key},
    mtls: {type: mutualTLS}
  }"##;

fn req(scheme: &str, kind: SchemeKind, scopes: &[&str]) -> Requirement {
    Requirement {
        scheme: scheme.to_owned(),
        kind,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

fn api_key() -> SchemeKind {
    SchemeKind::ApiKeyHeader("x-api-key".to_owned())
}

fn invalid_pointer(result: Result<Security, SpecError>) -> (String, String) {
    match result {
        Err(SpecError::Invalid { pointer, message }) => (pointer, message),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn no_security_anywhere_is_public() {
    let s = spec(None, &[("a", None)], SCHEMES);
    assert_eq!(operation_security(&s, "a").unwrap(), Security::Public);
}

#[test]
fn top_level_security_applies_when_the_operation_has_none() {
    let s = spec(Some("[{bearer: [read]}]"), &[("a", None)], SCHEMES);
    assert_eq!(
        operation_security(&s, "a").unwrap(),
        Security::AnyOf(vec![vec![req("bearer", SchemeKind::Jwt, &["read"])]])
    );
}

#[test]
fn operation_security_overrides_top_level() {
    let s = spec(
        Some("[{bearer: [read]}]"),
        &[("a", Some("[{key: []}]")), ("b", Some("[]"))],
        SCHEMES,
    );
    assert_eq!(
        operation_security(&s, "a").unwrap(),
        Security::AnyOf(vec![vec![req("key", api_key(), &[])]])
    );
    // `security: []` on the operation makes it public despite the top level.
    assert_eq!(operation_security(&s, "b").unwrap(), Security::Public);
}

#[test]
fn an_empty_alternative_makes_the_operation_public() {
    let s = spec(None, &[("a", Some("[{bearer: []}, {}]"))], SCHEMES);
    assert_eq!(operation_security(&s, "a").unwrap(), Security::Public);
}

#[test]
fn alternatives_and_conjunctions_keep_their_shape() {
    let s = spec(
        None,
        &[("a", Some("[{oauth: [w, r], key: []}, {oidc: []}]"))],
        SCHEMES,
    );
    assert_eq!(
        operation_security(&s, "a").unwrap(),
        Security::AnyOf(vec![
            vec![
                req("oauth", SchemeKind::Jwt, &["w", "r"]),
                req("key", api_key(), &[])
            ],
            vec![req("oidc", SchemeKind::Jwt, &[])],
        ])
    );
}

#[test]
fn a_ref_scheme_is_resolved() {
    let s = spec(None, &[("a", Some("[{aliased: []}]"))], SCHEMES);
    assert_eq!(
        operation_security(&s, "a").unwrap(),
        Security::AnyOf(vec![vec![req("aliased", api_key(), &[])]])
    );
}

#[test]
fn a_ref_loop_is_an_error() {
    let schemes = r##"{a: {$ref: "#/components/securitySchemes/b"}, b: {$ref: "#/components/securitySchemes/a"}}"##;
    let s = spec(None, &[("op", Some("[{a: []}]"))], schemes);
    let (_, message) = invalid_pointer(operation_security(&s, "op"));
    assert!(message.contains("loops"), "{message}");
}

#[test]
fn unknown_scheme_names_point_at_the_requirement() {
    let s = spec(None, &[("a", Some("[{bearer: []}, {nope: []}]"))], SCHEMES);
    let (pointer, message) = invalid_pointer(operation_security(&s, "a"));
    assert_eq!(pointer, "/paths/~1a/get/security/1/nope");
    assert!(message.contains("`nope` is not defined"), "{message}");
}

#[test]
fn unknown_scheme_names_in_top_level_security_point_there() {
    let s = spec(Some("[{nope: []}]"), &[("a", None)], SCHEMES);
    let (pointer, _) = invalid_pointer(operation_security(&s, "a"));
    assert_eq!(pointer, "/security/0/nope");
}

#[test]
fn unsupported_schemes_are_refused_with_what_is_supported() {
    for name in ["basic", "query_key", "cookie_key", "mtls"] {
        let s = spec(None, &[("a", Some(&format!("[{{{name}: []}}]")))], SCHEMES);
        let (pointer, message) = invalid_pointer(operation_security(&s, "a"));
        assert_eq!(pointer, format!("/components/securitySchemes/{name}"));
        assert!(
            message.contains("supported schemes are"),
            "{name}: {message}"
        );
    }
}

#[test]
fn malformed_security_values_are_errors() {
    let s = spec(
        None,
        &[("a", Some("{bearer: []}")), ("b", Some("[{bearer: read}]"))],
        SCHEMES,
    );
    assert_eq!(
        invalid_pointer(operation_security(&s, "a")).0,
        "/paths/~1a/get/security"
    );
    assert_eq!(
        invalid_pointer(operation_security(&s, "b")).0,
        "/paths/~1b/get/security/0/bearer"
    );
}

#[test]
fn unknown_operation_is_an_error() {
    let s = spec(None, &[("a", None)], SCHEMES);
    let (_, message) = invalid_pointer(operation_security(&s, "zzz"));
    assert!(message.contains("zzz"));
}
