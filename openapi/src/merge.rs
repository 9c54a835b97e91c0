//! Merges the facade specs of several APIs into the one document served at
//! `GET /openapi.json`.
//!
//! Conflicts are collected rather than stopping at the first, so one config
//! reload reports everything to fix.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value};

use crate::spec::OPERATION_METHODS;

mod answers;
#[cfg(test)]
mod tests;

pub use answers::GatewayAnswers;

/// One API's spec and the name it is exposed under.
#[derive(Debug, Clone, Copy)]
pub struct MergeInput<'a> {
    pub api_name: &'a str,
    pub document: &'a Value,
}

/// A clash between two APIs' specs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("path `{path}` is defined by both API `{first_api}` and API `{second_api}`; a facade path belongs to one API, so rename or remove one")]
    DuplicatePath {
        path: String,
        first_api: String,
        second_api: String,
    },
    #[error("components/{section}/{name} is defined differently by API `{first_api}` and API `{second_api}`; rename one or make them identical")]
    ComponentConflict {
        section: String,
        name: String,
        first_api: String,
        second_api: String,
    },
}

/// Merges `inputs` into one OpenAPI document (see module docs for rules).
///
/// `servers` are dropped at every level (the gateway is the server) and
/// each input's top-level `security` is pushed into its operations that
/// lack their own, so merging does not change who may call what. Every
/// operation also gets the gateway's own answers (see [`GatewayAnswers`]).
pub fn merge_specs(
    inputs: &[MergeInput<'_>],
    title: &str,
    version: &str,
    answers: &GatewayAnswers<'_>,
) -> Result<Value, Vec<MergeError>> {
    let mut errors = Vec::new();
    let mut paths = Map::new();
    let mut path_owners: HashMap<String, &str> = HashMap::new();
    let mut components: Map<String, Value> = Map::new();
    let mut component_owners: HashMap<(String, String), &str> = HashMap::new();
    let mut tags = Vec::new();
    let mut tag_names = HashSet::new();
    let mut is_31 = false;

    for input in inputs {
        let doc = input.document;
        if let Some(v) = doc.get("openapi").and_then(Value::as_str) {
            is_31 |= !v.starts_with("3.0");
        }
        let security = doc.get("security");
        for (path, item) in doc
            .get("paths")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(first_api) = path_owners.get(&path_shape(path)) {
                errors.push(MergeError::DuplicatePath {
                    path: path.clone(),
                    first_api: (*first_api).to_owned(),
                    second_api: input.api_name.to_owned(),
                });
                continue;
            }
            path_owners.insert(path_shape(path), input.api_name);
            paths.insert(
                path.clone(),
                rewrite_path_item(item, input.api_name, security),
            );
        }
        let sections = doc.pointer("/components").and_then(Value::as_object);
        for (section, entries) in sections.into_iter().flatten() {
            let Some(entries) = entries.as_object() else {
                continue;
            };
            for (name, definition) in entries {
                let merged = components
                    .entry(section.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                let Some(merged) = merged.as_object_mut() else {
                    continue;
                };
                let key = (section.clone(), name.clone());
                if let Some(existing) = merged.get(name) {
                    if existing != definition {
                        let first_api = component_owners.get(&key).copied().unwrap_or_default();
                        errors.push(MergeError::ComponentConflict {
                            section: section.clone(),
                            name: name.clone(),
                            first_api: first_api.to_owned(),
                            second_api: input.api_name.to_owned(),
                        });
                    }
                    continue;
                }
                merged.insert(name.clone(), definition.clone());
                component_owners.insert(key, input.api_name);
            }
        }
        for tag in doc
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(name) = tag.get("name").and_then(Value::as_str) else {
                continue;
            };
            if tag_names.insert(name.to_owned()) {
                tags.push(tag.clone());
            }
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    answers::add_answers(&mut paths, &mut components, answers);
    let mut merged = Map::new();
    merged.insert(
        "openapi".into(),
        Value::from(if is_31 { "3.1.0" } else { "3.0.3" }),
    );
    merged.insert(
        "info".into(),
        json!({ "title": title, "version": version, "description": describe(inputs) }),
    );
    merged.insert("paths".into(), Value::Object(paths));
    if !components.is_empty() {
        merged.insert("components".into(), Value::Object(components));
    }
    if !tags.is_empty() {
        merged.insert("tags".into(), Value::Array(tags));
    }
    Ok(Value::Object(merged))
}

/// Copies a path item, tagging each operation with its API, pushing down
/// the API's top-level security, and dropping `servers`.
fn rewrite_path_item(item: &Value, api_name: &str, security: Option<&Value>) -> Value {
    let mut item = item.clone();
    let Some(fields) = item.as_object_mut() else {
        return item;
    };
    fields.remove("servers");
    for (key, _) in &OPERATION_METHODS {
        let Some(op) = fields.get_mut(*key).and_then(Value::as_object_mut) else {
            continue;
        };
        op.remove("servers");
        op.insert("x-propylon-api".into(), Value::from(api_name));
        if let Some(security) = security {
            op.entry("security").or_insert_with(|| security.clone());
        }
    }
    item
}

/// OpenAPI treats `/a/{x}` and `/a/{y}` as the same path, so duplicates are
/// detected with parameter names erased.
fn path_shape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => in_param = true,
            '}' => {
                in_param = false;
                out.push_str("{}");
            }
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

fn describe(inputs: &[MergeInput<'_>]) -> String {
    let apis: Vec<String> = inputs
        .iter()
        .map(|input| {
            let title = input
                .document
                .pointer("/info/title")
                .and_then(Value::as_str);
            match title {
                Some(title) => format!("`{}` ({title})", input.api_name),
                None => format!("`{}`", input.api_name),
            }
        })
        .collect();
    format!(
        "Served by Propylon; merged from the APIs {}.",
        apis.join(", ")
    )
}
