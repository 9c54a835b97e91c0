//! Builds a [`Borrowed`] document in place: each value is written straight into its slot in
//! the parent's vector. `serde_json_borrow`'s own visitor returns every value up through
//! serde's `Result`s, and those 32-byte moves through the stack stalled the CPU on store
//! forwarding (a third of the visitor's own time went to two such loads). serde_json still
//! reads the text, so its numbers, nesting limit and error messages are unchanged.

use super::doc::Borrowed;
use super::reads::Reads;
use serde::de::{DeserializeSeed, Deserializer, Error, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json_borrow::ObjectAsVec;
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

/// Parses `text` into a [`Borrowed`] document.
pub(crate) fn build(text: &str) -> Result<Borrowed<'_>, serde_json::Error> {
    build_pruned(text, &Reads::all())
}

/// Parses `text`, keeping only what `reads` names: other members are read as JSON (serde_json
/// still refuses bad text in them) but not built. Arrays keep their elements only when their
/// elements are read.
pub(crate) fn build_pruned<'a>(
    text: &'a str,
    reads: &Reads,
) -> Result<Borrowed<'a>, serde_json::Error> {
    let mut doc = Borrowed::Null;
    let escaped = Cell::new(false);
    let mut reader = serde_json::Deserializer::from_str(text);
    let slot = Slot {
        value: &mut doc,
        reads,
        escaped: &escaped,
    };
    match slot.deserialize(&mut reader) {
        Ok(()) => {
            reader.end()?;
            Ok(doc)
        }
        // `ObjectAsVec` takes only borrowed member names: a name with an escape (rare) sends
        // the whole body through serde_json_borrow's own visitor, which keeps it as text,
        // whole: a pruned document is only ever a cheaper one.
        Err(_) if escaped.get() => serde_json::from_str(text),
        Err(e) => Err(e),
    }
}

/// The first room made for an array's elements: growing 4 → 8 → 16 copied a typical 1 KB
/// body's item list twice.
const ROOM: usize = 8;

/// Where the next value goes, and what of it is kept; `escaped` is set when a member name
/// cannot be borrowed.
struct Slot<'t, 'de> {
    value: &'t mut Borrowed<'de>,
    reads: &'t Reads,
    escaped: &'t Cell<bool>,
}

/// A member name, borrowed from the text.
struct Name<'t>(&'t Cell<bool>);

impl<'de> DeserializeSeed<'de> for Name<'_> {
    type Value = &'de str;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<&'de str, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name<'_> {
    type Value = &'de str;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: Error>(self, name: &'de str) -> Result<&'de str, E> {
        Ok(name)
    }

    fn visit_str<E: Error>(self, _: &str) -> Result<&'de str, E> {
        self.0.set(true);
        Err(E::custom("a member name with an escape"))
    }
}

impl<'de> DeserializeSeed<'de> for Slot<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Slot<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_unit<E: Error>(self) -> Result<(), E> {
        *self.value = Borrowed::Null;
        Ok(())
    }

    fn visit_bool<E: Error>(self, v: bool) -> Result<(), E> {
        *self.value = Borrowed::Bool(v);
        Ok(())
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<(), E> {
        *self.value = Borrowed::Number(v.into());
        Ok(())
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<(), E> {
        *self.value = Borrowed::Number(v.into());
        Ok(())
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<(), E> {
        *self.value = Borrowed::Number(v.into());
        Ok(())
    }

    fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<(), E> {
        *self.value = Borrowed::Str(Cow::Borrowed(v));
        Ok(())
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<(), E> {
        *self.value = Borrowed::Str(Cow::Owned(v.to_owned()));
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut items = Vec::new();
        match self.reads.items() {
            Some(reads) => loop {
                // Each element is read in place into a slot of its own and moved in after:
                // a placeholder pushed ahead of the element would grow a full vector for the
                // closing bracket.
                let mut item = Borrowed::Null;
                let slot = Slot {
                    value: &mut item,
                    reads,
                    escaped: self.escaped,
                };
                if seq.next_element_seed(slot)?.is_none() {
                    break;
                }
                if items.capacity() == 0 {
                    items.reserve_exact(ROOM);
                }
                items.push(item);
            },
            None => while seq.next_element::<IgnoredAny>()?.is_some() {},
        }
        *self.value = Borrowed::Array(items);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // `ObjectAsVec` has no way to make room ahead (its keys are `CowStr`s, and a vector
        // of them handed over is copied), so an object grows as members come.
        let mut members = ObjectAsVec::default();
        while let Some(name) = map.next_key_seed(Name(self.escaped))? {
            let Some(reads) = self.reads.member(name) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let value = members.insert_unchecked_and_get_mut(name, Borrowed::Null);
            map.next_value_seed(Slot {
                value,
                reads,
                escaped: self.escaped,
            })?;
        }
        *self.value = Borrowed::Object(members);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// What serde_json_borrow's own visitor makes of `text`: the same document or error.
    fn same(text: &str) {
        let theirs: Result<Borrowed, _> = serde_json::from_str(text);
        match (build(text), theirs) {
            (Ok(ours), Ok(theirs)) => assert_eq!(ours, theirs, "{text}"),
            (Err(ours), Err(theirs)) => assert_eq!(ours.to_string(), theirs.to_string()),
            (ours, theirs) => panic!("{text}: {ours:?} but {theirs:?}"),
        }
    }

    #[test]
    fn builds_what_serde_json_borrow_builds() {
        for text in [
            r#"{"a":1,"b":[true,null,-0,1.5e3,18446744073709551615,-9223372036854775808],"c":{}}"#,
            r#"{"a":1,"a":2,"s":"x\"y\u00e9","e":[],"n":{"m":{"k":[[1],[2,[3]]]}}}"#,
            r#"{"\u00e9t\u00e9":1,"plain":{"k\"":"v"}}"#,
            r#"  [1, "two", {"three": 3}]  "#,
            "\"just text\"",
            "12",
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            r#"{"a":"\ud800"}"#,
            r#"[1,2"#,
            "",
        ] {
            same(text);
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        same(&deep);
        assert!(build(&deep)
            .unwrap_err()
            .to_string()
            .contains("recursion limit"));
    }

    #[test]
    fn an_escaped_member_name_is_kept_as_text() {
        let doc = build(r#"{"\u00e9":{"\"q\"":1},"b":2}"#).unwrap();
        let Borrowed::Object(members) = &doc else {
            panic!("not an object");
        };
        let names: Vec<&str> = members.keys().collect();
        assert_eq!(names, ["é", "b"]);
    }
}
