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
    merge_specs(&inputs, "Facade", "9.9", &GatewayAnswers::default())
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
    assert_eq!(
        schemas.len(),
        4,
        "identical Error schema merged once, plus the gateway's Problem"
    );
    assert!(schemas.contains_key("Problem"));
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

fn merge_with(docs: &[(&str, &Value)], async_operations: &[&str]) -> Value {
    let inputs: Vec<MergeInput<'_>> = docs
        .iter()
        .map(|(api_name, document)| MergeInput { api_name, document })
        .collect();
    let answers = GatewayAnswers { async_operations };
    merge_specs(&inputs, "Facade", "9.9", &answers).unwrap()
}

fn statuses(merged: &Value, path: &str, method: &str) -> Vec<String> {
    let mut keys: Vec<String> = merged["paths"][path][method]["responses"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

#[test]
fn gateway_answers_are_added_to_every_operation() {
    let mut b = billing();
    b["paths"]["/invoices"]["post"]["requestBody"] =
        json!({"content": {"application/json": {"schema": {"type": "object"}}}});
    b["paths"]["/invoices"]["get"] = json!({"operationId": "listInvoices"});
    let a = crm();
    let merged = merge_with(&[("crm", &a), ("billing", &b)], &["createInvoice"]);
    // Secured (top-level security pushed down), no body, not async.
    assert_eq!(
        statuses(&merged, "/customers/{id}", "get"),
        ["200", "400", "401", "403", "413", "429", "502", "504"]
    );
    // `security: []` is public: no 401/403.
    assert_eq!(
        statuses(&merged, "/customers/{id}", "delete"),
        ["400", "413", "429", "502", "504"]
    );
    // A body (415) and async (202), no security.
    assert_eq!(
        statuses(&merged, "/invoices", "post"),
        ["202", "400", "413", "415", "429", "502", "504"]
    );
    // Same path, not async, no body.
    assert_eq!(
        statuses(&merged, "/invoices", "get"),
        ["400", "413", "429", "502", "504"]
    );
    let post = &merged["paths"]["/invoices"]["post"]["responses"];
    assert_eq!(
        post["400"]["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    assert_eq!(
        post["202"]["content"]["application/json"]["schema"]["required"],
        json!(["id", "status"])
    );
    assert!(post["202"]["headers"]["Location"].is_object());
    assert!(post["202"]["headers"]["Retry-After"].is_object());
    let problem = &merged["components"]["schemas"]["Problem"]["properties"];
    for field in [
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "request_id",
    ] {
        assert!(problem[field].is_object(), "{field}");
    }
    assert_eq!(
        problem["errors"]["items"]["required"],
        json!(["pointer", "reason"])
    );
}

#[test]
fn declared_statuses_are_kept() {
    let mut a = crm();
    a["paths"]["/customers/{id}"]["get"]["responses"]["429"] = json!({"description": "mine"});
    let merged = merge_with(&[("crm", &a)], &[]);
    let responses = &merged["paths"]["/customers/{id}"]["get"]["responses"];
    assert_eq!(responses["429"], json!({"description": "mine"}));
    assert!(responses.get("202").is_none());
}

#[test]
fn top_level_security_adds_401_and_403() {
    let mut b = billing();
    b["security"] = json!([{"apiKey": []}]);
    let merged = merge_with(&[("billing", &b)], &[]);
    let responses = statuses(&merged, "/invoices", "post");
    assert!(responses.contains(&"401".to_string()) && responses.contains(&"403".to_string()));
    assert!(
        !responses.contains(&"415".to_string()),
        "no requestBody, no 415"
    );
}

#[test]
fn a_different_problem_schema_in_an_input_keeps_its_name() {
    let mut a = crm();
    a["components"]["schemas"]["Problem"] = json!({"type": "string"});
    let merged = merge_with(&[("crm", &a)], &[]);
    let schemas = &merged["components"]["schemas"];
    assert_eq!(schemas["Problem"], json!({"type": "string"}));
    assert_eq!(
        schemas["PropylonProblem"]["properties"]["status"]["type"],
        "integer"
    );
    assert_eq!(
        merged["paths"]["/customers/{id}"]["get"]["responses"]["400"]["content"]
            ["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/PropylonProblem"
    );
}
