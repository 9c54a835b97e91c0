//! Body templates end to end: compile, render over a context, and the errors admins see.

#![allow(clippy::unwrap_used)]

use super::*;
use http::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

/// Renders both ways, checking that `render_json` writes exactly what `render` builds, and
/// that it writes the same over a borrowed copy of the context when the template reads one.
fn render(template: Value, ctx: &Value) -> Option<Value> {
    let t = BodyTemplate::compile(&template).unwrap();
    let value = t.render(ctx);
    let bytes = t.render_json(ctx);
    let text = ctx.to_string();
    let arena = Bump::new();
    let borrowed = parse_borrowed(text.as_bytes(), &arena).unwrap();
    if t.reads_borrowed() {
        assert_eq!(
            t.render_json(&borrowed),
            bytes,
            "the borrowed document differs"
        );
    }
    assert_eq!(
        bytes
            .as_deref()
            .map(|b| serde_json::from_slice::<Value>(b).unwrap()),
        value,
        "render_json differs from render"
    );
    assert_eq!(
        bytes,
        value.as_ref().map(|v| serde_json::to_vec(v).unwrap())
    );
    value
}

#[test]
fn templates_name_the_headers_they_read() {
    let by_name = json!({"t": "$.headers.x-tenant", "a": "$.headers['accept']", "b": "$.body.x"});
    assert_eq!(
        BodyTemplate::compile(&by_name).unwrap().header_names(),
        &HeaderNames::Only(vec!["x-tenant".into(), "accept".into()])
    );
    for any in [
        json!({"h": "$.headers"}),
        json!({"h": "$..x"}),
        json!({"h": "$.headers.*"}),
    ] {
        let names = BodyTemplate::compile(&any).unwrap().header_names().clone();
        assert_eq!(names, HeaderNames::All, "{any}");
    }
    let value = ValueTemplate::compile("$.headers.x-b").unwrap();
    assert_eq!(value.header_names(), &HeaderNames::Only(vec!["x-b".into()]));
}

#[test]
fn engine_paths_keep_serde_values() {
    let engine = json!({"all": "$..sku", "big": "$.body.items[?@.qty > 2]"});
    assert!(!BodyTemplate::compile(&engine).unwrap().reads_borrowed());
    let direct =
        json!({"a": "$.body.items[*].sku", "b": {"$each": "$.body.items", "$to": "$.sku"}});
    assert!(BodyTemplate::compile(&direct).unwrap().reads_borrowed());
    assert!(!ValueTemplate::compile("$..x").unwrap().reads_borrowed());
    assert!(ValueTemplate::compile("$.headers.x-a")
        .unwrap()
        .reads_borrowed());
}

fn errors(template: Value) -> Vec<(String, String)> {
    BodyTemplate::compile(&template)
        .unwrap_err()
        .into_iter()
        .map(|e| (e.pointer, e.message))
        .collect()
}

fn order_ctx() -> Value {
    json!({
        "path": {"id": "42"},
        "headers": {"x-tenant": "acme"},
        "claims": {"sub": "user-7"},
        "body": {
            "customer": {"name": "Ada", "address": {"city": "Paris"}},
            "items": [
                {"sku": "A-1", "qty": 3, "tags": ["red", "big"]},
                {"sku": "B-2", "tags": []},
                {"qty": 5}
            ]
        }
    })
}

#[test]
fn nested_objects_literals_and_scalars() {
    let out = render(
        json!({
            "Who": {"Name": "$.body.customer.name", "City": "$.body.customer.address.city"},
            "Source": "propylon",
            "Version": 2, "Ratio": 0.5, "Urgent": false, "Nothing": null
        }),
        &order_ctx(),
    );
    assert_eq!(
        out,
        Some(json!({
            "Who": {"Name": "Ada", "City": "Paris"},
            "Source": "propylon",
            "Version": 2, "Ratio": 0.5, "Urgent": false, "Nothing": null
        }))
    );
}

#[test]
fn literal_directive_keeps_dollar_text_and_structures() {
    let out = render(
        json!({"Price": {"$literal": "$5"}, "Raw": {"$literal": {"$path": "not a path"}}}),
        &json!({}),
    );
    assert_eq!(
        out,
        Some(json!({"Price": "$5", "Raw": {"$path": "not a path"}}))
    );
}

#[test]
fn default_applies_only_when_nothing_is_found() {
    let t = json!({"Cur": {"$path": "$.body.currency", "$default": "EUR"}});
    assert_eq!(
        render(t.clone(), &json!({"body": {}})),
        Some(json!({"Cur": "EUR"}))
    );
    assert_eq!(
        render(t.clone(), &json!({"body": {"currency": "USD"}})),
        Some(json!({"Cur": "USD"}))
    );
    // A found null is a value, not "nothing".
    assert_eq!(
        render(t, &json!({"body": {"currency": null}})),
        Some(json!({"Cur": null}))
    );
    let bare = json!({"Cur": {"$path": "$.body.currency"}});
    assert_eq!(render(bare, &json!({"body": {}})), Some(json!({})));
}

#[test]
fn missing_fields_are_left_out() {
    let out = render(
        json!({"A": "$.body.customer.name", "B": "$.body.nope", "C": {"D": "$.query.x"}}),
        &order_ctx(),
    );
    assert_eq!(out, Some(json!({"A": "Ada", "C": {}})));
}

#[test]
fn each_over_a_wildcard_path_and_over_an_array() {
    let to = json!({"Sku": "$.sku", "Qty": {"$path": "$.qty", "$default": 1}});
    let expected = json!({"Lines": [
        {"Sku": "A-1", "Qty": 3}, {"Sku": "B-2", "Qty": 1}, {"Qty": 5}
    ]});
    for source in ["$.body.items[*]", "$.body.items"] {
        let t = json!({"Lines": {"$each": source, "$to": to}});
        assert_eq!(render(t, &order_ctx()), Some(expected.clone()), "{source}");
    }
}

#[test]
fn each_edge_cases() {
    let t = json!({"L": {"$each": "$.body.items", "$to": "$.sku"}});
    // Items whose `$to` finds nothing are left out; a missing source leaves the key out.
    assert_eq!(
        render(t.clone(), &order_ctx()),
        Some(json!({"L": ["A-1", "B-2"]}))
    );
    assert_eq!(render(t.clone(), &json!({"body": {}})), Some(json!({})));
    // An empty array stays an empty array; a lone object is one item.
    assert_eq!(
        render(t.clone(), &json!({"body": {"items": []}})),
        Some(json!({"L": []}))
    );
    assert_eq!(
        render(t, &json!({"body": {"items": {"sku": "solo"}}})),
        Some(json!({"L": ["solo"]}))
    );
}

#[test]
fn each_over_an_empty_list_is_an_empty_list_and_over_nothing_is_left_out() {
    let t = json!({"L": {"$each": "$.body.items[*]", "$to": "$.sku"}});
    assert_eq!(
        render(t.clone(), &json!({"body": {"items": []}})),
        Some(json!({"L": []}))
    );
    assert_eq!(render(t.clone(), &json!({"body": {}})), Some(json!({})));
    let compiled = BodyTemplate::compile(&t).unwrap();
    let bytes = compiled
        .render_json(&json!({"body": {"items": []}}))
        .unwrap();
    assert_eq!(bytes, br#"{"L":[]}"#);
}

#[test]
fn nested_each_is_relative_to_the_item() {
    let t = json!({"$each": "$.body.items[*]", "$to": {
        "Sku": "$.sku",
        "Tags": {"$each": "$.tags[*]", "$to": {"T": "$"}}
    }});
    assert_eq!(
        render(t, &order_ctx()),
        Some(json!([
            {"Sku": "A-1", "Tags": [{"T": "red"}, {"T": "big"}]},
            {"Sku": "B-2", "Tags": []},
            {}
        ]))
    );
}

#[test]
fn array_templates_leave_out_elements_that_find_nothing() {
    let out = render(
        json!(["$.claims.sub", "$.claims.missing", "fixed", {"$path": "$.body.x", "$default": 0}]),
        &order_ctx(),
    );
    assert_eq!(out, Some(json!(["user-7", "fixed", 0])));
}

#[test]
fn dashed_header_names_and_indefinite_paths() {
    let out = render(
        json!({
            "T1": "$.headers.x-tenant",
            "T2": "$.headers['x-tenant']",
            "Skus": "$.body.items[*].sku",
            "Big": "$.body.items[?@.qty > 2].sku",
            "None": "$.body.items[*].price"
        }),
        &order_ctx(),
    );
    assert_eq!(
        out,
        Some(json!({"T1": "acme", "T2": "acme", "Skus": ["A-1", "B-2"], "Big": ["A-1"]}))
    );
}

#[test]
fn a_bare_path_template_is_that_value_or_nothing() {
    let t = BodyTemplate::compile(&json!("$.body.customer")).unwrap();
    assert_eq!(
        t.render(&order_ctx()),
        Some(json!({"name": "Ada", "address": {"city": "Paris"}}))
    );
    assert_eq!(t.render(&json!({})), None);
}

#[test]
fn roots_list_only_top_level_parts_read() {
    let t = BodyTemplate::compile(&json!({
        "A": "$.claims.sub",
        "L": {"$each": "$.body.items", "$to": {"S": "$.sku", "H": "$.headers.x"}},
        "Lit": "$literal-free text"
    }));
    // `$literal-free text` starts with `$`: it is a path, and not a valid one.
    assert!(t.is_err());
    let t = BodyTemplate::compile(&json!({
        "A": "$.claims.sub",
        "L": {"$each": "$.body.items", "$to": {"S": "$.sku", "H": "$.headers.x"}}
    }))
    .unwrap();
    assert_eq!(
        t.roots(),
        Roots {
            claims: true,
            body: true,
            ..Roots::default()
        }
    );
    let any = BodyTemplate::compile(&json!({"all": "$..sku"})).unwrap();
    assert_eq!(any.roots(), Roots::ALL);
    let none = BodyTemplate::compile(&json!({"fixed": 1})).unwrap();
    assert_eq!(none.roots(), Roots::default());
}

#[test]
fn compile_errors_point_at_the_mistake() {
    let errs = errors(json!({"Lines": {"$each": "$.body.items[*]", "$to": {"Qty": "$.qty["}}}));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].0, "/Lines/$to/Qty");
    assert!(errs[0].1.contains("not a valid JSONPath"), "{}", errs[0].1);

    let errs = errors(json!({"A": {"$pth": "$.x"}}));
    assert_eq!(errs[0].0, "/A/$pth");
    assert!(errs[0].1.contains("unknown directive `$pth`"));

    let errs = errors(json!({"A": {"$to": {"x": "$.x"}}}));
    assert_eq!(errs[0].0, "/A/$to");
    assert!(errs[0].1.contains("needs `$each`"));

    let errs = errors(json!({"A": {"$default": 1}}));
    assert_eq!(errs[0].0, "/A/$default");
    assert!(errs[0].1.contains("needs `$path`"));

    let errs = errors(json!({"A": {"$each": "$.body.items"}}));
    assert_eq!(errs[0].0, "/A");
    assert!(errs[0].1.contains("needs `$to`"));

    let errs = errors(json!({"A": {"$path": "$.body.a", "Extra": 1}}));
    assert_eq!(errs[0].0, "/A/Extra");

    let errs = errors(json!({"A": {"$path": 3}}));
    assert_eq!(errs[0].0, "/A/$path");

    let errs = errors(json!({"A": "$.bdy.x"}));
    assert_eq!(errs[0].0, "/A");
    assert!(errs[0].1.contains("start at one of"), "{}", errs[0].1);
}

#[test]
fn every_error_is_collected_at_once() {
    let errs = errors(json!({
        "a/b": "$.body[",
        "List": ["ok", {"$oops": 1}],
        "Lines": {"$each": "$.body.items[*]", "$to": {"Q": {"$default": 1}}},
        "Fine": "$.body.x"
    }));
    let pointers: Vec<&str> = errs.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(errs.len(), 3, "{errs:?}");
    for expected in ["/a~1b", "/List/1/$oops", "/Lines/$to/Q/$default"] {
        assert!(
            pointers.contains(&expected),
            "{expected} missing from {pointers:?}"
        );
    }
}

/// DESIGN.md, operation getCustomer: request and response bodies.
#[test]
fn design_get_customer() {
    let request = BodyTemplate::compile(&json!({"CustId": "$.path.id"})).unwrap();
    assert_eq!(
        request.roots(),
        Roots {
            path: true,
            ..Roots::default()
        }
    );
    let no_headers = HeaderMap::new();
    let parts = RequestParts::new(
        request.roots(),
        request.header_names(),
        [("id", "c-17")],
        Some("verbose=1"),
        &no_headers,
        None,
    );
    let ctx: Value = parts.context(&(), None, None);
    assert_eq!(request.render(&ctx), Some(json!({"CustId": "c-17"})));

    let response = BodyTemplate::compile(&json!({
        "id": "$.body.CustId", "name": "$.body.FullName", "email": "$.body.Contact.Email"
    }))
    .unwrap();
    let legacy = json!({"CustId": "c-17", "FullName": "Ada Lovelace",
                        "Contact": {"Email": "ada@example.com", "Fax": "n/a"}, "Flags": 3});
    let ctx = response_context(&(), response.roots(), 200, &HeaderMap::new(), Some(legacy));
    assert_eq!(
        response.render(&ctx),
        Some(json!({"id": "c-17", "name": "Ada Lovelace", "email": "ada@example.com"}))
    );
    let status = StatusMap::compile(&[(404, 404)].into_iter().collect()).unwrap();
    assert_eq!(status.map(404), 404);
}

/// DESIGN.md, operation createOrder: claims and `$each` over the items.
#[test]
fn design_create_order() {
    let template = BodyTemplate::compile(&json!({
        "Customer": "$.claims.sub",
        "Lines": {"$each": "$.body.items[*]", "$to": {"Sku": "$.sku", "Qty": {"$path": "$.qty", "$default": 1}}}
    }))
    .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("x-tenant", HeaderValue::from_static("acme"));
    let parts = RequestParts::new(
        template.roots(),
        template.header_names(),
        [],
        None,
        &headers,
        Some("web"),
    );
    let ctx: Value = parts.context(
        &(),
        Some(json!({"items": [{"sku": "P-1", "qty": 2}, {"sku": "P-2"}]})),
        Some(json!({"sub": "user-7", "scope": "orders"})),
    );
    assert!(ctx.get("headers").is_none(), "headers were not asked for");
    assert_eq!(
        template.render(&ctx),
        Some(json!({
            "Customer": "user-7",
            "Lines": [{"Sku": "P-1", "Qty": 2}, {"Sku": "P-2", "Qty": 1}]
        }))
    );
}

#[test]
fn fields_sharing_a_parent_render_as_their_whole_paths() {
    let template = json!({
        "Street": "$.body.customer.address.street",
        "City": "$.body.customer.address.city",
        "Zip": {"$path": "$.body.customer.address.zip", "$default": "none"},
        "Name": "$.body.customer.name",
        "First": "$.body.items[0].sku",
        "FirstQty": "$.body.items[0].qty",
        "Last": "$.body.items[-1].sku",
        "Tenant": "$.headers.x-tenant"
    });
    let compiled = BodyTemplate::compile(&template).unwrap();
    let node::Node::Object(object) = compiled.node() else {
        panic!("an object template compiles to an object node");
    };
    // `address` and `items[0]` are shared; `customer` (Name alone) and `items[-1]` are not.
    assert_eq!(object.parents.len(), 2);
    let below = object.fields.iter().filter(|f| f.below.is_some()).count();
    assert_eq!(below, 5);

    let full = json!({"body": {"customer": {"name": "Ada", "address":
        {"street": "1 Row", "city": "London", "zip": "NW1"}},
        "items": [{"sku": "A", "qty": 2}, {"sku": "B"}]}, "headers": {"x-tenant": "acme"}});
    assert_eq!(
        render(template.clone(), &full),
        Some(
            json!({"Street": "1 Row", "City": "London", "Zip": "NW1", "Name": "Ada",
            "First": "A", "FirstQty": 2, "Last": "B", "Tenant": "acme"})
        )
    );
    // The parent missing, or not an object: nothing below it, the default still written.
    for customer in [
        json!({"name": "Ada"}),
        json!({"name": "Ada", "address": "x"}),
    ] {
        let ctx = json!({"body": {"customer": customer, "items": []}});
        assert_eq!(
            render(template.clone(), &ctx),
            Some(json!({"Zip": "none", "Name": "Ada"}))
        );
    }
    // A repeated name: the last one, for the parent as for the whole path.
    let repeated = r#"{"body": {"customer": {"address": {"city": "Paris"},
        "address": {"street": "2 Rue"}}}}"#;
    let arena = Bump::new();
    let doc = parse_borrowed(repeated.as_bytes(), &arena).unwrap();
    let value: Value = serde_json::from_str(repeated).unwrap();
    let expected = json!({"Street": "2 Rue", "Zip": "none"});
    assert_eq!(compiled.render(&value), Some(expected.clone()));
    let written = compiled.render_json(&doc).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&written).unwrap(), expected);
}
