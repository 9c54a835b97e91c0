//! Request bodies against the requestBody schema.

use super::*;

fn order() -> Value {
    json!({"sku": "AB-1", "items": [{"qty": 1}, {"qty": 2}]})
}

/// The errors for `body`, the same whether it was parsed as a `Value` or a borrowed document.
fn create_order(body: &Value) -> Vec<FieldError> {
    let v = validator(SPEC_30, "createOrder");
    let errors = v.validate_body(Some(body));
    let text = body.to_string();
    let arena = propylon_json::Bump::new();
    let borrowed = propylon_json::parse(&text, &arena, &propylon_json::Everything).unwrap();
    assert_eq!(v.validate_borrowed_body(Some(&borrowed)), errors, "{text}");
    errors
}

#[test]
fn valid_body_passes_and_read_only_is_not_required() {
    // `id` is required but readOnly: a client cannot send it.
    assert_eq!(create_order(&order()), vec![]);
}

#[test]
fn required_property_missing() {
    let mut body = order();
    body.as_object_mut().unwrap().remove("sku");
    assert_eq!(
        create_order(&body),
        vec![FieldError {
            pointer: "/body/sku".into(),
            reason: "required property 'sku' is missing".into()
        }]
    );
}

#[test]
fn wrong_type() {
    let mut body = order();
    body["sku"] = json!(12);
    let errors = create_order(&body);
    assert_eq!(pointers(&errors), ["/body/sku"]);
    assert_eq!(errors[0].reason, "12 is not of type \"string\"");
}

#[test]
fn nested_array_item_pointer() {
    let mut body = order();
    body["items"][1]["qty"] = json!(-1);
    let errors = create_order(&body);
    assert_eq!(
        errors,
        vec![FieldError {
            pointer: "/body/items/1/qty".into(),
            reason: "-1 is less than the minimum of 1".into()
        }]
    );
}

#[test]
fn several_errors_at_once() {
    let body = json!({"sku": 1, "items": [{"qty": 0}, {}], "discount": 0});
    let errors = create_order(&body);
    let mut found = pointers(&errors);
    found.sort();
    assert_eq!(
        found,
        [
            "/body/discount",
            "/body/items/0/qty",
            "/body/items/1/qty",
            "/body/sku"
        ]
    );
}

#[test]
fn exclusive_minimum_boolean_form_is_translated() {
    let mut body = order();
    body["discount"] = json!(0);
    let errors = create_order(&body);
    assert_eq!(pointers(&errors), ["/body/discount"]);
    assert_eq!(
        errors[0].reason,
        "0 is less than or equal to the minimum of 0"
    );
    body["discount"] = json!(0.5);
    assert_eq!(create_order(&body), vec![]);
}

#[test]
fn nullable_30() {
    let mut body = order();
    body["note"] = Value::Null;
    assert_eq!(create_order(&body), vec![]);
    body["sku"] = Value::Null; // not nullable
    assert_eq!(pointers(&create_order(&body)), ["/body/sku"]);
}

#[test]
fn type_array_with_null_31() {
    let v = validator(SPEC_31, "createPerson");
    assert_eq!(
        v.validate_body(Some(&json!({"name": "Ann", "nickname": null}))),
        vec![]
    );
    assert_eq!(
        v.validate_body(Some(&json!({"name": "Ann", "nickname": "A"}))),
        vec![]
    );
    let errors = v.validate_body(Some(&json!({"name": "", "nickname": 3, "age": 0})));
    let mut found = pointers(&errors);
    found.sort();
    assert_eq!(found, ["/body/age", "/body/name", "/body/nickname"]);
}

#[test]
fn ref_schema_through_ref_request_body() {
    let v = validator(SPEC_31, "createPerson");
    let errors = v.validate_body(Some(&json!({})));
    assert_eq!(errors[0].reason, "required property 'name' is missing");
}

#[test]
fn required_body_missing() {
    let v = validator(SPEC_30, "createOrder");
    assert_eq!(
        v.validate_body(None),
        vec![FieldError {
            pointer: "/body".into(),
            reason: "a request body is required".into()
        }]
    );
    // Optional body: nothing sent is fine.
    assert_eq!(
        validator(SPEC_31, "createPerson").validate_body(None),
        vec![]
    );
}

#[test]
fn large_instances_are_not_echoed() {
    let mut body = order();
    body["items"] = json!({"qty": 1});
    let errors = create_order(&body);
    assert_eq!(errors[0].reason, "object is not of type \"array\"");
}

#[test]
fn recursive_schemas_compile_and_validate() {
    let spec = r##"
openapi: 3.0.3
info: {title: Tree, version: "1"}
paths:
  /trees:
    post:
      operationId: plant
      requestBody:
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Node"}
      responses: {}
components:
  schemas:
    Node:
      type: object
      required: [example]
      properties:
        example: {type: string}
        children: {type: array, items: {$ref: "#/components/schemas/Node"}}
"##;
    let v = validator(spec, "plant");
    let ok = json!({"example": "a", "children": [{"example": "b", "children": []}]});
    assert_eq!(v.validate_body(Some(&ok)), vec![]);
    // A property named like a dropped 3.0 keyword is still a property.
    let bad = json!({"example": "a", "children": [{"children": [{"example": 1}]}]});
    let errors = v.validate_body(Some(&bad));
    let mut found = pointers(&errors);
    found.sort();
    assert_eq!(
        found,
        [
            "/body/children/0/children/0/example",
            "/body/children/0/example"
        ]
    );
}

#[test]
fn formats_are_checked() {
    let spec = r##"
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /people:
    post:
      operationId: addPerson
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                email: {type: string, format: email}
                born: {type: string, format: date}
      responses: {"200": {description: ok}}
"##;
    let v = validator(spec, "addPerson");
    assert_eq!(
        v.validate_body(Some(
            &json!({"email": "ada@example.com", "born": "1815-12-10"})
        )),
        vec![]
    );
    let errors = v.validate_body(Some(
        &json!({"email": "not-an-email", "born": "10/12/1815"}),
    ));
    let mut found = pointers(&errors);
    found.sort();
    assert_eq!(found, ["/body/born", "/body/email"]);
    // `email` has a fast path of its own (`validate::email`); its errors read as jsonschema's.
    let body = json!({"email": "not-an-email"});
    let errors = v.validate_body(Some(&body));
    assert_eq!(
        errors,
        vec![FieldError {
            pointer: "/body/email".into(),
            reason: r#""not-an-email" is not a "email""#.into()
        }]
    );
    let text = body.to_string();
    let arena = propylon_json::Bump::new();
    let borrowed = propylon_json::parse(&text, &arena, &propylon_json::Everything).unwrap();
    assert_eq!(v.validate_borrowed_body(Some(&borrowed)), errors);
    let borrowed = propylon_json::parse(
        r#"{"email":"ada@example.com"}"#,
        &arena,
        &propylon_json::Everything,
    )
    .unwrap();
    assert_eq!(v.validate_borrowed_body(Some(&borrowed)), vec![]);
}
