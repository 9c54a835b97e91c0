//! The documents a template reads. serde_json's `Value` (an owned tree whose objects are
//! `IndexMap`s, hashed with SipHash) is what admins' configs, the XML converter and the
//! jsonpath-rust engine use; [`Borrowed`] (`serde_json_borrow`) is what the gateway parses
//! bodies into on the hot path: strings and keys point into the body bytes and objects are
//! vectors, so a 1 KB body builds and drops in under half the time.

use super::reads::Reads;
use jsonpath_rust::parser::model::JpQuery;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;

/// A body parsed without copying its strings, for templates that read it with direct paths.
pub type Borrowed<'b> = serde_json_borrow::Value<'b>;

/// Why a body is not a JSON document.
#[derive(Debug, thiserror::Error)]
pub enum NotJson {
    #[error("{0}")]
    Utf8(#[from] std::str::Utf8Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

/// Parses a JSON body as a [`Borrowed`] document. The bytes are checked as UTF-8 once, whole:
/// serde_json's reader of byte slices checks each string on its own, a fifth of the parse of
/// a typical 1 KB body.
pub fn parse_borrowed(body: &[u8]) -> Result<Borrowed<'_>, NotJson> {
    let text = std::str::from_utf8(body)?;
    Ok(super::build::build(text)?)
}

/// [`parse_borrowed`], keeping only the members and elements `reads` names: what a route's
/// response templates read of a backend's answer. The rest is still checked as JSON.
pub fn parse_pruned<'b>(body: &'b [u8], reads: &Reads) -> Result<Borrowed<'b>, NotJson> {
    let text = std::str::from_utf8(body)?;
    Ok(super::build::build_pruned(text, reads)?)
}

/// Two member names are equal. Names up to 16 bytes (nearly all) are compared here, byte by
/// byte: a `memcmp` call per member scanned cost more than the scan (1 % of a chain request).
#[inline]
fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if a.len() <= 16 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    a == b
}

/// Appends `text` as a JSON string: between quotes as it is when nothing in it needs an
/// escape (nearly every string a template copies), else through serde_json's escaping.
/// serde's serializer took ~170 instructions per string of a typical body, this ~110.
fn write_json_str(text: &str, out: &mut Vec<u8>) -> bool {
    let bytes = text.as_bytes();
    // What serde_json escapes: control characters, `"` and `\`.
    let plain = bytes.iter().fold(true, |plain, &b| {
        plain & (b >= 0x20 && b != b'"' && b != b'\\')
    });
    if !plain {
        return serde_json::to_writer(&mut *out, text).is_ok();
    }
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    out.extend_from_slice(bytes);
    out.push(b'"');
    true
}

/// What a template needs from a JSON document.
pub trait Doc: Sized {
    /// An object's member; with a repeated name, the last one (as serde_json keeps).
    fn member(&self, key: &str) -> Option<&Self>;
    /// An array's elements.
    fn items(&self) -> Option<&[Self]>;
    /// `[*]`: an array's elements or an object's member values, in document order.
    fn push_children<'a>(&'a self, out: &mut Vec<&'a Self>);
    /// Appends the compact JSON text; `false` (and nothing usable written) should it fail.
    fn write_json(&self, out: &mut Vec<u8>) -> bool;
    /// A copy as serde_json's `Value`, for rendering to a `Value` (XML, header text).
    fn to_value(&self) -> Value;
    /// An engine path's matches (an empty list when the query fails); `None` for a borrowed
    /// document: the jsonpath-rust engine reads only serde_json's `Value`, and templates with
    /// engine paths are never given one (see `BodyTemplate::reads_borrowed`).
    fn engine_matches<'a>(&'a self, query: &JpQuery) -> Option<Vec<&'a Self>>;
}

impl Doc for Value {
    fn member(&self, key: &str) -> Option<&Value> {
        match self {
            // A short scan beats hashing the key (SipHash, under `preserve_order`) on the
            // small objects of typical bodies.
            Value::Object(map) if map.len() <= 8 => {
                map.iter().find(|(k, _)| same_name(k, key)).map(|(_, v)| v)
            }
            Value::Object(map) => map.get(key),
            _ => None,
        }
    }

    fn items(&self) -> Option<&[Value]> {
        self.as_array().map(Vec::as_slice)
    }

    fn push_children<'a>(&'a self, out: &mut Vec<&'a Value>) {
        match self {
            Value::Array(items) => out.extend(items.iter()),
            Value::Object(map) => out.extend(map.values()),
            _ => {}
        }
    }

    fn write_json(&self, out: &mut Vec<u8>) -> bool {
        match self {
            Value::String(text) => write_json_str(text, out),
            other => serde_json::to_writer(&mut *out, other).is_ok(),
        }
    }

    fn to_value(&self) -> Value {
        self.clone()
    }

    fn engine_matches<'a>(&'a self, query: &JpQuery) -> Option<Vec<&'a Value>> {
        let matches = js_path_process(query, self).map(|refs| refs.into_iter().map(|r| r.val));
        Some(matches.map(Iterator::collect).unwrap_or_default())
    }
}

impl<'b> Doc for Borrowed<'b> {
    fn member(&self, key: &str) -> Option<&Borrowed<'b>> {
        match self {
            Borrowed::Object(map) => map
                .as_vec()
                .iter()
                .rev()
                .find(|(k, _)| same_name(k, key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    fn items(&self) -> Option<&[Borrowed<'b>]> {
        self.as_array()
    }

    fn push_children<'a>(&'a self, out: &mut Vec<&'a Borrowed<'b>>) {
        match self {
            Borrowed::Array(items) => out.extend(items.iter()),
            Borrowed::Object(map) => out.extend(map.values()),
            _ => {}
        }
    }

    fn write_json(&self, out: &mut Vec<u8>) -> bool {
        match self {
            Borrowed::Str(text) => write_json_str(text, out),
            other => serde_json::to_writer(&mut *out, other).is_ok(),
        }
    }

    fn to_value(&self) -> Value {
        Value::from(self)
    }

    fn engine_matches<'a>(&'a self, _: &JpQuery) -> Option<Vec<&'a Borrowed<'b>>> {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const TEXT: &str = r#"{"a":1,"s":"x\"y","o":{"k":[1,2.5,-3,null,true]},"a":2,"e":"é\u00e9"}"#;

    #[test]
    fn a_body_is_parsed_whole_or_refused_with_the_reason() {
        let doc = parse_borrowed(br#"{"a":"\u00e9t\u00e9","b":[1]}"#).unwrap();
        assert_eq!(doc.member("a").map(Doc::to_value), Some(json!("été")));
        let utf8 = parse_borrowed(b"{\"a\":\"\xff\"}").unwrap_err();
        assert!(matches!(utf8, NotJson::Utf8(_)), "{utf8}");
        assert!(utf8.to_string().contains("invalid utf-8"), "{utf8}");
        let json = parse_borrowed(b"{\"a\":1,}").unwrap_err();
        assert!(json.to_string().contains("line 1 column 8"), "{json}");
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let long = "0123456789abcdef";
        let mut texts = vec![
            String::new(),
            "plain".into(),
            "été ✓".into(),
            "\u{7f}".into(),
        ];
        for special in [
            "\"", "\\", "\t", "\n", "\u{1}", "\u{1f}", " ", "!", "#", "[", "]", "é",
        ] {
            // At every place of a word and of the tail.
            for at in 0..=long.len() {
                texts.push(format!("{}{special}{}", &long[..at], &long[at..]));
            }
        }
        for text in texts.iter().map(String::as_str) {
            let mut ours = b"[".to_vec();
            assert!(write_json_str(text, &mut ours));
            assert_eq!(
                &ours[1..],
                serde_json::to_string(text).unwrap().as_bytes(),
                "{text:?}"
            );
            let borrowed = Borrowed::Str(text.into());
            let (mut a, mut b) = (Vec::new(), Vec::new());
            assert!(borrowed.write_json(&mut a) && Value::from(text).write_json(&mut b));
            assert_eq!((&a[..], &b[..]), (&ours[1..], &ours[1..]));
        }
    }

    #[test]
    fn both_documents_read_and_write_alike() {
        let owned: Value = serde_json::from_str(TEXT).unwrap();
        let borrowed: Borrowed = serde_json::from_str(TEXT).unwrap();
        // A repeated name: the last value, as serde_json keeps it.
        assert_eq!(owned.member("a"), Some(&json!(2)));
        assert_eq!(borrowed.member("a").map(Doc::to_value), Some(json!(2)));
        assert_eq!(borrowed.member("s").map(Doc::to_value), Some(json!("x\"y")));
        for key in ["o", "e"] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            assert!(owned.member(key).unwrap().write_json(&mut a));
            assert!(borrowed.member(key).unwrap().write_json(&mut b));
            assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
        }
        let k = borrowed.member("o").and_then(|o| o.member("k")).unwrap();
        assert_eq!(k.items().map(<[_]>::len), Some(5));
        let mut children = Vec::new();
        borrowed.member("o").unwrap().push_children(&mut children);
        assert_eq!(children.len(), 1);
        assert!(borrowed.member("nope").is_none() && k.member("x").is_none());
        let query = jsonpath_rust::parser::parse_json_path("$..k").unwrap();
        assert_eq!(owned.engine_matches(&query).map(|m| m.len()), Some(1));
        assert!(borrowed.engine_matches(&query).is_none());
    }
}
