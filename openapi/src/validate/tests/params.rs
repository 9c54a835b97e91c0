//! Path, query and header parameters.

use super::*;

fn path(id: &str) -> PathParams {
    [("id", id)].into_iter().collect()
}

/// A request to `getOrder` that passes, with `query` and a valid tenant.
fn get_order(id: &str, query: &str) -> Vec<FieldError> {
    let v = validator(SPEC_30, "getOrder");
    v.validate_parameters(&path(id), Some(query), &headers(&[("x-tenant", "acme")]))
}

#[test]
fn valid_request_has_no_errors() {
    let errors = get_order("7", "view=full&limit=10&code=ABC&ids=1&ids=2&tags=a,b");
    assert_eq!(errors, vec![]);
}

#[test]
fn missing_required_query_param() {
    let errors = get_order("7", "view=full");
    assert_eq!(
        errors,
        vec![FieldError {
            pointer: "/query/limit".into(),
            reason: "required query parameter is missing".into()
        }]
    );
}

#[test]
fn integer_coercion_failure() {
    let errors = get_order("7", "view=full&limit=abc");
    assert_eq!(
        errors,
        vec![FieldError {
            pointer: "/query/limit".into(),
            reason: "must be an integer".into()
        }]
    );
}

#[test]
fn enum_violation() {
    let errors = get_order("7", "view=huge&limit=5");
    assert_eq!(pointers(&errors), ["/query/view"]);
    assert!(errors[0].reason.contains("is not one of"), "{errors:?}");
}

#[test]
fn pattern_violation() {
    let errors = get_order("7", "view=full&limit=5&code=abc");
    assert_eq!(pointers(&errors), ["/query/code"]);
    assert!(errors[0].reason.contains("does not match"), "{errors:?}");
}

#[test]
fn minimum_and_maximum() {
    let errors = get_order("7", "view=full&limit=0");
    assert_eq!(pointers(&errors), ["/query/limit"]);
    assert_eq!(errors[0].reason, "0 is less than the minimum of 1");
    let errors = get_order("7", "view=full&limit=101");
    assert_eq!(errors[0].reason, "101 is greater than the maximum of 100");
}

#[test]
fn query_is_percent_and_plus_decoded() {
    // `%41BC` is `ABC`; `A+C` would be `A C` and fail the pattern.
    assert_eq!(get_order("7", "view=full&limit=5&code=%41BC"), vec![]);
    let errors = get_order("7", "view=full&limit=5&code=A+C");
    assert!(errors[0].reason.contains("\"A C\""), "{errors:?}");
}

#[test]
fn repeated_scalar_query_param_is_refused() {
    let errors = get_order("7", "view=full&limit=5&limit=6");
    assert_eq!(pointers(&errors), ["/query/limit"]);
    assert!(errors[0].reason.contains("once"));
}

#[test]
fn array_params_exploded_and_comma_separated() {
    let errors = get_order("7", "view=full&limit=5&ids=1&ids=x&ids=11");
    assert_eq!(pointers(&errors), ["/query/ids/1"]);
    let errors = get_order("7", "view=full&limit=5&ids=1&ids=11");
    assert_eq!(pointers(&errors), ["/query/ids/1"]);
    assert!(errors[0].reason.contains("maximum"));
    let errors = get_order("7", "view=full&limit=5&tags=ab,abcd");
    assert_eq!(pointers(&errors), ["/query/tags/1"]);
}

#[test]
fn header_param_missing_and_invalid() {
    let v = validator(SPEC_30, "getOrder");
    let query = Some("view=full&limit=5");
    let errors = v.validate_parameters(&path("7"), query, &HeaderMap::new());
    assert_eq!(
        errors,
        vec![FieldError {
            pointer: "/headers/x-tenant".into(),
            reason: "required header is missing".into()
        }]
    );
    let errors = v.validate_parameters(&path("7"), query, &headers(&[("x-tenant", "ACME")]));
    assert_eq!(pointers(&errors), ["/headers/x-tenant"]);
    assert!(errors[0].reason.contains("does not match"));
}

#[test]
fn path_param_type_and_minimum() {
    let errors = get_order("seven", "view=full&limit=5");
    assert_eq!(
        errors,
        vec![FieldError {
            pointer: "/path/id".into(),
            reason: "must be an integer".into()
        }]
    );
    let errors = get_order("0", "view=full&limit=5");
    assert_eq!(pointers(&errors), ["/path/id"]);
}

#[test]
fn path_level_params_apply_and_operation_overrides() {
    // deleteOrder inherits the path-level params: `view` is an optional boolean.
    let v = validator(SPEC_30, "deleteOrder");
    let tenant = headers(&[("x-tenant", "acme")]);
    assert_eq!(v.validate_parameters(&path("1"), None, &tenant), vec![]);
    let errors = v.validate_parameters(&path("x"), Some("view=full"), &tenant);
    assert_eq!(pointers(&errors), ["/path/id", "/query/view"]);
    assert_eq!(errors[1].reason, "must be a boolean (true or false)");
    // getOrder overrides `view` with a required string enum.
    let errors = get_order("1", "limit=5");
    assert_eq!(pointers(&errors), ["/query/view"]);
    assert_eq!(get_order("1", "view=brief&limit=5"), vec![]);
}

#[test]
fn ref_params_are_resolved() {
    // `limit` comes only from `#/components/parameters/Limit`.
    let errors = get_order("1", "view=full&limit=1000");
    assert_eq!(pointers(&errors), ["/query/limit"]);
}

#[test]
fn all_failing_params_are_reported() {
    let v = validator(SPEC_30, "getOrder");
    let errors = v.validate_parameters(&path("x"), Some("code=1"), &HeaderMap::new());
    assert_eq!(
        pointers(&errors),
        [
            "/path/id",
            "/headers/x-tenant",
            "/query/view",
            "/query/limit",
            "/query/code"
        ]
    );
}
