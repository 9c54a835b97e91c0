//! The whole lane's mapped request, read and written without Pingora's `RequestHeader`: the
//! fields mapping reads are read from the parsed head, and the backend's head is written from
//! the client's parsed fields with the route's edits, as `upstream::apply` and
//! `exchange::request::finish` make it on the full path (a unit test holds the two alike).

use super::head::{self, field, hop_by_hop, request_line, ClientRequest, Forwarded};
use crate::exchange::{FacadeParts, Mapped};
use crate::proxy::admission::RequestHeaders;
use crate::snapshot::FacadeRoute;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use propylon_openapi::validate::RequestValidator;
use propylon_policies::mapping::{joined_values, FieldValues, HeaderNames, RequestFields};
use smallvec::SmallVec;

/// The client's fields as the route's templates read them.
pub enum ClientFields<'a> {
    /// Templates that name their fields read them straight from the parsed head: no header
    /// map, whose names and values are copies (an allocation each, and two for the map).
    /// The context's names are the templates' own (in lower case), so no field name is
    /// lower-cased.
    Named {
        fields: &'a [httparse::Header<'a>],
        names: &'a [String],
    },
    /// Templates that read `$.headers` whole: every field, in a header map.
    All(HeaderMap),
}

/// The client's fields for templates that want `wanted`; `None` when a field that goes into
/// a header map is not a valid name or value.
pub fn client_fields<'a>(
    req: &ClientRequest<'a>,
    wanted: &'a HeaderNames,
) -> Option<ClientFields<'a>> {
    Some(match wanted {
        HeaderNames::Only(names) => ClientFields::Named {
            fields: req.headers,
            names,
        },
        HeaderNames::All => ClientFields::All(header_map(req.headers, |_| true)?),
    })
}

impl RequestFields for ClientFields<'_> {
    fn read<'h>(&'h self, wanted: &'h HeaderNames) -> FieldValues<'h> {
        let (fields, names) = match (self, wanted) {
            (ClientFields::All(map), _) => return map.read(wanted),
            (ClientFields::Named { fields, .. }, HeaderNames::Only(names)) => {
                (fields, names.as_slice())
            }
            (ClientFields::Named { fields, names }, HeaderNames::All) => (fields, *names),
        };
        let mut out = FieldValues::new();
        for name in names {
            let named = fields.iter().filter(|f| f.name.eq_ignore_ascii_case(name));
            if let Some(joined) = joined_values(named.map(|f| f.value)) {
                out.push((name.as_str(), joined));
            }
        }
        out
    }
}

/// What mapping reads of the client's request besides its body: its path, query, content
/// type and `fields`.
pub fn facade_parts<'a>(req: &ClientRequest<'a>, fields: &'a ClientFields<'a>) -> FacadeParts<'a> {
    FacadeParts {
        path: req.path,
        query: req.query,
        content_type: req.headers.header("content-type"),
        headers: fields,
    }
}

/// The client's fields named as the spec's header parameters, which is all parameter
/// validation reads of them.
pub fn parameter_fields(
    req: &ClientRequest<'_>,
    validator: &RequestValidator,
) -> Option<HeaderMap> {
    header_map(req.headers, |name| {
        validator
            .header_names()
            .any(|n| n.as_str().eq_ignore_ascii_case(name))
    })
}

/// A header map of the `fields` (of a head as read) whose name `read` accepts; `None` when
/// one of them is not a valid name or value.
pub fn header_map(
    fields: &[httparse::Header<'_>],
    read: impl Fn(&str) -> bool,
) -> Option<HeaderMap> {
    let mut map = HeaderMap::new();
    for h in fields.iter().filter(|h| read(h.name)) {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        map.append(name, HeaderValue::from_bytes(h.value).ok()?);
    }
    Some(map)
}

/// The target is not one `http::Uri` accepts (a template rendered something odd).
#[derive(Debug)]
pub struct BadTarget;

/// The backend request's fields as they are edited: on the stack, since a head's fields and
/// the edits' seldom pass 32.
type HeadFields<'h> = SmallVec<[(&'h str, &'h [u8]); 32]>;

/// Writes the backend's request head: the route's method and target, the client's fields
/// (less hop-by-hop ones) with the route's `remove`, `rename` and `set` edits, the
/// forwarding fields, and the type and length of `body` (what `mapped` sends).
pub fn write_mapped_head(
    out: &mut Vec<u8>,
    req: &ClientRequest<'_>,
    route: &FacadeRoute,
    mapped: &Mapped,
    body: &[u8],
    fwd: &Forwarded<'_>,
) -> Result<(), BadTarget> {
    let target = match &mapped.edits.target {
        Some(target) if head::plainly_valid_target(target) => target.as_str(),
        Some(target) => {
            target
                .parse::<http::uri::PathAndQuery>()
                .map_err(|_| BadTarget)?;
            target.as_str()
        }
        None => req.target,
    };
    let mut fields = HeadFields::new();
    fields.extend(
        req.headers
            .iter()
            .filter(|h| !hop_by_hop(h.name))
            .map(|h| (h.name, h.value)),
    );
    let drop = |fields: &mut HeadFields<'_>, name: &str| {
        fields.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    };
    let edits = &route.headers;
    for name in &edits.remove {
        drop(&mut fields, name.as_str());
    }
    for (from, to) in &edits.rename {
        if let Some(value) = first(&fields, from.as_str()) {
            drop(&mut fields, from.as_str());
            drop(&mut fields, to.as_str());
            fields.push((to.as_str(), value));
        }
    }
    for ((name, _), value) in edits.set.iter().zip(&mapped.edits.set) {
        drop(&mut fields, name.as_str());
        if let Some(value) = value {
            fields.push((name.as_str(), value.as_bytes()));
        }
    }
    let prior = first(&fields, "x-forwarded-for").and_then(|v| std::str::from_utf8(v).ok());
    let xff = fwd.forwarded_for(prior);
    let had_length = first(&fields, "content-length").is_some();
    // The fields the gateway writes itself, left out in one pass over the list.
    let (drop_xff, drop_type) = (xff.is_some(), mapped.content_type.is_some());
    fields.retain(|(n, _)| {
        let written = [
            "host",
            "x-request-id",
            "x-forwarded-proto",
            "transfer-encoding",
            "content-length",
        ]
        .iter()
        .any(|name| n.eq_ignore_ascii_case(name));
        !(written
            || drop_xff && n.eq_ignore_ascii_case("x-forwarded-for")
            || drop_type && n.eq_ignore_ascii_case("content-type"))
    });
    request_line(out, route.method.as_ref().unwrap_or(&req.method), target);
    for (name, value) in fields {
        field(out, name.as_bytes(), value);
    }
    // Without the client's address, its `X-Forwarded-For` stayed among its fields.
    fwd.write_fields(out, xff.as_deref().map(str::as_bytes));
    if let Some(content_type) = mapped.content_type {
        field(out, b"Content-Type", content_type.as_bytes());
    }
    // A body-less request (a GET) stays body-less; anything else says its length.
    if !body.is_empty() || had_length {
        let mut digits = itoa::Buffer::new();
        field(out, b"Content-Length", digits.format(body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// The first value of `name` among `fields`.
fn first<'v>(fields: &[(&str, &'v [u8])], name: &str) -> Option<&'v [u8]> {
    let found = fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name));
    found.map(|(_, v)| *v)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) mod tests {
    use super::*;
    use crate::config::{compile_text, LimitReuse};
    use crate::exchange::map_parts;
    use crate::proxy::lean::head::{parse_request, Parsed};
    use crate::proxy::upstream::{Caller, Forwarding};
    use bytes::Bytes;
    use propylon_openapi::{PathParams, RouteLookup};
    use std::borrow::Cow;
    use std::sync::Arc;

    const SPEC: &str = "openapi: \"3.0.3\"\ninfo: { title: t, version: \"1\" }\npaths:\n  /orders/{id}:\n    post: { operationId: post, requestBody: { content: { application/json: { schema: { type: object } } } }, responses: { \"200\": { description: ok } } }\n";

    /// The route of `POST /orders/{id}` with `operation`, on backend `erp`.
    pub(in crate::proxy::lean) fn route(operation: &str) -> (Arc<FacadeRoute>, PathParams) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spec.yaml"), SPEC).unwrap();
        let config = format!("server:\n  listen: 127.0.0.1:8080\nbackends:\n  erp: {{ url: \"http://127.0.0.1:9/base\" }}\napis:\n  - name: o\n    spec: ./spec.yaml\n    operations:\n      post: {operation}\n");
        let path = dir.path().join("p.yaml");
        let compiled = compile_text(&path, &config, 1, &LimitReuse::new(), |_| None);
        let snapshot = compiled.unwrap().snapshot;
        match snapshot.routes.lookup(&http::Method::POST, "/orders/7") {
            RouteLookup::Found { value, params, .. } => (value.clone(), params),
            _ => panic!("no route"),
        }
    }

    #[test]
    fn named_fields_read_as_a_header_map_of_them_reads() {
        let head = b"POST /o HTTP/1.1\r\nHost: gw\r\nX-Tenant: acme\r\nx-tenant: beta\r\nX-Odd: caf\xe9\r\nAccept: */*\r\n\r\n";
        let mut slots = crate::proxy::lean::head::header_slots();
        let Parsed::Servable(req) = parse_request(head, &mut slots) else {
            panic!("not servable");
        };
        let names = HeaderNames::Only(vec!["x-tenant".into(), "x-odd".into(), "x-none".into()]);
        let named = client_fields(&req, &names).unwrap();
        assert!(matches!(named, ClientFields::Named { .. }));
        let all = client_fields(&req, &HeaderNames::All).unwrap();
        assert!(matches!(all, ClientFields::All(_)));
        let mut from_head = named.read(&names);
        let mut from_map = all.read(&names);
        from_head.sort();
        from_map.sort();
        assert_eq!(from_head, from_map);
        assert_eq!(
            from_head.as_slice(),
            [
                ("x-odd", Cow::from("caf\u{fffd}")),
                ("x-tenant", Cow::from("acme, beta")),
            ]
        );
    }

    /// The head as `(request line, sorted "name: value" fields)`, names in lower case.
    fn fields(head: &[u8]) -> (String, Vec<String>) {
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Request::new(&mut slots);
        assert!(matches!(
            parsed.parse(head),
            Ok(httparse::Status::Complete(_))
        ));
        let line = format!("{} {}", parsed.method.unwrap(), parsed.path.unwrap());
        let mut all: Vec<String> = parsed
            .headers
            .iter()
            .map(|h| {
                let value = String::from_utf8_lossy(h.value);
                format!("{}: {value}", h.name.to_ascii_lowercase())
            })
            .collect();
        all.sort();
        (line, all)
    }

    /// Both ways of making the backend's head from one client request.
    fn both(operation: &str, request: &str, client_ip: Option<&str>) -> [(String, Vec<String>); 2] {
        let (route, params) = route(operation);
        let mut slots = crate::proxy::lean::head::header_slots();
        let Parsed::Servable(req) = parse_request(request.as_bytes(), &mut slots) else {
            panic!("not servable");
        };
        let body = Bytes::copy_from_slice(&request.as_bytes()[req.head_len..]);
        let exchange = route.exchange.as_ref().unwrap();
        let caller = Caller {
            consumer: "anonymous",
            claims: None,
        };
        let read = client_fields(&req, &route.header_names).unwrap();
        let facade = facade_parts(&req, &read);
        let Ok(mapped) = map_parts(&route, exchange, &params, &caller, facade, &body) else {
            panic!("not mapped");
        };
        let fwd = Forwarded {
            authority: route.backend.authority.as_bytes(),
            request_id: "rid",
            client_ip,
        };
        let mut direct = Vec::new();
        let sent = mapped.body(&body);
        write_mapped_head(&mut direct, &req, &route, &mapped, sent, &fwd).unwrap();
        // The full path: Pingora's head of every field, through `map_request`.
        let mut header =
            pingora_http::RequestHeader::build(req.method.clone(), req.target.as_bytes(), None)
                .unwrap();
        for h in req.headers {
            header.append_header(h.name.to_string(), h.value).unwrap();
        }
        let fwd = Forwarding {
            request_id: "rid",
            client_ip,
        };
        let full =
            crate::exchange::map_request(&route, exchange, &params, &caller, fwd, header, body);
        let Ok(Ok(prepared)) = full else {
            panic!("not mapped on the full path");
        };
        let wire =
            pingora_core::protocols::http::v1::client::http_req_header_to_wire(&prepared.header)
                .unwrap();
        [fields(&direct), fields(&wire)]
    }

    #[test]
    fn the_mapped_head_has_the_fields_the_full_path_gives_it() {
        let operation = r#"{ backend: erp, request: { method: put, path: "/erp/{id}", query: { set: { t: "$.headers.x-tenant" } }, headers: { set: { x-tenant-id: "$.headers.x-tenant", x-gone: "$.headers.nope" }, remove: [x-drop], rename: { x-old: x-new } }, body: { ref: "$.body.r", who: "$.headers.x-tenant" } } }"#;
        let request = "POST /orders/7?a=1 HTTP/1.1\r\nHost: gw\r\nX-Tenant: acme\r\nX-Drop: 1\r\nX-Old: o1\r\nX-Old: o2\r\nX-New: n\r\nX-Gone: g\r\nx-forwarded-for: 10.0.0.1\r\nX-Request-Id: theirs\r\nConnection: keep-alive\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{\"r\":\"R1\"}";
        let [direct, full] = both(operation, request, Some("127.0.0.2"));
        // Pingora's head keeps the client's hop-by-hop `Connection`; the lean path does not.
        let mut full_fields = full.1.clone();
        full_fields.retain(|f| f != "connection: keep-alive");
        assert_eq!(direct.0, full.0);
        assert_eq!(direct.1, full_fields);
        assert_eq!(direct.0, "PUT /base/erp/7?a=1&t=acme");
        assert_eq!(
            direct.1,
            [
                "content-length: 25",
                "content-type: application/json",
                "host: 127.0.0.1:9",
                "x-forwarded-for: 10.0.0.1, 127.0.0.2",
                "x-forwarded-proto: http",
                "x-new: o1",
                "x-request-id: rid",
                "x-tenant-id: acme",
                "x-tenant: acme",
            ]
        );
    }

    #[test]
    fn a_body_less_request_stays_body_less() {
        // A buffered exchange (a response template) whose request keeps the client's body.
        let operation = r#"{ backend: erp, response: { body: { id: "$.body.id" } } }"#;
        let request = "POST /orders/7 HTTP/1.1\r\nHost: gw\r\nX-Tenant: acme\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n";
        let [direct, full] = both(operation, request, None);
        assert_eq!(direct, full);
        assert_eq!(direct.0, "POST /base/orders/7");
        assert!(!direct.1.iter().any(|f| f.starts_with("content-length")));
        assert!(direct.1.contains(&"x-forwarded-for: 10.0.0.1".to_string()));
    }
}
