//! Upstream path templates such as `/crm/customers/{id}/detail`.
//!
//! Parsed once at config load so that rendering per request is a single
//! pass over pre-split pieces with no parsing.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::router::PathParams;

#[cfg(test)]
mod tests;

/// Bytes left as-is in a rendered value: RFC 3986 `pchar` minus
/// percent-encoded (unreserved, sub-delims, ':' and '@'). Everything else,
/// notably '/', '?', '#', '%' and space, is encoded so a value stays inside
/// its one path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@');

/// A compiled path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    pieces: Vec<Piece>,
    literal_len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Param(String),
}

/// Why a path template was rejected; each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("path template `{template}` must start with '/'")]
    MissingLeadingSlash { template: String },
    #[error("path template `{template}`: '{{' at byte {position} has no closing '}}'; close the parameter as `{{name}}`")]
    UnclosedBrace { template: String, position: usize },
    #[error("path template `{template}`: '}}' at byte {position} has no opening '{{'; remove it or write it as %7D")]
    UnopenedBrace { template: String, position: usize },
    #[error("path template `{template}`: empty parameter `{{}}` at byte {position}; give it a name such as `{{id}}`")]
    EmptyParamName { template: String, position: usize },
    #[error("path template `{template}`: parameter name `{name}` may only contain A-Z, a-z, 0-9, '_', '.' and '-'")]
    InvalidParamName { template: String, name: String },
}

impl PathTemplate {
    /// Parses `template`: it must start with '/', braces must balance and
    /// each `{name}` must be non-empty and made of `[A-Za-z0-9_.-]`.
    pub fn parse(template: &str) -> Result<PathTemplate, TemplateError> {
        if !template.starts_with('/') {
            return Err(TemplateError::MissingLeadingSlash {
                template: template.to_owned(),
            });
        }
        let mut pieces = Vec::new();
        let mut literal_len = 0;
        let mut rest = template;
        let mut offset = 0;
        while !rest.is_empty() {
            let next = rest.find(['{', '}']).unwrap_or(rest.len());
            if next > 0 {
                pieces.push(Piece::Literal(rest[..next].to_owned()));
                literal_len += next;
            }
            rest = &rest[next..];
            offset += next;
            if rest.starts_with('}') {
                return Err(TemplateError::UnopenedBrace {
                    template: template.to_owned(),
                    position: offset,
                });
            }
            if rest.is_empty() {
                break;
            }
            let Some(close) = rest.find('}') else {
                return Err(TemplateError::UnclosedBrace {
                    template: template.to_owned(),
                    position: offset,
                });
            };
            let name = &rest[1..close];
            if name.is_empty() {
                return Err(TemplateError::EmptyParamName {
                    template: template.to_owned(),
                    position: offset,
                });
            }
            if !is_param_name(name) {
                return Err(TemplateError::InvalidParamName {
                    template: template.to_owned(),
                    name: name.to_owned(),
                });
            }
            pieces.push(Piece::Param(name.to_owned()));
            rest = &rest[close + 1..];
            offset += close + 1;
        }
        Ok(PathTemplate {
            pieces,
            literal_len,
        })
    }

    /// Names of the parameters in order of appearance (repeats included),
    /// so the gateway can check them against the route at config load.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Param(name) => Some(name.as_str()),
            Piece::Literal(_) => None,
        })
    }

    /// Renders the path, percent-encoding each value as one path segment.
    /// A missing parameter renders as empty: names are checked at config
    /// load, so this cannot fail per request.
    pub fn render(&self, params: &PathParams) -> String {
        let mut out = String::with_capacity(self.rendered_len_hint());
        self.render_into(params, &mut out);
        out
    }

    /// About how long a rendering is: its literal text, and 16 bytes per parameter.
    pub fn rendered_len_hint(&self) -> usize {
        self.literal_len + 16 * self.pieces.len()
    }

    /// `render`, appended to `out` (the gateway writes the backend's whole target in one
    /// string: no string of its own for the path).
    pub fn render_into(&self, params: &PathParams, out: &mut String) {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Param(name) => {
                    if let Some(value) = params.get(name) {
                        out.extend(utf8_percent_encode(value, SEGMENT));
                    }
                }
            }
        }
    }
}

/// Shared with spec parsing so spec paths and upstream templates accept
/// the same parameter names.
pub(crate) fn is_param_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}
