//! The JSON document a mapping's JSONPaths read. Only the parts a route's templates use are
//! built: no header map or query decoding for a template that reads only the body.

use super::doc::{Borrowed, Doc};
use super::roots::{ClaimNames, HeaderNames, MemberNames, Roots};
use http::{HeaderMap, HeaderValue};
use percent_encoding::percent_decode_str;
use propylon_json::{Bump, Number};
use serde_json::{Map, Value};
use smallvec::SmallVec;
use std::borrow::Cow;

/// A document a context can be built as: serde_json's `Value`, or a [`Borrowed`] tree whose
/// keys and texts point into the request (the parsed body, the header map, [`RequestParts`])
/// and whose objects are made in an arena.
pub trait ContextDoc<'c>: Doc {
    /// Where the context's objects (and texts that are not the request's) are made: nothing
    /// (`()`) for a `Value`, the body's arena for a tree.
    type Arena: ?Sized;
    fn text(arena: &'c Self::Arena, text: Cow<'c, str>) -> Self;
    fn number(n: u16) -> Self;
    /// An object of `members`, which come counted: a tree's object is one slice of the arena,
    /// with no vector gathered first.
    fn object<M>(arena: &'c Self::Arena, members: M) -> Self
    where
        M: IntoIterator<Item = (&'c str, Self)>,
        M::IntoIter: ExactSizeIterator;
}

impl<'c> ContextDoc<'c> for Value {
    type Arena = ();
    fn text((): &(), text: Cow<'c, str>) -> Value {
        Value::String(text.into_owned())
    }
    fn number(n: u16) -> Value {
        Value::from(n)
    }
    fn object<M>((): &(), members: M) -> Value
    where
        M: IntoIterator<Item = (&'c str, Value)>,
        M::IntoIter: ExactSizeIterator,
    {
        let map: Map<String, Value> = members
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        Value::Object(map)
    }
}

impl<'c> ContextDoc<'c> for Borrowed<'c> {
    type Arena = Bump;
    fn text(arena: &'c Bump, text: Cow<'c, str>) -> Borrowed<'c> {
        match text {
            Cow::Borrowed(text) => Borrowed::Str(text),
            Cow::Owned(text) => Borrowed::Str(arena.alloc_str(&text)),
        }
    }
    fn number(n: u16) -> Borrowed<'c> {
        Borrowed::Number(Number::PosInt(u64::from(n)))
    }
    fn object<M>(arena: &'c Bump, members: M) -> Borrowed<'c>
    where
        M: IntoIterator<Item = (&'c str, Borrowed<'c>)>,
        M::IntoIter: ExactSizeIterator,
    {
        Borrowed::object(arena, members)
    }
}

/// The request's text parts a template reads, decoded once; a context borrows them.
pub struct RequestParts<'r> {
    roots: Roots,
    path: Vec<(&'r str, &'r str)>,
    query: Vec<(Cow<'r, str>, Cow<'r, str>)>,
    headers: FieldValues<'r>,
    consumer: Option<&'r str>,
}

/// The header fields a template reads, named in lower case, with their values: a few, so on
/// the stack (a vector of them was an allocation per mapped request).
pub type FieldValues<'h> = SmallVec<[(&'h str, Cow<'h, str>); 4]>;

/// A request's header fields, as templates read them.
pub trait RequestFields {
    /// The `wanted` fields, named in lower case, with their values (repeats joined with
    /// `", "`; values that are not UTF-8 decoded lossily).
    fn read<'h>(&'h self, wanted: &'h HeaderNames) -> FieldValues<'h>;
}

impl RequestFields for HeaderMap {
    fn read<'h>(&'h self, wanted: &'h HeaderNames) -> FieldValues<'h> {
        header_pairs(self, wanted)
    }
}

impl<'r> RequestParts<'r> {
    /// Keeps only the parts in `roots`, and of the headers those in `headers`. The query is
    /// percent-decoded (`+` is a space), a repeated name keeping its first value; repeated
    /// headers are joined with `", "`.
    pub fn new(
        roots: Roots,
        header_names: &'r HeaderNames,
        path_params: impl IntoIterator<Item = (&'r str, &'r str)>,
        raw_query: Option<&'r str>,
        headers: &'r (impl RequestFields + ?Sized),
        consumer: Option<&'r str>,
    ) -> RequestParts<'r> {
        RequestParts {
            roots,
            path: if roots.path {
                path_params.into_iter().collect()
            } else {
                Vec::new()
            },
            query: if roots.query {
                query_pairs(raw_query)
            } else {
                Vec::new()
            },
            headers: if roots.headers {
                headers.read(header_names)
            } else {
                FieldValues::new()
            },
            consumer: consumer.filter(|_| roots.consumer),
        }
    }

    /// The request context `{path, query, headers, body, claims, consumer}` with the parts
    /// in `roots`. A missing body, claims or consumer is left out, so paths into it find
    /// nothing.
    pub fn context<'c, D: ContextDoc<'c>>(
        &'c self,
        arena: &'c D::Arena,
        body: Option<D>,
        claims: Option<D>,
    ) -> D {
        let texts = |pairs: &'c [(Cow<'r, str>, Cow<'r, str>)]| {
            let members = pairs
                .iter()
                .map(|(k, v)| (k.as_ref(), D::text(arena, v.as_ref().into())));
            D::object(arena, members)
        };
        let mut ctx = Gathered::new();
        if self.roots.path {
            let members = self
                .path
                .iter()
                .map(|(k, v)| (*k, D::text(arena, (*v).into())));
            ctx.push("path", D::object(arena, members));
        }
        if self.roots.query {
            ctx.push("query", texts(&self.query));
        }
        if self.roots.headers {
            let members = self
                .headers
                .iter()
                .map(|(k, v)| (*k, D::text(arena, v.as_ref().into())));
            ctx.push("headers", D::object(arena, members));
        }
        push_some(&mut ctx, self.roots.body, "body", body);
        push_some(&mut ctx, self.roots.claims, "claims", claims);
        let consumer = self.consumer.map(|c| D::text(arena, c.into()));
        push_some(&mut ctx, self.roots.consumer, "consumer", consumer);
        D::object(arena, ctx)
    }
}

/// A context's members, at most one per root, gathered on the stack rather than in a
/// vector: each is an allocation fewer per request. Six slots, one for each of the six roots
/// (`path`, `query`, `headers`, `body`, `claims`, `consumer`), so `push` never runs out.
struct Gathered<'c, D> {
    slots: [Option<(&'c str, D)>; 6],
    len: usize,
}

impl<'c, D> Gathered<'c, D> {
    fn new() -> Self {
        Gathered {
            slots: std::array::from_fn(|_| None),
            len: 0,
        }
    }

    fn push(&mut self, key: &'c str, value: D) {
        if let Some(slot) = self.slots.get_mut(self.len) {
            *slot = Some((key, value));
            self.len += 1;
        }
    }
}

impl<'c, D> IntoIterator for Gathered<'c, D> {
    type Item = (&'c str, D);
    type IntoIter = Counted<std::iter::Flatten<std::array::IntoIter<Option<(&'c str, D)>, 6>>>;

    fn into_iter(self) -> Self::IntoIter {
        Counted {
            left: self.len,
            inner: self.slots.into_iter().flatten(),
        }
    }
}

/// An iterator of a known number of items.
struct Counted<I> {
    inner: I,
    left: usize,
}

impl<I: Iterator> Iterator for Counted<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        if self.left == 0 {
            return None;
        }
        let item = self.inner.next()?;
        self.left -= 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<I: Iterator> ExactSizeIterator for Counted<I> {}

/// The claims as a borrowed tree: only the `wanted` ones, unless templates may read any.
pub fn borrowed_claims<'c>(
    claims: &'c Value,
    wanted: &ClaimNames,
    arena: &'c Bump,
) -> Borrowed<'c> {
    match (wanted, claims) {
        (MemberNames::Only(names), Value::Object(_)) => {
            // Counted first, so that the members go straight into the arena. Looked up by
            // `value_entry`, a scan of the few claims, not by hashing each name twice.
            let entry = |name: &String| propylon_json::value_entry(claims, name);
            let left = names.iter().filter_map(entry).count();
            let members = names
                .iter()
                .filter_map(entry)
                .map(|(k, v)| (k, Borrowed::from_value(v, arena)));
            Borrowed::object(
                arena,
                Counted {
                    inner: members,
                    left,
                },
            )
        }
        _ => Borrowed::from_value(claims, arena),
    }
}

/// Builds the response context `{body, status, headers}`, keeping only the parts in `roots`.
pub fn response_context<'c, D: ContextDoc<'c>>(
    arena: &'c D::Arena,
    roots: Roots,
    status: u16,
    headers: &'c HeaderMap,
    body: Option<D>,
) -> D {
    let mut ctx = Gathered::new();
    push_some(&mut ctx, roots.body, "body", body);
    if roots.status {
        ctx.push("status", D::number(status));
    }
    if roots.headers {
        let members = header_pairs(headers, &HeaderNames::All)
            .into_iter()
            .map(|(k, v)| (k, D::text(arena, v)));
        ctx.push("headers", D::object(arena, members));
    }
    D::object(arena, ctx)
}

fn push_some<'c, D>(ctx: &mut Gathered<'c, D>, wanted: bool, key: &'c str, value: Option<D>) {
    if let (true, Some(value)) = (wanted, value) {
        ctx.push(key, value);
    }
}

/// `a=1&b=x%20y&a=2` → `[("a", "1"), ("b", "x y")]`.
fn query_pairs(raw: Option<&str>) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    let mut out: Vec<(Cow<str>, Cow<str>)> = Vec::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name);
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, decode(value)));
        }
    }
    out
}

fn decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['+', '%']) {
        return Cow::Borrowed(s);
    }
    let spaced = s.replace('+', " ");
    Cow::Owned(percent_decode_str(&spaced).decode_utf8_lossy().into_owned())
}

/// The `wanted` header names (already lower-case) with their values; values that are not
/// UTF-8 are decoded lossily rather than dropped.
fn header_pairs<'h>(headers: &'h HeaderMap, wanted: &HeaderNames) -> FieldValues<'h> {
    let mut out = FieldValues::new();
    for name in headers.keys().filter(|n| wanted.wants(n.as_str())) {
        let values = headers.get_all(name).iter().map(HeaderValue::as_bytes);
        out.push((
            name.as_str(),
            joined_values(values).unwrap_or(Cow::Borrowed("")),
        ));
    }
    out
}

/// A field's values as templates read them: joined with `", "`, each decoded lossily when
/// it is not UTF-8; `None` for no value.
pub fn joined_values<'h>(mut values: impl Iterator<Item = &'h [u8]>) -> Option<Cow<'h, str>> {
    let first = String::from_utf8_lossy(values.next()?);
    Some(values.fold(first, |mut joined, value| {
        let text = joined.to_mut();
        text.push_str(", ");
        text.push_str(&String::from_utf8_lossy(value));
        joined
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The request context as serde_json's `Value`.
    #[allow(clippy::too_many_arguments)]
    fn request_context<'r>(
        roots: Roots,
        header_names: &'r HeaderNames,
        path_params: impl IntoIterator<Item = (&'r str, &'r str)>,
        raw_query: Option<&'r str>,
        headers: &'r HeaderMap,
        body: Option<Value>,
        claims: Option<Value>,
        consumer: Option<&'r str>,
    ) -> Value {
        RequestParts::new(
            roots,
            header_names,
            path_params,
            raw_query,
            headers,
            consumer,
        )
        .context(&(), body, claims)
    }
    use http::HeaderValue;
    use serde_json::json;

    fn headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-tenant", HeaderValue::from_static("acme"));
        h.append("accept", HeaderValue::from_static("a/b"));
        h.append("accept", HeaderValue::from_static("c/d"));
        h
    }

    fn all_request(query: Option<&str>) -> Value {
        request_context(
            Roots::ALL,
            &HeaderNames::All,
            [("id", "42")],
            query,
            &headers(),
            Some(json!({"a": 1})),
            Some(json!({"sub": "u1"})),
            Some("erp-batch"),
        )
    }

    #[test]
    fn request_context_has_every_part_when_asked() {
        let ctx = all_request(Some("q=a%20b+c&x=1&q=second&flag&n%C3%A4me=%E2%9C%93"));
        assert_eq!(
            ctx,
            json!({
                "path": {"id": "42"},
                "query": {"q": "a b c", "x": "1", "flag": "", "näme": "✓"},
                "headers": {"x-tenant": "acme", "accept": "a/b, c/d"},
                "body": {"a": 1},
                "claims": {"sub": "u1"},
                "consumer": "erp-batch"
            })
        );
    }

    #[test]
    fn request_context_builds_only_requested_roots() {
        let roots = Roots {
            query: true,
            body: true,
            ..Roots::default()
        };
        let ctx = request_context(
            roots,
            &HeaderNames::All,
            [("id", "42")],
            None,
            &headers(),
            Some(json!([1])),
            Some(json!({"sub": "u1"})),
            Some("c"),
        );
        assert_eq!(ctx, json!({"query": {}, "body": [1]}));
    }

    #[test]
    fn absent_parts_are_left_out() {
        let ctx = request_context(
            Roots::ALL,
            &HeaderNames::All,
            [],
            None,
            &HeaderMap::new(),
            None,
            None,
            None,
        );
        assert_eq!(ctx, json!({"path": {}, "query": {}, "headers": {}}));
    }

    #[test]
    fn only_the_headers_read_by_name_are_kept() {
        let h = headers();
        let roots = Roots {
            headers: true,
            ..Roots::default()
        };
        let wanted = HeaderNames::Only(vec!["accept".into()]);
        let ctx = request_context(roots, &wanted, [], None, &h, None, None, None);
        assert_eq!(ctx, json!({"headers": {"accept": "a/b, c/d"}}));
    }

    #[test]
    fn a_borrowed_context_holds_the_same_document() {
        let h = headers();
        let query = Some("q=a%20b+c&x=1&q=second");
        let parts = RequestParts::new(
            Roots::ALL,
            &HeaderNames::All,
            [("id", "42")],
            query,
            &h,
            Some("c"),
        );
        let arena = Bump::new();
        let body = crate::mapping::parse_borrowed(br#"{"a":[1,"x"]}"#, &arena).unwrap();
        let claims = json!({"sub": "u1"});
        let tree_claims = Borrowed::from_value(&claims, &arena);
        let borrowed = parts.context(&arena, Some(body), Some(tree_claims));
        let owned: Value = parts.context(&(), Some(json!({"a": [1, "x"]})), Some(claims.clone()));
        assert_eq!(Value::from(&borrowed), owned);
        assert_eq!(serde_json::to_string(&borrowed).unwrap(), owned.to_string());
        let mut h = headers();
        h.append("x-raw", http::HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let response: Borrowed = response_context(&arena, Roots::ALL, 201, &h, None);
        assert_eq!(
            Value::from(&response),
            response_context(&(), Roots::ALL, 201, &h, None::<Value>)
        );
        assert_eq!(
            response.member("headers").and_then(|h| h.member("x-raw")),
            Some(&Borrowed::Str("caf\u{fffd}"))
        );
    }

    #[test]
    fn response_context_parts() {
        let ctx = response_context(&(), Roots::ALL, 404, &headers(), Some(json!({"e": 1})));
        assert_eq!(ctx["status"], json!(404));
        assert_eq!(ctx["body"], json!({"e": 1}));
        assert_eq!(ctx["headers"]["x-tenant"], json!("acme"));
        let only_status = Roots {
            status: true,
            ..Roots::default()
        };
        let ctx = response_context(&(), only_status, 201, &headers(), Some(json!(1)));
        assert_eq!(ctx, json!({"status": 201}));
    }

    #[test]
    fn only_the_claims_read_by_name_are_kept() {
        use crate::mapping::BodyTemplate;
        let claims = json!({"iss": "i", "sub": "u1", "scope": "a b", "tenant": {"id": 7}});
        let template =
            BodyTemplate::compile(&json!({"who": "$.claims.sub", "t": "$.claims.tenant.id"}));
        let names = template.unwrap().claim_names().clone();
        assert_eq!(names, ClaimNames::Only(vec!["sub".into(), "tenant".into()]));
        let arena = Bump::new();
        let kept = borrowed_claims(&claims, &names, &arena);
        assert_eq!(
            Value::from(&kept),
            json!({"sub": "u1", "tenant": {"id": 7}})
        );
        let whole = BodyTemplate::compile(&json!({"all": "$.claims"})).unwrap();
        assert_eq!(whole.claim_names(), &ClaimNames::All);
        assert_eq!(
            Value::from(&borrowed_claims(&claims, &ClaimNames::All, &arena)),
            claims
        );
        let any = BodyTemplate::compile(&json!({"x": "$..sub"})).unwrap();
        assert_eq!(any.claim_names(), &ClaimNames::All);
        // Claims that are not an object are kept as they are.
        let one = json!(1);
        assert_eq!(
            Value::from(&borrowed_claims(&one, &names, &arena)),
            json!(1)
        );
    }
}
