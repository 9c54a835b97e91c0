//! JSON → XML.

use serde_json::{Map, Value};

use super::{is_qname, Envelope, XmlError, XmlShape, MAX_DEPTH, SOAP11_NS, SOAP12_NS};

/// Render `value` as an XML document shaped by `shape`.
///
/// Object keys become elements; arrays repeat the element with the key's name; keys starting
/// with `@` become attributes of the enclosing element (a `null` attribute is omitted); the key
/// `#text` is the element's text; `null` is an empty element; numbers and booleans are text.
/// The whole value is wrapped in `<root xmlns="namespace">` (`xmlns:p` when root is `p:Name`)
/// and, for SOAP, in the matching `Envelope`/`Body`. Text and attributes are escaped; the
/// document starts with `<?xml version="1.0" encoding="UTF-8"?>`.
///
/// Errors: a key that is not a valid XML name, a top-level or nested array (no element name to
/// repeat), an object or array used as an attribute or `#text`, a character XML 1.0 cannot carry
/// (control characters other than tab/CR/LF, U+FFFE, U+FFFF), nesting deeper than
/// [`MAX_DEPTH`](super::MAX_DEPTH).
pub fn json_to_xml(value: &Value, shape: &XmlShape) -> Result<Vec<u8>, XmlError> {
    if !is_qname(&shape.root) {
        return Err(XmlError::InvalidName {
            name: shape.root.clone(),
            at: "root element".to_owned(),
        });
    }
    let mut w = Writer {
        out: Vec::with_capacity(256),
        path: Vec::with_capacity(8),
    };
    w.out
        .extend_from_slice(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let soap_ns = match shape.envelope {
        Envelope::None => None,
        Envelope::Soap11 => Some(SOAP11_NS),
        Envelope::Soap12 => Some(SOAP12_NS),
    };
    let root_prefix = shape.root.split_once(':').map(|(prefix, _)| prefix);
    let env = if root_prefix == Some("soap") {
        "soapenv"
    } else {
        "soap"
    };
    if let Some(ns) = soap_ns {
        w.raw("<");
        w.raw(env);
        w.raw(":Envelope xmlns:");
        w.raw(env);
        w.raw("=\"");
        w.raw(ns);
        w.raw("\"><");
        w.raw(env);
        w.raw(":Body>");
    }
    let ns_attr = shape.namespace.as_deref().map(|ns| match root_prefix {
        Some(prefix) => (format!("xmlns:{prefix}"), ns),
        None => ("xmlns".to_owned(), ns),
    });
    w.path.push(&shape.root);
    if value.is_array() {
        return Err(w.unrepresentable(
            "a top-level array has no element name to repeat; wrap it in an object",
        ));
    }
    w.element(
        &shape.root,
        value,
        ns_attr.as_ref().map(|(name, ns)| (name.as_str(), *ns)),
        1,
    )?;
    if soap_ns.is_some() {
        w.raw("</");
        w.raw(env);
        w.raw(":Body></");
        w.raw(env);
        w.raw(":Envelope>");
    }
    Ok(w.out)
}

/// Check that `s` only holds characters XML 1.0 can carry.
pub(crate) fn check_chars(s: &str, at: &str) -> Result<(), XmlError> {
    let mut sink = Vec::new();
    escape_into(&mut sink, s, true).map_err(|c| XmlError::Unrepresentable {
        at: at.to_owned(),
        reason: format!("character U+{:04X} is not allowed in XML", u32::from(c)),
    })
}

struct Writer<'a> {
    out: Vec<u8>,
    /// Keys from the root to the element being written, for error messages.
    path: Vec<&'a str>,
}

impl<'a> Writer<'a> {
    fn raw(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
    }

    fn at(&self) -> String {
        let mut at = String::new();
        for key in &self.path {
            at.push('/');
            at.push_str(key);
        }
        at
    }

    fn unrepresentable(&self, reason: &str) -> XmlError {
        XmlError::Unrepresentable {
            at: self.at(),
            reason: reason.to_owned(),
        }
    }

    fn invalid_name(&self, name: &str) -> XmlError {
        XmlError::InvalidName {
            name: name.to_owned(),
            at: format!("key at {}", self.at()),
        }
    }

    /// Escaped text or attribute value.
    fn text(&mut self, s: &str, attr: bool) -> Result<(), XmlError> {
        escape_into(&mut self.out, s, attr).map_err(|c| {
            self.unrepresentable(&format!(
                "character U+{:04X} is not allowed in XML",
                u32::from(c)
            ))
        })
    }

    /// A scalar as text; `Ok(false)` when the value is an object or array.
    fn scalar(&mut self, value: &Value, attr: bool) -> Result<bool, XmlError> {
        match value {
            Value::String(s) => self.text(s, attr)?,
            Value::Number(n) => self.raw(&n.to_string()),
            Value::Bool(b) => self.raw(if *b { "true" } else { "false" }),
            Value::Null => {}
            Value::Array(_) | Value::Object(_) => return Ok(false),
        }
        Ok(true)
    }

    fn attribute(&mut self, name: &str, value: &str) -> Result<(), XmlError> {
        self.raw(" ");
        self.raw(name);
        self.raw("=\"");
        self.text(value, true)?;
        self.raw("\"");
        Ok(())
    }

    /// `<name …>value</name>`; `ns` is an extra namespace declaration (root only).
    fn element(
        &mut self,
        name: &str,
        value: &'a Value,
        ns: Option<(&str, &str)>,
        depth: usize,
    ) -> Result<(), XmlError> {
        if depth > MAX_DEPTH {
            return Err(self.unrepresentable(&format!("nested deeper than {MAX_DEPTH} elements")));
        }
        self.raw("<");
        self.raw(name);
        if let Some((attr, uri)) = ns {
            self.attribute(attr, uri)?;
        }
        match value {
            Value::Null => self.raw("/>"),
            Value::Object(map) => self.object(name, map, ns.map(|(attr, _)| attr), depth)?,
            Value::Array(_) => {
                return Err(self.unrepresentable(
                    "an array directly inside an array has no element name to repeat",
                ))
            }
            scalar => {
                self.raw(">");
                self.scalar(scalar, false)?;
                self.raw("</");
                self.raw(name);
                self.raw(">");
            }
        }
        Ok(())
    }

    /// Attributes and content of an element whose start tag `<name` is already written.
    fn object(
        &mut self,
        name: &str,
        map: &'a Map<String, Value>,
        ns_attr: Option<&str>,
        depth: usize,
    ) -> Result<(), XmlError> {
        for (key, value) in map {
            let Some(attr) = key.strip_prefix('@') else {
                continue;
            };
            if !is_qname(attr) {
                return Err(self.invalid_name(key));
            }
            if ns_attr == Some(attr) {
                return Err(self.unrepresentable(&format!(
                    "attribute `{attr}` clashes with the configured namespace"
                )));
            }
            if value.is_null() {
                continue;
            }
            self.raw(" ");
            self.raw(attr);
            self.raw("=\"");
            if !self.scalar(value, true)? {
                return Err(self.unrepresentable(&format!(
                    "attribute `{key}` must be a string, number, boolean or null"
                )));
            }
            self.raw("\"");
        }
        let mut open = true;
        for (key, value) in map {
            if key.starts_with('@') {
                continue;
            }
            if key == "#text" {
                if value.is_null() {
                    continue;
                }
                if open {
                    self.raw(">");
                    open = false;
                }
                if !self.scalar(value, false)? {
                    return Err(
                        self.unrepresentable("`#text` must be a string, number, boolean or null")
                    );
                }
                continue;
            }
            if !is_qname(key) {
                return Err(self.invalid_name(key));
            }
            self.path.push(key);
            match value {
                Value::Array(items) => {
                    for item in items {
                        if open {
                            self.raw(">");
                            open = false;
                        }
                        self.element(key, item, None, depth + 1)?;
                    }
                }
                _ => {
                    if open {
                        self.raw(">");
                        open = false;
                    }
                    self.element(key, value, None, depth + 1)?;
                }
            }
            self.path.pop();
        }
        if open {
            self.raw("/>");
        } else {
            self.raw("</");
            self.raw(name);
            self.raw(">");
        }
        Ok(())
    }
}

/// Append `s` escaped for element text (`attr == false`) or a double-quoted attribute value.
/// `\r` (and in attributes `\t`, `\n`) become character references so parsers keep them.
/// Returns the first character XML 1.0 cannot represent.
fn escape_into(out: &mut Vec<u8>, s: &str, attr: bool) -> Result<(), char> {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let replacement: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\r' => b"&#13;",
            b'"' if attr => b"&quot;",
            b'\n' if attr => b"&#10;",
            b'\t' if attr => b"&#9;",
            b'\n' | b'\t' => continue,
            0..=0x1F => return Err(char::from(b)),
            // U+FFFE and U+FFFF are EF BF BE / EF BF BF in UTF-8.
            0xEF if bytes.get(i + 1) == Some(&0xBF)
                && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)) =>
            {
                return Err(if bytes.get(i + 2) == Some(&0xBE) {
                    '\u{FFFE}'
                } else {
                    '\u{FFFF}'
                });
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(replacement);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    Ok(())
}
