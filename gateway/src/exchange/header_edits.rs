//! An operation's header edits (`{set, remove, rename}`) applied to a list of fields, with
//! the fields the gateway adds, in one pass over whatever list holds them: Pingora's header
//! map on the full path, the backend's head as read on the lean path.

use crate::snapshot::HeaderEdits;
use http::header::{HeaderName, HeaderValue};
use propylon_policies::mapping::Doc;

/// A header field as the list being edited holds it; fields the gateway adds or renames are
/// made from names and values of its own.
pub trait Field<'h>: Sized {
    fn name(&self) -> &str;
    /// The same value under `name`.
    fn renamed(self, name: &'h HeaderName) -> Self;
    fn made(name: &'h HeaderName, value: &'h HeaderValue) -> Self;
}

impl<'h> Field<'h> for (&'h HeaderName, &'h HeaderValue) {
    fn name(&self) -> &str {
        self.0.as_str()
    }
    fn renamed(self, name: &'h HeaderName) -> Self {
        (name, self.1)
    }
    fn made(name: &'h HeaderName, value: &'h HeaderValue) -> Self {
        (name, value)
    }
}

/// A field of a head as read: its name as written (any case) and its value.
impl<'h> Field<'h> for (&'h str, &'h [u8]) {
    fn name(&self) -> &str {
        self.0
    }
    fn renamed(self, name: &'h HeaderName) -> Self {
        (name.as_str(), self.1)
    }
    fn made(name: &'h HeaderName, value: &'h HeaderValue) -> Self {
        (name.as_str(), value.as_bytes())
    }
}

/// Header edits with their `set` values rendered.
pub struct RenderedEdits<'e> {
    edits: &'e HeaderEdits,
    /// Each `set` field's value, `None` when its template renders nothing that is a valid
    /// value (the field is then only removed).
    values: Vec<Option<HeaderValue>>,
}

impl<'e> RenderedEdits<'e> {
    /// Renders the `set` templates over `ctx`.
    pub fn new<D: Doc>(edits: &'e HeaderEdits, ctx: &D) -> Self {
        let values = edits
            .set
            .iter()
            .map(|(_, template)| {
                let value = template.render_string(ctx)?;
                HeaderValue::from_str(&value).ok()
            })
            .collect();
        RenderedEdits { edits, values }
    }

    /// `fields` edited as if `remove`, then each `rename`, then each `set` (which drops every
    /// field of its name and adds its value) were applied to the whole list in turn: the
    /// fields kept, in their order, then the ones set. Names are compared without case, so
    /// a head as read (any case) is edited as a header map (lower case) is.
    pub fn apply<'h, F: Field<'h> + 'h>(
        &'h self,
        fields: impl Iterator<Item = F> + 'h,
    ) -> impl Iterator<Item = F> + 'h {
        let edits = self.edits;
        let same = |a: &str, b: &HeaderName| a.eq_ignore_ascii_case(b.as_str());
        let kept = fields
            .filter(move |f| !edits.remove.iter().any(|name| same(f.name(), name)))
            .map(move |f| {
                let mut to: Option<&'h HeaderName> = None;
                for (from, into) in &edits.rename {
                    if same(to.map_or(f.name(), HeaderName::as_str), from) {
                        to = Some(into);
                    }
                }
                match to {
                    Some(name) => f.renamed(name),
                    None => f,
                }
            })
            .filter(move |f| !edits.set.iter().any(|(name, _)| same(f.name(), name)));
        let set = edits.set.iter().zip(&self.values).enumerate();
        let set = set.filter_map(move |(at, ((name, _), value))| {
            // A later `set` of the same name drops this one's value.
            let again = edits.set.iter().skip(at + 1).any(|(n, _)| n == name);
            Some(F::made(name, value.as_ref().filter(|_| !again)?))
        });
        kept.chain(set)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use propylon_policies::mapping::ValueTemplate;
    use serde_json::json;

    fn name(n: &str) -> HeaderName {
        HeaderName::from_bytes(n.as_bytes()).unwrap()
    }

    fn edits(set: &[(&str, &str)], remove: &[&str], rename: &[(&str, &str)]) -> HeaderEdits {
        HeaderEdits {
            set: set
                .iter()
                .map(|(n, t)| (name(n), ValueTemplate::compile(t).unwrap()))
                .collect(),
            remove: remove.iter().map(|n| name(n)).collect(),
            rename: rename.iter().map(|(a, b)| (name(a), name(b))).collect(),
        }
    }

    /// The same edits on a head as read (names in any case) and on a header map.
    fn both(edits: &HeaderEdits, head: &[(&str, &str)]) -> Vec<String> {
        let ctx = json!({ "status": 201, "headers": { "x-tag": "t1" } });
        let rendered = RenderedEdits::new(edits, &ctx);
        let as_read = head.iter().map(|(n, v)| (*n, v.as_bytes()));
        let read: Vec<String> = rendered
            .apply(as_read)
            .map(|(n, v)| format!("{}: {}", n.to_ascii_lowercase(), String::from_utf8_lossy(v)))
            .collect();
        let mut map = http::HeaderMap::new();
        for (n, v) in head {
            map.append(name(n), HeaderValue::from_str(v).unwrap());
        }
        let mapped: Vec<String> = rendered
            .apply(map.iter())
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
            .collect();
        // A header map groups a name's values; the head keeps them where they were.
        let (mut a, mut b) = (read.clone(), mapped);
        a.sort();
        b.sort();
        assert_eq!(a, b);
        read
    }

    #[test]
    fn edits_apply_in_turn_without_case() {
        let edits = edits(
            &[
                ("x-status", "$.status"),
                ("x-none", "$.headers.x-none"),
                ("x-id", "lit"),
            ],
            &["server"],
            &[("x-old", "x-mid"), ("x-mid", "x-new"), ("x-tag", "x-id")],
        );
        let head = [
            ("Server", "s"),
            ("X-Old", "o"),
            ("x-Tag", "t"),
            ("X-Mid", "m"),
            ("X-None", "gone"),
            ("Content-Type", "application/json"),
        ];
        assert_eq!(
            both(&edits, &head),
            [
                // Renamed in turn: x-old becomes x-mid, then x-new, as x-mid does.
                "x-new: o",
                "x-new: m",
                "content-type: application/json",
                "x-status: 201",
                // x-tag became x-id, then `set` replaced it; `x-none` was removed, not set.
                "x-id: lit",
            ]
        );
    }

    #[test]
    fn no_edits_keep_every_field() {
        let head = [("A", "1"), ("b", "2"), ("A", "3")];
        assert_eq!(both(&edits(&[], &[], &[]), &head), ["a: 1", "b: 2", "a: 3"]);
    }
}
