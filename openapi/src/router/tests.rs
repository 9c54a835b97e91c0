#![allow(clippy::unwrap_used)]

use super::*;

fn table(routes: &[(Method, &str, &'static str)]) -> RouteTable<&'static str> {
    let mut builder = RouteTableBuilder::new();
    for (method, path, value) in routes {
        builder.insert(method.clone(), path, *value).unwrap();
    }
    builder.build()
}

fn found<'a>(lookup: RouteLookup<'a, &'static str>) -> (&'static str, PathParams) {
    match lookup {
        RouteLookup::Found { value, params } => (*value, params),
        other => panic!("expected Found, got {other:?}"),
    }
}

#[test]
fn routes_with_params() {
    let t = table(&[
        (Method::GET, "/customers/{id}", "get-customer"),
        (Method::GET, "/customers/{id}/orders/{order}", "get-order"),
    ]);
    let (value, params) = found(t.lookup(&Method::GET, "/customers/42/orders/7"));
    assert_eq!(value, "get-order");
    assert_eq!(params.get("id"), Some("42"));
    assert_eq!(params.get("order"), Some("7"));
    assert_eq!(params.get("nope"), None);
    assert_eq!(
        params.iter().collect::<Vec<_>>(),
        vec![("id", "42"), ("order", "7")]
    );
}

#[test]
fn params_are_percent_decoded() {
    let t = table(&[(Method::GET, "/files/{name}", "file")]);
    let (_, params) = found(t.lookup(&Method::GET, "/files/a%2Fb%20c%E2%82%AC"));
    assert_eq!(params.get("name"), Some("a/b c€"));
    // '+' is literal in paths, not a space.
    let (_, params) = found(t.lookup(&Method::GET, "/files/a+b"));
    assert_eq!(params.get("name"), Some("a+b"));
}

#[test]
fn invalid_utf8_after_decoding_keeps_raw_text() {
    let t = table(&[(Method::GET, "/files/{name}", "file")]);
    let (_, params) = found(t.lookup(&Method::GET, "/files/%FF%FE"));
    assert_eq!(params.get("name"), Some("%FF%FE"));
}

#[test]
fn static_segment_beats_param() {
    let t = table(&[
        (Method::GET, "/customers/{id}", "by-id"),
        (Method::GET, "/customers/me", "me"),
    ]);
    assert_eq!(found(t.lookup(&Method::GET, "/customers/me")).0, "me");
    assert_eq!(found(t.lookup(&Method::GET, "/customers/mo")).0, "by-id");
}

#[test]
fn not_found_vs_method_not_allowed() {
    let t = table(&[
        (Method::POST, "/customers", "create"),
        (Method::GET, "/customers", "list"),
    ]);
    assert!(matches!(
        t.lookup(&Method::GET, "/orders"),
        RouteLookup::NotFound
    ));
    // Exact matching: no trailing-slash redirect.
    assert!(matches!(
        t.lookup(&Method::GET, "/customers/"),
        RouteLookup::NotFound
    ));
    match t.lookup(&Method::DELETE, "/customers") {
        RouteLookup::MethodNotAllowed { allow } => assert_eq!(allow, "GET, HEAD, POST"),
        other => panic!("expected 405, got {other:?}"),
    }
}

#[test]
fn allow_without_get_has_no_head() {
    let t = table(&[
        (Method::DELETE, "/x", "d"),
        (Method::PUT, "/x", "p"),
        (Method::OPTIONS, "/x", "o"),
    ]);
    match t.lookup(&Method::GET, "/x") {
        RouteLookup::MethodNotAllowed { allow } => assert_eq!(allow, "PUT, DELETE, OPTIONS"),
        other => panic!("expected 405, got {other:?}"),
    }
}

#[test]
fn head_falls_back_to_get_unless_defined() {
    let t = table(&[
        (Method::GET, "/a", "get-a"),
        (Method::GET, "/b", "get-b"),
        (Method::HEAD, "/b", "head-b"),
        (Method::POST, "/c", "post-c"),
    ]);
    assert_eq!(found(t.lookup(&Method::HEAD, "/a")).0, "get-a");
    assert_eq!(found(t.lookup(&Method::HEAD, "/b")).0, "head-b");
    match t.lookup(&Method::HEAD, "/c") {
        RouteLookup::MethodNotAllowed { allow } => assert_eq!(allow, "POST"),
        other => panic!("expected 405, got {other:?}"),
    }
}

#[test]
fn duplicate_route_is_an_error() {
    let mut b = RouteTableBuilder::new();
    b.insert(Method::GET, "/a/{id}", 1).unwrap();
    let err = b.insert(Method::GET, "/a/{id}", 2).unwrap_err();
    assert_eq!(
        err,
        RouteError::Duplicate {
            method: "GET".into(),
            path: "/a/{id}".into()
        }
    );
}

#[test]
fn templates_differing_only_in_param_names_conflict() {
    let mut b = RouteTableBuilder::new();
    b.insert(Method::GET, "/a/{x}", 1).unwrap();
    let err = b.insert(Method::POST, "/a/{y}", 2).unwrap_err();
    match err {
        RouteError::Conflict { path, message } => {
            assert_eq!(path, "/a/{y}");
            assert!(
                message.contains("only in parameter names") && message.contains("/a/{x}"),
                "{message}"
            );
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
}

#[test]
fn invalid_templates_are_rejected() {
    let mut b = RouteTableBuilder::new();
    assert!(matches!(
        b.insert(Method::GET, "/a/{x}-suffix", 1),
        Err(RouteError::Conflict { .. })
    ));
    assert!(matches!(
        b.insert(Method::GET, "no-slash", 1),
        Err(RouteError::Conflict { .. })
    ));
}

#[test]
fn path_params_from_iter() {
    let p: PathParams = [("a", "1"), ("b", "2")].into_iter().collect();
    assert_eq!(p.len(), 2);
    assert_eq!(p.get("b"), Some("2"));
    assert!(PathParams::default().is_empty());
}
