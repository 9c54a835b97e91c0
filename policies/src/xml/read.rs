//! XML → JSON.

use std::borrow::Cow;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Prefix, PrefixDeclaration};
use quick_xml::reader::Reader;
use quick_xml::XmlVersion;
use serde_json::{Map, Value};

use super::{XmlError, MAX_DEPTH, SOAP11_NS, SOAP12_NS};

const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Parse an XML document into JSON.
///
/// The result is the document element's content (its name is dropped unless `keep_root`, then
/// the result is `{name: content}`). For a SOAP 1.1/1.2 envelope the first child of `Body` is
/// the document element (the `Header` is ignored; an empty `Body` gives `null`), and a SOAP
/// `Fault` always comes back as `{"Fault": {...}}`.
///
/// Namespace prefixes are stripped and `xmlns` declarations dropped; repeated sibling elements
/// become an array, a single one stays as is; attributes become `"@name"`; an element with only
/// text is a string (no type guessing); text beside child elements goes (trimmed) in `"#text"`;
/// an empty element, or one with `xsi:nil="true"`, is `null`. Entity and character references
/// are decoded and CDATA is text; comments and processing instructions are skipped.
///
/// Refused: DOCTYPE (so no entity declarations: XXE, billion laughs), undefined entities,
/// nesting deeper than [`MAX_DEPTH`](super::MAX_DEPTH), ill-formed XML, and encodings other than
/// UTF-8 (optionally with BOM), US-ASCII and ISO-8859-1.
pub fn xml_to_json(bytes: &[u8], keep_root: bool) -> Result<Value, XmlError> {
    let (text, base) = decode(bytes)?;
    Parser {
        reader: Reader::from_str(&text),
        base,
    }
    .run(keep_root)
}

/// The document as text, and the byte offset positions must be shifted by (UTF-8 BOM).
fn decode(bytes: &[u8]) -> Result<(Cow<'_, str>, u64), XmlError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return utf8(rest, 3).map(|s| (Cow::Borrowed(s), 3));
    }
    if bytes.starts_with(b"\xFE\xFF") || bytes.starts_with(b"\xFF\xFE") {
        return Err(XmlError::UnsupportedEncoding("UTF-16".to_owned()));
    }
    match declared_encoding(bytes) {
        None => utf8(bytes, 0).map(|s| (Cow::Borrowed(s), 0)),
        Some(enc) => match enc.to_ascii_lowercase().as_slice() {
            b"utf-8" | b"utf8" | b"us-ascii" | b"ascii" => {
                utf8(bytes, 0).map(|s| (Cow::Borrowed(s), 0))
            }
            b"iso-8859-1" | b"iso8859-1" | b"iso_8859-1" | b"latin1" | b"latin-1" | b"l1" => Ok((
                Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
                0,
            )),
            _ => Err(XmlError::UnsupportedEncoding(
                String::from_utf8_lossy(enc).into_owned(),
            )),
        },
    }
}

fn utf8(bytes: &[u8], base: u64) -> Result<&str, XmlError> {
    std::str::from_utf8(bytes).map_err(|e| XmlError::InvalidEncoding {
        encoding: "UTF-8",
        position: base + e.valid_up_to() as u64,
    })
}

/// The `encoding` pseudo-attribute of a leading `<?xml …?>` declaration, if any.
fn declared_encoding(bytes: &[u8]) -> Option<&[u8]> {
    let head = bytes.get(..bytes.len().min(256))?;
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let decl = &head[..head.windows(2).position(|w| w == b"?>")?];
    let at = decl.windows(8).position(|w| w == b"encoding")?;
    let rest = decl[at + 8..].trim_ascii_start().strip_prefix(b"=")?;
    let rest = rest.trim_ascii_start();
    let quote = *rest.first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let value = &rest[1..];
    Some(&value[..value.iter().position(|&b| b == quote)?])
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// An element being collected.
struct Frame {
    name: String,
    map: Map<String, Value>,
    text: String,
    has_children: bool,
    nil: bool,
}

impl Frame {
    /// The element's name and JSON value.
    fn finish(self) -> (String, Value) {
        let Frame {
            name,
            map,
            text,
            has_children,
            nil,
        } = self;
        (name, Self::value(map, text, has_children, nil))
    }

    fn value(mut map: Map<String, Value>, text: String, has_children: bool, nil: bool) -> Value {
        let blank = text.chars().all(is_xml_space);
        if nil && !has_children && blank {
            return Value::Null;
        }
        if map.is_empty() {
            return if text.is_empty() {
                Value::Null
            } else {
                Value::String(text)
            };
        }
        if !blank {
            let text = if has_children {
                text.trim_matches(is_xml_space).to_owned()
            } else {
                text
            };
            map.insert("#text".to_owned(), Value::String(text));
        }
        Value::Object(map)
    }
}

/// Add a child element's value under `name`, turning repeats into an array.
fn insert_child(map: &mut Map<String, Value>, name: String, value: Value) {
    // Element values are never arrays, so an array here always comes from repetition.
    match map.get_mut(&name) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            map.insert(name, value);
        }
    }
}

struct Parser<'i> {
    reader: Reader<&'i [u8]>,
    base: u64,
}

/// Where the document element is, once the root element is known.
struct State {
    depth: usize,
    stack: Vec<Frame>,
    /// Namespace of the SOAP envelope, when the root is one.
    soap: Option<&'static str>,
    in_body: bool,
    root_seen: bool,
    root_closed: bool,
    /// The finished document element: name, value, whether it is a SOAP Fault.
    result: Option<(String, Value, bool)>,
    doc_is_fault: bool,
    /// In-scope namespace declarations: (depth declared at, prefix or "" for default, URI).
    bindings: Vec<(usize, String, String)>,
}

impl State {
    /// The namespace URI a prefix (`None`: the default namespace) is bound to.
    fn resolve(&self, prefix: Option<&str>) -> Option<&str> {
        let prefix = prefix.unwrap_or("");
        self.bindings
            .iter()
            .rev()
            .find(|(_, p, _)| p == prefix)
            .map(|(_, _, uri)| uri.as_str())
            .filter(|uri| !uri.is_empty())
    }
}

impl<'i> Parser<'i> {
    fn malformed(&self, position: u64, message: impl Into<String>) -> XmlError {
        XmlError::Malformed {
            position: self.base + position,
            message: message.into(),
        }
    }

    fn run(mut self, keep_root: bool) -> Result<Value, XmlError> {
        let mut st = State {
            depth: 0,
            stack: Vec::new(),
            soap: None,
            in_body: false,
            root_seen: false,
            root_closed: false,
            result: None,
            doc_is_fault: false,
            bindings: Vec::new(),
        };
        loop {
            let pos = self.reader.buffer_position();
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(e) => {
                    let at = self.reader.error_position();
                    return Err(self.malformed(at, e.to_string()));
                }
            };
            match event {
                Event::Start(e) => self.start(&mut st, &e, pos)?,
                Event::Empty(e) => {
                    self.start(&mut st, &e, pos)?;
                    self.end(&mut st);
                }
                Event::End(_) => self.end(&mut st),
                Event::Text(t) => self.text(&mut st, &t.xml10_content(), pos)?,
                Event::CData(t) => self.text(&mut st, &t.xml10_content(), pos)?,
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => Cow::Owned(c.to_string()),
                        Ok(None) => match resolve_predefined_entity(&r) {
                            Some(s) => Cow::Borrowed(s),
                            None => {
                                return Err(XmlError::UndefinedEntity {
                                    name: r.to_string(),
                                    position: self.base + pos,
                                })
                            }
                        },
                        Err(e) => return Err(self.malformed(pos, e.to_string())),
                    };
                    if st.depth == 0 {
                        return Err(self.malformed(pos, "reference outside the document element"));
                    }
                    self.text(&mut st, &resolved, pos)?;
                }
                Event::DocType(_) => {
                    return Err(XmlError::DoctypeForbidden {
                        position: self.base + pos,
                    })
                }
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => break,
            }
        }
        let end = self.reader.buffer_position();
        if st.depth != 0 {
            return Err(self.malformed(end, "unexpected end of document: element not closed"));
        }
        if !st.root_seen {
            return Err(self.malformed(end, "no document element"));
        }
        Ok(match st.result {
            None => Value::Null,
            Some((_, value, true)) => wrap("Fault".to_owned(), value),
            Some((name, value, false)) if keep_root => wrap(name, value),
            Some((_, value, false)) => value,
        })
    }

    fn start(&self, st: &mut State, e: &BytesStart<'_>, pos: u64) -> Result<(), XmlError> {
        st.depth += 1;
        if st.depth > MAX_DEPTH {
            return Err(XmlError::TooDeep {
                limit: MAX_DEPTH,
                position: self.base + pos,
            });
        }
        // One pass over the attributes: namespace declarations are recorded (they scope this
        // element too), the others collected in case the element is part of the document.
        let mut map = Map::new();
        let mut nil: Option<(&str, bool)> = None;
        for attr in e.attributes() {
            let attr = attr.map_err(|err| self.malformed(pos, err.to_string()))?;
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| self.malformed(pos, err.to_string()))?;
            if let Some(decl) = attr.key.as_namespace_binding() {
                let prefix = match decl {
                    PrefixDeclaration::Default => "",
                    PrefixDeclaration::Named(prefix) => prefix,
                };
                st.bindings
                    .push((st.depth, prefix.to_owned(), value.into_owned()));
                continue;
            }
            let (local, prefix) = attr.key.decompose();
            let local = local.into_inner();
            if local == "nil" {
                if let Some(prefix) = prefix {
                    nil = Some((prefix.into_inner(), value == "true" || value == "1"));
                    continue;
                }
            }
            let mut key = String::with_capacity(local.len() + 1);
            key.push('@');
            key.push_str(local);
            if !map.contains_key(&key) {
                map.insert(key, Value::String(value.into_owned()));
            }
        }
        let (local, prefix) = e.name().decompose();
        let local = local.into_inner();
        let capture = if !st.stack.is_empty() {
            true
        } else if st.depth == 1 {
            if st.root_closed {
                return Err(self.malformed(pos, "more than one document element"));
            }
            st.root_seen = true;
            let ns = soap_namespace(st.resolve(prefix.map(Prefix::into_inner)));
            if local == "Envelope" && ns.is_some() {
                st.soap = ns;
                false
            } else {
                true
            }
        } else if st.soap.is_some() && st.depth == 2 {
            st.in_body = local == "Body" && st.resolve(prefix.map(Prefix::into_inner)) == st.soap;
            false
        } else if st.in_body && st.depth == 3 && st.result.is_none() {
            st.doc_is_fault =
                local == "Fault" && st.resolve(prefix.map(Prefix::into_inner)) == st.soap;
            true
        } else {
            false
        };
        if !capture {
            return Ok(());
        }
        if let Some(parent) = st.stack.last_mut() {
            parent.has_children = true;
        }
        let mut is_nil = false;
        if let Some((prefix, value)) = nil {
            if st.resolve(Some(prefix)) == Some(XSI_NS) {
                is_nil = value;
            } else {
                map.entry("@nil")
                    .or_insert_with(|| Value::String(value.to_string()));
            }
        }
        st.stack.push(Frame {
            name: local.to_owned(),
            map,
            text: String::new(),
            has_children: false,
            nil: is_nil,
        });
        Ok(())
    }

    fn end(&self, st: &mut State) {
        if let Some(frame) = st.stack.pop() {
            let (name, value) = frame.finish();
            match st.stack.last_mut() {
                Some(parent) => insert_child(&mut parent.map, name, value),
                None => st.result = Some((name, value, st.doc_is_fault)),
            }
        }
        if st.depth == 2 {
            st.in_body = false;
        }
        while st.bindings.last().is_some_and(|b| b.0 == st.depth) {
            st.bindings.pop();
        }
        st.depth -= 1;
        if st.depth == 0 {
            st.root_closed = true;
        }
    }

    fn text(&self, st: &mut State, text: &str, pos: u64) -> Result<(), XmlError> {
        match st.stack.last_mut() {
            Some(frame) => frame.text.push_str(text),
            None if st.depth == 0 && !text.chars().all(is_xml_space) => {
                return Err(self.malformed(pos, "text outside the document element"))
            }
            None => {}
        }
        Ok(())
    }
}

fn soap_namespace(ns: Option<&str>) -> Option<&'static str> {
    match ns {
        Some(SOAP11_NS) => Some(SOAP11_NS),
        Some(SOAP12_NS) => Some(SOAP12_NS),
        _ => None,
    }
}

fn wrap(name: String, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(name, value);
    Value::Object(map)
}
