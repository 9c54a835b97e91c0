//! `request.query: {set, remove}` applied to a raw query string.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::borrow::Cow;

/// Returns the query string to send upstream: parameters named in `remove` or `set` are
/// dropped from the client's query, those in `rename` get their new name, then `set` is
/// appended (percent-encoded). `None` when nothing is left.
pub fn edit_query<'a>(
    original: Option<&'a str>,
    set: &[(String, String)],
    remove: &[String],
    rename: &[(String, String)],
) -> Option<Cow<'a, str>> {
    if set.is_empty() && remove.is_empty() && rename.is_empty() {
        return original.filter(|q| !q.is_empty()).map(Cow::Borrowed);
    }
    let mut out = String::new();
    for pair in original.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let raw_name = pair.split('=').next().unwrap_or(pair);
        let name = percent_decode(raw_name);
        let dropped = remove
            .iter()
            .chain(set.iter().map(|(k, _)| k))
            .any(|r| *r == name);
        if dropped {
            continue;
        }
        match rename.iter().find(|(from, _)| *from == name) {
            Some((_, to)) => {
                let value = pair.split_once('=').map(|(_, v)| v);
                let renamed = match value {
                    Some(v) => url_encode(to) + "=" + v,
                    None => url_encode(to),
                };
                push_pair_raw(&mut out, &renamed);
            }
            None => push_pair_raw(&mut out, pair),
        }
    }
    for (k, v) in set {
        let encoded: String = url_encode(k) + "=" + &url_encode(v);
        push_pair_raw(&mut out, &encoded);
    }
    (!out.is_empty()).then_some(Cow::Owned(out))
}

fn push_pair_raw(out: &mut String, pair: &str) {
    if !out.is_empty() {
        out.push('&');
    }
    out.push_str(pair);
}

/// Everything but RFC 3986 unreserved characters is encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn url_encode(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

fn percent_decode(s: &str) -> Cow<'_, str> {
    percent_decode_str(s).decode_utf8_lossy()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn s(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn untouched_without_edits() {
        assert_eq!(
            edit_query(Some("a=1&b=2"), &[], &[], &[]).unwrap(),
            "a=1&b=2"
        );
        assert!(edit_query(None, &[], &[], &[]).is_none());
    }

    #[test]
    fn removes_and_sets() {
        let out = edit_query(
            Some("a=1&debug=true&b=x%20y"),
            &[s("format", "json"), s("a", "9")],
            &["debug".into()],
            &[],
        );
        assert_eq!(out.unwrap(), "b=x%20y&format=json&a=9");
    }

    #[test]
    fn renames_keeping_values_and_order() {
        let out = edit_query(
            Some("custId=42&x=1&flag"),
            &[],
            &[],
            &[s("custId", "CustomerId"), s("flag", "Flag")],
        );
        assert_eq!(out.unwrap(), "CustomerId=42&x=1&Flag");
    }

    #[test]
    fn encodes_set_values_and_matches_encoded_names() {
        let out = edit_query(
            Some("my%20key=1"),
            &[s("q", "a b&c")],
            &["my key".into()],
            &[],
        );
        assert_eq!(out.unwrap(), "q=a%20b%26c");
        assert!(edit_query(Some("x=1"), &[], &["x".into()], &[]).is_none());
    }
}
