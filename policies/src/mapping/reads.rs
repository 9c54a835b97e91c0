//! What a route's response templates read of the backend's answer, worked out once at config
//! load, so that the answer is parsed only as far as they read it: a member no path reaches is
//! checked as JSON but not built into the document (see `propylon_json::parse`).

use super::node::{Each, Node};
use super::path::{JsonPath, PathSteps, Step};
use super::template::BodyTemplate;
use super::value::ValueTemplate;

/// The parts of a document that templates read, from one point down.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reads {
    /// Everything from here down (a path ends here, or may read anything).
    all: bool,
    /// Members read by name.
    members: Vec<(String, Reads)>,
    /// What is read of each element of an array (an index or `[*]`).
    items: Option<Box<Reads>>,
    /// What is read of each member of an object (`[*]`); merged into `members` by `finish`.
    any_member: Option<Box<Reads>>,
    /// Bit `n` set: a name in `members` is `n` bytes long (63: 63 or more). Set by `finish`;
    /// most members of an answer that no template reads are passed over on it alone.
    lengths: u64,
}

impl Reads {
    /// Everything.
    pub fn all() -> Reads {
        Reads {
            all: true,
            ..Reads::default()
        }
    }

    pub fn is_all(&self) -> bool {
        self.all
    }

    /// What templates read of a member of an object here: `None` when they read nothing of
    /// it (it is left out).
    // Inlined into the parse's object loop: a call per member of the answer in the plain
    // build (~2,500 instructions a chain request: bench/README.md, stop 29).
    #[inline(always)]
    pub(crate) fn member(&self, name: &str) -> Option<&Reads> {
        if self.all {
            return Some(self);
        }
        // Called per member of a backend's answer: names compared without a `memcmp` call.
        let named = (self.lengths & length_bit(name) != 0)
            .then(|| {
                self.members
                    .iter()
                    .find(|(n, _)| propylon_json::same_name(n, name))
            })
            .flatten();
        named.map(|(_, r)| r).or(self.any_member.as_deref())
    }

    /// What templates read of each element of an array here.
    pub(crate) fn items(&self) -> Option<&Reads> {
        if self.all {
            return Some(self);
        }
        self.items.as_deref()
    }
}

/// A pruned parse keeps what templates read.
impl propylon_json::Keep for Reads {
    #[inline]
    fn member(&self, name: &str) -> Option<&Reads> {
        Reads::member(self, name)
    }

    #[inline]
    fn items(&self) -> Option<&Reads> {
        Reads::items(self)
    }
}

impl Reads {
    /// What a body template and value templates (a response's) read of the context's
    /// `body`.
    pub fn of_body<'t>(
        body: Option<&BodyTemplate>,
        values: impl IntoIterator<Item = &'t ValueTemplate>,
    ) -> Reads {
        let mut context = Reads::default();
        if let Some(template) = body {
            context.collect(template.node());
        }
        for path in values.into_iter().filter_map(ValueTemplate::path) {
            context.add_path(path, Reads::all());
        }
        context.finish();
        context.member("body").cloned().unwrap_or_default()
    }

    /// Adds what `node` reads, `self` being what `$` is in its scope.
    fn collect(&mut self, node: &Node) {
        match node {
            Node::Literal(_) => {}
            Node::Path(path) | Node::Default(path, _) => self.add_path(path, Reads::all()),
            Node::Each(each) => self.collect_each(each),
            Node::Object(object) => object.fields.iter().for_each(|f| self.collect(&f.node)),
            Node::Array(nodes) => nodes.iter().for_each(|n| self.collect(n)),
        }
    }

    /// `$to` reads its items: a definite source finds an array of them or is one itself; a
    /// wildcard source's matches are the items (its `list` reads the same elements).
    fn collect_each(&mut self, each: &Each) {
        let mut item = Reads::default();
        item.collect(&each.to);
        let at_source = match each.source.steps() {
            PathSteps::Definite(_) => {
                let mut both = item.clone();
                both.items = Some(Box::new(item));
                both
            }
            _ => item,
        };
        self.add_path(&each.source, at_source);
    }

    fn add_path(&mut self, path: &JsonPath, leaf: Reads) {
        match path.steps() {
            PathSteps::Definite(steps) | PathSteps::Wildcard(steps) => self.add(steps, leaf),
            PathSteps::Engine => *self = Reads::all(),
        }
    }

    fn add(&mut self, steps: &[Step], leaf: Reads) {
        if self.all {
            return;
        }
        let Some((step, rest)) = steps.split_first() else {
            self.merge(leaf);
            return;
        };
        match step {
            Step::Key(name) => {
                let at = match self.members.iter().position(|(n, _)| n == name) {
                    Some(at) => at,
                    None => {
                        self.members.push((name.clone(), Reads::default()));
                        self.members.len() - 1
                    }
                };
                self.members[at].1.add(rest, leaf);
            }
            Step::Index(_) => self.items.get_or_insert_with(Box::default).add(rest, leaf),
            Step::All => {
                let items = self.items.get_or_insert_with(Box::default);
                items.add(rest, leaf.clone());
                self.any_member
                    .get_or_insert_with(Box::default)
                    .add(rest, leaf);
            }
        }
    }

    fn merge(&mut self, other: Reads) {
        if self.all || other.all {
            *self = Reads::all();
            return;
        }
        for (name, reads) in other.members {
            match self.members.iter_mut().find(|(n, _)| *n == name) {
                Some((_, mine)) => mine.merge(reads),
                None => self.members.push((name, reads)),
            }
        }
        merge_boxed(&mut self.items, other.items);
        merge_boxed(&mut self.any_member, other.any_member);
    }

    /// Folds `any_member` into each named member, so a lookup takes one or the other.
    fn finish(&mut self) {
        if self.all {
            self.members.clear();
            self.items = None;
            self.any_member = None;
            return;
        }
        if let Some(any) = &self.any_member {
            for (_, reads) in &mut self.members {
                reads.merge((**any).clone());
            }
        }
        for (_, reads) in &mut self.members {
            reads.finish();
        }
        self.lengths = self
            .members
            .iter()
            .fold(0, |bits, (n, _)| bits | length_bit(n));
        for boxed in [&mut self.items, &mut self.any_member]
            .into_iter()
            .flatten()
        {
            boxed.finish();
        }
    }
}

fn length_bit(name: &str) -> u64 {
    1 << name.len().min(63)
}

fn merge_boxed(mine: &mut Option<Box<Reads>>, other: Option<Box<Reads>>) {
    match (mine.as_mut(), other) {
        (Some(m), Some(o)) => m.merge(*o),
        (None, Some(o)) => *mine = Some(o),
        (_, None) => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mapping::BodyTemplate;
    use serde_json::json;

    fn reads(template: serde_json::Value) -> Reads {
        Reads::of_body(Some(&BodyTemplate::compile(&template).unwrap()), [])
    }

    fn names(r: &Reads) -> Vec<&str> {
        r.members.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn named_paths_keep_their_members() {
        let r =
            reads(json!({"a": "$.body.a", "b": "$.body.o.x", "s": "$.status", "h": "$.headers.h"}));
        assert_eq!(names(&r), ["a", "o"]);
        assert!(r.member("a").unwrap().is_all());
        let o = r.member("o").unwrap();
        assert_eq!(names(o), ["x"]);
        assert!(r.member("zzz").is_none() && o.member("y").is_none());
    }

    #[test]
    fn each_reads_its_items_through_to() {
        let r = reads(json!({
            "lines": {"$each": "$.body.lines", "$to": {"sku": "$.sku"}},
            "all": {"$each": "$.body.w[*]", "$to": {"q": "$.q"}}
        }));
        let lines = r.member("lines").unwrap();
        // A definite source: an array of items, or a single item.
        assert_eq!(names(lines.items().unwrap()), ["sku"]);
        assert_eq!(names(lines), ["sku"]);
        let w = r.member("w").unwrap();
        assert_eq!(names(w.items().unwrap()), ["q"]);
        assert_eq!(names(w.member("any").unwrap()), ["q"]);
    }

    #[test]
    fn the_whole_body_or_context_reads_everything() {
        assert!(reads(json!({"b": "$.body"})).is_all());
        assert!(reads(json!({"c": "$"})).is_all());
        assert!(reads(json!({"x": "$..sku"})).is_all());
        assert!(!reads(json!({"s": "$.status"})).is_all());
        assert!(reads(json!({"s": "$.status"})).members.is_empty());
    }

    #[test]
    fn a_wildcard_member_merges_with_named_ones() {
        let r = reads(json!({"a": "$.body.o.*.x", "b": "$.body.o.k.y"}));
        let o = r.member("o").unwrap();
        assert_eq!(names(o.member("k").unwrap()), ["y", "x"]);
        assert_eq!(names(o.member("other").unwrap()), ["x"]);
    }

    /// A pruned answer renders as the whole one does, for every template shape.
    #[test]
    fn templates_render_alike_over_a_pruned_answer() {
        use crate::mapping::{parse_borrowed, parse_pruned, response_context, Bump, Roots};
        use http::HeaderMap;
        let answer = br#"{"id":"A-1","n":-0,"big":18446744073709551616,"o":{"k":{"x":1,"y":[1,2]},"j":{"x":2},"s":"t"},
            "lines":[{"sku":"S1","qty":2,"skip":{"deep":[[[1]]]}},{"sku":"S2","price":1.5},7],
            "one":{"sku":"solo"},"e\u0301":"escaped name","arr":[[1,2],[3]],"nil":null,"unread":{"a":[1,{"b":2}]}}"#;
        let templates = [
            json!({"id": "$.body.id", "n": "$.body.n", "big": "$.body.big", "missing": "$.body.nope"}),
            json!({"x": "$.body.o.k.x", "ys": "$.body.o.k.y[1]", "last": "$.body.lines[-1]"}),
            json!({"lines": {"$each": "$.body.lines", "$to": {"sku": "$.sku", "q": {"$path": "$.qty", "$default": 1}}}}),
            json!({"skus": "$.body.lines[*].sku", "xs": "$.body.o.*.x", "inner": "$.body.arr[*][0]"}),
            json!({"solo": {"$each": "$.body.one", "$to": "$.sku"}, "w": {"$each": "$.body.lines[*]", "$to": ["$.sku", "$.price"]}}),
            json!({"nested": {"$each": "$.body.arr", "$to": {"$each": "$", "$to": {"v": "$"}}}}),
            json!({"o": "$.body.o", "status": "$.status"}),
            json!(["$.body.nil", "$.body.o.s", {"$literal": "$.body.id"}]),
            json!({"all": "$.body"}),
            json!({"any": "$..sku"}),
        ];
        let headers = HeaderMap::new();
        for template in templates {
            let compiled = BodyTemplate::compile(&template).unwrap();
            let reads = Reads::of_body(Some(&compiled), []);
            let arena = Bump::new();
            let full = parse_borrowed(answer, &arena).unwrap();
            let pruned = parse_pruned(answer, &reads, &arena).unwrap();
            let render = |doc| {
                let ctx: crate::mapping::Borrowed =
                    response_context(&arena, Roots::ALL, 200, &headers, Some(doc));
                compiled.render_json(&ctx)
            };
            if compiled.reads_borrowed() {
                assert_eq!(render(pruned), render(full), "{template}");
            }
        }
        // What is left out is left out, and still checked as JSON.
        let reads = Reads::of_body(Some(&BodyTemplate::compile(&templates_id()).unwrap()), []);
        let plain = br#"{"id":"A-1","unread":{"a":[1,{"b":2}]},"list":[1,2]}"#;
        let arena = Bump::new();
        let pruned = parse_pruned(plain, &reads, &arena).unwrap();
        assert_eq!(serde_json::Value::from(&pruned), json!({"id": "A-1"}));
        assert!(parse_pruned(br#"{"id":1,"unread":[1,}"#, &reads, &arena).is_err());
        // A member name with an escape is unescaped, and pruned as any other.
        let pruned = parse_pruned(answer, &reads, &arena).unwrap();
        assert_eq!(serde_json::Value::from(&pruned), json!({"id": "A-1"}));
    }

    fn templates_id() -> serde_json::Value {
        json!({"id": "$.body.id"})
    }
}
