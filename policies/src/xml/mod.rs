//! XML <-> JSON for XML backends (plain XML over HTTP, SOAP 1.1 and SOAP 1.2).
//!
//! The gateway maps the facade's JSON to JSON first; for a backend with `format: xml` that JSON
//! is rendered by [`json_to_xml`], and the backend's XML answer is parsed by [`xml_to_json`]
//! before the response mapping runs. Pure conversion: no I/O.
//!
//! Conventions (both directions):
//! - object keys are elements; an array repeats the element with the key's name;
//! - `"@name"` keys are attributes of the enclosing element, `"#text"` is its text;
//! - `null` is an empty element; numbers and booleans are written as text;
//! - when reading, an element with only text is a string (no type guessing), repeated siblings
//!   become an array, a single one stays an object, an empty element is `null`, and namespace
//!   prefixes are stripped from element and attribute names.

mod read;
mod write;

#[cfg(test)]
mod tests;

pub use read::xml_to_json;
pub use write::json_to_xml;

/// Namespace of the SOAP 1.1 envelope.
pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// Namespace of the SOAP 1.2 envelope.
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
/// Maximum element nesting accepted when reading (envelope elements included) and written.
pub const MAX_DEPTH: usize = 64;

/// Envelope around the document element.
#[derive(Debug, Clone, PartialEq)]
pub enum Envelope {
    /// Plain XML: the document element is the root.
    None,
    /// SOAP 1.1 `Envelope`/`Body`.
    Soap11,
    /// SOAP 1.2 `Envelope`/`Body`.
    Soap12,
}

/// How a JSON value is rendered as an XML document.
#[derive(Debug, Clone)]
pub struct XmlShape {
    /// Name of the document element (may carry a prefix, e.g. `m:GetPrice`).
    pub root: String,
    /// Namespace of the document element: `xmlns="..."`, or `xmlns:m="..."` when `root` has a
    /// prefix `m`.
    pub namespace: Option<String>,
    /// SOAP envelope to wrap the document element in, if any.
    pub envelope: Envelope,
}

impl XmlShape {
    /// A shape whose `root` is checked to be a valid XML (qualified) name.
    pub fn new(
        root: &str,
        namespace: Option<&str>,
        envelope: Envelope,
    ) -> Result<XmlShape, XmlError> {
        if !is_qname(root) {
            return Err(XmlError::InvalidName {
                name: root.to_owned(),
                at: "root element".to_owned(),
            });
        }
        if let Some(ns) = namespace {
            write::check_chars(ns, "root namespace")?;
        }
        Ok(XmlShape {
            root: root.to_owned(),
            namespace: namespace.map(str::to_owned),
            envelope,
        })
    }

    /// `Content-Type` of the rendered document.
    pub fn content_type(&self) -> &'static str {
        match self.envelope {
            Envelope::None => "application/xml; charset=utf-8",
            Envelope::Soap11 => "text/xml; charset=utf-8",
            Envelope::Soap12 => "application/soap+xml; charset=utf-8",
        }
    }
}

/// What went wrong converting between XML and JSON, and where.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    /// A key (or the root) is not a valid XML name.
    #[error("`{name}` is not a valid XML name ({at})")]
    InvalidName { name: String, at: String },
    /// The JSON value has no XML rendering (array in array, object as attribute, control char…).
    #[error("cannot render JSON as XML at {at}: {reason}")]
    Unrepresentable { at: String, reason: String },
    /// The input is not well-formed XML.
    #[error("malformed XML at byte {position}: {message}")]
    Malformed { position: u64, message: String },
    /// The input is not valid in its encoding.
    #[error("invalid {encoding} in XML at byte {position}")]
    InvalidEncoding {
        encoding: &'static str,
        position: u64,
    },
    /// The declared or detected encoding is not supported.
    #[error("unsupported XML encoding `{0}` (UTF-8, US-ASCII and ISO-8859-1 are supported)")]
    UnsupportedEncoding(String),
    /// DOCTYPE (and thus entity declarations) are refused: XXE / billion laughs.
    #[error("DOCTYPE declarations are not allowed (byte {position})")]
    DoctypeForbidden { position: u64 },
    /// An entity reference other than the five predefined ones or a character reference.
    #[error("undefined entity `&{name};` at byte {position}")]
    UndefinedEntity { name: String, position: u64 },
    /// Elements nested deeper than [`MAX_DEPTH`].
    #[error("XML nested deeper than {limit} elements (byte {position})")]
    TooDeep { limit: usize, position: u64 },
}

/// XML 1.0 (5th ed.) `NameStartChar` minus `:`.
fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0 (5th ed.) `NameChar` minus `:`.
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// A namespace-free name (`NCName`).
fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

/// A qualified name: `NCName` or `prefix:NCName`.
pub(crate) fn is_qname(s: &str) -> bool {
    match s.split_once(':') {
        Some((prefix, local)) => is_ncname(prefix) && is_ncname(local),
        None => is_ncname(s),
    }
}
