//! The documents a template reads. serde_json's `Value` (an owned tree whose objects are
//! `IndexMap`s, hashed with SipHash) is what admins' configs, the XML converter and the
//! jsonpath-rust engine use; [`Borrowed`] (`propylon_json`'s tree) is what the gateway parses
//! bodies into on the hot path: strings and keys point into the body bytes, and arrays and
//! objects are slices in one arena per body (`arena_for`), with nothing to free node by node.

use super::reads::Reads;
use jsonpath_rust::parser::model::JpQuery;
use jsonpath_rust::query::js_path_process;
use propylon_json::{Bump, Everything};
use serde_json::Value;

/// A body parsed without copying its strings, for templates that read it with direct paths.
pub type Borrowed<'b> = propylon_json::Tree<'b>;

/// Why a body is not a JSON document.
#[derive(Debug, thiserror::Error)]
pub enum NotJson {
    #[error("{0}")]
    Utf8(#[from] std::str::Utf8Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

/// Parses a JSON body as a [`Borrowed`] tree in `arena`. The bytes are checked as UTF-8
/// once, whole: serde_json's reader of byte slices checks each string on its own, a fifth
/// of the parse of a typical 1 KB body.
pub fn parse_borrowed<'b>(body: &'b [u8], arena: &'b Bump) -> Result<Borrowed<'b>, NotJson> {
    let text = body_text(body)?;
    Ok(propylon_json::parse(text, arena, &Everything)?)
}

/// [`parse_borrowed`], keeping only the members and elements `reads` names: what a route's
/// response templates read of a backend's answer. The rest is still checked as JSON.
pub fn parse_pruned<'b>(
    body: &'b [u8],
    reads: &Reads,
    arena: &'b Bump,
) -> Result<Borrowed<'b>, NotJson> {
    let text = body_text(body)?;
    Ok(propylon_json::parse(text, arena, reads)?)
}

/// The body as text. simdutf8 checks it with the CPU's vector instructions (chosen at run
/// time): 209 instructions against ~520 for a 1 KB body (callgrind); a body it refuses
/// is checked again by the standard library, whose error says where.
fn body_text(body: &[u8]) -> Result<&str, std::str::Utf8Error> {
    match simdutf8::basic::from_utf8(body) {
        Ok(text) => Ok(text),
        Err(_) => std::str::from_utf8(body),
    }
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
        // A short scan beats hashing the key (SipHash, under `preserve_order`) on the small
        // objects of typical bodies.
        propylon_json::value_member(self, key)
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
            // Without serde's serializer: ~170 instructions a string of a typical body, this
            // ~110.
            Value::String(text) => {
                propylon_json::write_str(text, out);
                true
            }
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
    #[inline]
    fn member(&self, key: &str) -> Option<&Borrowed<'b>> {
        Borrowed::member(self, key)
    }

    fn items(&self) -> Option<&[Borrowed<'b>]> {
        self.as_array()
    }

    fn push_children<'a>(&'a self, out: &mut Vec<&'a Borrowed<'b>>) {
        match self {
            Borrowed::Array(items) => out.extend(items.iter()),
            Borrowed::Object(members) => out.extend(members.iter().map(|(_, v)| v)),
            _ => {}
        }
    }

    fn write_json(&self, out: &mut Vec<u8>) -> bool {
        // Without serde's serializer (`propylon_json::Tree::write_json`).
        propylon_json::Tree::write_json(self, out);
        true
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
    use crate::mapping::arena_for;
    use serde_json::json;

    const TEXT: &str = r#"{"a":1,"s":"x\"y","o":{"k":[1,2.5,-3,null,true]},"a":2,"e":"é\u00e9"}"#;

    #[test]
    fn a_body_is_parsed_whole_or_refused_with_the_reason() {
        let arena = Bump::new();
        let doc = parse_borrowed(br#"{"a":"\u00e9t\u00e9","b":[1]}"#, &arena).unwrap();
        assert_eq!(doc.member("a").map(Doc::to_value), Some(json!("été")));
        let utf8 = parse_borrowed(b"{\"a\":\"\xff\"}", &arena).unwrap_err();
        assert!(matches!(utf8, NotJson::Utf8(_)), "{utf8}");
        assert!(utf8.to_string().contains("invalid utf-8"), "{utf8}");
        let json = parse_borrowed(b"{\"a\":1,}", &arena).unwrap_err();
        assert!(json.to_string().contains("line 1 column 8"), "{json}");
    }

    #[test]
    fn a_body_larger_than_the_first_chunk_of_its_arena_is_parsed_whole() {
        let items: Vec<String> = (0..30_000)
            .map(|i| format!(r#"{{"n":{i},"s":"x"}}"#))
            .collect();
        let text = format!("[{}]", items.join(","));
        let arena = arena_for(text.len());
        let doc = parse_borrowed(text.as_bytes(), &arena).unwrap();
        assert_eq!(
            Value::from(&doc),
            serde_json::from_str::<Value>(&text).unwrap()
        );
        let long = format!(r#"{{"s":"{}"}}"#, "y".repeat(1 << 20));
        let arena = arena_for(long.len());
        let doc = parse_borrowed(long.as_bytes(), &arena).unwrap();
        assert_eq!(
            doc.member("s").and_then(|s| s.as_str()).map(str::len),
            Some(1 << 20)
        );
        assert!(
            arena.allocated_bytes() < 128 * 1024,
            "{}",
            arena.allocated_bytes()
        );
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
            propylon_json::write_str(text, &mut ours);
            assert_eq!(
                &ours[1..],
                serde_json::to_string(text).unwrap().as_bytes(),
                "{text:?}"
            );
            let borrowed = Borrowed::Str(text);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            assert!(Doc::write_json(&borrowed, &mut a) && Value::from(text).write_json(&mut b));
            assert_eq!((&a[..], &b[..]), (&ours[1..], &ours[1..]));
        }
    }

    #[test]
    fn both_documents_read_and_write_alike() {
        let owned: Value = serde_json::from_str(TEXT).unwrap();
        let arena = Bump::new();
        let borrowed = parse_borrowed(TEXT.as_bytes(), &arena).unwrap();
        // A repeated name: the last value, as serde_json keeps it.
        assert_eq!(owned.member("a"), Some(&json!(2)));
        assert_eq!(borrowed.member("a").map(Doc::to_value), Some(json!(2)));
        assert_eq!(borrowed.member("s").map(Doc::to_value), Some(json!("x\"y")));
        for key in ["o", "e"] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            assert!(owned.member(key).unwrap().write_json(&mut a));
            assert!(Doc::write_json(borrowed.member(key).unwrap(), &mut b));
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
