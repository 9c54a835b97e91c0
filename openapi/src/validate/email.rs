//! `format: "email"`, with a fast path for the common shape.
//!
//! jsonschema's own email check parses the address with `email_address` and then validates the
//! domain as a hostname: about 3,000 instructions a string, a few percent of a whole gateway
//! request. Almost every address a client sends is plain ASCII `local@label.label`, a shape that
//! check always accepts, and [`is_plain_email`] recognises it in one pass over the bytes with no
//! allocation. Every other string (quoted local parts, IP literals, punycode, display names,
//! anything odd or wrong) is answered by the crate's own check, so [`is_email`] gives exactly
//! the built-in answers by construction.

use std::sync::LazyLock;

use jsonschema::{Draft, Validator};
use serde_json::{json, Value};

/// Longest string the fast path takes (RFC 5321's path limit less the angle brackets).
const MAX_PLAIN: usize = 254;
/// `email_address`: a local part is at most 64 bytes.
const MAX_LOCAL: usize = 64;
/// `is_valid_hostname`: a domain is at most 253 bytes, a label at most 63.
const MAX_DOMAIN: usize = 253;
const MAX_LABEL: usize = 63;

/// jsonschema's built-in `email` check, reached through a validator that registers no format
/// of its own (the options `SchemaContext::compile` uses, less the override).
static BUILTIN: LazyLock<Validator> = LazyLock::new(|| {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(&json!({"type": "string", "format": "email"}))
        .expect("a constant schema compiles")
});

/// The check registered for `format: "email"`: the same answers as jsonschema's own.
pub(super) fn is_email(s: &str) -> bool {
    is_plain_email(s) || builtin_is_email(s)
}

/// jsonschema's own answer (allocates; only for strings outside the fast shape).
fn builtin_is_email(s: &str) -> bool {
    BUILTIN.is_valid(&Value::String(s.to_owned()))
}

/// `local@domain` in a shape jsonschema 0.61.2 always accepts: at most 254 bytes, all ASCII;
/// the local part 1..=64 bytes of `[A-Za-z0-9._+-]` with no leading, trailing or doubled dot;
/// the domain two or more dot-separated labels of 1..=63 bytes of `[A-Za-z0-9-]` that neither
/// start nor end with `-` and hold no `--` (no punycode, no RFC 5891 3rd/4th-position hyphens),
/// no trailing dot, and a last label of letters only. A `false` means "ask the crate", not
/// "invalid". One pass over the bytes, one table look-up each.
fn is_plain_email(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.len() > MAX_PLAIN {
        return false;
    }
    // The local part, up to the first `@`: dot-separated runs of `[A-Za-z0-9_+-]`, none
    // empty. `run_start` is where the current run starts.
    let (mut at, mut run_start) = (0, 0);
    loop {
        let Some(&b) = bytes.get(at) else {
            return false; // no `@`
        };
        let class = CLASS[usize::from(b)];
        if class & (LETTER | DIGIT | HYPHEN | SYMBOL) != 0 {
            // the common case
        } else if class == DOT && at > run_start {
            run_start = at + 1;
        } else if class == AT && at > run_start && at <= MAX_LOCAL {
            break;
        } else {
            return false;
        }
        at += 1;
    }
    // The domain: dot-separated labels of `[A-Za-z0-9-]`, a second `@` included, leaves the
    // fast path. `label_start` is where the current label starts, `kinds` what it holds.
    let domain = &bytes[at + 1..];
    if domain.len() > MAX_DOMAIN {
        return false;
    }
    let (mut labels, mut label_start, mut kinds) = (1, 0, 0);
    for (i, &b) in domain.iter().enumerate() {
        let class = CLASS[usize::from(b)];
        if class & (LETTER | DIGIT) != 0 {
            kinds |= class;
        } else if class == HYPHEN && i > label_start && domain[i - 1] != b'-' {
            kinds |= HYPHEN;
        } else if class == DOT
            && i > label_start
            && domain[i - 1] != b'-'
            && i - label_start <= MAX_LABEL
        {
            (labels, label_start, kinds) = (labels + 1, i + 1, 0);
        } else {
            return false;
        }
    }
    // The last label (the TLD): not empty, not too long, letters only.
    labels >= 2 && domain.len() - label_start <= MAX_LABEL && kinds == LETTER
}

/// The byte classes [`is_plain_email`] tells apart; 0 for every byte it does not take.
const LETTER: u8 = 1;
const DIGIT: u8 = 2;
const HYPHEN: u8 = 4;
/// `_` and `+`: in a plain local part, never in a domain.
const SYMBOL: u8 = 8;
const DOT: u8 = 16;
const AT: u8 = 32;
const CLASS: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            b'A'..=b'Z' | b'a'..=b'z' => LETTER,
            b'0'..=b'9' => DIGIT,
            b'-' => HYPHEN,
            b'_' | b'+' => SYMBOL,
            b'.' => DOT,
            b'@' => AT,
            _ => 0,
        };
        b += 1;
    }
    table
};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::validate::borrowed::BorrowedJson;
    use crate::validate::reason::reason;
    use crate::validate::schema::SchemaContext;
    use jsonschema::error::ValidationErrorKind;
    use jsonschema::json::{Json, SerdeJson};

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
            items[self.below(items.len())]
        }

        fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
    }

    const ANY: [&str; 30] = [
        "a", "b", "z", "A", "Z", "0", "9", ".", ".", "-", "-", "_", "+", "@", "@", "\"", "[", "]",
        ":", " ", "é", "\\", "<", ">", "(", ")", "!", "\t", "x", "n",
    ];
    /// Mostly the fast alphabet, now and then something only the crate's rules decide.
    const LOCAL: [&str; 24] = [
        "a", "b", "k", "z", "A", "Q", "0", "7", "9", ".", ".", "_", "+", "-", "a", "e", "o", "s",
        "!", "#", "é", " ", "~", "@",
    ];
    const LABEL: [&str; 16] = [
        "a", "b", "c", "x", "n", "z", "E", "Q", "0", "1", "9", "-", "-", "a", "o", "_",
    ];
    const LABEL_LENGTHS: [usize; 16] = [0, 1, 1, 2, 3, 3, 4, 5, 7, 10, 20, 61, 62, 63, 63, 64];
    const SPECIAL_LABELS: [&str; 16] = [
        "xn--bcher-kva",
        "xn--",
        "xn--a",
        "xn--80ak6aa92e",
        "XN--BCHER-KVA",
        "ab--cd",
        "a--",
        "--a",
        "ab-cd",
        "123",
        "0",
        "com",
        "localhost",
        "ex_ample",
        "é",
        "a.",
    ];
    const SPECIAL_DOMAINS: [&str; 14] = [
        "[127.0.0.1]",
        "[300.0.0.1]",
        "[IPv6:::1]",
        "[ipv6:2001:db8::1]",
        "[IPv6:1.2.3.4]",
        "[a]",
        "[]",
        "[127.0.0.1",
        "127.0.0.1",
        "localhost",
        "example.com.",
        ".example.com",
        "example..com",
        "example.com>",
    ];
    const QUOTED: [&str; 10] = [
        "\"\"",
        "\"a\"",
        "\"a b\"",
        "\"a@b\"",
        "\"a\\\"b\"",
        "\"é\"",
        "\"",
        "\"a",
        "\"a\\\"",
        "\"<a>\"",
    ];

    fn random_text(rng: &mut Rng, out: &mut String) {
        for _ in 0..rng.below(24) {
            out.push_str(rng.pick(&ANY));
        }
    }

    fn local(rng: &mut Rng, out: &mut String) {
        if rng.chance(8) {
            out.push_str(rng.pick(&QUOTED));
            return;
        }
        let len = match rng.below(10) {
            0 => [0, 1, 63, 64, 65][rng.below(5)],
            _ => 1 + rng.below(12),
        };
        let plain = rng.chance(60);
        for _ in 0..len {
            match plain {
                true => out.push(char::from(b'a' + rng.below(26) as u8)),
                false => out.push_str(rng.pick(&LOCAL)),
            }
        }
        if rng.chance(5) {
            out.insert(0, '.');
        }
        if rng.chance(5) {
            out.push('.');
        }
    }

    fn label(rng: &mut Rng, out: &mut String) {
        if rng.chance(8) {
            out.push_str(rng.pick(&SPECIAL_LABELS));
            return;
        }
        let len = LABEL_LENGTHS[rng.below(LABEL_LENGTHS.len())];
        let plain = rng.chance(60);
        for _ in 0..len {
            match plain {
                true => out.push(char::from(b'a' + rng.below(26) as u8)),
                false => out.push_str(rng.pick(&LABEL)),
            }
        }
    }

    fn domain(rng: &mut Rng, out: &mut String) {
        if rng.chance(6) {
            out.push_str(rng.pick(&SPECIAL_DOMAINS));
            return;
        }
        for i in 0..1 + rng.below(4) {
            if i > 0 {
                out.push('.');
            }
            label(rng, out);
        }
        match rng.below(20) {
            0 => out.push('.'),
            1 => out.push_str(".123"),
            2 => out.push_str(".c0m"),
            _ => {}
        }
    }

    /// `local@domain` grown with 63-byte labels to a total of about 250..=258 bytes.
    fn long(rng: &mut Rng, out: &mut String) {
        local(rng, out);
        out.push('@');
        let target = 250 + rng.below(9);
        while out.len() + 64 < target {
            label(rng, out);
            out.push('.');
        }
        let rest = target.saturating_sub(out.len()).max(1);
        for _ in 0..rest.saturating_sub(4) {
            out.push('a');
        }
        out.push_str(".com");
    }

    /// One byte of a plain address changed, inserted or removed: the fast shape's edges.
    fn mutated(rng: &mut Rng, out: &mut String) {
        out.push_str(rng.pick(&[
            "ada@example.com",
            "a.b+c@sub.example.co.uk",
            "first_last-1@mail-2.example.org",
            "x@y.zz",
        ]));
        let at = rng.below(out.len() + 1);
        let byte = rng.pick(&ANY);
        match rng.below(3) {
            0 => out.insert_str(at, byte),
            1 if at < out.len() => {
                out.remove(at);
            }
            _ if at < out.len() => out.replace_range(at..=at, byte),
            _ => out.push_str(byte),
        }
    }

    /// Deterministic: the same corpus every run.
    fn corpus(size: usize) -> Vec<String> {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        (0..size)
            .map(|_| {
                let mut s = String::new();
                match rng.below(10) {
                    0 => random_text(&mut rng, &mut s),
                    1 => long(&mut rng, &mut s),
                    2 | 3 => mutated(&mut rng, &mut s),
                    _ => {
                        local(&mut rng, &mut s);
                        s.push('@');
                        domain(&mut rng, &mut s);
                    }
                }
                s
            })
            .collect()
    }

    /// A string the fast path could wrongly take if one of its structural rules were off:
    /// only the fast alphabet and exactly one `@`, yet refused.
    fn near_miss(s: &str) -> bool {
        s.bytes().filter(|&b| b == b'@').count() == 1
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-' | b'@'))
    }

    #[test]
    fn the_fast_path_agrees_with_jsonschema_on_a_large_corpus() {
        const SIZE: usize = 60_000;
        let (mut fast, mut fallback_valid, mut fallback_invalid, mut near_misses) = (0, 0, 0, 0);
        let (mut longest_fast, mut longest_local, mut longest_label) = (0, 0, 0);
        for s in corpus(SIZE) {
            let builtin = builtin_is_email(&s);
            if is_plain_email(&s) {
                assert!(builtin, "the fast path takes {s:?}, jsonschema refuses it");
                fast += 1;
                longest_fast = longest_fast.max(s.len());
                let (local, domain) = s.split_once('@').unwrap();
                longest_local = longest_local.max(local.len());
                longest_label = domain
                    .split('.')
                    .map(str::len)
                    .fold(longest_label, usize::max);
            } else if builtin {
                fallback_valid += 1;
            } else {
                fallback_invalid += 1;
                near_misses += usize::from(near_miss(&s));
            }
            assert_eq!(is_email(&s), builtin, "{s:?}");
        }
        eprintln!(
            "{SIZE} strings: {fast} fast, {fallback_valid} valid and {fallback_invalid} invalid \
             through jsonschema ({near_misses} near misses)"
        );
        assert_eq!(fast + fallback_valid + fallback_invalid, SIZE);
        assert!(fast > SIZE / 10, "{fast} on the fast path");
        assert!(
            fallback_valid > SIZE / 50,
            "{fallback_valid} valid outside it"
        );
        assert!(fallback_invalid > SIZE / 5, "{fallback_invalid} invalid");
        assert!(near_misses > SIZE / 20, "{near_misses} near misses");
        // The length limits are reached on the fast path, not only near it.
        assert_eq!((longest_local, longest_label), (MAX_LOCAL, MAX_LABEL));
        assert!(
            longest_fast >= MAX_PLAIN - 4,
            "longest fast: {longest_fast}"
        );
    }

    #[test]
    fn hand_picked_cases() {
        let local64 = "l".repeat(64);
        let label63 = "d".repeat(63);
        // (address, takes the fast path, valid)
        let cases: Vec<(String, bool, bool)> = vec![
            ("ada@example.com".into(), true, true),
            ("a.b+c@sub.example.co.uk".into(), true, true),
            ("A_B-9@EXAMPLE.ORG".into(), true, true),
            ("1@2.io".into(), true, true),
            ("a@b-c.d-e.fr".into(), true, true),
            (format!("{local64}@example.com"), true, true),
            (format!("l{local64}@example.com"), false, false),
            (format!("a@{label63}.com"), true, true),
            (format!("a@d{label63}.com"), false, false),
            // 254 bytes in all: the longest the fast path takes.
            (
                format!("{local64}@{label63}.{label63}.{}.com", "d".repeat(57)),
                true,
                true,
            ),
            // 255 bytes (a 253-byte domain): valid, but for the crate to say.
            (
                format!("a@{label63}.{label63}.{label63}.{}.com", "d".repeat(57)),
                false,
                true,
            ),
            // A 254-byte domain is not a hostname.
            (
                format!("a@{label63}.{label63}.{label63}.{}.com", "d".repeat(58)),
                false,
                false,
            ),
            // Valid, outside the fast shape.
            ("a@localhost".into(), false, true),
            ("a@example.123".into(), false, true),
            ("a@1.2.3.4".into(), false, true),
            ("a@[127.0.0.1]".into(), false, true),
            ("a@[IPv6:::1]".into(), false, true),
            ("a@xn--bcher-kva.de".into(), false, true),
            ("\"\"@example.com".into(), false, true),
            ("\"a b\"@example.com".into(), false, true),
            ("\"a@b\"@example.com".into(), false, true),
            ("a!#$%&'*/=?^`{|}~@example.com".into(), false, true),
            ("Ada <ada@example.com>".into(), false, true),
            // Invalid.
            ("".into(), false, false),
            ("not-an-email".into(), false, false),
            ("@example.com".into(), false, false),
            ("a@".into(), false, false),
            ("a@@example.com".into(), false, false),
            (".a@example.com".into(), false, false),
            ("a.@example.com".into(), false, false),
            ("a..b@example.com".into(), false, false),
            ("a@-example.com".into(), false, false),
            ("a@example-.com".into(), false, false),
            ("a@example.com.".into(), false, false),
            ("a@.example.com".into(), false, false),
            ("a@example..com".into(), false, false),
            ("a@ab--cd.com".into(), false, false),
            ("a@xn--.com".into(), false, false),
            ("a@ex_ample.com".into(), false, false),
            ("a@[300.0.0.1]".into(), false, false),
            ("é@example.com".into(), false, false),
            ("a@exämple.com".into(), false, false),
            ("a b@example.com".into(), false, false),
        ];
        for (address, fast, valid) in cases {
            assert_eq!(
                builtin_is_email(&address),
                valid,
                "jsonschema on {address:?}"
            );
            assert_eq!(is_plain_email(&address), fast, "fast path on {address:?}");
            assert_eq!(is_email(&address), valid, "{address:?}");
        }
    }

    /// Compiles `schema` as `SchemaContext::compile` does, with jsonschema's own email check.
    fn without_override<F: Json>(ctx: &SchemaContext<'_>, schema: &Value) -> Validator<F> {
        jsonschema::options_for::<F>()
            .with_draft(Draft::Draft202012)
            .should_validate_formats(true)
            .build(&ctx.prepare(schema, "/schema").unwrap())
            .unwrap()
    }

    /// Everything a caller can see of one error.
    fn described(error: &jsonschema::ValidationError<'_>) -> String {
        format!(
            "{:?} | {error} | {} | {} | {} | {}",
            error.kind(),
            error.instance_path().as_str(),
            error.schema_path().as_str(),
            error.evaluation_path().as_str(),
            reason(error)
        )
    }

    #[test]
    fn a_compiled_schema_answers_as_it_did_without_the_override() {
        let document = json!({"openapi": "3.1.0"});
        let ctx = SchemaContext::new(&document);
        let schema = json!({
            "type": "object",
            "properties": {"email": {"type": "string", "format": "email"}}
        });
        let ours = ctx.compile::<SerdeJson>(&schema, "/schema").unwrap();
        let theirs = without_override::<SerdeJson>(&ctx, &schema);
        let ours_borrowed = ctx.compile::<BorrowedJson>(&schema, "/schema").unwrap();
        let theirs_borrowed = without_override::<BorrowedJson>(&ctx, &schema);
        // Longer than `reason` echoes: the error text is masked, the same way for both.
        let long_valid = format!("{}@{}.com", "x".repeat(40), "d".repeat(40));
        let long_invalid = format!("{}@example.com", "x".repeat(70));
        let bodies = [
            json!({"email": "ada@example.com"}),
            json!({"email": "a@[127.0.0.1]"}),
            json!({"email": "not-an-email"}),
            json!({"email": "a@ab--cd.com"}),
            json!({"email": long_valid}),
            json!({"email": long_invalid}),
            json!({"email": 7}),
            json!({}),
        ];
        let arena = propylon_json::Bump::new();
        let mut refused = 0;
        for body in &bodies {
            let valid = theirs.is_valid(body);
            assert_eq!(ours.is_valid(body), valid, "{body}");
            let ours_errors: Vec<String> = ours.iter_errors(body).map(|e| described(&e)).collect();
            let theirs_errors: Vec<String> =
                theirs.iter_errors(body).map(|e| described(&e)).collect();
            assert_eq!(ours_errors, theirs_errors, "{body}");
            assert_eq!(ours_errors.is_empty(), valid, "{body}");
            refused += usize::from(!valid);

            let text = body.to_string();
            let doc = propylon_json::parse(&text, &arena, &propylon_json::Everything).unwrap();
            assert_eq!(ours_borrowed.is_valid(&doc), valid, "{text}");
            assert_eq!(theirs_borrowed.is_valid(&doc), valid, "{text}");
            let ours_errors: Vec<String> = ours_borrowed
                .iter_errors(&doc)
                .map(|e| described(&e))
                .collect();
            let theirs_errors: Vec<String> = theirs_borrowed
                .iter_errors(&doc)
                .map(|e| described(&e))
                .collect();
            assert_eq!(ours_errors, theirs_errors, "{text}");
        }
        assert_eq!(refused, 4);

        // The failing email is a `format` error naming "email", worded as before.
        let body = json!({"email": "not-an-email"});
        let error = ours.iter_errors(&body).next().unwrap();
        assert!(
            matches!(error.kind(), ValidationErrorKind::Format { format } if format == "email")
        );
        assert_eq!(reason(&error), r#""not-an-email" is not a "email""#);
        assert_eq!(error.schema_path().as_str(), "/properties/email/format");
    }
}
