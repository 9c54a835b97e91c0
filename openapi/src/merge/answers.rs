//! The answers the gateway itself gives (400, 401, 403, 413, 415, 429, 502,
//! 504, and 202 for async operations), added to every merged operation so
//! clients and code generators see the whole contract, not only the
//! backend's part.

use serde_json::{json, Map, Value};

use crate::spec::OPERATION_METHODS;

/// What the gateway may answer beyond the specs, from its config.
#[derive(Debug, Clone, Copy, Default)]
pub struct GatewayAnswers<'a> {
    /// operationIds that may answer 202 (`async: fallback | always`).
    pub async_operations: &'a [&'a str],
}

/// Adds the Problem schema (under a free name) and the gateway's responses.
pub(super) fn add_answers(
    paths: &mut Map<String, Value>,
    components: &mut Map<String, Value>,
    answers: &GatewayAnswers<'_>,
) {
    let schemas = components
        .entry("schemas")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(schemas) = schemas.as_object_mut() else {
        return;
    };
    let name = problem_name(schemas);
    schemas.insert(name.clone(), problem_schema());
    let problem_ref = format!("#/components/schemas/{name}");
    for item in paths.values_mut() {
        for (key, _) in &OPERATION_METHODS {
            if let Some(op) = item.get_mut(*key).and_then(Value::as_object_mut) {
                add_to_operation(op, &problem_ref, answers);
            }
        }
    }
}

/// `Problem`, unless an input already defines a different one.
fn problem_name(schemas: &Map<String, Value>) -> String {
    let ours = problem_schema();
    let free = |name: &str| schemas.get(name).is_none_or(|existing| *existing == ours);
    if free("Problem") {
        return "Problem".to_owned();
    }
    if free("PropylonProblem") {
        return "PropylonProblem".to_owned();
    }
    (2..)
        .map(|n| format!("PropylonProblem{n}"))
        .find(|name| free(name))
        .unwrap_or_default()
}

fn add_to_operation(op: &mut Map<String, Value>, problem_ref: &str, answers: &GatewayAnswers<'_>) {
    let has_body = op.contains_key("requestBody");
    let secured = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|requirements| !requirements.is_empty());
    let is_async = op
        .get("operationId")
        .and_then(Value::as_str)
        .is_some_and(|id| answers.async_operations.contains(&id));
    let responses = op
        .entry("responses")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(responses) = responses.as_object_mut() else {
        return;
    };
    let mut add = |status: &str, response: Value| {
        responses.entry(status).or_insert(response);
    };
    let problem = |description: &str| problem_response(problem_ref, description);
    add(
        "400",
        problem("The request does not match the spec; `errors` lists each failing field."),
    );
    if secured {
        let mut unauthorized = problem("Missing, invalid or expired credentials.");
        unauthorized["headers"] = json!({
            "WWW-Authenticate": {"schema": {"type": "string"}, "description": "The auth scheme and error."}
        });
        add("401", unauthorized);
        add("403", problem("The credentials lack a required scope."));
    }
    add(
        "413",
        problem("The request body is larger than the gateway accepts."),
    );
    if has_body {
        add(
            "415",
            problem("The Content-Type is not one the operation accepts."),
        );
    }
    let mut limited = problem("Rate limit or quota exceeded.");
    limited["headers"] = json!({
        "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
    });
    add("429", limited);
    add(
        "502",
        problem("The backend could not be reached or answered badly."),
    );
    add("504", problem("The backend did not answer in time."));
    if is_async {
        add("202", accepted());
    }
}

fn problem_response(problem_ref: &str, description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": problem_ref}}}
    })
}

fn accepted() -> Value {
    json!({
        "description": "Accepted as a job; poll the Location for its status.",
        "headers": {
            "Location": {"schema": {"type": "string"}, "description": "The job, `/jobs/{id}`."},
            "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds before polling."}
        },
        "content": {"application/json": {"schema": {
            "type": "object",
            "required": ["id", "status"],
            "properties": {
                "id": {"type": "string"},
                "status": {"type": "string", "enum": ["queued", "in_flight", "succeeded", "dead"]}
            }
        }}}
    })
}

/// RFC 9457 problem details plus Propylon's `request_id` and `errors`.
fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "RFC 9457 problem details, as answered by the Propylon gateway.",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string", "format": "uri-reference"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "request_id": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["pointer", "reason"],
                    "properties": {
                        "pointer": {"type": "string", "description": "JSON pointer: /path/.., /query/.., /headers/.., /body/.."},
                        "reason": {"type": "string"}
                    }
                }
            }
        }
    })
}
