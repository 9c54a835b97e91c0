#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

fn crm() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {"title": "CRM", "version": "1"},
        "servers": [{"url": "https://crm.internal"}],
        "security": [{"oauth": ["crm.read"]}],
        "tags": [{"name": "customers"}, {"name": "shared"}],
        "paths": {
            "/customers/{id}": {
                "servers": [{"url": "https://other"}],
                "get": {"operationId": "getCustomer", "responses": {"200": {"description": "ok"}}},
                "delete": {"operationId": "deleteCustomer", "security": [], "responses": {}}
            }
        },
        "components": {
            "schemas": {
                "Customer": {"type": "object"},
                "Error": {"type": "object", "properties": {"msg": {"type": "string"}}}
            },
            "securitySchemes": {"oauth": {"type": "oauth2", "flows": {}}}
        }
    })
}

fn billing() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Billing", "version": "2"},
        "tags": [{"name": "invoices"}, {"name": "shared", "description": "dup"}],
        "paths": {
            "/invoices": {"post": {"operationId": "createInvoice", "responses": {}}}
        },
        "components": {
            "schemas": {
                "Invoice": {"type": "object"},
                "Error": {"type": "object", "properties": {"msg": {"type": "string"}}}
            }
        }
    })
}

fn merge(docs: &[(&str, &Value)]) -> Result<Value, Vec<MergeError>> {
    let inputs: Vec<MergeInput<'_>> = docs
        .iter()
        .map(|(api_name, document)| MergeInput { api_name, document })
        .collect();
    merge_specs(&inputs, "Facade", "9.9")
}

#[test]
fn merges_union_of_paths_components_and_tags() {
    let (a, b) = (crm(), billing());
    let merged = merge(&[("crm", &a), ("billing", &b)]).unwrap();
    assert_eq!(merged["openapi"], "3.1.0");
    assert_eq!(merged["info"]["title"], "Facade");
    assert_eq!(merged["info"]["version"], "9.9");
    let description = merged["info"]["description"].as_str().unwrap();
    assert!(description.contains("`crm` (CRM)") && description.contains("`billing` (Billing)"));
    let paths: Vec<_> = merged["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(paths.len(), 2);
    assert!(
        paths.contains(&"/customers/{id}".to_string()) && paths.contains(&"/invoices".to_string())
    );
    assert_eq!(
        merged["paths"]["/customers/{id}"]["get"]["x-propylon-api"],
        "crm"
    );
    assert_eq!(
        merged["paths"]["/invoices"]["post"]["x-propylon-api"],
        "billing"
    );
    let schemas = merged["components"]["schemas"].as_object().unwrap();
    assert_eq!(schemas.len(), 3, "identical Error schema merged once");
    assert_eq!(
        merged["components"]["securitySchemes"]["oauth"]["type"],
        "oauth2"
    );
    assert_eq!(
        merged["tags"],
        json!([{"name": "customers"}, {"name": "shared"}, {"name": "invoices"}])
    );
    assert!(merged.get("servers").is_none());
    assert!(merged["paths"]["/customers/{id}"].get("servers").is_none());
}

#[test]
fn version_is_3_0_when_all_inputs_are_3_0() {
    let a = crm();
    let merged = merge(&[("crm", &a)]).unwrap();
    assert_eq!(merged["openapi"], "3.0.3");
}

#[test]
fn security_is_pushed_down_not_kept_at_top_level() {
    let (a, b) = (crm(), billing());
    let merged = merge(&[("crm", &a), ("billing", &b)]).unwrap();
    assert!(merged.get("security").is_none());
    let item = &merged["paths"]["/customers/{id}"];
    assert_eq!(item["get"]["security"], json!([{"oauth": ["crm.read"]}]));
    // An explicit (public) override is kept as is.
    assert_eq!(item["delete"]["security"], json!([]));
    // Billing has no top-level security, so nothing is added.
    assert!(merged["paths"]["/invoices"]["post"]
        .get("security")
        .is_none());
}

#[test]
fn duplicate_paths_are_all_reported() {
    let a = crm();
    let mut b = billing();
    b["paths"]["/customers/{customerId}"] = json!({"put": {"operationId": "put"}});
    let mut c = billing();
    c["components"] = json!({});
    c["tags"] = json!([]);
    let errors = merge(&[("crm", &a), ("billing", &b), ("billing2", &c)]).unwrap_err();
    assert_eq!(
        errors,
        vec![
            MergeError::DuplicatePath {
                path: "/customers/{customerId}".into(),
                first_api: "crm".into(),
                second_api: "billing".into(),
            },
            MergeError::DuplicatePath {
                path: "/invoices".into(),
                first_api: "billing".into(),
                second_api: "billing2".into(),
            },
        ]
    );
}

#[test]
fn differing_component_is_a_conflict() {
    let a = crm();
    let mut b = billing();
    b["components"]["schemas"]["Customer"] = json!({"type": "string"});
    let errors = merge(&[("crm", &a), ("billing", &b)]).unwrap_err();
    assert_eq!(
        errors,
        vec![MergeError::ComponentConflict {
            section: "schemas".into(),
            name: "Customer".into(),
            first_api: "crm".into(),
            second_api: "billing".into(),
        }]
    );
    assert_eq!(
        errors[0].to_string(),
        "components/schemas/Customer is defined differently by API `crm` and API `billing`; rename one or make them identical"
    );
}
