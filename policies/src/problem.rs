//! RFC 9457 problem details: the one shape of every error the gateway itself makes.

use http::StatusCode;
use serde::Serialize;

/// The gateway's own error cases. Each has a stable `type` URI, a status and a title, so that
/// clients can branch on `type` rather than on wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    BadRequest,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    BackendError,
    UnsupportedMediaType,
    PayloadTooLarge,
    InvalidRequest,
    NoRoute,
    MethodNotAllowed,
    BackendUnreachable,
    BackendTimeout,
    BadGateway,
    Unauthorized,
    InvalidToken,
    InsufficientScope,
    TooManyRequests,
    InvalidConfig,
    Internal,
}

impl ProblemKind {
    pub fn status(self) -> StatusCode {
        match self {
            ProblemKind::BadRequest => StatusCode::BAD_REQUEST,
            ProblemKind::IdempotencyKeyInProgress => StatusCode::CONFLICT,
            ProblemKind::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ProblemKind::BackendError => StatusCode::BAD_GATEWAY,
            ProblemKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ProblemKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProblemKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ProblemKind::NoRoute => StatusCode::NOT_FOUND,
            ProblemKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProblemKind::BackendUnreachable | ProblemKind::BadGateway => StatusCode::BAD_GATEWAY,
            ProblemKind::BackendTimeout => StatusCode::GATEWAY_TIMEOUT,
            ProblemKind::Unauthorized | ProblemKind::InvalidToken => StatusCode::UNAUTHORIZED,
            ProblemKind::InsufficientScope => StatusCode::FORBIDDEN,
            ProblemKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ProblemKind::InvalidConfig => StatusCode::UNPROCESSABLE_ENTITY,
            ProblemKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A URN rather than a web address: it identifies the problem without promising a page.
    pub fn type_uri(self) -> &'static str {
        match self {
            ProblemKind::BadRequest => "urn:propylon:problem:bad-request",
            ProblemKind::IdempotencyKeyInProgress => {
                "urn:propylon:problem:idempotency-key-in-progress"
            }
            ProblemKind::IdempotencyKeyReused => "urn:propylon:problem:idempotency-key-reused",
            ProblemKind::BackendError => "urn:propylon:problem:backend-error",
            ProblemKind::UnsupportedMediaType => "urn:propylon:problem:unsupported-media-type",
            ProblemKind::PayloadTooLarge => "urn:propylon:problem:payload-too-large",
            ProblemKind::InvalidRequest => "urn:propylon:problem:invalid-request",
            ProblemKind::NoRoute => "urn:propylon:problem:no-route",
            ProblemKind::MethodNotAllowed => "urn:propylon:problem:method-not-allowed",
            ProblemKind::BackendUnreachable => "urn:propylon:problem:backend-unreachable",
            ProblemKind::BackendTimeout => "urn:propylon:problem:backend-timeout",
            ProblemKind::BadGateway => "urn:propylon:problem:bad-gateway",
            ProblemKind::Unauthorized => "urn:propylon:problem:unauthorized",
            ProblemKind::TooManyRequests => "urn:propylon:problem:rate-limited",
            ProblemKind::InvalidToken => "urn:propylon:problem:invalid-token",
            ProblemKind::InsufficientScope => "urn:propylon:problem:insufficient-scope",
            ProblemKind::InvalidConfig => "urn:propylon:problem:invalid-config",
            ProblemKind::Internal => "urn:propylon:problem:internal",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ProblemKind::BadRequest => "Bad request",
            ProblemKind::IdempotencyKeyInProgress => {
                "A request with this Idempotency-Key is still being handled"
            }
            ProblemKind::IdempotencyKeyReused => "Idempotency-Key reused with another request",
            ProblemKind::BackendError => "The backend could not handle the request",
            ProblemKind::UnsupportedMediaType => "Unsupported content type",
            ProblemKind::PayloadTooLarge => "Body too large",
            ProblemKind::InvalidRequest => "Request does not match the API",
            ProblemKind::NoRoute => "No route for this path",
            ProblemKind::MethodNotAllowed => "Method not allowed",
            ProblemKind::BackendUnreachable => "Backend unreachable",
            ProblemKind::BackendTimeout => "Backend timed out",
            ProblemKind::BadGateway => "Bad answer from backend",
            ProblemKind::Unauthorized => "Unauthorized",
            ProblemKind::TooManyRequests => "Too many requests",
            ProblemKind::InvalidToken => "Invalid or missing credentials",
            ProblemKind::InsufficientScope => "Insufficient scope",
            ProblemKind::InvalidConfig => "Invalid configuration",
            ProblemKind::Internal => "Internal gateway error",
        }
    }
}

/// A problem ready to be serialised as `application/problem+json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// One entry per fault where a problem has several (e.g. a failed reload).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<serde_json::Value>,
    /// Headers the answer must carry (e.g. `Allow` on a 405).
    #[serde(skip)]
    pub headers: Vec<(&'static str, String)>,
}

pub const CONTENT_TYPE: &str = "application/problem+json";

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Problem {
            type_uri: kind.type_uri(),
            title: kind.title(),
            status: kind.status().as_u16(),
            detail: detail.into(),
            instance: None,
            request_id: None,
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn with_errors(mut self, errors: Vec<serde_json::Value>) -> Self {
        self.errors = errors;
        self
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The JSON body. Serialising these plain fields cannot fail; the fallback keeps the
    /// answer well-formed even so.
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| {
            br#"{"type":"urn:propylon:problem:internal","title":"Internal gateway error","status":500}"#
                .to_vec()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn serialises_rfc9457_fields() {
        let p = Problem::new(ProblemKind::NoRoute, "no operation for GET /x")
            .with_request_id("abc")
            .with_instance("/x");
        let v: serde_json::Value = serde_json::from_slice(&p.to_body()).unwrap();
        assert_eq!(v["type"], "urn:propylon:problem:no-route");
        assert_eq!(v["status"], 404);
        assert_eq!(v["title"], "No route for this path");
        assert_eq!(v["detail"], "no operation for GET /x");
        assert_eq!(v["request_id"], "abc");
        assert_eq!(v["instance"], "/x");
        assert!(v.get("errors").is_none());
    }

    #[test]
    fn method_not_allowed_carries_allow_header() {
        let p = Problem::new(ProblemKind::MethodNotAllowed, "x").with_header("allow", "GET, HEAD");
        assert_eq!(p.status_code(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(p.headers, vec![("allow", "GET, HEAD".to_string())]);
        let v: serde_json::Value = serde_json::from_slice(&p.to_body()).unwrap();
        assert!(v.get("headers").is_none());
    }

    #[test]
    fn timeouts_are_504_and_refusals_502() {
        assert_eq!(
            ProblemKind::BackendTimeout.status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            ProblemKind::BackendUnreachable.status(),
            StatusCode::BAD_GATEWAY
        );
    }
}
