//! Request validation against the facade spec.
//!
//! Everything expensive (schema translation, `$ref` resolution, regex
//! compilation) happens in [`RequestValidator::compile`] at config load;
//! a request only coerces strings and runs precompiled jsonschema
//! validators, so validation stays in the low microseconds.

use std::fmt;

use http::{HeaderMap, HeaderName};
use serde_json::Value;

use crate::router::PathParams;
use crate::spec::{FacadeSpec, SpecError};

mod body;
mod borrowed;
mod check;
mod email;
mod media;
mod params;
mod reason;
mod schema;
#[cfg(test)]
mod tests;

use body::BodyRules;
use check::Query;
use params::{Location, ParamCheck};
use schema::{escape, invalid, SchemaContext};

/// One field that does not match the spec, for the 400 problem's `errors`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldError {
    /// `/path/id`, `/query/limit`, `/headers/x-tenant` or `/body/...`.
    pub pointer: String,
    pub reason: String,
}

/// The request's Content-Type is not one the operation accepts (415).
#[derive(Debug, Clone, PartialEq)]
pub struct UnsupportedMediaType {
    /// The operation's `requestBody.content` keys, as declared.
    pub allowed: Vec<String>,
}

/// Validates requests for one operation; compiled once per config load.
pub struct RequestValidator {
    params: Vec<ParamCheck>,
    has_query_params: bool,
    body: BodyRules,
}

impl fmt::Debug for RequestValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params: Vec<&str> = self.params.iter().map(|p| p.pointer.as_str()).collect();
        f.debug_struct("RequestValidator")
            .field("params", &params)
            .field("body_required", &self.body.required)
            .field("body_schema", &self.body.schema.is_some())
            .field("media", &self.allowed())
            .finish()
    }
}

impl RequestValidator {
    /// Compiles the checks of `operation_id`. Errors name the spec location
    /// (JSON pointer) of the schema jsonschema rejects or the `$ref` that
    /// does not resolve.
    pub fn compile(spec: &FacadeSpec, operation_id: &str) -> Result<RequestValidator, SpecError> {
        let Some(operation) = spec.operation(operation_id) else {
            return Err(invalid(
                "/paths",
                format!("no operation has the operationId `{operation_id}`"),
            ));
        };
        let ctx = SchemaContext::new(&spec.document);
        let item_pointer = format!("/paths/{}", escape(&operation.path));
        let op_pointer = format!(
            "{item_pointer}/{}",
            operation.method.as_str().to_ascii_lowercase()
        );
        let params = params::compile(&ctx, &item_pointer, &op_pointer, &operation.path_params)?;
        let body = BodyRules::compile(&ctx, &op_pointer)?;
        Ok(RequestValidator {
            has_query_params: params.iter().any(|p| p.location == Location::Query),
            params,
            body,
        })
    }

    /// Nothing to check: no constrained parameters, no body rules (schema,
    /// `required`, or declared media types). The gateway may skip it.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
            && self.body.schema.is_none()
            && !self.body.required
            && self.body.media.is_none()
    }

    /// The operation has a JSON (`application/json` or `+json`) body schema,
    /// so the gateway should buffer and parse the body.
    pub fn wants_json_body(&self) -> bool {
        self.body.schema.is_some()
    }

    /// Path, query and header parameters; every failing field is reported.
    pub fn validate_parameters(
        &self,
        path: &PathParams,
        raw_query: Option<&str>,
        headers: &HeaderMap,
    ) -> Vec<FieldError> {
        let query = Query::parse(if self.has_query_params {
            raw_query
        } else {
            None
        });
        let mut errors = Vec::new();
        for param in &self.params {
            param.check(path, &query, headers, &mut errors);
        }
        errors
    }

    /// Whether a header parameter is checked (the pass-through path reads no header map).
    pub fn reads_headers(&self) -> bool {
        self.params.iter().any(|p| p.header.is_some())
    }

    /// The header parameters' names (lower case): all `validate_parameters` reads of the map.
    pub fn header_names(&self) -> impl Iterator<Item = &HeaderName> {
        self.params.iter().filter_map(|p| p.header.as_ref())
    }

    /// The 415 decision. Media type parameters (charset) are ignored and
    /// matching is case-insensitive; `application/x+json` passes where
    /// `application/json` is declared. A body without any Content-Type is
    /// refused when media types are declared, whether or not the body is
    /// required: otherwise leaving the header out would skip body validation.
    pub fn check_content_type(
        &self,
        content_type: Option<&str>,
        body_present: bool,
    ) -> Result<(), UnsupportedMediaType> {
        let Some(media) = &self.body.media else {
            return Ok(());
        };
        if !body_present {
            return Ok(()); // a missing required body is a 400, see `validate_body`
        }
        let essence = content_type.map(media::essence).unwrap_or_default();
        if !essence.is_empty() && media.iter().any(|(_, range)| range.accepts(&essence)) {
            return Ok(());
        }
        Err(UnsupportedMediaType {
            allowed: self.allowed(),
        })
    }

    /// The body against the requestBody schema; `None` means no body was
    /// sent (an error only when `required: true`).
    pub fn validate_body(&self, body: Option<&Value>) -> Vec<FieldError> {
        self.body.validate(body)
    }

    /// [`validate_body`](Self::validate_body) for a body parsed as a borrowed document
    /// (`propylon_json`), the same errors for the same body.
    pub fn validate_borrowed_body(
        &self,
        body: Option<&propylon_json::Tree<'_>>,
    ) -> Vec<FieldError> {
        self.body.validate_borrowed(body)
    }

    fn allowed(&self) -> Vec<String> {
        self.body
            .media
            .iter()
            .flatten()
            .map(|(name, _)| name.clone())
            .collect()
    }
}
