//! The operation's `requestBody`: accepted media types, `required`, and the
//! JSON schema compiled once.

use jsonschema::Validator;
use propylon_json::Tree as Borrowed;
use serde_json::Value;

use super::borrowed::BorrowedJson;
use super::media::MediaRange;
use super::reason::reason;
use super::schema::{escape, SchemaContext};
use super::FieldError;
use crate::spec::SpecError;

/// What the operation says about request bodies.
#[derive(Debug, Default)]
pub(super) struct BodyRules {
    /// `None` without a `requestBody` (or with an empty `content`).
    pub media: Option<Vec<(String, MediaRange)>>,
    pub required: bool,
    pub schema: Option<Validator>,
    /// The same schema for bodies parsed as borrowed documents.
    pub borrowed: Option<Validator<BorrowedJson>>,
}

impl BodyRules {
    /// Reads `requestBody` (following a `$ref` to `components/requestBodies`).
    /// The schema of `application/json` is used, else that of the first
    /// `+json` type: `validate_body` gets no media type, and specs that
    /// declare several JSON types almost always share one schema.
    pub fn compile(ctx: &SchemaContext<'_>, op_pointer: &str) -> Result<BodyRules, SpecError> {
        let at = format!("{op_pointer}/requestBody");
        let Some(body) = ctx.document.pointer(&at) else {
            return Ok(BodyRules::default());
        };
        let (body, at) = ctx.resolve(body, at)?;
        let required = body
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let content = body.get("content").and_then(Value::as_object);
        let media: Vec<(String, MediaRange)> = content
            .into_iter()
            .flatten()
            .map(|(name, _)| (name.clone(), MediaRange::parse(name)))
            .collect();
        let json = media
            .iter()
            .filter(|(name, range)| {
                range.is_json() && content.and_then(|c| c.get(name)?.get("schema")).is_some()
            })
            .min_by_key(|(name, _)| !name.eq_ignore_ascii_case("application/json"))
            .map(|(name, _)| name.clone());
        let (schema, borrowed) = match (json, content) {
            (Some(name), Some(content)) => match content.get(&name).and_then(|m| m.get("schema")) {
                Some(schema) => {
                    let pointer = format!("{at}/content/{}/schema", escape(&name));
                    let borrowed = ctx.compile(schema, &pointer)?;
                    (Some(ctx.compile(schema, &pointer)?), Some(borrowed))
                }
                None => (None, None),
            },
            _ => (None, None),
        };
        Ok(BodyRules {
            media: (!media.is_empty()).then_some(media),
            required,
            schema,
            borrowed,
        })
    }

    pub fn validate(&self, body: Option<&Value>) -> Vec<FieldError> {
        let Some(body) = body else {
            return match self.required {
                true => vec![FieldError {
                    pointer: "/body".to_owned(),
                    reason: "a request body is required".to_owned(),
                }],
                false => Vec::new(),
            };
        };
        let Some(schema) = &self.schema else {
            return Vec::new();
        };
        // The fast path: a valid body costs one pass with no allocations.
        if schema.is_valid(body) {
            return Vec::new();
        }
        schema
            .iter_errors(body)
            .map(|error| FieldError {
                pointer: field_pointer(&error),
                reason: reason(&error),
            })
            .collect()
    }
}

impl BodyRules {
    /// `validate` for a borrowed document: a valid body is checked where it lies; a refused
    /// one is copied into a `Value` to list its errors exactly as `validate` does (and to
    /// judge a repeated member name as serde_json does: by its last value). The one case
    /// this cannot mend is `minProperties` over repeated names, which a borrowed object
    /// counts twice.
    pub fn validate_borrowed(&self, body: Option<&Borrowed<'_>>) -> Vec<FieldError> {
        match (body, &self.borrowed) {
            (Some(body), Some(schema)) if schema.is_valid(body) => Vec::new(),
            (Some(body), Some(_)) => self.validate(Some(&Value::from(body))),
            (Some(_), None) => Vec::new(),
            (None, _) => self.validate(None),
        }
    }
}

/// The pointer of the field at fault: for a missing required property that is the
/// property itself (`/body/items/2/sku`), not the object that lacks it.
fn field_pointer(error: &jsonschema::ValidationError<'_>) -> String {
    let mut pointer = format!("/body{}", error.instance_path().as_str());
    if let jsonschema::error::ValidationErrorKind::Required { property } = error.kind() {
        if let Some(name) = property.as_str() {
            pointer.push('/');
            pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
        }
    }
    pointer
}
