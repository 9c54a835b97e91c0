//! The JSON document a mapping's JSONPaths read. Only the parts a route's templates use are
//! built: no header map or query decoding for a template that reads only the body.

use super::roots::Roots;
use http::HeaderMap;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

/// Builds the request context `{path, query, headers, body, claims, consumer}`, keeping only
/// the parts in `roots`. The query is percent-decoded (`+` is a space) into a map where a
/// repeated name keeps its first value; repeated headers are joined with `", "`. A missing
/// body, claims or consumer is left out, so paths into it find nothing.
pub fn request_context(
    roots: Roots,
    path_params: impl IntoIterator<Item = (String, String)>,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    body: Option<Value>,
    claims: Option<Value>,
    consumer: Option<&str>,
) -> Value {
    let mut ctx = Map::with_capacity(6);
    if roots.path {
        let params = path_params
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        ctx.insert("path".into(), Value::Object(params));
    }
    if roots.query {
        ctx.insert("query".into(), query_object(raw_query));
    }
    if roots.headers {
        ctx.insert("headers".into(), header_object(headers));
    }
    insert_some(&mut ctx, roots.body, "body", body);
    insert_some(&mut ctx, roots.claims, "claims", claims);
    insert_some(
        &mut ctx,
        roots.consumer,
        "consumer",
        consumer.map(Value::from),
    );
    Value::Object(ctx)
}

/// Builds the response context `{body, status, headers}`, keeping only the parts in `roots`.
pub fn response_context(
    roots: Roots,
    status: u16,
    headers: &HeaderMap,
    body: Option<Value>,
) -> Value {
    let mut ctx = Map::with_capacity(3);
    insert_some(&mut ctx, roots.body, "body", body);
    if roots.status {
        ctx.insert("status".into(), Value::from(status));
    }
    if roots.headers {
        ctx.insert("headers".into(), header_object(headers));
    }
    Value::Object(ctx)
}

fn insert_some(ctx: &mut Map<String, Value>, wanted: bool, key: &str, value: Option<Value>) {
    if let (true, Some(value)) = (wanted, value) {
        ctx.insert(key.into(), value);
    }
}

/// `a=1&b=x%20y&a=2` → `{"a": "1", "b": "x y"}`.
fn query_object(raw: Option<&str>) -> Value {
    let mut out = Map::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name);
        if !out.contains_key(&name) {
            out.insert(name, Value::String(decode(value)));
        }
    }
    Value::Object(out)
}

fn decode(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// Header names (already lower-case) to their values; values that are not UTF-8 are decoded
/// lossily rather than dropped.
fn header_object(headers: &HeaderMap) -> Value {
    let mut out = Map::with_capacity(headers.keys_len());
    for name in headers.keys() {
        let mut joined = String::new();
        for value in headers.get_all(name) {
            if !joined.is_empty() {
                joined.push_str(", ");
            }
            joined.push_str(&String::from_utf8_lossy(value.as_bytes()));
        }
        out.insert(name.as_str().to_string(), Value::String(joined));
    }
    Value::Object(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
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
            [("id".to_string(), "42".to_string())],
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
            [("id".to_string(), "42".to_string())],
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
        let ctx = request_context(Roots::ALL, [], None, &HeaderMap::new(), None, None, None);
        assert_eq!(ctx, json!({"path": {}, "query": {}, "headers": {}}));
    }

    #[test]
    fn response_context_parts() {
        let ctx = response_context(Roots::ALL, 404, &headers(), Some(json!({"e": 1})));
        assert_eq!(ctx["status"], json!(404));
        assert_eq!(ctx["body"], json!({"e": 1}));
        assert_eq!(ctx["headers"]["x-tenant"], json!("acme"));
        let only_status = Roots {
            status: true,
            ..Roots::default()
        };
        let ctx = response_context(only_status, 201, &headers(), Some(json!(1)));
        assert_eq!(ctx, json!({"status": 201}));
    }
}
