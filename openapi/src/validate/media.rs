//! Content-Type matching for the 415 decision.

use std::borrow::Cow;

/// One `requestBody.content` key, reduced to what matching needs.
#[derive(Debug, Clone)]
pub(super) struct MediaRange {
    /// `type/subtype`, lower-case, parameters removed; may be `*/*` or `type/*`.
    essence: String,
}

impl MediaRange {
    pub fn parse(declared: &str) -> MediaRange {
        MediaRange {
            essence: essence(declared).into_owned(),
        }
    }

    /// A JSON media type: `application/json` or `application/*+json`.
    pub fn is_json(&self) -> bool {
        is_json(&self.essence)
    }

    /// Whether a request's media type (already an essence) is accepted.
    /// `application/x+json` is accepted where `application/json` is declared,
    /// since it is JSON with a more specific name.
    pub fn accepts(&self, request: &str) -> bool {
        let declared = self.essence.as_str();
        if declared == "*/*" || declared == request {
            return true;
        }
        if let Some(kind) = declared.strip_suffix("/*") {
            return request.split('/').next() == Some(kind);
        }
        declared == "application/json" && is_json(request)
    }
}

/// `Application/JSON; charset=utf-8` → `application/json`; borrowed when already lower-case
/// (nearly every request's), not copied per request.
pub(super) fn essence(content_type: &str) -> Cow<'_, str> {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(essence.to_ascii_lowercase())
    } else {
        Cow::Borrowed(essence)
    }
}

fn is_json(essence: &str) -> bool {
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}
