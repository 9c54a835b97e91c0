//! Parses text into a [`Tree`] in an arena. Values go onto two stacks shared by the whole
//! parse (values, and members' names); when an array or an object closes, its run of the
//! stacks is copied into the arena as one slice of its final length and the run is popped.
//! No value travels back up through serde's `Result`s (32-byte moves through the stack that
//! stalled the CPU on store forwarding: bench/README.md, stop 12), and nothing grows in place.

use crate::{Bump, Number, Tree};
use serde::de::{DeserializeSeed, Deserializer, Error, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// What of a document to keep: the rest is read (serde_json still refuses bad text in it) but
/// not built.
pub trait Keep {
    /// What is kept of the member `name` of an object here; `None`: nothing.
    fn member(&self, name: &str) -> Option<&Self>;
    /// What is kept of each element of an array here; `None`: nothing (the array is empty).
    fn items(&self) -> Option<&Self>;
}

/// Keeps everything.
pub struct Everything;

impl Keep for Everything {
    fn member(&self, _: &str) -> Option<&Everything> {
        Some(self)
    }

    fn items(&self) -> Option<&Everything> {
        Some(self)
    }
}

/// Parses one JSON value from `text`, whole (nothing but whitespace after it), keeping what
/// `keep` names. Escaped strings and names are unescaped into `arena`.
pub fn parse<'a>(
    text: &'a str,
    arena: &'a Bump,
    keep: &impl Keep,
) -> Result<Tree<'a>, serde_json::Error> {
    // The stacks hold only the members and elements of the containers still open: the
    // widest object or array and its parents, a fraction of the body's nodes.
    let mut stacks = Stacks {
        arena,
        values: Vec::with_capacity(16 + text.len() / 32),
        names: Vec::with_capacity(16),
    };
    let mut reader = serde_json::Deserializer::from_str(text);
    Slot {
        stacks: &mut stacks,
        keep,
    }
    .deserialize(&mut reader)?;
    reader.end()?;
    Ok(stacks.values.pop().unwrap_or_default())
}

struct Stacks<'a> {
    arena: &'a Bump,
    /// Values of the arrays and objects still open, and the root once read.
    values: Vec<Tree<'a>>,
    /// The names of the open objects' members, in step with their values.
    names: Vec<&'a str>,
}

/// Reads one value and pushes it onto `values`.
struct Slot<'s, 'a, K> {
    stacks: &'s mut Stacks<'a>,
    keep: &'s K,
}

impl<'de, K: Keep> DeserializeSeed<'de> for Slot<'_, 'de, K> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, K: Keep> Visitor<'de> for Slot<'_, 'de, K> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_unit<E: Error>(self) -> Result<(), E> {
        self.stacks.values.push(Tree::Null);
        Ok(())
    }

    fn visit_bool<E: Error>(self, v: bool) -> Result<(), E> {
        self.stacks.values.push(Tree::Bool(v));
        Ok(())
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<(), E> {
        self.stacks.values.push(Tree::Number(Number::PosInt(v)));
        Ok(())
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<(), E> {
        self.stacks.values.push(Tree::Number(Number::from(v)));
        Ok(())
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<(), E> {
        self.stacks.values.push(Tree::Number(Number::Float(v)));
        Ok(())
    }

    fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<(), E> {
        self.stacks.values.push(Tree::Str(v));
        Ok(())
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<(), E> {
        let text = self.stacks.arena.alloc_str(v);
        self.stacks.values.push(Tree::Str(text));
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mark = self.stacks.values.len();
        match self.keep.items() {
            Some(keep) => {
                while seq
                    .next_element_seed(Slot {
                        stacks: &mut *self.stacks,
                        keep,
                    })?
                    .is_some()
                {}
            }
            None => while seq.next_element::<IgnoredAny>()?.is_some() {},
        }
        let stacks = &mut *self.stacks;
        let items = stacks
            .values
            .get(mark..)
            .map_or(&[][..], |run| stacks.arena.alloc_slice_copy(run));
        stacks.values.truncate(mark);
        stacks.values.push(Tree::Array(items));
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (value_mark, name_mark) = (self.stacks.values.len(), self.stacks.names.len());
        while let Some(name) = map.next_key_seed(Name(self.stacks.arena))? {
            let Some(keep) = self.keep.member(name) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            self.stacks.names.push(name);
            map.next_value_seed(Slot {
                stacks: &mut *self.stacks,
                keep,
            })?;
        }
        let stacks = &mut *self.stacks;
        let names = stacks.names.get(name_mark..).unwrap_or_default();
        let values = stacks.values.get(value_mark..).unwrap_or_default();
        let members = stacks
            .arena
            .alloc_slice_fill_iter(names.iter().copied().zip(values.iter().copied()));
        stacks.values.truncate(value_mark);
        stacks.names.truncate(name_mark);
        stacks.values.push(Tree::Object(members));
        Ok(())
    }
}

/// A member name: borrowed from the text, or unescaped into the arena.
struct Name<'a>(&'a Bump);

impl<'de> DeserializeSeed<'de> for Name<'de> {
    type Value = &'de str;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<&'de str, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name<'de> {
    type Value = &'de str;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: Error>(self, name: &'de str) -> Result<&'de str, E> {
        Ok(name)
    }

    fn visit_str<E: Error>(self, name: &str) -> Result<&'de str, E> {
        Ok(self.0.alloc_str(name))
    }
}
