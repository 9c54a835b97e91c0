//! Bodies in plain form, read without serde: every number an integer or a float exact in one
//! `f64` step, no escaped surrogate in any string. Most bodies are such. serde_json's
//! visitor interface (a map access, a seed and a visitor call per value) cost 40,800
//! instructions for the chain benchmark's request and answer; this reader builds the same
//! trees in 28,000 (profile-guided: 26,900 against 32,000; bench/README.md, stop 23), and
//! in 25,200 since members go onto one stack (stop 24), 24,900 since strings are sliced
//! without boundary checks (stop 25).
//!
//! It decides only what it can decide alone: anything else (an escaped surrogate, a long or
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
    let mut reader = Reader { text, stacks };
    let (root, at) = reader.value(skip_space(reader.bytes(), 0), Some(keep), MAX_DEPTH)?;
    (skip_space(reader.bytes(), at) == text.len()).then_some(root)
}

/// Reads values. Positions travel as arguments and results (not as a field), so that the
/// loops keep them in registers.
struct Reader<'s, 'a> {
    text: &'a str,
    stacks: &'s mut Stacks<'a>,
}

impl<'a> Reader<'_, 'a> {
    /// The text's bytes: read through the same pointer as the text, so that a byte checked
    /// here (a quote) is known to the `str` slicing after it, whose boundary checks fold away.
    #[inline(always)]
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The value at `at` (not whitespace), and where it ends. Without `keep`, it is only
    /// checked, and an array or object is given as `null`.
    fn value<K: Keep>(
        &mut self,
        at: usize,
        keep: Option<&K>,
        depth: u32,
    ) -> Option<(Tree<'a>, usize)> {
        match *self.bytes().get(at)? {
            b'{' => self.object(at, keep, depth),
            b'[' => self.array(at, keep, depth),
            _ => self.scalar(at),
        }
    }

    /// A string, number, `true`, `false` or `null` at `at`, and where it ends.
    #[inline(always)]
    fn scalar(&mut self, at: usize) -> Option<(Tree<'a>, usize)> {
        match *self.bytes().get(at)? {
            b'"' => self.string(at).map(|(text, end)| (Tree::Str(text), end)),
            b't' => literal(self.bytes(), at, b"true", Tree::Bool(true)),
            b'f' => literal(self.bytes(), at, b"false", Tree::Bool(false)),
            b'n' => literal(self.bytes(), at, b"null", Tree::Null),
            _ => number(self.bytes(), at).map(|(n, end)| (Tree::Number(n), end)),
        }
    }

    /// The string whose opening quote is at `at`, and where it ends: borrowed from the text,
    /// or unescaped into the arena when it holds an escape.
    #[inline(always)]
    fn string(&mut self, at: usize) -> Option<(&'a str, usize)> {
        let start = at + 1;
        let end = special(self.bytes(), start)?;
        if self.bytes().get(end) == Some(&b'"') {
            // `start` follows the opening quote and `end` is the closing one: both are char
            // boundaries. `split_at_checked` is inlined by the plain build too;
            // `str::get(range)` was a call per string there (55 a chain request, ~1,100
            // instructions: bench/README.md, stop 29).
            let (quoted, _) = self.text.split_at_checked(end)?;
            let (_, text) = quoted.split_at_checked(start)?;
            return Some((text, end + 1));
        }
        self.escaped(start, end)
    }

    /// The rest of a string from `start` whose first escape (or control character) is at
    /// `at`, unescaped into the arena as serde_json does. Escaped surrogates (`\ud83d`) are
    /// left to serde_json.
    #[cold]
    fn escaped(&mut self, start: usize, mut at: usize) -> Option<(&'a str, usize)> {
        let mut text = String::with_capacity(at - start + 16);
        let mut from = start;
        loop {
            text.push_str(self.text.get(from..at)?);
            match self.bytes().get(at)? {
                b'"' => break,
                b'\\' => {}
                _ => return None,
            }
            let (unescaped, length) = match self.bytes().get(at + 1)? {
                b'"' => ('"', 2),
                b'\\' => ('\\', 2),
                b'/' => ('/', 2),
                b'b' => ('\u{8}', 2),
                b'f' => ('\u{c}', 2),
                b'n' => ('\n', 2),
                b'r' => ('\r', 2),
                b't' => ('\t', 2),
                b'u' => {
                    let hex = self.bytes().get(at + 2..at + 6)?;
                    let code = hex.iter().try_fold(0_u32, |code, &b| {
                        char::from(b).to_digit(16).map(|digit| code * 16 + digit)
                    })?;
                    (char::from_u32(code)?, 6)
                }
                _ => return None,
            };
            text.push(unescaped);
            from = at + length;
            at = special(self.bytes(), from)?;
        }
        Some((self.stacks.arena.alloc_str(&text), at + 1))
    }

    fn array<K: Keep>(
        &mut self,
        at: usize,
        keep: Option<&K>,
        depth: u32,
    ) -> Option<(Tree<'a>, usize)> {
        let depth = depth.checked_sub(1)?;
        let mark = self.stacks.values.len();
        let items = keep.and_then(Keep::items);
        let mut at = skip_space(self.bytes(), at + 1);
        if self.bytes().get(at) == Some(&b']') {
            at += 1;
        } else {
            loop {
                let (item, end) = self.value(at, items, depth)?;
                if items.is_some() {
                    self.stacks.values.push(item);
                }
                match after_item(self.bytes(), end, b']')? {
                    Ok(next) => at = next,
                    Err(end) => break at = end,
                }
            }
        }
        let array = match keep {
            Some(_) => self.stacks.close_array(mark),
            None => Tree::Null,
        };
        Some((array, at))
    }

    fn object<K: Keep>(
        &mut self,
        at: usize,
        keep: Option<&K>,
        depth: u32,
    ) -> Option<(Tree<'a>, usize)> {
        let depth = depth.checked_sub(1)?;
        let mark = self.stacks.members.len();
        let mut at = skip_space(self.bytes(), at + 1);
        if self.bytes().get(at) == Some(&b'}') {
            at += 1;
        } else {
            loop {
                if self.bytes().get(at) != Some(&b'"') {
                    return None;
                }
                let (name, end) = self.string(at)?;
                at = skip_space(self.bytes(), end);
                if self.bytes().get(at) != Some(&b':') {
                    return None;
                }
                at = skip_space(self.bytes(), at + 1);
                let member = keep.and_then(|keep| keep.member(name));
                // Strings and numbers, most members, are read here without a call.
                let (value, end) = match self.bytes().get(at)? {
                    b'{' | b'[' => self.value(at, member, depth)?,
                    _ => self.scalar(at)?,
                };
                if member.is_some() {
                    self.stacks.members.push((name, value));
                }
                match after_item(self.bytes(), end, b'}')? {
                    Ok(next) => at = next,
                    Err(end) => break at = end,
                }
            }
        }
        let object = match keep {
            Some(_) => self.stacks.close_object(mark),
            None => Tree::Null,
        };
        Some((object, at))
    }
}

/// What follows an element or a member that ends at `at`: `Ok` with the start of the next
/// one after a comma, `Err` with the end of the container after `close`; `None` for
/// anything else.
#[inline(always)]
fn after_item(bytes: &[u8], at: usize, close: u8) -> Option<Result<usize, usize>> {
    let at = skip_space(bytes, at);
    match *bytes.get(at)? {
        b',' => Some(Ok(skip_space(bytes, at + 1))),
        b if b == close => Some(Err(at + 1)),
        _ => None,
    }
}

/// The first position from `at` on that is not whitespace. Every byte that may start a
/// value or follow one is above the space, so one comparison answers for bodies without
/// whitespace.
#[inline(always)]
fn skip_space(bytes: &[u8], at: usize) -> usize {
    match bytes.get(at) {
        Some(&b) if b > b' ' => at,
        _ => skip_space_slowly(bytes, at),
    }
}

#[inline(never)]
fn skip_space_slowly(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(at) {
        at += 1;
    }
    at
}

/// Where the first byte below 0x20, `"` or `\` is, from `at` on.
#[inline(always)]
pub(crate) fn special(bytes: &[u8], mut at: usize) -> Option<usize> {
    // Eight bytes at a time, as serde_json's own scan: such a byte sets the high bit of its
    // lane (borrows only run from a set lane upwards, so the lowest set lane is exact).
    while let Some(chunk) = bytes.get(at..at + 8) {
        let lanes = special_lanes(u64::from_le_bytes(chunk.try_into().ok()?));
        if lanes != 0 {
            return Some(at + (lanes.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    while let Some(&b) = bytes.get(at) {
        if b < 0x20 || b == b'"' || b == b'\\' {
            return Some(at);
        }
        at += 1;
    }
    None
}

#[inline(always)]
fn literal<'a>(bytes: &[u8], at: usize, word: &[u8], value: Tree<'a>) -> Option<(Tree<'a>, usize)> {
    let end = at + word.len();
    (bytes.get(at..end)? == word).then_some((value, end))
}

/// The number at `at`, read as serde_json reads it (`deserialize_any`): an integer as `u64`,
/// or `i64` when negative (`-0` and integers below `i64::MIN` as floats); a float only when
/// exact in one step, else `None`. Gives where it ends.
#[inline(always)]
fn number(bytes: &[u8], mut at: usize) -> Option<(Number, usize)> {
    let positive = bytes.get(at) != Some(&b'-');
    if !positive {
        at += 1;
    }
    let (mut significand, count, mut end) = match bytes.get(at)? {
        b'0' => {
            if bytes.get(at + 1).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            (0, 1, at + 1)
        }
        b'1'..=b'9' => digits(bytes, at, 0, 0)?,
        _ => return None,
    };
    let mut exponent: i32 = 0;
    let mut is_float = false;
    if bytes.get(end) == Some(&b'.') {
        is_float = true;
        let before = end + 1;
        (significand, _, end) = digits(bytes, before, significand, count)?;
        if end == before {
            return None;
        }
        exponent = -i32::try_from(end - before).ok()?;
    }
    if let Some(b'e' | b'E') = bytes.get(end) {
        is_float = true;
        end += 1;
        let negative = match bytes.get(end) {
            Some(b'-') => {
                end += 1;
                true
            }
            Some(b'+') => {
                end += 1;
                false
            }
            _ => false,
        };
        let before = end;
        let mut written: i32 = 0;
        while let Some(b @ b'0'..=b'9') = bytes.get(end) {
            written = written.checked_mul(10)?.checked_add(i32::from(b - b'0'))?;
            end += 1;
        }
        if end == before {
            return None;
        }
        exponent = if negative {
            exponent.checked_sub(written)?
        } else {
            exponent.checked_add(written)?
        };
    }
    if !is_float {
        return Some((integer(positive, significand), end));
    }
    float(positive, significand, exponent).map(|f| (Number::Float(f), end))
}

/// Decimal digits from `at` onto `significand` (of `had` digits so far): the significand,
/// its digits and where they end; `None` past 19 digits in all, which is as far as a `u64`
/// always holds (longer ones are left to serde_json).
#[inline(always)]
fn digits(
    bytes: &[u8],
    at: usize,
    mut significand: u64,
    had: usize,
) -> Option<(u64, usize, usize)> {
    let mut end = at;
    while let Some(&b) = bytes.get(end) {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        significand = significand.wrapping_mul(10).wrapping_add(u64::from(digit));
        end += 1;
    }
    let count = had + (end - at);
    (count <= 19).then_some((significand, count, end))
}

/// The lanes of `word` holding a byte below 0x20, `"` or `\`, as their high bits.
#[inline(always)]
pub(crate) fn special_lanes(word: u64) -> u64 {
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
