//! Benchmarks live here; see `bench/README.md`. The load harness comes with its own issue.
//!
//! The library holds fixtures the benches share.

use serde_json::{json, Value};

/// A client's order, about 1 KB: a dozen fields, a customer object with an address, eight
/// lines. `notes` is the free-text field, so a bench can size the body.
pub fn order(notes: &str) -> Value {
    let items: Vec<Value> = (1..=8)
        .map(|i| {
            json!({"sku": format!("SKU-{i:04}"), "qty": i, "unit_price": 9.5 + f64::from(i),
                   "note": if i % 3 == 0 { "gift wrap" } else { "" }})
        })
        .collect();
    json!({
        "reference": "PO-2024-000187",
        "currency": "EUR",
        "channel": "web",
        "requested_delivery": "2024-06-01",
        "priority": "normal",
        "coupon": "SPRING10",
        "customer": {
            "id": "C-100234", "name": "Ada Lovelace", "email": "ada@example.com",
            "phone": "+44 20 7946 0000",
            "address": {"street": "12 Analytical Row", "city": "London", "zip": "NW1 6XE", "country": "GB"}
        },
        "items": items,
        "notes": notes,
        "terms_accepted": true
    })
}
