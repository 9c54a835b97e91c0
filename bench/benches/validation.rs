//! Request validation cost per request, with validators compiled once as the
//! gateway does at config load. `body_1kb` is the schema check alone (target:
//! under 5 µs), `parse_and_validate_1kb` adds the JSON parse the gateway does
//! first, `parameters` is three query params plus one path param.

#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};
use propylon_bench::{validated_order, ORDER_SCHEMAS};
use propylon_openapi::{FacadeSpec, PathParams, RequestValidator};
use serde_json::Value;
use std::hint::black_box;

/// An order API: a dozen top-level fields, a nested customer with an
/// address, eight lines each with three constrained fields.
const SPEC: &str = r##"
openapi: 3.0.3
info: {title: Orders, version: "1"}
paths:
  /customers/{id}/orders:
    parameters:
      - {name: id, in: path, required: true, schema: {type: integer, minimum: 1}}
    get:
      operationId: listOrders
      parameters:
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 100}}
        - {name: status, in: query, schema: {type: string, enum: [open, shipped, closed]}}
        - {name: since, in: query, required: true, schema: {type: string, pattern: "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}}
      responses: {}
    post:
      operationId: createOrder
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Order"}
      responses: {}
components:
  schemas:
"##;

/// A client's order, about 1 KB, with two more optional fields the spec knows.
fn order_body() -> Vec<u8> {
    serde_json::to_vec(&validated_order()).unwrap()
}

fn validation(c: &mut Criterion) {
    let spec = FacadeSpec::parse(&format!("{SPEC}{ORDER_SCHEMAS}")).unwrap();
    let create = RequestValidator::compile(&spec, "createOrder").unwrap();
    let list = RequestValidator::compile(&spec, "listOrders").unwrap();
    let raw = order_body();
    assert!(
        (900..1300).contains(&raw.len()),
        "body is {} bytes",
        raw.len()
    );
    let body: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(create.validate_body(Some(&body)), vec![]);

    let path: PathParams = [("id", "42")].into_iter().collect();
    let query = "limit=20&status=open&since=2024-01-31";
    let mut headers = HeaderMap::new();
    headers.insert("accept", HeaderValue::from_static("application/json"));
    assert_eq!(
        list.validate_parameters(&path, Some(query), &headers),
        vec![]
    );

    let mut group = c.benchmark_group("validation");
    group.bench_function("body_1kb", |b| {
        b.iter(|| create.validate_body(black_box(Some(&body))))
    });
    group.bench_function("parse_and_validate_1kb", |b| {
        b.iter(|| {
            let parsed: Value = serde_json::from_slice(black_box(&raw)).unwrap();
            create.validate_body(Some(&parsed))
        })
    });
    group.bench_function("parameters", |b| {
        b.iter(|| list.validate_parameters(black_box(&path), black_box(Some(query)), &headers))
    });
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
