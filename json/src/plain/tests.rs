//! The plain reader against serde_json: whatever it decides is what serde_json reads.

#![allow(clippy::unwrap_used)]

use super::parse;
use crate::build::{with_serde, Stacks};
use crate::{Bump, Everything, Keep, Number, Tree};

/// Equal trees, floats compared bit for bit (`-0.0` is not `0.0`).
fn identical(a: &Tree<'_>, b: &Tree<'_>) -> bool {
    match (a, b) {
        (Tree::Number(Number::Float(x)), Tree::Number(Number::Float(y))) => {
            x.to_bits() == y.to_bits()
        }
        (Tree::Array(x), Tree::Array(y)) => {
            x.len() == y.len() && x.iter().zip(*y).all(|(x, y)| identical(x, y))
        }
        (Tree::Object(x), Tree::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(*y)
                    .all(|((n, x), (m, y))| n == m && identical(x, y))
        }
        _ => a == b,
    }
}

/// Checks the plain reader's answer on `text` against serde_json's; `true` when it decided.
fn check(text: &str, keep: &impl Keep) -> bool {
    let arena = Bump::new();
    let mut stacks = Stacks {
        arena: &arena,
        values: Vec::new(),
        members: Vec::new(),
    };
    let ours = parse(text, &mut stacks, keep);
    let mut stacks = Stacks {
        arena: &arena,
        values: Vec::new(),
        members: Vec::new(),
    };
    let theirs = with_serde(text, &mut stacks, keep);
    match (ours, theirs) {
        (None, _) => false,
        (Some(ours), Ok(theirs)) => {
            assert!(
                identical(&ours, &theirs),
                "{text:?}: {ours:?} but {theirs:?}"
            );
            // And written back as serde_json writes it.
            let mut written = Vec::new();
            ours.write_json(&mut written);
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(&theirs).unwrap(),
                "{text:?}"
            );
            true
        }
        (Some(ours), Err(e)) => panic!("{text:?}: read as {ours:?}, but serde_json says {e}"),
    }
}

#[test]
fn plain_bodies_are_read_here_as_serde_json_reads_them() {
    for text in [
        r#"{"a":1,"b":[true,false,null],"c":{},"d":[],"e":"x y é € 😀"}"#,
        " \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } } \n",
        r#"[0,-1,1.5,-2.25,10.50,0.0,-0.0,-0,1e3,1E+2,25e-1,1.5e-21,900719925474099.2]"#,
        "9999999999999999999",
        "-9223372036854775808",
        "-9223372036854775809",
        "1234567890123456789",
        r#"{"a":1,"a":2}"#,
        r#"{"a\n\"b":"x\"y\\z\/\b\f\r\t\u00e9\u20AC\u0000 tail","b":"\n"}"#,
        r#""""#,
        "[[[[[[[[[[1]]]]]]]]]]",
        "null",
    ] {
        assert!(check(text, &Everything), "not decided: {text:?}");
    }
}

#[test]
fn what_is_not_plain_is_left_to_serde_json() {
    for text in [
        // Escaped surrogates, bad escapes, and characters that must be escaped.
        r#""\ud83d\ude00""#,
        r#""\udc00""#,
        r#""\u12G4""#,
        r#""\u+123""#,
        r#""\u12""#,
        r#""\x""#,
        r#""\"#,
        "\"a\u{1}b\"",
        "\"a\tb\"",
        // Numbers not exact in one step, or past 19 digits, or not numbers.
        "1e23",
        "12345678901234567890",
        "18446744073709551615",
        "-12345678901234567890",
        "9007199254740993.0",
        "1e400",
        "0e400",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "1e+",
        "+1",
        "-a",
        // Not JSON.
        "",
        " ",
        "{",
        "[1,]",
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        r#"{a:1}"#,
        "[1 2]",
        "tru",
        "nul",
        "True",
        "{} x",
        "[]]",
        "\u{c}1",
        "\"open",
    ] {
        assert!(!check(text, &Everything), "decided: {text:?}");
    }
    // Nesting: serde_json's limit is 128; the plain reader leaves past 100.
    let nested = |n: usize| "[".repeat(n) + &"]".repeat(n);
    assert!(check(&nested(100), &Everything));
    assert!(!check(&nested(101), &Everything));
    assert!(!check(&nested(200), &Everything));
}

/// A small random generator (xorshift), so that runs repeat.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'p>(&mut self, from: &[&'p str]) -> &'p str {
        from[self.below(from.len())]
    }
}

/// A number's text in one of many shapes, valid or not.
fn number(r: &mut Random) -> String {
    let digits = |r: &mut Random, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b'0' + r.below(10) as u8))
            .collect()
    };
    let mut text = String::new();
    if r.below(3) == 0 {
        text.push('-');
    }
    let whole = r.below(22);
    text += &digits(r, whole);
    if r.below(2) == 0 {
        text.push('.');
        let n = r.below(20);
        text += &digits(r, n);
    }
    if r.below(3) == 0 {
        text += r.pick(&["e", "E", "e+", "e-", "E-"]);
        let n = r.below(4);
        text += &digits(r, n);
    }
    text
}

fn value(r: &mut Random, depth: usize, out: &mut String) {
    let space = |r: &mut Random, out: &mut String| {
        if r.below(6) == 0 {
            *out += r.pick(&[" ", "\n", "\t", "\r", "  ", "\u{c}"]);
        }
    };
    space(r, out);
    match r.below(if depth == 0 { 6 } else { 8 }) {
        0 => *out += r.pick(&["true", "false", "null", "nul", "True"]),
        1 | 2 => *out += &number(r),
        3..=5 => {
            out.push('"');
            for _ in 0..r.below(12) {
                *out += r.pick(&[
                    "a",
                    "Z",
                    "7",
                    " ",
                    "é",
                    "€",
                    "😀",
                    "\\n",
                    "\\\"",
                    "\\u00e9",
                    "\t",
                    "_",
                    "\\/",
                    "\\\\",
                    "\\ud83d\\ude00",
                    "\\u00",
                    "\\q",
                ]);
            }
            out.push('"');
        }
        6 => {
            out.push('[');
            for i in 0..r.below(5) {
                if i > 0 {
                    out.push(',');
                }
                value(r, depth - 1, out);
            }
            out.push(']');
        }
        _ => {
            out.push('{');
            for i in 0..r.below(5) {
                if i > 0 {
                    out.push(',');
                }
                space(r, out);
                out.push('"');
                *out += r.pick(&["a", "b", "name", "n", "é", "long_member_name", "x\\ty"]);
                out.push('"');
                space(r, out);
                out.push(':');
                value(r, depth - 1, out);
            }
            out.push('}');
        }
    }
    space(r, out);
}

/// Keeps the members whose name starts with a letter before `m`, and every array element.
struct FirstHalf;

impl Keep for FirstHalf {
    fn member(&self, name: &str) -> Option<&FirstHalf> {
        name.bytes()
            .next()
            .is_some_and(|b| b < b'm')
            .then_some(self)
    }

    fn items(&self) -> Option<&FirstHalf> {
        Some(self)
    }
}

#[test]
fn generated_texts_read_as_serde_json_reads_them() {
    let mut r = Random(0x9E37_79B9_7F4A_7C15);
    let (mut decided, mut total) = (0, 0);
    for round in 0..60_000 {
        let mut text = String::new();
        value(&mut r, 4, &mut text);
        // Some texts are broken on purpose: an ASCII byte dropped or a structural one added.
        match r.below(4) {
            0 => {
                let ascii: Vec<usize> = text
                    .bytes()
                    .enumerate()
                    .filter(|(_, b)| b.is_ascii())
                    .map(|(i, _)| i)
                    .collect();
                if !ascii.is_empty() {
                    text.remove(ascii[r.below(ascii.len())]);
                }
            }
            1 => {
                let at = (0..=text.len())
                    .filter(|&i| text.is_char_boundary(i))
                    .nth(r.below(text.chars().count() + 1))
                    .unwrap_or(0);
                text.insert_str(
                    at,
                    r.pick(&[",", ":", "]", "}", "[", "{", "\"", "-", "0", "."]),
                );
            }
            _ => {}
        }
        let keep_all = round % 2 == 0;
        let was = if keep_all {
            check(&text, &Everything)
        } else {
            check(&text, &FirstHalf)
        };
        decided += usize::from(was);
        total += 1;
    }
    // The test means something only if the plain reader decides a good share.
    assert!(decided * 5 > total, "decided {decided} of {total}");
}

#[test]
fn generated_numbers_read_as_serde_json_reads_them() {
    let mut r = Random(0x2545_F491_4F6C_DD1D);
    let mut decided = 0;
    for _ in 0..200_000 {
        let text = number(&mut r);
        decided += usize::from(check(&text, &Everything));
    }
    assert!(decided > 50_000, "decided {decided}");
    // Around the largest exact significand (2^53 = 9007199254740992), where a float made in
    // two roundings would differ from serde_json's in one.
    let mut decided = 0;
    for _ in 0..200_000 {
        let significand = (1_u64 << 52) + r.next() % (1_u64 << 55);
        let digits = significand.to_string();
        let point = r.below(digits.len());
        let text = format!(
            "{}.{}e{}",
            &digits[..point.max(1)],
            &digits[point.max(1)..],
            r.below(20)
        );
        decided += usize::from(check(text.trim_end_matches(".e0"), &Everything));
    }
    assert!(decided > 10_000, "decided {decided}");
}
