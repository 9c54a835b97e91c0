//! Renders a template straight to JSON bytes. Same output as `render` followed by
//! `serde_json::to_vec`, without building the output `Value`: no key copies, no map inserts
//! (hashing, with `preserve_order`), no clones of the values found, nothing to drop after.

use super::doc::Doc;
use super::node::{Below, Each, Field, Node, ObjectNode};
use super::path::Found;

impl Node {
    /// Appends this node's JSON to `out`; `false` (and `out` as it was) when it finds nothing.
    pub(crate) fn write_json<D: Doc>(&self, ctx: &D, out: &mut Vec<u8>) -> bool {
        match self {
            Node::Literal(lit) => {
                lit.json.write(out);
                true
            }
            Node::Path(path) => write_found(&path.find(ctx), out),
            Node::Default(path, default) => {
                let mark = out.len();
                if !write_found(&path.find(ctx), out) {
                    out.truncate(mark);
                    default.json.write(out);
                }
                true
            }
            Node::Each(each) => each.write_json(ctx, out),
            Node::Object(object) if object.parents.is_empty() => {
                write_object(object, out, |field, out| field.node.write_json(ctx, out))
            }
            Node::Object(object) => {
                let mut parents = [None; ObjectNode::MAX_PARENTS];
                for (found, parent) in parents.iter_mut().zip(&object.parents) {
                    *found = match parent.find(ctx) {
                        Found::One(value) => Some(value),
                        _ => None,
                    };
                }
                write_object(object, out, |field, out| match &field.below {
                    Some(below) => {
                        write_below(below, parents.get(below.parent).copied().flatten(), out)
                    }
                    None => field.node.write_json(ctx, out),
                })
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
    fn write_json<D: Doc>(&self, ctx: &D, out: &mut Vec<u8>) -> bool {
        let each = |item: &D, out: &mut Vec<u8>| self.to.write_json(item, out);
        if let Some(items) = self.list.as_ref().and_then(|l| l.find(ctx).one_array()) {
            write_array(items.iter().map(|i| move |o: &mut Vec<u8>| each(i, o)), out);
            return true;
        }
        let found = self.source.find(ctx);
        if let Some(items) = found.one_array() {
            write_array(items.iter().map(|i| move |o: &mut Vec<u8>| each(i, o)), out);
            return true;
        }
        match found {
            Found::Nothing => return false,
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

/// Writes `{"key":value,…}`, leaving out the fields whose writer finds nothing.
fn write_object(
    object: &ObjectNode,
    out: &mut Vec<u8>,
    write: impl Fn(&Field, &mut Vec<u8>) -> bool,
) -> bool {
    out.push(b'{');
    let mut first = true;
    for field in &object.fields {
        let mark = out.len();
        // One copy for the comma and the key (the comma left out before the first).
        field.key_json.write_from(usize::from(first), out);
        if write(field, out) {
            first = false;
        } else {
            out.truncate(mark);
        }
    }
    out.push(b'}');
    true
}

/// A field walked from its parent, as the whole path would be: nothing when the parent is
/// missing, or the `$default`.
fn write_below<D: Doc>(below: &Below, parent: Option<&D>, out: &mut Vec<u8>) -> bool {
    match (parent, &below.node) {
        (Some(parent), node) => node.write_json(parent, out),
        (None, Node::Default(_, default)) => {
            default.json.write(out);
            true
        }
        (None, _) => false,
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
/// Serialising into a `Vec` cannot fail (keys are strings, writes are infallible); should it
/// ever, the caller drops what was written. Inlined as `JsonPath::find` is.
#[inline(always)]
fn write_found<D: Doc>(found: &Found<'_, D>, out: &mut Vec<u8>) -> bool {
    match found {
        Found::Nothing => false,
        Found::One(value) => value.write_json(out),
        Found::Many(values) if values.is_empty() => false,
        Found::Many(values) => {
            write_array(
                values
                    .iter()
                    .map(|v| move |o: &mut Vec<u8>| v.write_json(o)),
                out,
            );
            true
        }
    }
}
