//! Which credentials an operation asks for, read from the spec's `security` and
//! `components.securitySchemes`, resolved once at load so the gateway's per-request check
//! is a walk over a small, already-validated structure.

use serde_json::Value;

use crate::spec::{FacadeSpec, SpecError};

#[cfg(test)]
mod tests;

/// What the gateway does with a scheme.
#[derive(Debug, Clone, PartialEq)]
pub enum SchemeKind {
    /// A bearer JWT: `http` with scheme `bearer`, `oauth2` or `openIdConnect`.
    Jwt,
    /// An API key in this header (lower-case name, from the scheme's `name`).
    ApiKeyHeader(String),
}

/// One named scheme of a security requirement, with the scopes it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    pub scheme: String,
    pub kind: SchemeKind,
    pub scopes: Vec<String>,
}

/// OR of ANDs, as OpenAPI's `security`: the request passes when every requirement of one
/// alternative holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Security {
    Public,
    AnyOf(Vec<Vec<Requirement>>),
}

const SUPPORTED: &str = "supported schemes are `http` with scheme `bearer`, `oauth2` and \
     `openIdConnect` (all checked as JWT bearer tokens) and `apiKey` with `in: header`";

/// `$ref` chains longer than this are taken as a loop.
const MAX_REF_DEPTH: usize = 8;

/// The security of one operation: its own `security` if it has one (even `[]`), else the
/// document's, else public.
pub fn operation_security(spec: &FacadeSpec, operation_id: &str) -> Result<Security, SpecError> {
    let Some(op) = spec.operation(operation_id) else {
        return Err(invalid(
            "",
            format!("no operation has operationId `{operation_id}`"),
        ));
    };
    let method = op.method.as_str().to_ascii_lowercase();
    let op_pointer = format!("/paths/{}/{method}", escape_pointer(&op.path));
    let op_security = spec
        .document
        .get("paths")
        .and_then(|paths| paths.get(&op.path))
        .and_then(|item| item.get(&method))
        .and_then(|op| op.get("security"));
    let (security, pointer) = match op_security {
        Some(security) => (security, format!("{op_pointer}/security")),
        None => match spec.document.get("security") {
            Some(security) => (security, "/security".to_owned()),
            None => return Ok(Security::Public),
        },
    };
    parse_security(&spec.document, security, &pointer)
}

fn parse_security(
    document: &Value,
    security: &Value,
    pointer: &str,
) -> Result<Security, SpecError> {
    let Some(alternatives) = security.as_array() else {
        return Err(invalid(
            pointer,
            "`security` must be a list of security requirement objects",
        ));
    };
    let mut any_of = Vec::with_capacity(alternatives.len());
    for (index, alternative) in alternatives.iter().enumerate() {
        let alt_pointer = format!("{pointer}/{index}");
        let Some(entries) = alternative.as_object() else {
            return Err(invalid(
                &alt_pointer,
                "a security requirement must be a mapping of scheme names to scope lists",
            ));
        };
        let mut all_of = Vec::with_capacity(entries.len());
        for (name, scopes) in entries {
            let req_pointer = format!("{alt_pointer}/{}", escape_pointer(name));
            let scopes = parse_scopes(scopes, &req_pointer)?;
            let kind = resolve_scheme(document, name, &req_pointer)?;
            all_of.push(Requirement {
                scheme: name.clone(),
                kind,
                scopes,
            });
        }
        any_of.push(all_of);
    }
    // `[]` or an empty alternative `{}` lets anonymous requests through. Schemes are still
    // resolved above so that a typo elsewhere in the list is reported, not hidden.
    if any_of.is_empty() || any_of.iter().any(Vec::is_empty) {
        return Ok(Security::Public);
    }
    Ok(Security::AnyOf(any_of))
}

fn parse_scopes(scopes: &Value, pointer: &str) -> Result<Vec<String>, SpecError> {
    let items = scopes.as_array().ok_or_else(|| {
        invalid(
            pointer,
            "the scopes of a security requirement must be a list of strings",
        )
    })?;
    items
        .iter()
        .map(|scope| {
            scope
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| invalid(pointer, "each scope must be a string"))
        })
        .collect()
}

fn resolve_scheme(
    document: &Value,
    name: &str,
    req_pointer: &str,
) -> Result<SchemeKind, SpecError> {
    let mut pointer = format!("/components/securitySchemes/{}", escape_pointer(name));
    let Some(mut scheme) = document.pointer(&pointer) else {
        return Err(invalid(
            req_pointer,
            format!("security scheme `{name}` is not defined in `components.securitySchemes`"),
        ));
    };
    let mut depth = 0;
    while let Some(reference) = scheme.get("$ref") {
        depth += 1;
        let target = reference
            .as_str()
            .and_then(|r| r.strip_prefix('#'))
            .filter(|_| depth <= MAX_REF_DEPTH);
        let Some(target) = target else {
            return Err(invalid(
                &pointer,
                "`$ref` must be a local reference such as `#/components/securitySchemes/x`, without loops",
            ));
        };
        let target = target.to_owned();
        scheme = document.pointer(&target).ok_or_else(|| {
            invalid(
                &pointer,
                format!("`$ref` target `#{target}` does not exist"),
            )
        })?;
        pointer = target;
    }
    scheme_kind(scheme, &pointer)
}

fn scheme_kind(scheme: &Value, pointer: &str) -> Result<SchemeKind, SpecError> {
    let field = |key: &str| scheme.get(key).and_then(Value::as_str);
    match field("type") {
        Some("http") => match field("scheme") {
            // RFC 7235: auth scheme names are case-insensitive.
            Some(s) if s.eq_ignore_ascii_case("bearer") => Ok(SchemeKind::Jwt),
            other => Err(invalid(
                pointer,
                format!("http scheme `{}` is not supported; {SUPPORTED}", other.unwrap_or("?")),
            )),
        },
        Some("oauth2") | Some("openIdConnect") => Ok(SchemeKind::Jwt),
        Some("apiKey") => match (field("in"), field("name")) {
            (Some("header"), Some(name)) if !name.is_empty() => {
                Ok(SchemeKind::ApiKeyHeader(name.to_ascii_lowercase()))
            }
            (Some("header"), _) => Err(invalid(
                pointer,
                "an apiKey scheme needs a non-empty `name`: the header that carries the key",
            )),
            (location, _) => Err(invalid(
                pointer,
                format!(
                    "apiKey in `{}` is not supported (keys in URLs or cookies leak into logs); {SUPPORTED}",
                    location.unwrap_or("?")
                ),
            )),
        },
        Some(other) => Err(invalid(
            pointer,
            format!("security scheme type `{other}` is not supported; {SUPPORTED}"),
        )),
        None => Err(invalid(
            pointer,
            format!("a security scheme needs a string `type`; {SUPPORTED}"),
        )),
    }
}

/// RFC 6901 escaping, as in `spec.rs`.
fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn invalid(pointer: &str, message: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        pointer: pointer.to_owned(),
        message: message.into(),
    }
}
