//! OpenAPI schema objects → compiled JSON Schema 2020-12 validators.
//!
//! OpenAPI 3.0 schemas are a JSON Schema dialect, so they are translated
//! once at compile time (`nullable`, boolean `exclusiveMinimum`, OpenAPI-only
//! keywords); 3.1 schemas are 2020-12 already and only lose `readOnly`
//! properties from `required` (a client cannot send what the server owns).
//!
//! `$ref: '#/components/schemas/X'` is kept as written: the translated copies
//! of every component the schema reaches are embedded in the compiled root
//! under `components/schemas`, so the same pointer resolves inside the one
//! document jsonschema sees. This keeps error locations and recursion
//! (self-referencing schemas) to jsonschema, and needs no retriever.

use std::collections::BTreeSet;

use jsonschema::json::Json;
use jsonschema::{Draft, Validator};
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use super::email;
use crate::spec::SpecError;

/// Keywords that hold one subschema.
const ONE_SCHEMA: [&str; 11] = [
    "items",
    "additionalProperties",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
    "additionalItems",
];
/// Keywords that hold an array of subschemas.
const SCHEMA_ARRAYS: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords that hold a map of name → subschema.
const SCHEMA_MAPS: [&str; 5] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];
/// OpenAPI 3.0 keywords that mean nothing (or something else) to JSON Schema.
const DROPPED_30: [&str; 7] = [
    "example",
    "xml",
    "discriminator",
    "externalDocs",
    "readOnly",
    "writeOnly",
    "nullable",
];
/// How many `$ref` hops a parameter or request body may take.
const MAX_REF_HOPS: usize = 16;

/// The spec document plus its dialect, shared by every schema of an operation.
pub(super) struct SchemaContext<'d> {
    pub document: &'d Value,
    is_30: bool,
}

impl<'d> SchemaContext<'d> {
    pub fn new(document: &'d Value) -> SchemaContext<'d> {
        let version = document
            .get("openapi")
            .and_then(Value::as_str)
            .unwrap_or("3.1");
        SchemaContext {
            document,
            is_30: version.starts_with("3.0"),
        }
    }

    /// Translates `schema` (found at `pointer` in the spec) and compiles it.
    pub fn compile<F: Json>(
        &self,
        schema: &Value,
        pointer: &str,
    ) -> Result<Validator<F>, SpecError> {
        let prepared = self.prepare(schema, pointer)?;
        jsonschema::options_for::<F>()
            .with_draft(Draft::Draft202012)
            // Clients expect `format: email`, `date-time`, `uuid`... to be checked, as Kong and
            // APIM do; JSON Schema 2020-12 would treat them as annotations only.
            .should_validate_formats(true)
            // The same answers as the built-in `email` check, faster for plain addresses.
            .with_format("email", email::is_email)
            .build(&prepared)
            .map_err(|err| {
                invalid(
                    pointer,
                    format!("the schema is not valid JSON Schema: {err}"),
                )
            })
    }

    /// The translated schema with every reachable component embedded.
    pub fn prepare(&self, schema: &Value, pointer: &str) -> Result<Value, SpecError> {
        let mut pending = Vec::new();
        let mut root = self.translate(schema, pointer, &mut pending)?;
        let mut seen = BTreeSet::new();
        let mut embedded = Map::new();
        while let Some(name) = pending.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let at = format!("/components/schemas/{}", escape(&name));
            let Some(component) = self.document.pointer(&at) else {
                continue; // checked when the ref was collected
            };
            let translated = self.translate(component, &at, &mut pending)?;
            embedded.insert(name, translated);
        }
        if let (false, Some(fields)) = (embedded.is_empty(), root.as_object_mut()) {
            let mut components = Map::new();
            components.insert("schemas".into(), Value::Object(embedded));
            fields.insert("components".into(), Value::Object(components));
        }
        Ok(root)
    }

    /// Follows a `$ref` chain (parameters, request bodies) to the object
    /// it names; returns it with its pointer for error messages.
    pub fn resolve<'v>(
        &'v self,
        mut value: &'v Value,
        mut pointer: String,
    ) -> Result<(&'v Value, String), SpecError> {
        for _ in 0..MAX_REF_HOPS {
            let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
                return Ok((value, pointer));
            };
            let target = local_pointer(reference, &pointer)?;
            value = self.document.pointer(&target).ok_or_else(|| {
                invalid(&pointer, format!("`$ref` `{reference}` does not resolve"))
            })?;
            pointer = target;
        }
        Err(invalid(
            &pointer,
            format!("more than {MAX_REF_HOPS} `$ref` hops; is there a cycle?"),
        ))
    }

    /// Follows schema `$ref`s to the schema that declares the type.
    pub fn schema_type<'v>(&'v self, mut schema: &'v Value) -> Option<&'v str> {
        for _ in 0..MAX_REF_HOPS {
            if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
                let target = local_pointer(reference, "").ok()?;
                schema = self.document.pointer(&target)?;
                continue;
            }
            return match schema.get("type")? {
                Value::String(kind) => Some(kind),
                Value::Array(kinds) => kinds
                    .iter()
                    .filter_map(Value::as_str)
                    .find(|k| *k != "null"),
                _ => None,
            };
        }
        None
    }

    fn translate(
        &self,
        schema: &Value,
        pointer: &str,
        refs: &mut Vec<String>,
    ) -> Result<Value, SpecError> {
        let Some(fields) = schema.as_object() else {
            return Ok(schema.clone()); // `true` / `false` schemas (3.1)
        };
        if let Some(reference) = fields.get("$ref").and_then(Value::as_str) {
            refs.push(self.component_ref(reference, &format!("{pointer}/$ref"))?);
            if self.is_30 {
                // 3.0: siblings of `$ref` are ignored by definition.
                let mut only = Map::new();
                only.insert("$ref".into(), Value::from(reference));
                return Ok(Value::Object(only));
            }
        }
        let mut out = Map::with_capacity(fields.len());
        for (key, value) in fields {
            let at = format!("{pointer}/{}", escape(key));
            let translated = if self.is_30 && DROPPED_30.contains(&key.as_str()) {
                continue;
            } else if ONE_SCHEMA.contains(&key.as_str()) && value.is_object() {
                self.translate(value, &at, refs)?
            } else if SCHEMA_ARRAYS.contains(&key.as_str()) || (key == "items" && value.is_array())
            {
                self.translate_array(value, &at, refs)?
            } else if SCHEMA_MAPS.contains(&key.as_str()) {
                self.translate_map(value, &at, refs)?
            } else {
                value.clone()
            };
            out.insert(key.clone(), translated);
        }
        if self.is_30 {
            apply_nullable(fields, &mut out);
            apply_exclusive(&mut out, "exclusiveMinimum", "minimum");
            apply_exclusive(&mut out, "exclusiveMaximum", "maximum");
        }
        self.drop_read_only_required(fields, &mut out);
        Ok(Value::Object(out))
    }

    fn translate_array(
        &self,
        value: &Value,
        pointer: &str,
        refs: &mut Vec<String>,
    ) -> Result<Value, SpecError> {
        let Some(items) = value.as_array() else {
            return Ok(value.clone());
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push(self.translate(item, &format!("{pointer}/{i}"), refs)?);
        }
        Ok(Value::Array(out))
    }

    fn translate_map(
        &self,
        value: &Value,
        pointer: &str,
        refs: &mut Vec<String>,
    ) -> Result<Value, SpecError> {
        let Some(entries) = value.as_object() else {
            return Ok(value.clone());
        };
        let mut out = Map::with_capacity(entries.len());
        for (name, schema) in entries {
            let at = format!("{pointer}/{}", escape(name));
            out.insert(name.clone(), self.translate(schema, &at, refs)?);
        }
        Ok(Value::Object(out))
    }

    /// Checks a schema `$ref` and returns the component name it reaches.
    fn component_ref(&self, reference: &str, pointer: &str) -> Result<String, SpecError> {
        let target = local_pointer(reference, pointer)?;
        if self.document.pointer(&target).is_none() {
            return Err(invalid(
                pointer,
                format!("`$ref` `{reference}` does not resolve inside the spec"),
            ));
        }
        target
            .strip_prefix("/components/schemas/")
            .and_then(|rest| rest.split('/').next())
            .map(unescape)
            .ok_or_else(|| {
                invalid(
                    pointer,
                    format!("`$ref` `{reference}`: schema references must point into `#/components/schemas/`"),
                )
            })
    }

    /// A `readOnly` property is set by the server; requiring it in a
    /// request would reject every well-behaved client.
    fn drop_read_only_required(&self, source: &Map<String, Value>, out: &mut Map<String, Value>) {
        let (Some(props), Some(Value::Array(required))) = (
            source.get("properties").and_then(Value::as_object),
            out.get_mut("required"),
        ) else {
            return;
        };
        required.retain(|name| {
            let prop = name.as_str().and_then(|name| props.get(name));
            !prop.is_some_and(|prop| self.is_read_only(prop))
        });
    }

    fn is_read_only<'v>(&'v self, mut schema: &'v Value) -> bool {
        for _ in 0..MAX_REF_HOPS {
            if schema.get("readOnly") == Some(&Value::Bool(true)) {
                return true;
            }
            let target = schema
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| local_pointer(r, "").ok())
                .and_then(|t| self.document.pointer(&t));
            match target {
                Some(next) => schema = next,
                None => return false,
            }
        }
        false
    }
}

/// 3.0 `nullable: true` → `null` joins the allowed types (and the enum,
/// which would otherwise still reject it).
fn apply_nullable(source: &Map<String, Value>, out: &mut Map<String, Value>) {
    if source.get("nullable") != Some(&Value::Bool(true)) {
        return;
    }
    let null = Value::from("null");
    match out.get_mut("type") {
        Some(Value::String(kind)) => {
            let kind = Value::from(kind.as_str());
            out.insert("type".into(), Value::Array(vec![kind, null]));
        }
        Some(Value::Array(kinds)) if !kinds.contains(&null) => kinds.push(null),
        _ => {}
    }
    if let Some(Value::Array(options)) = out.get_mut("enum") {
        if !options.contains(&Value::Null) {
            options.push(Value::Null);
        }
    }
}

/// 3.0 `exclusiveMinimum: true` + `minimum: 5` → 2020-12 `exclusiveMinimum: 5`.
fn apply_exclusive(out: &mut Map<String, Value>, exclusive: &str, bound: &str) {
    match out.get(exclusive) {
        Some(Value::Bool(true)) => {
            match out.remove(bound) {
                Some(limit) => out.insert(exclusive.into(), limit),
                None => out.remove(exclusive),
            };
        }
        Some(Value::Bool(false)) => {
            out.remove(exclusive);
        }
        _ => {}
    }
}

/// `#/a/b%20c` → `/a/b c`; only references inside the spec are allowed,
/// the crate does no I/O.
fn local_pointer(reference: &str, pointer: &str) -> Result<String, SpecError> {
    let Some(fragment) = reference.strip_prefix('#') else {
        return Err(invalid(
            pointer,
            format!("`$ref` `{reference}` points outside the spec; only local references (`#/...`) are supported"),
        ));
    };
    Ok(percent_decode_str(fragment)
        .decode_utf8_lossy()
        .into_owned())
}

/// RFC 6901 escaping of one pointer token.
pub(super) fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

pub(super) fn invalid(pointer: &str, message: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        pointer: pointer.to_owned(),
        message: message.into(),
    }
}
