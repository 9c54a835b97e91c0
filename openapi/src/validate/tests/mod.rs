//! Tests for request validation: one fixture spec per OpenAPI version.

#![allow(clippy::unwrap_used)]

use http::{HeaderMap, HeaderValue};
use serde_json::json;

use super::*;

mod body;
mod media;
mod params;

/// OpenAPI 3.0: path-level params with an override, `$ref` params and
/// schemas, `nullable`, boolean `exclusiveMinimum`, `readOnly`.
const SPEC_30: &str = r##"
openapi: 3.0.3
info: {title: Orders, version: "1"}
paths:
  /orders/{id}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: integer, minimum: 1}}
      - {name: X-Tenant, in: header, required: true, schema: {type: string, pattern: "^[a-z]+$"}}
      - {name: view, in: query, schema: {type: boolean}}
    get:
      operationId: getOrder
      parameters:
        - {name: view, in: query, required: true, schema: {type: string, enum: [full, brief]}}
        - $ref: "#/components/parameters/Limit"
        - {name: code, in: query, schema: {type: string, pattern: "^[A-Z]{3}$"}}
        - {name: ids, in: query, schema: {type: array, items: {type: integer, maximum: 10}}}
        - {name: tags, in: query, explode: false, schema: {type: array, items: {type: string, maxLength: 3}}}
        - {name: session, in: cookie, required: true, schema: {type: string}}
      responses: {}
    delete:
      operationId: deleteOrder
      responses: {}
  /orders:
    post:
      operationId: createOrder
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Order"}
          application/merge-patch+json:
            schema: {type: object}
      responses: {}
  /notes:
    post:
      operationId: addNote
      requestBody:
        content:
          text/plain: {}
      responses: {}
  /ping:
    get:
      operationId: ping
      parameters:
        - {name: q, in: query, schema: {type: string}}
        - {name: c, in: cookie, required: true, schema: {type: string}}
      responses: {}
components:
  parameters:
    Limit: {name: limit, in: query, required: true, schema: {type: integer, minimum: 1, maximum: 100}}
  schemas:
    Order:
      type: object
      required: [id, sku, items]
      properties:
        id: {type: string, readOnly: true}
        sku: {type: string, example: AB-1}
        note: {type: string, nullable: true}
        discount: {type: number, minimum: 0, exclusiveMinimum: true}
        items: {type: array, items: {$ref: "#/components/schemas/Line"}}
    Line:
      type: object
      required: [qty]
      properties:
        qty: {type: integer, minimum: 1}
"##;

/// OpenAPI 3.1: JSON Schema 2020-12 as is.
const SPEC_31: &str = r##"
openapi: 3.1.0
info: {title: Notes, version: "1"}
paths:
  /people:
    post:
      operationId: createPerson
      requestBody:
        $ref: "#/components/requestBodies/Person"
      responses: {}
components:
  requestBodies:
    Person:
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Person"}
  schemas:
    Person:
      type: object
      required: [name]
      properties:
        name: {type: string, minLength: 1}
        nickname: {type: [string, "null"]}
        age: {type: integer, exclusiveMinimum: 0}
"##;

fn validator(spec: &str, operation_id: &str) -> RequestValidator {
    let spec = FacadeSpec::parse(spec).unwrap();
    RequestValidator::compile(&spec, operation_id).unwrap()
}

fn compile_error(spec: &str, operation_id: &str) -> (String, String) {
    let spec = FacadeSpec::parse(spec).unwrap();
    match RequestValidator::compile(&spec, operation_id) {
        Err(SpecError::Invalid { pointer, message }) => (pointer, message),
        other => panic!("expected SpecError::Invalid, got {other:?}"),
    }
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_static(value));
    }
    map
}

fn pointers(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.pointer.as_str()).collect()
}

#[test]
fn is_empty_only_without_anything_to_check() {
    // An unconstrained optional string and a cookie: nothing to check.
    assert!(validator(SPEC_30, "ping").is_empty());
    assert!(!validator(SPEC_30, "getOrder").is_empty());
    assert!(!validator(SPEC_30, "createOrder").is_empty());
    // Declared media types alone still matter (415).
    assert!(!validator(SPEC_30, "addNote").is_empty());
}

#[test]
fn wants_json_body_needs_a_json_schema() {
    assert!(validator(SPEC_30, "createOrder").wants_json_body());
    assert!(validator(SPEC_31, "createPerson").wants_json_body());
    assert!(!validator(SPEC_30, "addNote").wants_json_body());
    assert!(!validator(SPEC_30, "getOrder").wants_json_body());
}

#[test]
fn unknown_operation_is_an_error() {
    let (_, message) = compile_error(SPEC_30, "nope");
    assert!(message.contains("`nope`"), "{message}");
}

#[test]
fn unresolved_schema_ref_names_its_location() {
    let spec = SPEC_30.replace(
        "items: {$ref: \"#/components/schemas/Line\"}",
        "items: {$ref: \"#/components/schemas/Missing\"}",
    );
    let (pointer, message) = compile_error(&spec, "createOrder");
    assert_eq!(
        pointer,
        "/components/schemas/Order/properties/items/items/$ref"
    );
    assert!(message.contains("does not resolve"), "{message}");
}

#[test]
fn unresolved_parameter_ref_is_an_error() {
    let spec = SPEC_30.replace("parameters/Limit\"", "parameters/Nope\"");
    let (pointer, _) = compile_error(&spec, "getOrder");
    assert_eq!(pointer, "/paths/~1orders~1{id}/get/parameters/1");
}

#[test]
fn schema_jsonschema_rejects_is_an_error() {
    let spec = SPEC_30.replace("pattern: \"^[A-Z]{3}$\"", "pattern: \"[A-\"");
    let (pointer, message) = compile_error(&spec, "getOrder");
    assert_eq!(pointer, "/paths/~1orders~1{id}/get/parameters/2/schema");
    assert!(message.contains("not valid"), "{message}");
}
