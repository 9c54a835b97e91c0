//! Request and response mapping, end to end: the facade operation's request is rewritten
//! (method, path, headers, query, body) before it reaches the legacy backend, and the
//! backend's answer is rewritten (status, headers, body, errors) before the client sees it.

mod common;

use serde_json::{json, Value};

use common::*;

/// The facade spec of the mapping tests.
const FACADE_SPEC: &str = r#"openapi: 3.0.3
info:
  title: Customers facade
  version: "1.0"
paths:
  /customers/{id}:
    parameters:
      - { name: id, in: path, required: true, schema: { type: string } }
    get:
      operationId: getCustomer
      parameters:
        - { name: lang, in: query, schema: { type: string } }
        - { name: debug, in: query, schema: { type: string } }
        - { name: keep, in: query, schema: { type: string } }
        - { name: x-client, in: header, schema: { type: string } }
        - { name: x-tenant, in: header, schema: { type: string } }
      responses:
        "200": { description: the customer }
        "404": { description: no such customer }
  /customers/{id}/meta:
    parameters:
      - { name: id, in: path, required: true, schema: { type: string } }
    get:
      operationId: getCustomerMeta
      responses:
        "200": { description: metadata of the legacy answer }
  /customers/{id}/raw:
    parameters:
      - { name: id, in: path, required: true, schema: { type: string } }
    get:
      operationId: getCustomerPassErrors
      responses:
        "200": { description: the customer }
  /orders:
    post:
      operationId: createOrder
      requestBody:
        required: true
        content:
          application/json:
            schema: { type: object }
      responses:
        "200": { description: the order }
  /orders/import:
    post:
      operationId: importOrders
      requestBody:
        required: true
        content:
          application/json:
            schema: { type: object }
      responses:
        "200": { description: the import }
  /invoices/{no}:
    parameters:
      - { name: no, in: path, required: true, schema: { type: string } }
    get:
      operationId: getInvoice
      responses:
        "200": { description: the invoice }
"#;

/// The config of the mapping tests: `@CRM@`, `@ERP@`, `@BILLING@` are backend URLs.
const CONFIG_TEMPLATE: &str = r#"server:
  listen: "{{LISTEN}}"
  admin_listen: "{{ADMIN}}"
  admin_token: "{{TOKEN}}"
backends:
  crm:
    url: "@CRM@"
    timeout: 5s
  erp:
    url: "@ERP@"
    timeout: 5s
  billing:
    url: "@BILLING@"
    timeout: 5s
apis:
  - name: customers
    spec: ./facade.yaml
    operations:
      getCustomer:
        backend: crm
        request:
          method: POST
          path: /crm/GetCustomerById
          headers: { set: { x-legacy-app: propylon, x-caller: "$.headers.x-client" }, remove: [cookie], rename: { x-tenant: X-Legacy-Tenant } }
          query: { set: { format: json }, remove: [debug], rename: { lang: Language } }
          body: { CustId: "$.path.id" }
        response:
          status: { 404: 404, 500: 502 }
          headers: { set: { x-mapped: "yes" }, remove: [x-internal] }
          body: { id: "$.body.CustId", name: "$.body.FullName", email: "$.body.Contact.Email", phone: { $path: "$.body.Contact.Phone", $default: "unknown" } }
          errors: problem
      getCustomerMeta:
        backend: crm
        request:
          method: POST
          path: /crm/GetCustomerById
          body: { CustId: "$.path.id" }
        response:
          body: { id: "$.body.CustId", code: "$.status", etag: "$.headers.etag" }
      getCustomerPassErrors:
        backend: crm
        request:
          method: POST
          path: /crm/GetCustomerById
          body: { CustId: "$.path.id" }
        response:
          status: { 500: 502 }
          body: { id: "$.body.CustId" }
          errors: pass
      createOrder:
        backend: erp
        request:
          path: /orders/new
          body: { Customer: "$.body.customer", Lines: { $each: "$.body.items[*]", $to: { Sku: "$.sku", Qty: { $path: "$.qty", $default: 1 } } } }
        max_body: 2KiB
      importOrders:
        backend: erp
        request:
          path: /orders/import
          body: { Customer: "$.body.customer", Source: import }
      getInvoice:
        backend: billing
        format: xml
        xml: { root: GetInvoice, namespace: "urn:billing", envelope: soap11 }
        request: { method: POST, path: /soap, body: { InvoiceNo: "$.path.no" } }
        response: { body: { number: "$.body.Invoice.No", total: "$.body.Invoice.Total" } }
"#;

/// The legacy CRM's answer for customer 42.
fn crm_customer() -> Value {
    json!({
        "CustId": "42",
        "FullName": "Ada Lovelace",
        "Contact": { "Email": "ada@example.com", "Phone": "+44 20 7946 0000" },
        "InternalScore": 17
    })
}

struct Setup {
    crm: RecordingBackend,
    erp: RecordingBackend,
    billing: RecordingBackend,
    gw: Gateway,
}

fn setup() -> Setup {
    let crm = RecordingBackend::start(Reply::json(200, crm_customer()));
    let erp = RecordingBackend::start(Reply::json(200, json!({ "OrderNo": "O-1" })));
    let billing = RecordingBackend::start(Reply::new(500, "text/plain", b"not configured"));
    let config = CONFIG_TEMPLATE
        .replace("@CRM@", &crm.url())
        .replace("@ERP@", &erp.url())
        .replace("@BILLING@", &billing.url());
    let gw = Gateway::start_with_files(&config, &[("facade.yaml", FACADE_SPEC)]);
    Setup {
        crm,
        erp,
        billing,
        gw,
    }
}

/// `GET path`, asserting a 200 (with the body in the message if not).
#[track_caller]
fn get_ok(gw: &Gateway, path: &str) -> Resp {
    let resp = gw.get(path);
    assert_eq!(resp.status, 200, "GET {path}: body: {}", resp.text());
    resp
}

fn assert_json_content_type(resp: &Resp) {
    let content_type = resp.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "a mapped answer must be application/json, got {content_type:?}"
    );
}

/// When the answer declares a length, it must be the length of the body actually sent.
fn assert_consistent_length(resp: &Resp) {
    if let Some(len) = resp.header("content-length") {
        assert_eq!(
            len,
            resp.body.len().to_string(),
            "content-length does not match the body: {}",
            resp.text()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Request side
// ---------------------------------------------------------------------------------------

#[test]
fn request_body_is_rendered_from_path_param_with_json_headers() {
    let s = setup();
    get_ok(&s.gw, "/customers/42");

    assert_eq!(s.crm.call_count(), 1);
    let seen = s.crm.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/crm/GetCustomerById");
    // Exactly the rendered JSON: the path parameter is a string.
    assert_eq!(seen.body_text(), r#"{"CustId":"42"}"#);
    assert_eq!(seen.header_all("content-type"), vec!["application/json"]);
    assert_eq!(
        seen.header_all("content-length"),
        vec![seen.body.len().to_string()]
    );
    assert!(
        seen.header("transfer-encoding").is_none(),
        "a rendered body has a known length: {:?}",
        seen.headers
    );
}

#[test]
fn request_headers_are_set_removed_and_renamed() {
    let s = setup();
    let resp = s.gw.request(
        "GET",
        "/customers/42",
        &[
            ("x-client", "mobile-app"),
            ("cookie", "session=secret-cookie"),
            ("x-tenant", "acme"),
            ("x-legacy-app", "client-tried-to-set-this"),
            ("x-other", "kept"),
        ],
        None,
    );
    assert_eq!(resp.status, 200, "body: {}", resp.text());

    let seen = s.crm.last();
    // set, literal: replaces whatever the client sent.
    assert_eq!(seen.header_all("x-legacy-app"), vec!["propylon"]);
    // set, from the client's headers by JSONPath.
    assert_eq!(seen.header_all("x-caller"), vec!["mobile-app"]);
    // remove.
    assert!(
        seen.header("cookie").is_none(),
        "cookie must be removed: {:?}",
        seen.headers
    );
    // rename: new name, same value, old name gone.
    assert_eq!(seen.header_all("x-legacy-tenant"), vec!["acme"]);
    assert!(
        seen.header("x-tenant").is_none(),
        "x-tenant must be renamed away: {:?}",
        seen.headers
    );
    // other headers are kept.
    assert_eq!(seen.header_all("x-other"), vec!["kept"]);
}

#[test]
fn mapped_request_still_carries_the_request_id() {
    let s = setup();
    let resp = s.gw.request(
        "GET",
        "/customers/42",
        &[("x-request-id", "req-mapping-0001")],
        None,
    );
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    assert_eq!(
        s.crm.last().header_all("x-request-id"),
        vec!["req-mapping-0001"]
    );
    assert_eq!(
        resp.header("x-request-id").as_deref(),
        Some("req-mapping-0001")
    );
}

#[test]
fn header_set_from_a_missing_client_header_is_left_out() {
    let s = setup();
    get_ok(&s.gw, "/customers/42");
    let seen = s.crm.last();
    assert_eq!(seen.header_all("x-legacy-app"), vec!["propylon"]);
    assert!(
        seen.header("x-caller").is_none(),
        "x-caller's JSONPath finds nothing, so the header must not be sent: {:?}",
        seen.headers
    );
}

#[test]
fn query_is_set_removed_and_renamed_keeping_other_params() {
    let s = setup();
    get_ok(&s.gw, "/customers/42?lang=de&debug=1&keep=yes");
    let seen = s.crm.last();
    assert_eq!(
        seen.query_pairs(),
        vec![
            ("Language".to_string(), "de".to_string()),
            ("format".to_string(), "json".to_string()),
            ("keep".to_string(), "yes".to_string()),
        ],
        "raw query: {:?}",
        seen.query
    );
}

#[test]
fn query_set_applies_without_a_client_query() {
    let s = setup();
    get_ok(&s.gw, "/customers/42");
    assert_eq!(s.crm.last().query.as_deref(), Some("format=json"));
}

#[test]
fn each_maps_array_elements_and_default_fills_missing_qty() {
    let s = setup();
    let body = json!({
        "customer": "C-100",
        "items": [ { "sku": "A-1", "qty": 3 }, { "sku": "B-2" }, { "sku": "C-3", "qty": 0 } ],
        "note": "not mapped"
    });
    let resp = s.gw.post_json("/orders", body.to_string().as_bytes());
    assert_eq!(resp.status, 200, "body: {}", resp.text());

    assert_eq!(s.erp.call_count(), 1);
    let seen = s.erp.last();
    assert_eq!(
        seen.method, "POST",
        "no request.method: the client's verb is kept"
    );
    assert_eq!(seen.path, "/orders/new");
    assert_eq!(
        seen.body_json(),
        json!({
            "Customer": "C-100",
            "Lines": [
                { "Sku": "A-1", "Qty": 3 },
                { "Sku": "B-2", "Qty": 1 },
                { "Sku": "C-3", "Qty": 0 }
            ]
        })
    );
    assert_eq!(seen.header_all("content-type"), vec!["application/json"]);
    assert_eq!(
        seen.header_all("content-length"),
        vec![seen.body.len().to_string()],
        "content-length must be the rendered body's length, not the client's"
    );
}

#[test]
fn mapped_bodies_above_and_below_64_kib_reach_the_backend_whole() {
    // Up to 64 KiB, the mapped request goes out in one write with its header; above, the
    // header and the body are written apart. Both must arrive whole, one after the other on
    // the same pooled connection.
    let s = setup();
    for len in [100 * 1024, 10, 70 * 1024, 3] {
        let customer = "c".repeat(len);
        let body = json!({ "customer": customer });
        let resp =
            s.gw.post_json("/orders/import", body.to_string().as_bytes());
        assert_eq!(resp.status, 200, "{len} B: {}", resp.text());
        let seen = s.erp.last();
        assert_eq!(seen.path, "/orders/import");
        assert_eq!(
            seen.body_json(),
            json!({ "Customer": customer, "Source": "import" }),
            "{len} B"
        );
        assert_eq!(
            seen.header_all("content-length"),
            vec![seen.body.len().to_string()],
            "{len} B"
        );
    }
    assert_eq!(s.erp.call_count(), 4);
}

#[test]
fn request_field_whose_path_finds_nothing_is_left_out() {
    let s = setup();
    let body = json!({ "items": [ { "sku": "A-1" } ] });
    let resp = s.gw.post_json("/orders", body.to_string().as_bytes());
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    assert_eq!(
        s.erp.last().body_json(),
        json!({ "Lines": [ { "Sku": "A-1", "Qty": 1 } ] }),
        "`Customer` has no value and no default: it must be absent, not null"
    );
}

// ---------------------------------------------------------------------------------------
// Response side
// ---------------------------------------------------------------------------------------

#[test]
fn response_body_and_headers_are_mapped() {
    let s = setup();
    s.crm.set_reply(
        Reply::json(200, crm_customer())
            .with_header("x-internal", "node-7/db-3")
            .with_header("x-kept", "k"),
    );
    let resp = get_ok(&s.gw, "/customers/42");
    assert_json_content_type(&resp);
    assert_consistent_length(&resp);
    assert_eq!(
        resp.json(),
        json!({
            "id": "42",
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "phone": "+44 20 7946 0000"
        })
    );
    assert_eq!(resp.header("x-mapped").as_deref(), Some("yes"));
    assert!(
        resp.header("x-internal").is_none(),
        "x-internal must be removed: {:?}",
        resp.headers
    );
    assert_eq!(resp.header("x-kept").as_deref(), Some("k"));
}

#[test]
fn response_default_fills_and_missing_fields_are_left_out() {
    let s = setup();
    s.crm
        .set_reply(Reply::json(200, json!({ "CustId": "42", "Contact": {} })));
    let resp = get_ok(&s.gw, "/customers/42");
    assert_json_content_type(&resp);
    assert_eq!(resp.json(), json!({ "id": "42", "phone": "unknown" }));
}

#[test]
fn response_template_reads_status_and_headers() {
    let s = setup();
    s.crm
        .set_reply(Reply::json(200, json!({ "CustId": "42" })).with_header("etag", "\"v7\""));
    let resp = get_ok(&s.gw, "/customers/42/meta");
    assert_eq!(
        resp.json(),
        json!({ "id": "42", "code": 200, "etag": "\"v7\"" })
    );
}

#[test]
fn backend_500_becomes_a_502_problem_without_the_stack_trace() {
    let s = setup();
    let trace = "java.lang.NullPointerException: customer record was null\n\tat com.acme.crm.CustomerDao.load(CustomerDao.java:118)\n\tat com.acme.crm.GetCustomerById.service(GetCustomerById.java:42)\n";
    s.crm.set_reply(
        Reply::new(500, "text/plain", trace.as_bytes()).with_header("x-internal", "node-7"),
    );
    let resp = s.gw.get("/customers/42");
    let problem = assert_problem(&resp, 502);
    assert_eq!(problem["type"], "urn:propylon:problem:backend-error");
    let text = resp.text();
    for leak in [
        "NullPointerException",
        "java.lang",
        "CustomerDao",
        "com.acme",
    ] {
        assert!(
            !text.contains(leak),
            "the backend's error body leaked ({leak}): {text}"
        );
    }
    assert!(
        resp.header("x-internal").is_none(),
        "x-internal must not reach the client: {:?}",
        resp.headers
    );
    assert_eq!(s.crm.call_count(), 1);
}

#[test]
fn backend_404_becomes_a_404_problem() {
    let s = setup();
    s.crm.set_reply(Reply::json(
        404,
        json!({ "ErrCode": "CUST-NOT-FOUND", "ErrText": "ORA-01403: no data found" }),
    ));
    let resp = s.gw.get("/customers/999");
    let problem = assert_problem(&resp, 404);
    assert_eq!(problem["type"], "urn:propylon:problem:backend-error");
    let text = resp.text();
    assert!(
        !text.contains("ORA-01403") && !text.contains("CUST-NOT-FOUND"),
        "the backend's error body leaked: {text}"
    );
}

#[test]
fn errors_pass_relays_the_backend_body_with_the_mapped_status() {
    let s = setup();
    let legacy = r#"{"fault":"legacy failure","code":7}"#;
    s.crm
        .set_reply(Reply::new(500, "application/json", legacy.as_bytes()));
    let resp = s.gw.get("/customers/42/raw");
    assert_eq!(
        resp.status,
        502,
        "status map 500 → 502; body: {}",
        resp.text()
    );
    assert_eq!(
        resp.text(),
        legacy,
        "errors: pass relays the backend's body"
    );
    assert_consistent_length(&resp);
}

#[test]
fn errors_pass_relays_a_non_json_error_page() {
    let s = setup();
    let page = "<html><body>Service Unavailable: CRM nightly batch</body></html>";
    s.crm
        .set_reply(Reply::new(503, "text/html", page.as_bytes()));
    let resp = s.gw.get("/customers/42/raw");
    assert_eq!(
        resp.status,
        503,
        "no mapping for 503: kept; body: {}",
        resp.text()
    );
    assert_eq!(resp.text(), page, "errors: pass relays the backend's body");
    assert_eq!(resp.header("content-type").as_deref(), Some("text/html"));
}

#[test]
fn errors_pass_still_maps_successful_answers() {
    let s = setup();
    let resp = get_ok(&s.gw, "/customers/42/raw");
    assert_json_content_type(&resp);
    assert_eq!(resp.json(), json!({ "id": "42" }));
}

// ---------------------------------------------------------------------------------------
// XML (SOAP 1.1) backend
// ---------------------------------------------------------------------------------------

const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

fn soap_invoice_reply(pretty: bool) -> Reply {
    let xml = if pretty {
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">\n  \
           <soap:Body>\n    \
             <InvoiceResponse>\n      \
               <Invoice>\n        \
                 <No>77</No>\n        \
                 <Total>12.50</Total>\n      \
               </Invoice>\n    \
             </InvoiceResponse>\n  \
           </soap:Body>\n\
         </soap:Envelope>\n"
    } else {
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><InvoiceResponse><Invoice><No>77</No><Total>12.50</Total></Invoice></InvoiceResponse></soap:Body></soap:Envelope>"
    };
    Reply::new(200, "text/xml; charset=utf-8", xml.as_bytes())
}

#[test]
fn xml_backend_gets_a_soap11_envelope_and_client_gets_json() {
    let s = setup();
    s.billing.set_reply(soap_invoice_reply(false));
    let resp = get_ok(&s.gw, "/invoices/77");

    assert_eq!(s.billing.call_count(), 1);
    let seen = s.billing.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/soap");
    let content_type = seen
        .header("content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        content_type.starts_with("text/xml") && content_type.contains("charset=utf-8"),
        "a SOAP 1.1 request is text/xml; charset=utf-8, got {content_type:?}"
    );
    assert_eq!(
        seen.header_all("content-length"),
        vec![seen.body.len().to_string()]
    );
    let xml = seen.body_text();
    assert!(xml.contains(SOAP11_NS), "no SOAP 1.1 namespace: {xml}");
    assert!(xml.contains("Envelope"), "no Envelope: {xml}");
    assert!(xml.contains("Body"), "no Body: {xml}");
    assert!(
        xml.contains(r#"<GetInvoice xmlns="urn:billing"><InvoiceNo>77</InvoiceNo></GetInvoice>"#),
        "the body's document element: {xml}"
    );
    let body_open = xml.find("Body").unwrap_or(usize::MAX);
    let root_at = xml.find("<GetInvoice").unwrap_or(0);
    assert!(body_open < root_at, "GetInvoice must be inside Body: {xml}");

    assert_json_content_type(&resp);
    assert_consistent_length(&resp);
    assert_eq!(resp.text(), r#"{"number":"77","total":"12.50"}"#);
}

#[test]
fn xml_answer_with_indentation_maps_the_same() {
    let s = setup();
    s.billing.set_reply(soap_invoice_reply(true));
    let resp = get_ok(&s.gw, "/invoices/77");
    assert_json_content_type(&resp);
    assert_eq!(resp.json(), json!({ "number": "77", "total": "12.50" }));
}

#[test]
fn xml_backend_fault_becomes_a_problem() {
    let s = setup();
    let fault = "<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>System.NullReferenceException at Billing.Dal</faultstring></soap:Fault></soap:Body></soap:Envelope>";
    s.billing
        .set_reply(Reply::new(500, "text/xml; charset=utf-8", fault.as_bytes()));
    let resp = s.gw.get("/invoices/77");
    // No status map on getInvoice: the backend's 500 stays 500, as a problem.
    let problem = assert_problem(&resp, 500);
    assert_eq!(problem["type"], "urn:propylon:problem:backend-error");
    assert!(
        !resp.text().contains("NullReferenceException"),
        "the SOAP fault leaked: {}",
        resp.text()
    );
}

// ---------------------------------------------------------------------------------------
// The whole story: a clean facade in front of a legacy system that differs in everything
// ---------------------------------------------------------------------------------------

const MEMBERS_SPEC: &str = r#"openapi: 3.0.3
info:
  title: Members
  version: "2.0"
paths:
  /v2/members:
    post:
      operationId: createMember
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [name, email]
              properties:
                name: { type: string }
                email: { type: string }
                tier: { type: string }
      responses:
        "201": { description: created }
"#;

const MEMBERS_CONFIG: &str = r#"server:
  listen: "{{LISTEN}}"
  admin_listen: "{{ADMIN}}"
  admin_token: "{{TOKEN}}"
backends:
  legacy:
    url: "@LEGACY@"
    timeout: 5s
apis:
  - name: members
    spec: ./members.yaml
    operations:
      createMember:
        backend: legacy
        request:
          method: PUT
          path: /cgi-bin/MBR_ADD.pl
          query: { set: { fmt: JSON } }
          headers: { set: { x-app-id: FACADE01 } }
          body:
            MbrRec:
              Nm: "$.body.name"
              Comm: { Mail: "$.body.email" }
              Lvl: { $path: "$.body.tier", $default: STD }
        response:
          status: { 200: 201, 500: 502 }
          body:
            id: "$.body.RESULT.MBR_NO"
            name: "$.body.RESULT.MBR_NM"
            contact: { email: "$.body.RESULT.MAIL_ADDR" }
            tier: "$.body.RESULT.LVL_CD"
"#;

#[test]
fn facade_story_everything_differs_from_the_legacy_backend() {
    // The legacy member system: PUT to a CGI script, upper-case nested records, and it
    // answers 200 for a creation.
    let legacy = RecordingBackend::start(Reply::json(
        200,
        json!({
            "RC": 0,
            "RESULT": {
                "MBR_NO": 100017,
                "MBR_NM": "Ada Lovelace",
                "MAIL_ADDR": "ada@example.com",
                "LVL_CD": "STD",
                "ROWID": "AAAR3sAAEAAAACXAAA"
            }
        }),
    ));
    let gw = Gateway::start_with_files(
        &MEMBERS_CONFIG.replace("@LEGACY@", &legacy.url()),
        &[("members.yaml", MEMBERS_SPEC)],
    );

    // The client speaks the clean facade: POST /v2/members, flat lower-case JSON.
    let resp = gw.post_json(
        "/v2/members",
        br#"{"name":"Ada Lovelace","email":"ada@example.com"}"#,
    );

    // The legacy system saw its own dialect.
    assert_eq!(legacy.call_count(), 1);
    let seen = legacy.last();
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.path, "/cgi-bin/MBR_ADD.pl");
    assert_eq!(seen.query.as_deref(), Some("fmt=JSON"));
    assert_eq!(seen.header_all("x-app-id"), vec!["FACADE01"]);
    assert_eq!(
        seen.body_json(),
        json!({
            "MbrRec": {
                "Nm": "Ada Lovelace",
                "Comm": { "Mail": "ada@example.com" },
                "Lvl": "STD"
            }
        })
    );

    // The client got the facade's answer: 201, its own field names, no legacy internals.
    assert_eq!(resp.status, 201, "body: {}", resp.text());
    assert_json_content_type(&resp);
    assert_eq!(
        resp.json(),
        json!({
            "id": 100017,
            "name": "Ada Lovelace",
            "contact": { "email": "ada@example.com" },
            "tier": "STD"
        })
    );

    // And when the legacy system breaks, the client gets a clean 502 problem.
    legacy.set_reply(Reply::new(
        500,
        "text/html",
        b"<html><body><h1>Internal Server Error</h1><pre>ORA-00001: unique constraint (MBR.PK_MBR) violated</pre></body></html>",
    ));
    let resp = gw.post_json(
        "/v2/members",
        br#"{"name":"Ada Lovelace","email":"ada@example.com","tier":"GOLD"}"#,
    );
    assert_eq!(legacy.call_count(), 2);
    assert_eq!(legacy.last().body_json()["MbrRec"]["Lvl"], "GOLD");
    let problem = assert_problem(&resp, 502);
    assert_eq!(problem["type"], "urn:propylon:problem:backend-error");
    assert!(
        !resp.text().contains("ORA-00001") && !resp.text().contains("<html>"),
        "legacy error page leaked: {}",
        resp.text()
    );
}
