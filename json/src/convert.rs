//! Between a [`Tree`] and serde_json: written as serde_json writes a `Value`, copied into a
//! `Value`, and a `Value` borrowed into a tree.

use crate::{Bump, Number, Tree};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Number::PosInt(n) => s.serialize_u64(n),
            Number::NegInt(n) => s.serialize_i64(n),
            Number::Float(n) => s.serialize_f64(n),
        }
    }
}

/// The same text as the tree's `Value` gives (members in order, a repeated name twice).
impl Serialize for Tree<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Tree::Null => s.serialize_unit(),
            Tree::Bool(b) => s.serialize_bool(*b),
            Tree::Number(n) => n.serialize(s),
            Tree::Str(text) => s.serialize_str(text),
            Tree::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in *items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Tree::Object(members) => {
                let mut map = s.serialize_map(Some(members.len()))?;
                for (name, value) in *members {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
        }
    }
}

impl From<&Tree<'_>> for Value {
    /// A copy; a repeated name keeps its last value (at its first place), as serde_json's
    /// own parse of the text does.
    fn from(tree: &Tree<'_>) -> Value {
        match tree {
            Tree::Null => Value::Null,
            Tree::Bool(b) => Value::Bool(*b),
            Tree::Number(n) => Value::Number(n.to_serde()),
            Tree::Str(text) => Value::String((*text).to_owned()),
            Tree::Array(items) => Value::Array(items.iter().map(Value::from).collect()),
            Tree::Object(members) => {
                let mut map = Map::with_capacity(members.len());
                for (name, value) in *members {
                    map.insert((*name).to_owned(), Value::from(value));
                }
                Value::Object(map)
            }
        }
    }
}

impl<'a> Tree<'a> {
    /// `value` as a tree: strings and names borrowed from it, arrays and objects in `arena`.
    pub fn from_value(value: &'a Value, arena: &'a Bump) -> Tree<'a> {
        match value {
            Value::Null => Tree::Null,
            Value::Bool(b) => Tree::Bool(*b),
            Value::Number(n) => Tree::Number(Number::from(n)),
            Value::String(text) => Tree::Str(text),
            Value::Array(items) => Tree::Array(
                arena.alloc_slice_fill_iter(items.iter().map(|item| Tree::from_value(item, arena))),
            ),
            Value::Object(map) => Tree::Object(
                arena.alloc_slice_fill_iter(
                    map.iter()
                        .map(|(name, member)| (name.as_str(), Tree::from_value(member, arena))),
                ),
            ),
        }
    }
}
