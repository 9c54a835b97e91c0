//! Renders a template straight to JSON bytes. Same output as `render` followed by
//! `serde_json::to_vec`, without building the output `Value`: no key copies, no map inserts
//! (hashing, with `preserve_order`), no clones of the values found, nothing to drop after.

use super::node::{Each, Node};
use super::path::Found;
use serde_json::Value;

impl Node {
    /// Appends this node's JSON to `out`; `false` (and `out` as it was) when it finds nothing.
    pub(crate) fn write_json(&self, ctx: &Value, out: &mut Vec<u8>) -> bool {
        match self {
            Node::Literal(lit) => {
                out.extend_from_slice(lit.json.as_bytes());
                true
            }
            Node::Path(path) => write_found(&path.find(ctx), out),
            Node::Default(path, default) => {
                let mark = out.len();
                if !write_found(&path.find(ctx), out) {
                    out.truncate(mark);
                    out.extend_from_slice(default.json.as_bytes());
                }
                true
            }
            Node::Each(each) => each.write_json(ctx, out),
            Node::Object(fields) => {
                out.push(b'{');
                let mut first = true;
                for field in fields {
                    let mark = out.len();
                    if !first {
                        out.push(b',');
                    }
                    out.extend_from_slice(field.key_json.as_bytes());
                    if field.node.write_json(ctx, out) {
                        first = false;
                    } else {
                        out.truncate(mark);
                    }
                }
                out.push(b'}');
                true
            }
            Node::Array(items) => {
                write_array(
                    items
                        .iter()
                        .map(|n| move |out: &mut Vec<u8>| n.write_json(ctx, out)),
                    out,
                );
                true
            }
        }
    }
}

impl Each {
    /// Mirrors `Each::render`: the same items, the same "nothing" cases.
    fn write_json(&self, ctx: &Value, out: &mut Vec<u8>) -> bool {
        let each = |item: &Value, out: &mut Vec<u8>| self.to.write_json(item, out);
        if let Some(Found::One(Value::Array(items))) = self.list.as_ref().map(|l| l.find(ctx)) {
            write_array(items.iter().map(|i| move |o: &mut Vec<u8>| each(i, o)), out);
            return true;
        }
        match self.source.find(ctx) {
            Found::Nothing => return false,
            Found::One(Value::Array(items)) => {
                write_array(items.iter().map(|i| move |o: &mut Vec<u8>| each(i, o)), out)
            }
            Found::One(item) => {
                write_array(std::iter::once(move |o: &mut Vec<u8>| each(item, o)), out)
            }
            Found::Many(items) if items.is_empty() => return false,
            Found::Many(items) => write_array(
                items.into_iter().map(|i| move |o: &mut Vec<u8>| each(i, o)),
                out,
            ),
        }
        true
    }
}

/// Writes `[a,b,…]`, leaving out the elements whose writer finds nothing.
fn write_array<W>(elements: impl Iterator<Item = W>, out: &mut Vec<u8>)
where
    W: FnOnce(&mut Vec<u8>) -> bool,
{
    out.push(b'[');
    let mut first = true;
    for write in elements {
        let mark = out.len();
        if !first {
            out.push(b',');
        }
        if write(out) {
            first = false;
        } else {
            out.truncate(mark);
        }
    }
    out.push(b']');
}

/// A path's result as JSON: the value, or an array of the matches; `false` for nothing.
fn write_found(found: &Found<'_>, out: &mut Vec<u8>) -> bool {
    match found {
        Found::Nothing => false,
        Found::One(value) => write_value(value, out),
        Found::Many(values) if values.is_empty() => false,
        Found::Many(values) => {
            write_array(
                values
                    .iter()
                    .map(|v| move |o: &mut Vec<u8>| write_value(v, o)),
                out,
            );
            true
        }
    }
}

/// Serialising a `Value` into a `Vec` cannot fail (keys are strings, writes are infallible);
/// should it ever, the caller drops what was written.
fn write_value(value: &Value, out: &mut Vec<u8>) -> bool {
    serde_json::to_writer(&mut *out, value).is_ok()
}
