//! Mapping cost per request: parse the body, build the context, render the template,
//! serialise the result. `both_ways_1kb` is one request template plus one response template,
//! the path a mapped call takes through the gateway.

#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};
use propylon_bench::order;
use propylon_policies::mapping::{
    arena_for, parse_borrowed, parse_pruned, response_context, BodyTemplate, Borrowed, Bump, Reads,
    RequestParts,
};
use serde_json::{json, Value};
use std::hint::black_box;

/// A client's order, about 1 KB.
fn order_body() -> Vec<u8> {
    serde_json::to_vec(&order("Leave at reception")).unwrap()
}

/// The legacy ERP's answer to that order, about 1 KB, in its own naming.
fn legacy_answer() -> Vec<u8> {
    serde_json::to_vec(&propylon_bench::legacy_answer()).unwrap()
}

fn request_template() -> BodyTemplate {
    BodyTemplate::compile(&propylon_bench::request_template()).unwrap()
}

fn response_template() -> BodyTemplate {
    BodyTemplate::compile(&propylon_bench::response_template()).unwrap()
}

struct Fixture {
    request: BodyTemplate,
    response: BodyTemplate,
    order: Vec<u8>,
    answer: Vec<u8>,
    headers: HeaderMap,
    claims: Value,
    /// What the response template reads of the answer, worked out once (as at config load).
    reads: Reads,
}

impl Fixture {
    fn new() -> Fixture {
        let mut headers = HeaderMap::new();
        headers.insert("x-tenant", HeaderValue::from_static("acme"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("accept", HeaderValue::from_static("application/json"));
        headers.insert("user-agent", HeaderValue::from_static("bench/1.0"));
        headers.insert(
            "x-request-id",
            HeaderValue::from_static("0f8e1c5e-3b1d-4c1a"),
        );
        let response = response_template();
        let reads = Reads::of_body(Some(&response), []);
        Fixture {
            request: request_template(),
            response,
            order: order_body(),
            answer: legacy_answer(),
            headers,
            claims: json!({"sub": "user-7", "scope": "orders:write", "iss": "https://idp.example.com/"}),
            reads,
        }
    }

    fn request_parts(&self) -> RequestParts<'_> {
        RequestParts::new(
            self.request.roots(),
            self.request.header_names(),
            [("tenant", "acme")],
            Some("dry_run=false"),
            &self.headers,
            Some("web-shop"),
        )
    }

    fn request_ctx(&self) -> Value {
        let body: Value = serde_json::from_slice(&self.order).unwrap();
        self.request_parts()
            .context(&(), Some(body), Some(self.claims.clone()))
    }

    fn response_ctx(&self) -> Value {
        let body: Value = serde_json::from_slice(&self.answer).unwrap();
        response_context(&(), self.response.roots(), 201, &self.headers, Some(body))
    }

    /// `render` to a `Value`, then `serde_json::to_vec`.
    fn map_request(&self) -> Vec<u8> {
        let out = self.request.render(&self.request_ctx()).unwrap();
        serde_json::to_vec(&out).unwrap()
    }

    fn map_response(&self) -> Vec<u8> {
        let out = self.response.render(&self.response_ctx()).unwrap();
        serde_json::to_vec(&out).unwrap()
    }

    /// `render_json`: the same bytes, written directly.
    fn map_request_direct(&self) -> Vec<u8> {
        self.request.render_json(&self.request_ctx()).unwrap()
    }

    fn map_response_direct(&self) -> Vec<u8> {
        self.response.render_json(&self.response_ctx()).unwrap()
    }

    /// What the gateway does: each body parsed as a borrowed document, rendered directly.
    fn map_request_borrowed(&self) -> Vec<u8> {
        let arena = arena_for(self.order.len());
        let body = parse_borrowed(&self.order, &arena).unwrap();
        let parts = self.request_parts();
        let claims = Borrowed::from_value(&self.claims, &arena);
        let ctx = parts.context(&*arena, Some(body), Some(claims));
        self.request.render_json(&ctx).unwrap()
    }

    /// The answer built only as far as the response template reads it (`Reads`).
    fn map_response_borrowed(&self) -> Vec<u8> {
        let arena = arena_for(self.answer.len());
        let body = parse_pruned(&self.answer, &self.reads, &arena).unwrap();
        let ctx: Borrowed = response_context(
            &*arena,
            self.response.roots(),
            201,
            &self.headers,
            Some(body),
        );
        self.response.render_json(&ctx).unwrap()
    }
}

fn mapping(c: &mut Criterion) {
    let f = Fixture::new();
    eprintln!(
        "request body {} B -> {} B; legacy answer {} B -> {} B",
        f.order.len(),
        f.map_request().len(),
        f.answer.len(),
        f.map_response().len()
    );
    assert_eq!(f.map_request(), f.map_request_direct());
    assert_eq!(f.map_response(), f.map_response_direct());
    assert_eq!(f.map_request(), f.map_request_borrowed());
    assert_eq!(f.map_response(), f.map_response_borrowed());
    let mut group = c.benchmark_group("mapping");
    group.bench_function("request_1kb", |b| b.iter(|| black_box(f.map_request())));
    group.bench_function("response_1kb", |b| b.iter(|| black_box(f.map_response())));
    group.bench_function("both_ways_1kb", |b| {
        b.iter(|| black_box((f.map_request(), f.map_response())))
    });
    group.bench_function("request_1kb_direct", |b| {
        b.iter(|| black_box(f.map_request_direct()))
    });
    group.bench_function("response_1kb_direct", |b| {
        b.iter(|| black_box(f.map_response_direct()))
    });
    group.bench_function("both_ways_1kb_direct", |b| {
        b.iter(|| black_box((f.map_request_direct(), f.map_response_direct())))
    });
    group.bench_function("both_ways_1kb_borrowed", |b| {
        b.iter(|| black_box((f.map_request_borrowed(), f.map_response_borrowed())))
    });
    // The mapping engine alone: the bodies already parsed (in the gateway the request body
    // is parsed once for validation and mapping), templates rendered straight to bytes.
    let (request_ctx, response_ctx) = (f.request_ctx(), f.response_ctx());
    group.bench_function("render_only_both_ways_1kb", |b| {
        b.iter(|| {
            black_box((
                f.request.render_json(&request_ctx),
                f.response.render_json(&response_ctx),
            ))
        })
    });
    // The floor: parsing both bodies and serialising them back, no mapping at all.
    group.bench_function("baseline_parse_serialize_both_1kb", |b| {
        b.iter(|| {
            let order: Value = serde_json::from_slice(&f.order).unwrap();
            let answer: Value = serde_json::from_slice(&f.answer).unwrap();
            black_box((
                serde_json::to_vec(&order).unwrap(),
                serde_json::to_vec(&answer).unwrap(),
            ))
        })
    });
    // The two bodies as borrowed trees (`parse_borrowed`, what the gateway does for
    // requests), and the answer pruned to what its template reads; each in its own arena, as
    // in the gateway.
    group.bench_function("parse_borrowed_both_1kb", |b| {
        b.iter(|| {
            let (a, b) = (arena_for(f.order.len()), arena_for(f.answer.len()));
            let order = parse_borrowed(&f.order, &a).unwrap();
            let answer = parse_borrowed(&f.answer, &b).unwrap();
            black_box((order, answer));
        })
    });
    group.bench_function("parse_borrowed_answer_pruned_1kb", |b| {
        b.iter(|| {
            let arena = arena_for(f.answer.len());
            black_box(parse_pruned(&f.answer, &f.reads, &arena).unwrap());
        })
    });
    group.bench_function("parse_borrowed_answer_1kb", |b| {
        b.iter(|| {
            let arena = Bump::new();
            black_box(parse_borrowed(&f.answer, &arena).unwrap());
        })
    });
    group.bench_function("baseline_parse_only_both_1kb", |b| {
        b.iter(|| {
            let order: Value = serde_json::from_slice(&f.order).unwrap();
            let answer: Value = serde_json::from_slice(&f.answer).unwrap();
            black_box((order, answer))
        })
    });
    group.finish();
}

criterion_group!(benches, mapping);
criterion_main!(benches);
