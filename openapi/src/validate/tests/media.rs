//! The 415 decision.

use super::*;

fn allowed() -> UnsupportedMediaType {
    UnsupportedMediaType {
        allowed: vec![
            "application/json".into(),
            "application/merge-patch+json".into(),
        ],
    }
}

#[test]
fn declared_type_passes_and_others_fail() {
    let v = validator(SPEC_30, "createOrder");
    assert_eq!(v.check_content_type(Some("application/json"), true), Ok(()));
    assert_eq!(
        v.check_content_type(Some("text/plain"), true),
        Err(allowed())
    );
    assert_eq!(
        v.check_content_type(Some("application/xml"), true),
        Err(allowed())
    );
}

#[test]
fn parameters_and_case_are_ignored() {
    let v = validator(SPEC_30, "createOrder");
    let ct = Some("Application/JSON; charset=utf-8");
    assert_eq!(v.check_content_type(ct, true), Ok(()));
}

#[test]
fn plus_json_matches_application_json() {
    let v = validator(SPEC_31, "createPerson");
    assert_eq!(
        v.check_content_type(Some("application/vnd.acme+json"), true),
        Ok(())
    );
    assert!(v.check_content_type(Some("text/json"), true).is_err());
}

#[test]
fn body_without_content_type_is_refused() {
    let v = validator(SPEC_30, "createOrder");
    assert_eq!(v.check_content_type(None, true), Err(allowed()));
    // Nothing sent: no media type to refuse (the missing body is a 400).
    assert_eq!(v.check_content_type(None, false), Ok(()));
}

#[test]
fn without_request_body_anything_passes() {
    let v = validator(SPEC_30, "getOrder");
    assert_eq!(v.check_content_type(Some("text/csv"), true), Ok(()));
    assert_eq!(v.check_content_type(None, true), Ok(()));
}

#[test]
fn non_json_declared_types_are_matched_too() {
    let v = validator(SPEC_30, "addNote");
    assert_eq!(
        v.check_content_type(Some("text/plain; charset=latin1"), true),
        Ok(())
    );
    assert_eq!(
        v.check_content_type(Some("application/json"), true),
        Err(UnsupportedMediaType {
            allowed: vec!["text/plain".into()]
        })
    );
}
