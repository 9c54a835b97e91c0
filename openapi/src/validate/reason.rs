//! Short, client-facing reasons from jsonschema errors.
//!
//! jsonschema prints the failing instance; for objects, arrays and long
//! strings that would echo (possibly large or sensitive) client data into
//! the 400, so those are replaced by their type name.

use jsonschema::error::ValidationErrorKind;
use jsonschema::ValidationError;
use serde_json::Value;

/// Longest reason returned; jsonschema quotes patterns and enums verbatim.
const MAX_REASON: usize = 200;
/// Strings longer than this are not echoed back.
const MAX_ECHOED_STRING: usize = 64;

/// The reason text for one jsonschema error.
pub(super) fn reason(error: &ValidationError<'_>) -> String {
    if let ValidationErrorKind::Required { property } = error.kind() {
        return match property.as_str() {
            Some(name) => format!("required property '{name}' is missing"),
            None => format!("required property {property} is missing"),
        };
    }
    let placeholder = match error.instance().as_ref() {
        Value::Object(_) => Some("object"),
        Value::Array(_) => Some("array"),
        Value::String(s) if s.len() > MAX_ECHOED_STRING => Some("string"),
        _ => None,
    };
    let text = match placeholder {
        Some(placeholder) => error.masked_with(placeholder).to_string(),
        None => error.to_string(),
    };
    truncate(text)
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}
