//! The compiled form of a template and how it renders to a `Value`: one walk over the tree,
//! cloning only the values that land in the output.

use super::path::{Found, JsonPath};
use super::snippet::Snippet;
use serde_json::{Map, Value};

/// One compiled template node.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// Numbers, booleans, null, plain strings and `{ $literal: … }`.
    Literal(Lit),
    /// A `$…` string: left out when it finds nothing.
    Path(JsonPath),
    /// `{ $path, $default }`: the default when the path finds nothing.
    Default(JsonPath, Lit),
    /// `{ $each, $to }`: `$to` rendered once per item, `$` being the item.
    Each(Box<Each>),
    /// An object: keys whose template finds nothing are left out.
    Object(ObjectNode),
    /// An array: elements that find nothing are left out.
    Array(Vec<Node>),
}

/// A literal value with its JSON text, serialised once at compile time.
#[derive(Debug, Clone)]
pub(crate) struct Lit {
    pub(crate) value: Value,
    pub(crate) json: Snippet,
}

impl Lit {
    pub(crate) fn new(value: Value) -> Lit {
        let json = Snippet::new(&value.to_string());
        Lit { value, json }
    }
}

/// One key of an object template; `key_json` is the escaped `,"key":` written by
/// `write_json` (the comma left out before the first member written).
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) key: String,
    pub(crate) key_json: Snippet,
    pub(crate) node: Node,
    /// The same path walked from a parent the object finds once (`write_json` only).
    pub(crate) below: Option<Below>,
}

impl Field {
    pub(crate) fn new(key: String, node: Node) -> Field {
        let key_json = Snippet::new(&format!(",{}:", Value::String(key.clone())));
        Field {
            key,
            key_json,
            node,
            below: None,
        }
    }
}

/// An object template: its fields, and the parent paths that two or more of its `$…` fields
/// share (`$.body.customer.address` of `street`, `city` and `zip`). `write_json` finds each
/// parent once per object instead of walking it again for every field.
#[derive(Debug, Clone)]
pub(crate) struct ObjectNode {
    pub(crate) fields: Vec<Field>,
    pub(crate) parents: Vec<JsonPath>,
}

/// A field's path as its last step, walked from `parents[parent]`; `node` is the field's
/// `Path` or `Default` with that one step as its path.
#[derive(Debug, Clone)]
pub(crate) struct Below {
    pub(crate) parent: usize,
    pub(crate) node: Node,
}

impl ObjectNode {
    /// Shared parents kept per object: `write_json` finds them into an array on the stack.
    pub(crate) const MAX_PARENTS: usize = 4;

    pub(crate) fn new(mut fields: Vec<Field>) -> ObjectNode {
        let split: Vec<Option<(JsonPath, JsonPath)>> = fields
            .iter()
            .map(|f| match &f.node {
                Node::Path(path) | Node::Default(path, _) => path.parent_and_last(),
                _ => None,
            })
            .collect();
        let mut parents: Vec<JsonPath> = Vec::new();
        for (i, (field, split_path)) in fields.iter_mut().zip(&split).enumerate() {
            let Some((parent, last)) = split_path else {
                continue;
            };
            let shared = split.iter().enumerate().any(|(j, other)| {
                j != i && other.as_ref().is_some_and(|(p, _)| p.same_definite(parent))
            });
            if !shared {
                continue;
            }
            let at = match parents.iter().position(|p| p.same_definite(parent)) {
                Some(at) => at,
                None if parents.len() < Self::MAX_PARENTS => {
                    parents.push(parent.clone());
                    parents.len() - 1
                }
                None => continue,
            };
            let node = match &field.node {
                Node::Default(_, default) => Node::Default(last.clone(), default.clone()),
                _ => Node::Path(last.clone()),
            };
            field.below = Some(Below { parent: at, node });
        }
        ObjectNode { fields, parents }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Each {
    pub(crate) source: JsonPath,
    /// `source` without its final `[*]`, when it has that shape (see `JsonPath::list_parent`).
    pub(crate) list: Option<JsonPath>,
    pub(crate) to: Node,
}

impl Node {
    /// The node's output for `ctx`, `None` when it finds nothing.
    pub(crate) fn render(&self, ctx: &Value) -> Option<Value> {
        match self {
            Node::Literal(lit) => Some(lit.value.clone()),
            Node::Path(path) => path.find(ctx).to_value(),
            Node::Default(path, default) => path
                .find(ctx)
                .to_value()
                .or_else(|| Some(default.value.clone())),
            Node::Each(each) => each.render(ctx),
            Node::Object(object) => {
                let mut out = Map::with_capacity(object.fields.len());
                for field in &object.fields {
                    if let Some(value) = field.node.render(ctx) {
                        out.insert(field.key.clone(), value);
                    }
                }
                Some(Value::Object(out))
            }
            Node::Array(items) => Some(Value::Array(collect_some(
                items.len(),
                items.iter().map(|n| n.render(ctx)),
            ))),
        }
    }
}

impl Each {
    /// The items are the matches of an indefinite source, or the elements of the array a
    /// definite source finds; a definite non-array value is one item (an XML backend's list
    /// of one often arrives as a bare object). An existing empty list gives `[]`; a source
    /// that finds nothing is left out.
    fn render(&self, ctx: &Value) -> Option<Value> {
        let render_all = |items: &mut dyn ExactSizeIterator<Item = &Value>| {
            let len = items.len();
            Value::Array(collect_some(len, items.map(|item| self.to.render(item))))
        };
        if let Some(Found::One(Value::Array(items))) = self.list.as_ref().map(|l| l.find(ctx)) {
            return Some(render_all(&mut items.iter()));
        }
        match self.source.find(ctx) {
            Found::Nothing => None,
            Found::One(Value::Array(items)) => Some(render_all(&mut items.iter())),
            Found::Many(items) if items.is_empty() => None,
            Found::One(item) => Some(render_all(&mut std::iter::once(item))),
            Found::Many(items) => Some(render_all(&mut items.into_iter())),
        }
    }
}

/// Keeps the rendered values, with the capacity reserved up front: `filter_map().collect()`
/// cannot know the length and regrows the vector, a visible cost on an `$each` of many items.
fn collect_some(len: usize, rendered: impl Iterator<Item = Option<Value>>) -> Vec<Value> {
    let mut out = Vec::with_capacity(len);
    out.extend(rendered.flatten());
    out
}
