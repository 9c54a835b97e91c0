//! A JSON body as a tree in an arena: the form the gateway parses request and answer bodies
//! into, which the validator (jsonschema) and the mapping templates both read.
//!
//! Every node is `Copy`: strings point into the body's text (or, when they hold an escape,
//! into the arena), and each array's elements and each object's members are one slice in
//! the arena, allocated once at its final length. So a body costs three allocations (the
//! arena and the parse's two stacks) instead of one per object and array, nothing is freed
//! node by node, and lookups scan a contiguous run of `(name, value)` pairs (bench/README.md,
//! stop 21). Bodies in plain form are read by `plain`; serde_json reads the rest, so errors,
//! the nesting limit and the trees of other bodies are serde_json's (stop 23). A tree is
//! written back as serde_json writes its `Value`, without serde (`write`, stop 24).

mod build;
mod convert;
mod number;
mod plain;
mod write;

pub use build::{parse, Everything, Keep};
pub use bumpalo::Bump;
pub use number::Number;
pub use write::write_str;

/// One JSON value; the arena and the text it was parsed from outlive it (`'a`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Tree<'a> {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    Str(&'a str),
    Array(&'a [Tree<'a>]),
    /// Members in document order; a repeated name is kept each time (lookups take the last,
    /// as serde_json keeps it).
    Object(&'a [(&'a str, Tree<'a>)]),
}

impl<'a> Tree<'a> {
    /// An object's member; with a repeated name, the last one.
    #[inline]
    pub fn member(&self, name: &str) -> Option<&Tree<'a>> {
        match self {
            Tree::Object(members) => members
                .iter()
                .rev()
                .find(|(n, _)| same_name(n, name))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&'a [Tree<'a>]> {
        match self {
            Tree::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&'a [(&'a str, Tree<'a>)]> {
        match self {
            Tree::Object(members) => Some(members),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Tree::Str(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Tree::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Tree::Null)
    }

    /// An object of these members, in `arena`.
    pub fn object(
        arena: &'a Bump,
        members: impl IntoIterator<Item = (&'a str, Tree<'a>), IntoIter: ExactSizeIterator>,
    ) -> Tree<'a> {
        Tree::Object(arena.alloc_slice_fill_iter(members))
    }
}

/// `text` holds a byte that JSON writes escaped: a control character, `"` or `\`. Eight
/// bytes at a time (the parse's scan): a byte loop took ~4 instructions a byte. The bytes
/// after the last whole word are checked as one more word that overlaps the one before
/// (or, under eight bytes, as two 4-byte halves that may overlap), not one by one.
#[inline]
pub fn needs_escape(text: &str) -> bool {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let word = |at: usize| word8(bytes, at).unwrap_or(0);
    if n >= 8 {
        let mut at = 0;
        while at + 8 <= n {
            if plain::special_lanes(word(at)) != 0 {
                return true;
            }
            at += 8;
        }
        return at != n && plain::special_lanes(word(n - 8)) != 0;
    }
    if n >= 4 {
        let half = |at: usize| u64::from(word4(bytes, at).unwrap_or(0));
        return plain::special_lanes(half(0) | half(n - 4) << 32) != 0;
    }
    bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// A member of a serde_json object. A short object (JWT claims, a config's small maps) is
/// scanned: `preserve_order`'s map hashes the name with SipHash first, ~200 instructions a
/// lookup against ~10 a member scanned.
#[inline]
pub fn value_member<'v>(value: &'v serde_json::Value, name: &str) -> Option<&'v serde_json::Value> {
    value_entry(value, name).map(|(_, v)| v)
}

/// [`value_member`] with the object's own name for it (borrowed for as long as the value).
#[inline]
pub fn value_entry<'v>(
    value: &'v serde_json::Value,
    name: &str,
) -> Option<(&'v str, &'v serde_json::Value)> {
    let found = match value {
        serde_json::Value::Object(map) if map.len() <= 16 => {
            map.iter().find(|(n, _)| same_name(n, name))
        }
        serde_json::Value::Object(map) => map.get_key_value(name),
        _ => None,
    };
    found.map(|(n, v)| (n.as_str(), v))
}

/// Two member names are equal. Names up to 16 bytes (nearly all) are compared as two words
/// that may overlap (the first and the last 4 or 8 bytes): a byte loop took ~4 instructions
/// a byte on every name of the same length, and a `memcmp` call per member scanned cost more
/// than the scan (1 % of a chain request).
#[inline(always)]
pub fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        // The first, middle and last bytes: every byte of a name this short.
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=8 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        9..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        _ => a == b,
    }
}

#[inline(always)]
fn word4(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at + 4)?;
    word.try_into().ok().map(u32::from_ne_bytes)
}

#[inline(always)]
fn word8(bytes: &[u8], at: usize) -> Option<u64> {
    let word = bytes.get(at..at + 8)?;
    word.try_into().ok().map(u64::from_ne_bytes)
}

#[cfg(test)]
mod tests;
