//! Facade spec loading: an OpenAPI 3.0/3.1 document and the operations the
//! gateway can route to.
//!
//! Path parameters must be whole segments (`/files/{name}`); partial
//! segments such as `/files/{name}.json` are rejected, because the router
//! (matchit) cannot match text after a parameter and a clear load-time
//! error beats a route that silently never matches.

use std::collections::HashMap;

use http::Method;
use serde_json::Value;

use crate::template::is_param_name;

#[cfg(test)]
mod tests;

/// Path item keys that hold operations, in the order OpenAPI lists them.
pub(crate) const OPERATION_METHODS: [(&str, Method); 8] = [
    ("get", Method::GET),
    ("put", Method::PUT),
    ("post", Method::POST),
    ("delete", Method::DELETE),
    ("options", Method::OPTIONS),
    ("head", Method::HEAD),
    ("patch", Method::PATCH),
    ("trace", Method::TRACE),
];

/// A parsed facade spec: the raw document (for merging and serving) plus
/// the operations extracted from it (for routing).
#[derive(Debug, Clone, PartialEq)]
pub struct FacadeSpec {
    pub document: Value,
    pub operations: Vec<SpecOperation>,
}

/// One operation, addressable by its `operationId`.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecOperation {
    pub operation_id: String,
    pub method: Method,
    /// The spec's path template, e.g. `/customers/{id}`.
    pub path: String,
    /// Parameter names in the path, in order.
    pub path_params: Vec<String>,
}

/// Why a spec was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("spec is not valid YAML or JSON: {message}")]
    Syntax {
        message: String,
        /// 1-based line, when the parser knows it.
        line: Option<usize>,
    },
    #[error("not an OpenAPI 3.x document: expected a string field `openapi` such as \"3.1.0\", found {}", describe_found(.found))]
    NotOpenApi3 { found: Option<String> },
    #[error("invalid spec at {pointer}: {message}")]
    Invalid {
        /// JSON pointer into the document, e.g. `/paths/~1customers/get`.
        pointer: String,
        message: String,
    },
}

fn describe_found(found: &Option<String>) -> String {
    match found {
        Some(value) => format!("`{value}`"),
        None => "no `openapi` field".to_owned(),
    }
}

impl FacadeSpec {
    /// Parses an OpenAPI 3.0 or 3.1 document given as YAML or JSON text
    /// (JSON is YAML, so one parser serves both).
    pub fn parse(text: &str) -> Result<FacadeSpec, SpecError> {
        let document: Value = serde_yaml::from_str(text).map_err(|err| SpecError::Syntax {
            line: err.location().map(|loc| loc.line()),
            message: err.to_string(),
        })?;
        check_version(&document)?;
        let operations = collect_operations(&document)?;
        Ok(FacadeSpec {
            document,
            operations,
        })
    }

    /// The operation with this `operationId`.
    pub fn operation(&self, operation_id: &str) -> Option<&SpecOperation> {
        self.operations
            .iter()
            .find(|op| op.operation_id == operation_id)
    }
}

fn check_version(document: &Value) -> Result<(), SpecError> {
    let Some(root) = document.as_object() else {
        return Err(invalid(
            "",
            "the document must be a mapping at the top level",
        ));
    };
    match root.get("openapi") {
        Some(Value::String(version)) if version.starts_with("3.") => Ok(()),
        Some(Value::String(version)) => Err(SpecError::NotOpenApi3 {
            found: Some(version.clone()),
        }),
        Some(other) => Err(SpecError::NotOpenApi3 {
            found: Some(other.to_string()),
        }),
        None => Err(SpecError::NotOpenApi3 { found: None }),
    }
}

fn collect_operations(document: &Value) -> Result<Vec<SpecOperation>, SpecError> {
    let Some(paths) = document.get("paths") else {
        return Ok(Vec::new());
    };
    let Some(paths) = paths.as_object() else {
        return Err(invalid(
            "/paths",
            "`paths` must be a mapping of path templates to path items",
        ));
    };
    let mut operations = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for (path, item) in paths {
        let item_pointer = format!("/paths/{}", escape_pointer(path));
        if path.starts_with("x-") {
            continue; // specification extension, not a path
        }
        if !path.starts_with('/') {
            return Err(invalid(&item_pointer, "a path must start with '/'"));
        }
        let Some(item) = item.as_object() else {
            return Err(invalid(&item_pointer, "a path item must be a mapping"));
        };
        if item.contains_key("$ref") {
            return Err(invalid(
                &item_pointer,
                "`$ref` path items are not supported; inline the path item",
            ));
        }
        let path_params = path_params(path).map_err(|message| invalid(&item_pointer, &message))?;
        for (key, method) in &OPERATION_METHODS {
            let Some(op) = item.get(*key) else { continue };
            let op_pointer = format!("{item_pointer}/{key}");
            if !op.is_object() {
                return Err(invalid(&op_pointer, "an operation must be a mapping"));
            }
            let operation_id = match op.get("operationId") {
                Some(Value::String(id)) if !id.is_empty() => id.clone(),
                Some(_) => {
                    return Err(invalid(
                        &format!("{op_pointer}/operationId"),
                        "`operationId` must be a non-empty string",
                    ))
                }
                None => {
                    return Err(invalid(
                        &op_pointer,
                        "the operation has no `operationId`; add one so routes can name it",
                    ))
                }
            };
            if let Some(first) = seen.get(&operation_id) {
                return Err(invalid(
                    &format!("{op_pointer}/operationId"),
                    &format!("operationId `{operation_id}` is already used at {first}; operationIds must be unique"),
                ));
            }
            seen.insert(operation_id.clone(), op_pointer);
            operations.push(SpecOperation {
                operation_id,
                method: method.clone(),
                path: path.clone(),
                path_params: path_params.clone(),
            });
        }
    }
    Ok(operations)
}

/// Parameter names of a spec path; each `{name}` must fill a whole segment.
fn path_params(path: &str) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    for segment in path.split('/') {
        if !segment.contains(['{', '}']) {
            continue;
        }
        let name = segment
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .filter(|name| !name.contains(['{', '}']));
        let Some(name) = name else {
            return Err(format!(
                "segment `{segment}`: a path parameter must be a whole segment such as `{{id}}`; partial-segment parameters like `/files/{{name}}.json` are not supported"
            ));
        };
        if !is_param_name(name) {
            return Err(format!(
                "path parameter `{{{name}}}`: names must be non-empty and use only A-Z, a-z, 0-9, '_', '.' and '-'"
            ));
        }
        if names.iter().any(|n| n == name) {
            return Err(format!(
                "path parameter `{{{name}}}` appears twice; rename one"
            ));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// RFC 6901 escaping so pointers to paths like `/a/b` stay unambiguous.
fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn invalid(pointer: &str, message: &str) -> SpecError {
    SpecError::Invalid {
        pointer: pointer.to_owned(),
        message: message.to_owned(),
    }
}
