#![allow(clippy::unwrap_used)]

use super::*;

const YAML_30: &str = r#"
openapi: 3.0.3
info: {title: CRM, version: "1.0"}
servers: [{url: "https://crm.internal"}]
paths:
  /customers:
    get:
      operationId: listCustomers
      responses:
        200: {description: ok}
    post:
      operationId: createCustomer
      responses: {"201": {description: created}}
  /customers/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    get:
      operationId: getCustomer
      responses: {"200": {description: ok}}
"#;

const JSON_31: &str = r#"{
  "openapi": "3.1.0",
  "info": {"title": "Billing", "version": "2"},
  "paths": {
    "/invoices/{invoiceId}/lines/{line}": {
      "delete": {"operationId": "deleteLine", "responses": {"204": {"description": "gone"}}}
    }
  }
}"#;

fn invalid_parts(err: SpecError) -> (String, String) {
    match err {
        SpecError::Invalid { pointer, message } => (pointer, message),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn parses_yaml_3_0() {
    let spec = FacadeSpec::parse(YAML_30).unwrap();
    let ids: Vec<_> = spec
        .operations
        .iter()
        .map(|o| o.operation_id.as_str())
        .collect();
    assert_eq!(ids, vec!["listCustomers", "createCustomer", "getCustomer"]);
    let get = spec.operation("getCustomer").unwrap();
    assert_eq!(get.method, Method::GET);
    assert_eq!(get.path, "/customers/{id}");
    assert_eq!(get.path_params, vec!["id".to_string()]);
    assert_eq!(
        spec.operation("createCustomer").unwrap().method,
        Method::POST
    );
    assert!(spec.operation("nope").is_none());
    // Unquoted YAML integer keys still become JSON object keys.
    assert_eq!(
        spec.document["paths"]["/customers"]["get"]["responses"]["200"]["description"],
        "ok"
    );
}

#[test]
fn parses_json_3_1() {
    let spec = FacadeSpec::parse(JSON_31).unwrap();
    assert_eq!(spec.document["openapi"], "3.1.0");
    assert_eq!(spec.operations.len(), 1);
    let op = &spec.operations[0];
    assert_eq!(op.operation_id, "deleteLine");
    assert_eq!(op.method, Method::DELETE);
    assert_eq!(
        op.path_params,
        vec!["invoiceId".to_string(), "line".to_string()]
    );
}

#[test]
fn spec_without_paths_has_no_operations() {
    let spec = FacadeSpec::parse("openapi: 3.1.0\ninfo: {title: t, version: v}\n").unwrap();
    assert!(spec.operations.is_empty());
}

#[test]
fn syntax_error_reports_line() {
    let text = "openapi: 3.0.3\ninfo:\n  title: x\n   bad: [unclosed\n";
    match FacadeSpec::parse(text).unwrap_err() {
        SpecError::Syntax { line, message } => {
            assert_eq!(line, Some(4), "{message}");
            assert!(!message.is_empty());
        }
        other => panic!("expected Syntax, got {other:?}"),
    }
    match FacadeSpec::parse("{\"openapi\": \"3.0.0\",\n\"paths\": {]\n}").unwrap_err() {
        SpecError::Syntax { line, .. } => assert_eq!(line, Some(2)),
        other => panic!("expected Syntax, got {other:?}"),
    }
}

#[test]
fn missing_or_wrong_openapi_field() {
    assert_eq!(
        FacadeSpec::parse("info: {title: t, version: v}\npaths: {}\n").unwrap_err(),
        SpecError::NotOpenApi3 { found: None }
    );
    assert_eq!(
        FacadeSpec::parse("swagger: '2.0'\nopenapi: '2.0'\n").unwrap_err(),
        SpecError::NotOpenApi3 {
            found: Some("2.0".into())
        }
    );
    // An unquoted YAML number is not the string OpenAPI requires.
    assert_eq!(
        FacadeSpec::parse("openapi: 3.1\n").unwrap_err(),
        SpecError::NotOpenApi3 {
            found: Some("3.1".into())
        }
    );
    let msg = SpecError::NotOpenApi3 { found: None }.to_string();
    assert!(msg.contains("no `openapi` field"), "{msg}");
}

#[test]
fn non_mapping_document_is_invalid() {
    let (pointer, _) = invalid_parts(FacadeSpec::parse("- a\n- b\n").unwrap_err());
    assert_eq!(pointer, "");
}

#[test]
fn missing_operation_id_points_at_operation() {
    let text = "openapi: 3.0.0\npaths:\n  /customers/{id}:\n    get:\n      responses: {}\n";
    let (pointer, message) = invalid_parts(FacadeSpec::parse(text).unwrap_err());
    assert_eq!(pointer, "/paths/~1customers~1{id}/get");
    assert!(message.contains("operationId"), "{message}");
}

#[test]
fn duplicate_operation_id_is_invalid() {
    let text = r#"
openapi: 3.1.0
paths:
  /a:
    get: {operationId: same}
    post: {operationId: same}
"#;
    let (pointer, message) = invalid_parts(FacadeSpec::parse(text).unwrap_err());
    assert_eq!(pointer, "/paths/~1a/post/operationId");
    assert!(message.contains("/paths/~1a/get"), "{message}");
}

#[test]
fn partial_segment_param_is_rejected() {
    let text = "openapi: 3.0.0\npaths:\n  /files/{name}.json:\n    get: {operationId: f}\n";
    let (pointer, message) = invalid_parts(FacadeSpec::parse(text).unwrap_err());
    assert_eq!(pointer, "/paths/~1files~1{name}.json");
    assert!(message.contains("whole segment"), "{message}");
}

#[test]
fn ref_path_item_and_bad_names_are_rejected() {
    let text = "openapi: 3.0.0\npaths:\n  /a:\n    $ref: '#/x'\n";
    let (_, message) = invalid_parts(FacadeSpec::parse(text).unwrap_err());
    assert!(message.contains("$ref"), "{message}");
    let text = "openapi: 3.0.0\npaths:\n  /a/{x}/{x}:\n    get: {operationId: g}\n";
    let (_, message) = invalid_parts(FacadeSpec::parse(text).unwrap_err());
    assert!(message.contains("twice"), "{message}");
    let text = "openapi: 3.0.0\npaths:\n  a:\n    get: {operationId: g}\n";
    let (pointer, _) = invalid_parts(FacadeSpec::parse(text).unwrap_err());
    assert_eq!(pointer, "/paths/a");
}
