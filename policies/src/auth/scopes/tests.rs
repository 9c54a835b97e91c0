#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

fn req(scopes: &[&str]) -> Vec<String> {
    scopes.iter().map(|s| s.to_string()).collect()
}

#[test]
fn scope_is_a_space_separated_string() {
    let claims = json!({"scope": "orders:read  orders:write"});
    assert!(missing_scopes(&claims, &req(&["orders:read", "orders:write"])).is_empty());
    assert_eq!(
        missing_scopes(&claims, &req(&["orders:read", "admin"])),
        req(&["admin"])
    );
}

#[test]
fn scp_may_be_an_array_or_a_string() {
    let array = json!({"scp": ["a", "b"]});
    assert!(missing_scopes(&array, &req(&["a", "b"])).is_empty());
    assert_eq!(missing_scopes(&array, &req(&["c"])), req(&["c"]));
    let string = json!({"scp": "a b"});
    assert!(missing_scopes(&string, &req(&["b"])).is_empty());
}

#[test]
fn both_claims_count_and_substrings_do_not() {
    let claims = json!({"scope": "a", "scp": ["b"]});
    assert!(missing_scopes(&claims, &req(&["a", "b"])).is_empty());
    let claims = json!({"scope": "orders:read"});
    assert_eq!(missing_scopes(&claims, &req(&["orders"])), req(&["orders"]));
}

#[test]
fn no_scope_claim_misses_everything_and_nothing_required_misses_nothing() {
    assert_eq!(
        missing_scopes(&json!({}), &req(&["a", "b"])),
        req(&["a", "b"])
    );
    assert!(missing_scopes(&json!({"scope": 42}), &[]).is_empty());
}
