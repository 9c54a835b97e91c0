//! One JSONPath, parsed once at config load. Paths made only of names, indexes and `[*]`
//! (nearly all mapping paths) are walked directly over any [`Doc`]; the jsonpath-rust engine
//! runs only for slices, filters, unions and `..`, over serde_json's `Value`.

use super::doc::Doc;
use super::syntax::{bracket_dashed_names, condense_parse_error};
use jsonpath_rust::parser::errors::JsonPathError;
use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use jsonpath_rust::parser::parse_json_path;
use serde_json::Value;

/// A compiled JSONPath.
#[derive(Debug, Clone)]
pub(crate) struct JsonPath {
    kind: Kind,
    /// The first member name when it alone decides which context part is read.
    root: Option<String>,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Names and indexes only: one value or nothing.
    Definite(Vec<Step>),
    /// Names, indexes and at least one `[*]`: every match, walked directly.
    Wildcard(Vec<Step>),
    /// Anything else: the jsonpath-rust engine.
    Engine(JpQuery),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Key(String),
    Index(i64),
    All,
}

/// A path's steps, for working out what it reads (`Reads`).
pub(crate) enum PathSteps<'p> {
    Definite(&'p [Step]),
    Wildcard(&'p [Step]),
    Engine,
}

/// What a path found, borrowed from the context.
pub(crate) enum Found<'a, D = Value> {
    Nothing,
    /// A definite path's single value.
    One(&'a D),
    /// An indefinite path's matches (maybe none).
    Many(Vec<&'a D>),
}

impl JsonPath {
    /// Parses `text`; the error is a one-line message for the admin.
    pub(crate) fn compile(text: &str) -> Result<JsonPath, String> {
        let normalised = bracket_dashed_names(text);
        let query = parse_json_path(&normalised).map_err(|e| {
            let detail = match &e {
                JsonPathError::PestError(_) => {
                    condense_parse_error(&e.to_string(), normalised == text)
                }
                other => other.to_string(),
            };
            format!(
                "`{text}` is not a valid JSONPath ({detail}); a literal text starting with `$` \
                 is written {{ $literal: \"{text}\" }}"
            )
        })?;
        let root = match query.segments.first() {
            Some(Segment::Selector(Selector::Name(name))) if !text[1..].contains('$') => {
                Some(name.clone())
            }
            _ => None,
        };
        let kind = match fast_steps(&query.segments) {
            Some(steps) if steps.iter().any(|s| matches!(s, Step::All)) => Kind::Wildcard(steps),
            Some(steps) => Kind::Definite(steps),
            None => Kind::Engine(query),
        };
        Ok(JsonPath { kind, root })
    }

    /// For `a.b[*]` (names and indexes, then one final `[*]`): the path `a.b`, so that `$each`
    /// can tell an empty list (`[]`) from a missing one (left out).
    pub(crate) fn list_parent(&self) -> Option<JsonPath> {
        let Kind::Wildcard(steps) = &self.kind else {
            return None;
        };
        let (last, prefix) = steps.split_last()?;
        let single_trailing =
            matches!(last, Step::All) && !prefix.iter().any(|s| matches!(s, Step::All));
        single_trailing.then(|| JsonPath {
            kind: Kind::Definite(prefix.to_vec()),
            root: self.root.clone(),
        })
    }

    /// For a definite path of two or more steps (`$.body.customer.name`): the path to its
    /// parent (`$.body.customer`) and its last step as a path of its own (`$.name`). Walking
    /// the second from what the first finds is walking the whole.
    pub(crate) fn parent_and_last(&self) -> Option<(JsonPath, JsonPath)> {
        let Kind::Definite(steps) = &self.kind else {
            return None;
        };
        let (last, parent) = steps.split_last()?;
        if parent.is_empty() {
            return None;
        }
        let parent = JsonPath {
            kind: Kind::Definite(parent.to_vec()),
            root: self.root.clone(),
        };
        let last = JsonPath {
            kind: Kind::Definite(vec![last.clone()]),
            root: None,
        };
        Some((parent, last))
    }

    /// Both paths are definite and take the same steps.
    pub(crate) fn same_definite(&self, other: &JsonPath) -> bool {
        matches!((&self.kind, &other.kind), (Kind::Definite(a), Kind::Definite(b)) if a == b)
    }

    /// The context part this path reads (`body` for `$.body.x`); `None` when it may read any
    /// (`$`, `$..x`, `$.*`, a filter that names `$`).
    pub(crate) fn root(&self) -> Option<&str> {
        self.root.as_deref()
    }

    /// For `$.headers.x-tenant` (a root, then a name): that name. `None` when the path may
    /// read any member below its root (`$.headers`, `$.headers.*`, an engine path).
    pub(crate) fn member_below_root(&self) -> Option<&str> {
        match &self.kind {
            Kind::Definite(steps) | Kind::Wildcard(steps) => match steps.get(1) {
                Some(Step::Key(name)) => Some(name),
                _ => None,
            },
            Kind::Engine(_) => None,
        }
    }

    pub(crate) fn steps(&self) -> PathSteps<'_> {
        match &self.kind {
            Kind::Definite(steps) => PathSteps::Definite(steps),
            Kind::Wildcard(steps) => PathSteps::Wildcard(steps),
            Kind::Engine(_) => PathSteps::Engine,
        }
    }

    /// True when the jsonpath-rust engine evaluates this path: it reads only serde_json's
    /// `Value`, so a template with such a path is never given a borrowed document.
    pub(crate) fn needs_engine(&self) -> bool {
        matches!(self.kind, Kind::Engine(_))
    }

    /// Evaluates the path against `value` (the context, or an `$each` item).
    // Inlined, with `child`, into the template writer, as the profile-guided build does: the
    // plain build called both per path: 3.5 % of its instructions on a chain request
    // (bench/README.md, stop 28).
    #[inline(always)]
    pub(crate) fn find<'a, D: Doc>(&self, value: &'a D) -> Found<'a, D> {
        match &self.kind {
            Kind::Definite(steps) => steps
                .iter()
                .try_fold(value, |v, step| child(v, step))
                .map_or(Found::Nothing, Found::One),
            Kind::Wildcard(steps) => Found::Many(walk_all(value, steps)),
            Kind::Engine(query) => match value.engine_matches(query) {
                Some(matches) => Found::Many(matches),
                None => {
                    debug_assert!(false, "an engine path was given a borrowed document");
                    Found::Nothing
                }
            },
        }
    }
}

impl<'a, D: Doc> Found<'a, D> {
    /// A definite path's array: the items an `$each` over it takes.
    pub(crate) fn one_array(&self) -> Option<&'a [D]> {
        match self {
            Found::One(value) => value.items(),
            _ => None,
        }
    }

    /// The value that goes into the output: a definite hit, or an array of all matches.
    /// No match, or an empty list of matches, is nothing.
    pub(crate) fn to_value(&self) -> Option<Value> {
        match self {
            Found::Nothing => None,
            Found::One(v) => Some(v.to_value()),
            Found::Many(vs) if vs.is_empty() => None,
            Found::Many(vs) => Some(Value::Array(vs.iter().map(|v| v.to_value()).collect())),
        }
    }
}

/// The segments as direct steps, or `None` when the engine is needed.
fn fast_steps(segments: &[Segment]) -> Option<Vec<Step>> {
    segments
        .iter()
        .map(|segment| match segment {
            Segment::Selector(Selector::Name(name)) => Some(Step::Key(name.clone())),
            Segment::Selector(Selector::Index(i)) => Some(Step::Index(*i)),
            Segment::Selector(Selector::Wildcard) => Some(Step::All),
            _ => None,
        })
        .collect()
}

/// One name or index step; negative indexes count from the end (RFC 9535).
#[inline(always)]
fn child<'a, D: Doc>(value: &'a D, step: &Step) -> Option<&'a D> {
    match step {
        Step::Key(key) => value.member(key),
        Step::Index(i) => {
            let items = value.items()?;
            let index = if *i < 0 {
                items
                    .len()
                    .checked_sub(usize::try_from(i.unsigned_abs()).ok()?)?
            } else {
                usize::try_from(*i).ok()?
            };
            items.get(index)
        }
        Step::All => None,
    }
}

/// Walks steps that include `[*]`, keeping every match in document order.
fn walk_all<'a, D: Doc>(value: &'a D, steps: &[Step]) -> Vec<&'a D> {
    let mut frontier = vec![value];
    for step in steps {
        let mut next = Vec::with_capacity(frontier.len());
        for v in frontier {
            match step {
                Step::All => v.push_children(&mut next),
                step => next.extend(child(v, step)),
            }
        }
        if next.is_empty() {
            return next;
        }
        frontier = next;
    }
    frontier
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jsonpath_rust::query::js_path_process;
    use serde_json::json;

    fn found(path: &str, value: &Value) -> Option<Value> {
        JsonPath::compile(path).unwrap().find(value).to_value()
    }

    fn doc() -> Value {
        json!({
            "headers": {"x-tenant": "acme"},
            "body": {"items": [{"sku": "A", "qty": 2}, {"sku": "B"}], "n": null}
        })
    }

    #[test]
    fn definite_paths_give_one_value_or_nothing() {
        let d = doc();
        assert_eq!(found("$.body.items[1].sku", &d), Some(json!("B")));
        assert_eq!(found("$.body.items[-1].sku", &d), Some(json!("B")));
        assert_eq!(found("$.body.items[-3]", &d), None);
        assert_eq!(found("$.body['n']", &d), Some(Value::Null));
        assert_eq!(found("$.body.missing", &d), None);
        assert_eq!(found("$.body.items.sku", &d), None);
        assert_eq!(found("$", &json!(3)), Some(json!(3)));
    }

    #[test]
    fn dashed_header_names_work_both_ways() {
        let d = doc();
        assert_eq!(found("$.headers.x-tenant", &d), Some(json!("acme")));
        assert_eq!(found("$.headers['x-tenant']", &d), Some(json!("acme")));
    }

    #[test]
    fn wildcard_and_engine_paths_give_arrays() {
        let d = doc();
        assert_eq!(found("$.body.items[*].sku", &d), Some(json!(["A", "B"])));
        assert_eq!(found("$.body.items[*].qty", &d), Some(json!([2])));
        assert_eq!(found("$..sku", &d), Some(json!(["A", "B"])));
        assert_eq!(
            found("$.body.items[?@.qty > 1].sku", &d),
            Some(json!(["A"]))
        );
        assert_eq!(found("$.body.items[0:1].sku", &d), Some(json!(["A"])));
        assert_eq!(found("$.body.items[*].price", &d), None);
        assert_eq!(found("$.body.items[?@.qty > 9]", &d), None);
    }

    #[test]
    fn fast_wildcard_agrees_with_the_engine() {
        let d =
            json!({"a": [{"b": {"c": 1}}, {"b": {"c": 2, "d": 3}}, 5], "o": {"x": 1, "y": [2]}});
        for path in ["$.a[*].b.c", "$.a[*].b.*", "$.o.*", "$.*[0]", "$.a[*]"] {
            let engine = js_path_process(&parse_json_path(path).unwrap(), &d).unwrap();
            let engine: Vec<&Value> = engine.into_iter().map(|r| r.val).collect();
            match JsonPath::compile(path).unwrap().find(&d) {
                Found::Many(fast) => assert_eq!(fast, engine, "{path}"),
                _ => panic!("{path} is not a wildcard path"),
            }
        }
    }

    #[test]
    fn the_member_below_the_root_is_known_for_direct_paths() {
        let below = |p: &str| {
            JsonPath::compile(p)
                .unwrap()
                .member_below_root()
                .map(String::from)
        };
        assert_eq!(below("$.headers.x-tenant").as_deref(), Some("x-tenant"));
        assert_eq!(below("$['headers']['accept']").as_deref(), Some("accept"));
        assert_eq!(below("$.headers"), None);
        assert_eq!(below("$.headers.*"), None);
        assert_eq!(below("$.headers[?@ == 'a']"), None);
    }

    #[test]
    fn roots_are_known_only_when_safe() {
        let root = |p: &str| JsonPath::compile(p).unwrap().root().map(String::from);
        assert_eq!(root("$.body.x").as_deref(), Some("body"));
        assert_eq!(root("$['headers']['x-a']").as_deref(), Some("headers"));
        assert_eq!(root("$..x"), None);
        assert_eq!(root("$.*"), None);
        assert_eq!(root("$"), None);
        assert_eq!(root("$.body.items[?@.sku == $.query.sku]"), None);
    }

    #[test]
    fn syntax_errors_say_what_to_write() {
        let e = JsonPath::compile("$.a[").unwrap_err();
        assert!(e.contains("`$.a[` is not a valid JSONPath"), "{e}");
        assert!(e.contains("at character"), "{e}");
        assert!(e.contains("$literal"), "{e}");
        assert!(JsonPath::compile("$5").is_err());
    }
}
