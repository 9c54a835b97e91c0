//! Benchmarks live here; see `bench/README.md`.
//!
//! The library holds fixtures the benches and `load-bench` share: the 1 KB order, its
//! schema, the legacy ERP's answer and the two mapping templates between them.

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

/// The order the validation bench checks (about 1.1 KB): [`order`] with a longer note and
/// the two optional fields the schema also knows.
pub fn validated_order() -> Value {
    let mut order =
        order("Leave at reception; ring twice. The loading bay closes at 17:00 on weekdays.");
    if let Some(fields) = order.as_object_mut() {
        fields.insert("gift".to_string(), json!(false));
        fields.insert(
            "source".to_string(),
            json!("campaign-spring-newsletter-2024"),
        );
    }
    order
}

/// The schemas of an order (`Order`, `Customer`, `Line`), as the entries of an OpenAPI
/// `components.schemas` block (indented by four spaces).
pub const ORDER_SCHEMAS: &str = r##"    Order:
      type: object
      required: [reference, currency, customer, items, terms_accepted]
      properties:
        reference: {type: string, pattern: "^PO-[0-9]{4}-[0-9]{6}$"}
        currency: {type: string, enum: [EUR, USD, GBP]}
        channel: {type: string, enum: [web, store, phone]}
        requested_delivery: {type: string, format: date}
        priority: {type: string, enum: [low, normal, high]}
        coupon: {type: string, maxLength: 20, nullable: true}
        customer: {$ref: "#/components/schemas/Customer"}
        items: {type: array, minItems: 1, maxItems: 50, items: {$ref: "#/components/schemas/Line"}}
        notes: {type: string, maxLength: 500}
        terms_accepted: {type: boolean}
        gift: {type: boolean}
        source: {type: string}
    Customer:
      type: object
      required: [id, name, email]
      properties:
        id: {type: string, minLength: 1}
        name: {type: string, minLength: 1, maxLength: 200}
        email: {type: string, format: email}
        phone: {type: string}
        address:
          type: object
          required: [street, city, country]
          properties:
            street: {type: string}
            city: {type: string}
            zip: {type: string, maxLength: 10}
            country: {type: string, minLength: 2, maxLength: 2}
    Line:
      type: object
      required: [sku, qty, unit_price]
      properties:
        sku: {type: string, pattern: "^SKU-[0-9]{4}$"}
        qty: {type: integer, minimum: 1, maximum: 1000}
        unit_price: {type: number, minimum: 0, exclusiveMinimum: true}
        note: {type: string}
"##;

/// The legacy ERP's answer to an order, about 1 KB, in its own naming.
pub fn legacy_answer() -> Value {
    let lines: Vec<Value> = (1..=8)
        .map(|i| {
            json!({"ItemSku": format!("SKU-{i:04}"), "QtyOrdered": i, "QtyShipped": i - 1,
                   "LinePrice": 9.5 * f64::from(i), "WhseCode": "W01"})
        })
        .collect();
    json!({
        "OrderNo": "SO-0099817", "OrderStatus": "ACCEPTED", "CustRef": "C-100234",
        "CreatedTs": "2024-05-20T10:31:07Z", "Currency": "EUR",
        "Totals": {"Net": 402.5, "Tax": 80.5, "Gross": 483.0},
        "LineItems": lines,
        "Warehouse": "W01", "Carrier": "DHL", "InternalFlags": 17
    })
}

/// The request body template: the facade's order to the ERP's (claims, a header, `$each`,
/// `$default`). JSON is YAML, so this is also the gateway's `request.body`.
pub fn request_template() -> Value {
    json!({
        "Customer": "$.claims.sub",
        "Tenant": "$.headers.x-tenant",
        "OrderRef": "$.body.reference",
        "Currency": {"$path": "$.body.currency", "$default": "EUR"},
        "Channel": "WEB",
        "ShipTo": {
            "Name": "$.body.customer.name",
            "Street": "$.body.customer.address.street",
            "City": "$.body.customer.address.city",
            "Zip": "$.body.customer.address.zip",
            "Country": "$.body.customer.address.country"
        },
        "Lines": {"$each": "$.body.items[*]", "$to": {
            "Sku": "$.sku", "Qty": {"$path": "$.qty", "$default": 1}, "Price": "$.unit_price"
        }},
        "Remarks": "$.body.notes"
    })
}

/// The response body template: the ERP's answer back to the facade's names.
pub fn response_template() -> Value {
    json!({
        "id": "$.body.OrderNo",
        "status": "$.body.OrderStatus",
        "customer": "$.body.CustRef",
        "created_at": "$.body.CreatedTs",
        "total": {"amount": "$.body.Totals.Gross", "currency": "$.body.Currency"},
        "lines": {"$each": "$.body.LineItems", "$to": {
            "sku": "$.ItemSku", "quantity": "$.QtyOrdered", "shipped": "$.QtyShipped"
        }},
        "http_status": "$.status"
    })
}

/// The facade of the durable-jobs benchmarks (`jobs-bench`, `load-bench`'s async scenario):
/// one `POST /orders` taking any JSON object.
pub const ASYNC_ORDERS_SPEC: &str = r#"openapi: 3.0.3
info: { title: Orders, version: "1" }
paths:
  /orders:
    post:
      operationId: createOrder
      requestBody:
        content:
          application/json:
            schema: { type: object }
      responses:
        "201": { description: created }
"#;
