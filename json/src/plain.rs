//! Bodies in plain form, read without serde: no escape in any string, every number an
//! integer or a float that is exact in one `f64` step. Nearly every body a gateway sees is
//! such. serde_json's visitor interface cost ~300 instructions a member (a map access, a seed
//! and a visitor call per value); this reader builds the same tree directly, in ~half.
//!
//! It decides only what it can decide alone: anything else (an escape, a long or
//! out-of-range number, deep nesting, any error) gives `None`, and the caller parses the text
//! with serde_json, whose tree or error is then the answer. So a tree from here is always
//! the one serde_json's parse gives (a differential test holds the two equal).

use crate::build::Stacks;
use crate::{Keep, Number, Tree};

/// Nesting deeper than this is left to serde_json (whose limit is 128).
const MAX_DEPTH: u32 = 100;

/// Largest significand a float may have here: every integer up to 2^53 is exact in an `f64`.
const MAX_EXACT: u64 = 1 << 53;

/// Powers of ten exact in an `f64`: a significand up to 2^53 times or over one of these is
/// one correctly rounded operation, the answer of any correct float parser (serde_json's
/// included, with or without `float_roundtrip`).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `text` as a tree, keeping what `keep` names, or `None` when it is not in plain form (or
/// not JSON). On `None`, the stacks hold leftovers: the caller empties them.
pub(crate) fn parse<'a>(
    text: &'a str,
    stacks: &mut Stacks<'a>,
    keep: &impl Keep,
) -> Option<Tree<'a>> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        stacks,
    };
    reader.value(Some(keep), MAX_DEPTH)?;
    if reader.next().is_some() {
        return None;
    }
    reader.stacks.values.pop()
}

struct Reader<'s, 'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    stacks: &'s mut Stacks<'a>,
}

impl<'a> Reader<'_, 'a> {
    /// The next byte that is not whitespace, left unread. Every byte that may start a value
    /// or follow one is above the space, so one comparison answers for bodies without
    /// whitespace.
    #[inline(always)]
    fn next(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        if b > b' ' {
            return Some(b);
        }
        self.whitespace();
        self.peek()
    }

    #[inline(never)]
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Reads one value; pushes it when `keep` is given (else only checks it).
    fn value<K: Keep>(&mut self, keep: Option<&K>, depth: u32) -> Option<()> {
        let value = match self.next()? {
            b'"' => Tree::Str(self.string()?),
            b'{' => return self.object(keep, depth),
            b'[' => return self.array(keep, depth),
            b't' => self.literal(b"true", Tree::Bool(true))?,
            b'f' => self.literal(b"false", Tree::Bool(false))?,
            b'n' => self.literal(b"null", Tree::Null)?,
            _ => Tree::Number(self.number()?),
        };
        if keep.is_some() {
            self.stacks.values.push(value);
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8], value: Tree<'a>) -> Option<Tree<'a>> {
        let end = self.pos + word.len();
        if self.bytes.get(self.pos..end)? != word {
            return None;
        }
        self.pos = end;
        Some(value)
    }

    /// A string without escapes or control characters, from its opening quote.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a str> {
        let start = self.pos + 1;
        let mut at = start;
        // Eight bytes at a time, as serde_json's own scan: the first byte below 0x20, `"`
        // or `\` sets the high bit of its lane (borrows only run from a set lane upwards, so
        // the lowest set lane is exact).
        while let Some(chunk) = self.bytes.get(at..at + 8) {
            let word = u64::from_le_bytes(chunk.try_into().ok()?);
            let special = special_lanes(word);
            if special != 0 {
                at += (special.trailing_zeros() / 8) as usize;
                return self.string_end(start, at);
            }
            at += 8;
        }
        while let Some(&b) = self.bytes.get(at) {
            if b < 0x20 || b == b'"' || b == b'\\' {
                return self.string_end(start, at);
            }
            at += 1;
        }
        None
    }

    /// The string from `start` closed at `at`, when the byte there is its closing quote.
    #[inline(always)]
    fn string_end(&mut self, start: usize, at: usize) -> Option<&'a str> {
        if self.bytes.get(at) != Some(&b'"') {
            return None;
        }
        self.pos = at + 1;
        self.text.get(start..at)
    }

    /// A number, read as serde_json reads it (`deserialize_any`): an integer as `u64`, or
    /// `i64` when negative (`-0` and integers below `i64::MIN` as floats); a float only when
    /// exact in one step, else `None`.
    fn number(&mut self) -> Option<Number> {
        let positive = if self.peek() == Some(b'-') {
            self.pos += 1;
            false
        } else {
            true
        };
        let (mut significand, count) = match self.peek()? {
            b'0' => {
                self.pos += 1;
                if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    return None;
                }
                (0, 1)
            }
            b'1'..=b'9' => self.digits(0, 0)?,
            _ => return None,
        };
        let mut exponent: i32 = 0;
        let mut is_float = false;
        if self.peek() == Some(b'.') {
            is_float = true;
            self.pos += 1;
            let before = self.pos;
            significand = self.digits(significand, count)?.0;
            if self.pos == before {
                return None;
            }
            exponent = -i32::try_from(self.pos - before).ok()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            is_float = true;
            self.pos += 1;
            let negative = match self.peek() {
                Some(b'-') => {
                    self.pos += 1;
                    true
                }
                Some(b'+') => {
                    self.pos += 1;
                    false
                }
                _ => false,
            };
            let before = self.pos;
            let mut written: i32 = 0;
            while let Some(b @ b'0'..=b'9') = self.peek() {
                written = written.checked_mul(10)?.checked_add(i32::from(b - b'0'))?;
                self.pos += 1;
            }
            if self.pos == before {
                return None;
            }
            exponent = if negative {
                exponent.checked_sub(written)?
            } else {
                exponent.checked_add(written)?
            };
        }
        if !is_float {
            return Some(integer(positive, significand));
        }
        float(positive, significand, exponent).map(Number::Float)
    }

    /// Decimal digits onto `significand` (of `had` digits so far): `None` past 19 digits in
    /// all, which is as far as a `u64` always holds (longer ones are left to serde_json).
    #[inline(always)]
    fn digits(&mut self, mut significand: u64, had: usize) -> Option<(u64, usize)> {
        let start = self.pos;
        while let Some(&b) = self.bytes.get(self.pos) {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            significand = significand.wrapping_mul(10).wrapping_add(u64::from(digit));
            self.pos += 1;
        }
        let count = had + (self.pos - start);
        (count <= 19).then_some((significand, count))
    }

    fn array<K: Keep>(&mut self, keep: Option<&K>, depth: u32) -> Option<()> {
        let depth = depth.checked_sub(1)?;
        self.pos += 1;
        let mark = self.stacks.values.len();
        let items = keep.and_then(Keep::items);
        if self.next()? == b']' {
            self.pos += 1;
        } else {
            loop {
                self.value(items, depth)?;
                match self.next()? {
                    b',' => self.pos += 1,
                    b']' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        if keep.is_some() {
            let stacks = &mut *self.stacks;
            let items = stacks
                .values
                .get(mark..)
                .map_or(&[][..], |run| stacks.arena.alloc_slice_copy(run));
            stacks.values.truncate(mark);
            stacks.values.push(Tree::Array(items));
        }
        Some(())
    }

    fn object<K: Keep>(&mut self, keep: Option<&K>, depth: u32) -> Option<()> {
        let depth = depth.checked_sub(1)?;
        self.pos += 1;
        let (value_mark, name_mark) = (self.stacks.values.len(), self.stacks.names.len());
        if self.next()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                if self.next()? != b'"' {
                    return None;
                }
                let name = self.string()?;
                if self.next()? != b':' {
                    return None;
                }
                self.pos += 1;
                match keep.and_then(|keep| keep.member(name)) {
                    Some(member) => {
                        self.stacks.names.push(name);
                        self.value(Some(member), depth)?;
                    }
                    None => self.value::<K>(None, depth)?,
                }
                match self.next()? {
                    b',' => self.pos += 1,
                    b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        if keep.is_some() {
            let stacks = &mut *self.stacks;
            let names = stacks.names.get(name_mark..).unwrap_or_default();
            let values = stacks.values.get(value_mark..).unwrap_or_default();
            let members = stacks
                .arena
                .alloc_slice_fill_iter(names.iter().copied().zip(values.iter().copied()));
            stacks.values.truncate(value_mark);
            stacks.names.truncate(name_mark);
            stacks.values.push(Tree::Object(members));
        }
        Some(())
    }
}

/// The lanes of `word` holding a byte below 0x20, `"` or `\`, as their high bits.
#[inline(always)]
fn special_lanes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let control = word.wrapping_sub(ONES * 0x20);
    let quote = (word ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES);
    let backslash = (word ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
    (control | quote | backslash) & !word & HIGH
}

/// An integer as serde_json gives it: `u64` when positive; when negative, `i64`, or a float
/// for `-0` and below `i64::MIN`.
fn integer(positive: bool, significand: u64) -> Number {
    if positive {
        return Number::PosInt(significand);
    }
    #[allow(clippy::cast_possible_wrap)]
    let negative = (significand as i64).wrapping_neg();
    if negative >= 0 {
        #[allow(clippy::cast_precision_loss)]
        Number::Float(-(significand as f64))
    } else {
        Number::NegInt(negative)
    }
}

/// `significand × 10^exponent` when one exact step makes it; else `None`.
fn float(positive: bool, significand: u64, exponent: i32) -> Option<f64> {
    if significand > MAX_EXACT {
        return None;
    }
    let power = *POW10.get(usize::try_from(exponent.unsigned_abs()).ok()?)?;
    #[allow(clippy::cast_precision_loss)]
    let exact = significand as f64;
    let value = if exponent >= 0 {
        exact * power
    } else {
        exact / power
    };
    Some(if positive { value } else { -value })
}

#[cfg(test)]
mod tests;
