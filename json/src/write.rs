//! A tree written as compact JSON text, byte for byte as serde_json writes the tree's `Value`,
//! without serde's serializer: a number or a string copied into a mapped body went through
//! `Serialize` at ~90 instructions each (34 a chain request; bench/README.md, stop 24).

use crate::{needs_escape, Number, Tree};

impl Tree<'_> {
    /// Appends the compact JSON text (members in order, a repeated name twice).
    #[inline]
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Strings and numbers, what templates copy most, without a call of their own.
        match *self {
            Tree::Str(text) => write_str(text, out),
            Tree::Number(n) => n.write_json(out),
            _ => self.write_other(out),
        }
    }

    fn write_other(&self, out: &mut Vec<u8>) {
        match *self {
            Tree::Null => out.extend_from_slice(b"null"),
            Tree::Bool(true) => out.extend_from_slice(b"true"),
            Tree::Bool(false) => out.extend_from_slice(b"false"),
            Tree::Number(n) => n.write_json(out),
            Tree::Str(text) => write_str(text, out),
            Tree::Array(items) => {
                out.push(b'[');
                for (at, item) in items.iter().enumerate() {
                    if at > 0 {
                        out.push(b',');
                    }
                    item.write_json(out);
                }
                out.push(b']');
            }
            Tree::Object(members) => {
                out.push(b'{');
                for (at, (name, value)) in members.iter().enumerate() {
                    if at > 0 {
                        out.push(b',');
                    }
                    write_str(name, out);
                    out.push(b':');
                    value.write_json(out);
                }
                out.push(b'}');
            }
        }
    }
}

impl Number {
    /// Appends the number as serde_json writes it: integers in decimal (the `itoa` crate,
    /// as serde_json's), floats through serde_json's own formatter (a non-finite one, which
    /// no parse gives, as `null`).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match *self {
            // One digit (counts, flags, quantities) without a copy call.
            Number::PosInt(n @ 0..=9) => out.push(b'0' + n as u8),
            Number::PosInt(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
            Number::NegInt(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
            Number::Float(n) => {
                if serde_json::to_writer(&mut *out, &n).is_err() {
                    // Writing into a `Vec` does not fail; should it, the text stays JSON.
                    out.extend_from_slice(b"null");
                }
            }
        }
    }
}

/// Appends `text` as a JSON string: between quotes as it is when nothing in it needs an
/// escape (nearly every string of a body), else with serde_json's escapes.
#[inline]
pub fn write_str(text: &str, out: &mut Vec<u8>) {
    if needs_escape(text) {
        if serde_json::to_writer(&mut *out, text).is_err() {
            out.extend_from_slice(b"\"\"");
        }
        return;
    }
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    out.extend_from_slice(bytes);
    out.push(b'"');
}
