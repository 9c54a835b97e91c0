//! Admin-friendly JSONPath text: header names such as `x-tenant` are written with a dot
//! (`$.headers.x-tenant`), which RFC 9535's member-name shorthand does not allow, and the
//! parser's multi-line error report is condensed into one line.

use std::borrow::Cow;

/// Rewrites every `.name-with-dash` shorthand (outside quoted strings) into the bracket form
/// `['name-with-dash']`, which the parser accepts. Text without such names is borrowed as-is.
pub(crate) fn bracket_dashed_names(text: &str) -> Cow<'_, str> {
    if !text.contains('-') {
        return Cow::Borrowed(text);
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut changed = false;
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            out.push(c);
            if c == '\\' {
                if let Some(&next) = chars.get(i + 1) {
                    out.push(next);
                    i += 1;
                }
            } else if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' {
            quote = Some(c);
        }
        if c == '.' && chars.get(i + 1).is_some_and(|&n| name_first(n)) {
            let start = i + 1;
            let mut end = start;
            while end < chars.len() && (name_char(chars[end]) || chars[end] == '-') {
                end += 1;
            }
            let name: String = chars[start..end].iter().collect();
            if name.contains('-') {
                // `..x-y` (descendant) keeps one dot: `..['x-y']`.
                if i > 0 && chars[i - 1] == '.' {
                    out.push('.');
                }
                out.push_str("['");
                out.push_str(&name);
                out.push_str("']");
                changed = true;
            } else {
                out.push('.');
                out.push_str(&name);
            }
            i = end;
            continue;
        }
        out.push(c);
        i += 1;
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// RFC 9535 `name-first`.
fn name_first(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c >= '\u{80}'
}

/// RFC 9535 `name-char`.
fn name_char(c: char) -> bool {
    name_first(c) || c.is_ascii_digit()
}

/// One line out of the parser's report: `at character N: expected …` when it can be found.
pub(crate) fn condense_parse_error(report: &str, exact_position: bool) -> String {
    let column = report
        .lines()
        .find_map(|l| l.split_once("--> ").map(|(_, pos)| pos))
        .and_then(|pos| pos.split(':').nth(1))
        .map(str::trim);
    let expected = report
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("= "))
        .map(str::trim);
    match (column, expected) {
        (Some(col), Some(exp)) if exact_position => format!("at character {col}: {exp}"),
        (_, Some(exp)) => exp.to_string(),
        _ => report.lines().next().unwrap_or(report).trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashed_shorthand_becomes_brackets() {
        assert_eq!(
            bracket_dashed_names("$.headers.x-tenant"),
            "$.headers['x-tenant']"
        );
        assert_eq!(bracket_dashed_names("$..x-a.b"), "$..['x-a'].b");
        assert_eq!(
            bracket_dashed_names("$.a[?@.x-y == 'p-q.r-s']"),
            "$.a[?@['x-y'] == 'p-q.r-s']"
        );
    }

    #[test]
    fn text_without_dashed_names_is_borrowed() {
        assert!(matches!(bracket_dashed_names("$.a.b"), Cow::Borrowed(_)));
        assert!(matches!(bracket_dashed_names("$.a[-1]"), Cow::Borrowed(_)));
        assert!(matches!(bracket_dashed_names("$['x-y']"), Cow::Borrowed(_)));
    }

    #[test]
    fn parse_report_is_condensed() {
        let report = "Failed to parse rule:  --> 1:5\n  |\n1 | $.a[\n  |     ^---\n  |\n  = expected selector";
        assert_eq!(
            condense_parse_error(report, true),
            "at character 5: expected selector"
        );
        assert_eq!(condense_parse_error(report, false), "expected selector");
        assert_eq!(condense_parse_error("odd\nthing", true), "odd");
    }
}
