//! Parses text into a [`Tree`] in an arena. Values go onto two stacks shared by the whole
//! parse (arrays' elements, and objects' members as `(name, value)`); when an array or an
//! object closes, its run of its stack is copied into the arena as one slice of its final
//! length and the run is popped.
//! No value travels back up through serde's `Result`s (32-byte moves through the stack that
//! stalled the CPU on store forwarding: bench/README.md, stop 12), and nothing grows in place.

use crate::{plain, Bump, Number, Tree};
use serde::de::{DeserializeSeed, Deserializer, Error, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
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
    let (values, members) = SpareStacks::take();
    let mut stacks = Stacks {
        arena,
        values,
        members,
    };
    stacks.values.reserve(16);
    stacks.members.reserve(16 + text.len() / 32);
    let read = match plain::parse(text, &mut stacks, keep) {
        Some(root) => Ok(root),
        None => {
            // Not in plain form (or not JSON): serde_json decides, from empty stacks.
            stacks.values.clear();
            stacks.members.clear();
            with_serde(text, &mut stacks, keep)
        }
    };
    SpareStacks::put(stacks.values, stacks.members);
    read
}

/// Parses `text` with serde_json as the reader: any JSON, and serde_json's errors.
pub(crate) fn with_serde<'a>(
    text: &'a str,
    stacks: &mut Stacks<'a>,
    keep: &impl Keep,
) -> Result<Tree<'a>, serde_json::Error> {
    let mut reader = serde_json::Deserializer::from_str(text);
    let read = Slot {
        stacks: &mut *stacks,
        keep,
        name: None,
    }
    .deserialize(&mut reader)
    .and_then(|()| reader.end());
    let root = stacks.values.pop().unwrap_or_default();
    read.map(|()| root)
}

/// The parse's two stacks, kept per thread from one parse to the next (two allocations and
/// two frees fewer per body). Kept empty, as `'static` vectors: an emptied vector of
/// another lifetime is collected into one in place, reusing its memory.
struct SpareStacks;

type Member<'a> = (&'a str, Tree<'a>);

thread_local! {
    static SPARE_STACKS: Cell<(Vec<Tree<'static>>, Vec<Member<'static>>)> =
        const { Cell::new((Vec::new(), Vec::new())) };
}

impl SpareStacks {
    /// Stacks that grew past this many entries (a very wide body) are freed, not kept.
    const KEEP_MOST: usize = 4096;

    fn take<'a>() -> (Vec<Tree<'a>>, Vec<Member<'a>>) {
        SPARE_STACKS.try_with(Cell::take).unwrap_or_default()
    }

    fn put(mut values: Vec<Tree<'_>>, mut members: Vec<Member<'_>>) {
        if values.capacity() > Self::KEEP_MOST || members.capacity() > Self::KEEP_MOST {
            return;
        }
        values.clear();
        members.clear();
        let values: Vec<Tree<'static>> = values.into_iter().map(|_| Tree::Null).collect();
        let members: Vec<Member<'static>> = members.into_iter().map(|_| ("", Tree::Null)).collect();
        let _ = SPARE_STACKS.try_with(|spare| spare.set((values, members)));
    }
}

pub(crate) struct Stacks<'a> {
    pub(crate) arena: &'a Bump,
    /// The elements of the arrays still open, and the root once read.
    pub(crate) values: Vec<Tree<'a>>,
    /// The members of the objects still open. One push per member, and an object closes
    /// with one copy (a stack of names beside the values cost a second push and a zip).
    pub(crate) members: Vec<Member<'a>>,
}

impl<'a> Stacks<'a> {
    /// The array of the values from `mark` on (its elements), popped.
    #[inline(always)]
    pub(crate) fn close_array(&mut self, mark: usize) -> Tree<'a> {
        Tree::Array(pop_run(self.arena, &mut self.values, mark))
    }

    /// The object of the members from `mark` on, popped.
    #[inline(always)]
    pub(crate) fn close_object(&mut self, mark: usize) -> Tree<'a> {
        Tree::Object(pop_run(self.arena, &mut self.members, mark))
    }
}

/// The entries of `stack` from `mark` on, copied into `arena` as one slice and popped.
#[inline(always)]
fn pop_run<'a, T: Copy>(arena: &'a Bump, stack: &mut Vec<T>, mark: usize) -> &'a [T] {
    let run = stack
        .get(mark..)
        .map_or(&[][..], |run| arena.alloc_slice_copy(run));
    stack.truncate(mark);
    run
}

/// Reads one value and pushes it: onto `members` under `name` when given, else onto
/// `values`.
struct Slot<'s, 'a, K> {
    stacks: &'s mut Stacks<'a>,
    keep: &'s K,
    name: Option<&'a str>,
}

impl<'a, K> Slot<'_, 'a, K> {
    fn push(self, value: Tree<'a>) {
        match self.name {
            Some(name) => self.stacks.members.push((name, value)),
            None => self.stacks.values.push(value),
        }
    }
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
        self.push(Tree::Null);
        Ok(())
    }

    fn visit_bool<E: Error>(self, v: bool) -> Result<(), E> {
        self.push(Tree::Bool(v));
        Ok(())
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<(), E> {
        self.push(Tree::Number(Number::PosInt(v)));
        Ok(())
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<(), E> {
        self.push(Tree::Number(Number::from(v)));
        Ok(())
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<(), E> {
        self.push(Tree::Number(Number::Float(v)));
        Ok(())
    }

    fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<(), E> {
        self.push(Tree::Str(v));
        Ok(())
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<(), E> {
        let text = self.stacks.arena.alloc_str(v);
        self.push(Tree::Str(text));
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
                        name: None,
                    })?
                    .is_some()
                {}
            }
            None => while seq.next_element::<IgnoredAny>()?.is_some() {},
        }
        let array = self.stacks.close_array(mark);
        self.push(array);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mark = self.stacks.members.len();
        while let Some(name) = map.next_key_seed(Name(self.stacks.arena))? {
            let Some(keep) = self.keep.member(name) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            map.next_value_seed(Slot {
                stacks: &mut *self.stacks,
                keep,
                name: Some(name),
            })?;
        }
        let object = self.stacks.close_object(mark);
        self.push(object);
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spare_capacity() -> (usize, usize) {
        SPARE_STACKS.with(|spare| {
            let stacks = spare.take();
            let capacity = (stacks.0.capacity(), stacks.1.capacity());
            spare.set(stacks);
            capacity
        })
    }

    #[test]
    fn the_stacks_are_kept_for_the_next_parse_with_their_memory() {
        let arena = Bump::new();
        let text = r#"{"a":[1,2,{"b":"c"}],"d":null}"#;
        parse(text, &arena, &Everything).unwrap();
        let (values, members) = spare_capacity();
        assert!(values >= 16 && members >= 16, "{values} {members}");
        // A failed parse gives its stacks back too, emptied.
        assert!(parse(r#"{"a":[1,"#, &arena, &Everything).is_err());
        assert_eq!(spare_capacity(), (values, members));
        let tree = parse(text, &arena, &Everything).unwrap();
        assert_eq!(tree.member("d"), Some(&Tree::Null));
    }
}
