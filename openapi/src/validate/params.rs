//! Parameter checks compiled from an operation's `parameters`.
//!
//! Path-item parameters apply to every operation under the path; an
//! operation's own parameter with the same name and `in` replaces it.
//! Cookie parameters are not checked, nor (per OpenAPI) header parameters
//! named Accept, Content-Type or Authorization, which other rules own.

use http::HeaderName;
use jsonschema::Validator;
use serde_json::Value;

use super::schema::{escape, invalid, SchemaContext};
use crate::spec::SpecError;

/// Where a parameter is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Location {
    Path,
    Query,
    Header,
}

/// The type a string value is coerced to before schema validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    String,
    Integer,
    Number,
    Boolean,
}

/// How an array parameter is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Split {
    /// `?id=1&id=2` (query, `form` + `explode: true`).
    Repeat,
    Delimited(char),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Scalar(Kind),
    Array(Kind, Split),
    /// Objects and `content` parameters: only presence is checked.
    Presence,
}

/// One parameter, ready to check.
#[derive(Debug)]
pub(super) struct ParamCheck {
    pub location: Location,
    /// As declared (path, query); lower-case for headers.
    pub name: String,
    pub header: Option<HeaderName>,
    /// `/query/limit`, `/path/id`, `/headers/x-tenant`.
    pub pointer: String,
    pub required: bool,
    pub shape: Shape,
    /// `None` when coercion alone is the whole check.
    pub schema: Option<Validator>,
}

/// Keys that never constrain a value.
const ANNOTATIONS: [&str; 8] = [
    "type",
    "format",
    "description",
    "title",
    "default",
    "example",
    "examples",
    "deprecated",
];

/// Collects the operation's effective parameters (path item + operation)
/// and compiles the ones that constrain something.
pub(super) fn compile(
    ctx: &SchemaContext<'_>,
    item_pointer: &str,
    op_pointer: &str,
    path_params: &[String],
) -> Result<Vec<ParamCheck>, SpecError> {
    let mut declared: Vec<(Value, String)> = Vec::new();
    for list_pointer in [item_pointer, op_pointer] {
        let at = format!("{list_pointer}/parameters");
        let Some(list) = ctx.document.pointer(&at) else {
            continue;
        };
        let Some(list) = list.as_array() else {
            return Err(invalid(&at, "`parameters` must be a list"));
        };
        for (i, param) in list.iter().enumerate() {
            let (param, pointer) = ctx.resolve(param, format!("{at}/{i}"))?;
            let key = param_key(param, &pointer)?;
            declared.retain(|(other, _)| param_key_lossy(other) != Some(key.clone()));
            declared.push((param.clone(), pointer));
        }
    }
    let mut checks = Vec::new();
    for (param, pointer) in &declared {
        if let Some(check) = compile_one(ctx, param, pointer, path_params)? {
            checks.push(check);
        }
    }
    Ok(checks)
}

fn compile_one(
    ctx: &SchemaContext<'_>,
    param: &Value,
    pointer: &str,
    path_params: &[String],
) -> Result<Option<ParamCheck>, SpecError> {
    let (name, place) = param_key(param, pointer)?;
    let location = match place.as_str() {
        "path" => Location::Path,
        "query" => Location::Query,
        "header" => Location::Header,
        _ => return Ok(None), // cookie
    };
    let lower = name.to_ascii_lowercase();
    if location == Location::Header
        && matches!(lower.as_str(), "accept" | "content-type" | "authorization")
    {
        return Ok(None);
    }
    if location == Location::Path && !path_params.contains(&name) {
        return Ok(None); // not in the template: no request can carry it
    }
    let required = location == Location::Path
        || param
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    let (name, header, segment) = match location {
        Location::Header => {
            let header = HeaderName::from_bytes(lower.as_bytes())
                .map_err(|_| invalid(pointer, format!("`{name}` is not a valid header name")))?;
            (lower.clone(), Some(header), "headers")
        }
        Location::Path => (name, None, "path"),
        Location::Query => (name, None, "query"),
    };
    let pointer_out = format!("/{segment}/{}", escape(&name));
    let Some(schema) = param.get("schema") else {
        // `content` parameters: serialized as a media type we do not parse.
        return Ok(required.then(|| ParamCheck {
            location,
            name,
            header,
            pointer: pointer_out,
            required,
            shape: Shape::Presence,
            schema: None,
        }));
    };
    let schema_pointer = format!("{pointer}/schema");
    let shape = shape_of(ctx, param, schema, location);
    if shape == Shape::Presence && (location == Location::Query || !required) {
        // Exploded query objects spread over their property names, so
        // there is no single name whose presence could be checked.
        return Ok(None);
    }
    let needs_schema = matches!(shape, Shape::Array(..)) || constrains(schema);
    let compiled = if needs_schema && shape != Shape::Presence {
        Some(ctx.compile(schema, &schema_pointer)?)
    } else {
        ctx.prepare(schema, &schema_pointer)?; // still report bad refs
        None
    };
    if !required && compiled.is_none() && shape == Shape::Scalar(Kind::String) {
        return Ok(None);
    }
    Ok(Some(ParamCheck {
        location,
        name,
        header,
        pointer: pointer_out,
        required,
        shape,
        schema: compiled,
    }))
}

/// `(name, in)`, the identity OpenAPI uses for overriding.
fn param_key(param: &Value, pointer: &str) -> Result<(String, String), SpecError> {
    param_key_lossy(param).ok_or_else(|| {
        invalid(
            pointer,
            "a parameter needs a string `name` and `in` (path, query, header or cookie)",
        )
    })
}

fn param_key_lossy(param: &Value) -> Option<(String, String)> {
    let name = param.get("name")?.as_str()?;
    let place = param.get("in")?.as_str()?;
    Some((name.to_owned(), place.to_owned()))
}

fn shape_of(ctx: &SchemaContext<'_>, param: &Value, schema: &Value, location: Location) -> Shape {
    match ctx.schema_type(schema) {
        Some("array") => {
            let item = schema
                .get("items")
                .and_then(|items| ctx.schema_type(items))
                .and_then(kind)
                .unwrap_or(Kind::String);
            Shape::Array(item, split(param, location))
        }
        Some("object") => Shape::Presence,
        Some(other) => Shape::Scalar(kind(other).unwrap_or(Kind::String)),
        None => Shape::Scalar(Kind::String),
    }
}

fn kind(name: &str) -> Option<Kind> {
    match name {
        "string" => Some(Kind::String),
        "integer" => Some(Kind::Integer),
        "number" => Some(Kind::Number),
        "boolean" => Some(Kind::Boolean),
        _ => None,
    }
}

/// Array serialization from `style` / `explode` (OpenAPI defaults: `form`
/// exploded for queries, `simple` comma-separated for path and headers).
fn split(param: &Value, location: Location) -> Split {
    if location != Location::Query {
        return Split::Delimited(',');
    }
    let style = param.get("style").and_then(Value::as_str).unwrap_or("form");
    let explode = param
        .get("explode")
        .and_then(Value::as_bool)
        .unwrap_or(style == "form");
    match style {
        "spaceDelimited" if !explode => Split::Delimited(' '),
        "pipeDelimited" if !explode => Split::Delimited('|'),
        "form" if !explode => Split::Delimited(','),
        _ => Split::Repeat,
    }
}

/// Whether the schema says more than its type (a `$ref` counts: its
/// target may).
fn constrains(schema: &Value) -> bool {
    schema.as_object().is_some_and(|fields| {
        fields
            .keys()
            .any(|key| !ANNOTATIONS.contains(&key.as_str()))
    })
}
