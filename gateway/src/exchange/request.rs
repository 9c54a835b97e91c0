//! The request side: body limit (413), content type (415), JSON and schema (400), mapping.

use super::Outcome;
use crate::proxy::upstream::{self, Caller, Forwarding};
use crate::snapshot::{BufferedExchange, FacadeRoute};
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use pingora_error::Result;
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use propylon_openapi::validate::{FieldError, RequestValidator};
use propylon_openapi::PathParams;
use propylon_policies::mapping::{
    arena_for, borrowed_claims, parse_borrowed, Doc, RequestFields, RequestParts,
};
use propylon_policies::{Problem, ProblemKind};
use serde_json::{json, Value};

/// The upstream request, ready to send, and the facade body it was made from (kept by a job).
pub struct Prepared {
    pub header: RequestHeader,
    pub body: Bytes,
    pub facade_body: Bytes,
}

/// Reads and checks the client's body and builds the backend request, or says why not.
pub async fn prepare(
    session: &mut Session,
    route: &FacadeRoute,
    exchange: &BufferedExchange,
    params: &PathParams,
    caller: &Caller<'_>,
    fwd: Forwarding<'_>,
) -> Result<std::result::Result<Prepared, Outcome>> {
    let body = match read_body(session, exchange.max_body).await? {
        Ok(body) => body,
        Err(problem) => return Ok(Err(Outcome::Problem(problem))),
    };
    let facade = session.req_header().clone();
    map_request(route, exchange, params, caller, fwd, facade, body)
}

/// Checks a whole facade request and maps it for the backend: live (from `prepare`) and
/// when a job is replayed (with the config current at replay time).
pub fn map_request(
    route: &FacadeRoute,
    exchange: &BufferedExchange,
    params: &PathParams,
    caller: &Caller<'_>,
    fwd: Forwarding<'_>,
    req: RequestHeader,
    body: Bytes,
) -> Result<std::result::Result<Prepared, Outcome>> {
    let facade = FacadeParts {
        path: req.uri.path(),
        query: req.uri.query(),
        content_type: req.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        headers: &req.headers,
    };
    let mapped = match map_parts(route, exchange, params, caller, facade, &body) {
        Ok(mapped) => mapped,
        Err(problem) => return Ok(Err(Outcome::Problem(*problem))),
    };
    finish(route, fwd, req, mapped, body)
}

/// What mapping reads of the client's request besides its body: Pingora's head on the full
/// path and for jobs; on the lean path, the parsed head's path, query and fields (see
/// `lean::whole`).
#[derive(Clone, Copy)]
pub struct FacadeParts<'a> {
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub content_type: Option<&'a str>,
    /// The fields the route's templates read.
    pub headers: &'a dyn RequestFields,
}

/// The backend request a facade request maps to, before it is written as a head: the
/// templates' target and header values, and the body with its content type (`None`: the
/// client's type stays).
pub struct Mapped {
    pub edits: upstream::Rendered,
    /// `None`: the client's body goes as it came.
    pub body: Option<Bytes>,
    pub content_type: Option<&'static str>,
}

impl Mapped {
    /// The body to send: the mapped one, or the client's `facade` body.
    pub fn body<'a>(&'a self, facade: &'a [u8]) -> &'a [u8] {
        self.body.as_deref().unwrap_or(facade)
    }
}

/// Checks the body (JSON, schema) and renders the route's templates over the request; or
/// the problem (400) that says why not.
pub fn map_parts(
    route: &FacadeRoute,
    exchange: &BufferedExchange,
    params: &PathParams,
    caller: &Caller<'_>,
    req: FacadeParts<'_>,
    body: &[u8],
) -> std::result::Result<Mapped, Box<Problem>> {
    let content_type = req.content_type;
    let parse = !body.is_empty()
        && (super::is_json(content_type) || exchange.validate_body || route.roots.body);
    let parts = RequestParts::new(
        route.roots,
        &route.header_names,
        params.iter(),
        req.query,
        req.headers,
        Some(caller.consumer),
    );
    if exchange.request_borrowed {
        // Direct paths only, no XML: the body is checked and read where it lies.
        let arena = arena_for(body.len());
        let read = checked_body(
            route,
            exchange,
            parse,
            body,
            |body| parse_borrowed(body, &arena),
            |v, doc| v.validate_borrowed_body(doc),
        );
        let json_body = read?;
        let claims = caller.claims_for(route.roots);
        let claims = claims.map(|c| borrowed_claims(c, &route.claim_names, &arena));
        let context = parts.context(&*arena, json_body, claims);
        let (body, content_type) = json_body_for(exchange, &context);
        let edits = upstream::render(route, params, req.path, req.query, &context);
        return Ok(Mapped {
            edits,
            body,
            content_type,
        });
    }
    let read = checked_body(
        route,
        exchange,
        parse,
        body,
        serde_json::from_slice,
        |v, doc| v.validate_body(doc),
    );
    let json_body: Option<Value> = read?;
    // The parsed body moves into the template's context; it is kept aside only for an XML
    // backend without a body template (the facade body converted as it is).
    let (context_body, xml_source) =
        if exchange.request_body.is_none() && exchange.request_xml.is_some() {
            (json_body.clone(), json_body)
        } else {
            (json_body, None)
        };
    let claims = caller.claims_for(route.roots).cloned();
    let context: Value = parts.context(&(), context_body, claims);
    let (body, content_type) = match &exchange.request_xml {
        Some(shape) => {
            let value = match &exchange.request_body {
                Some(t) => t.render(&context).unwrap_or(Value::Null),
                None => xml_source.unwrap_or(Value::Null),
            };
            match propylon_policies::xml::json_to_xml(&value, shape) {
                Ok(xml) => (Some(Bytes::from(xml)), Some(shape.content_type())),
                Err(e) => {
                    let problem = Problem::new(
                        ProblemKind::InvalidRequest,
                        format!("the request cannot be written as XML: {e}"),
                    );
                    return Err(Box::new(problem));
                }
            }
        }
        None => json_body_for(exchange, &context),
    };
    let edits = upstream::render(route, params, req.path, req.query, &context);
    Ok(Mapped {
        edits,
        body,
        content_type,
    })
}

/// The body as a document (`read`, when `parse`), checked against the operation's schema when
/// it validates bodies; or the 400 that says why not.
fn checked_body<'b, D, E: std::fmt::Display>(
    route: &FacadeRoute,
    exchange: &BufferedExchange,
    parse: bool,
    body: &'b [u8],
    read: impl FnOnce(&'b [u8]) -> std::result::Result<D, E>,
    validate: impl FnOnce(&RequestValidator, Option<&D>) -> Vec<FieldError>,
) -> std::result::Result<Option<D>, Box<Problem>> {
    let doc = match parse.then(|| read(body)) {
        Some(Err(e)) => {
            let reason = json!({"pointer": "/body", "reason": e.to_string()});
            let problem = Problem::new(ProblemKind::InvalidRequest, "the body is not valid JSON");
            return Err(Box::new(problem.with_errors(vec![reason])));
        }
        parsed => parsed.and_then(std::result::Result::ok),
    };
    if let Some(validator) = route.validator.as_ref().filter(|_| exchange.validate_body) {
        let errors = validate(validator, doc.as_ref());
        if !errors.is_empty() {
            return Err(Box::new(invalid(errors)));
        }
    }
    Ok(doc)
}

/// The backend's JSON body: the template rendered over `context`, or `None` (the client's
/// body).
fn json_body_for<D: Doc>(
    exchange: &BufferedExchange,
    context: &D,
) -> (Option<Bytes>, Option<&'static str>) {
    match &exchange.request_body {
        Some(template) => {
            let bytes = template
                .render_json(context)
                .unwrap_or_else(|| b"{}".to_vec());
            (Some(super::rendered_body(bytes)), Some("application/json"))
        }
        None => (None, None),
    }
}

/// The backend's head (the client's, with the method, target and header edits, and the
/// framing) around the mapped body.
fn finish(
    route: &FacadeRoute,
    fwd: Forwarding<'_>,
    mut header: RequestHeader,
    mapped: Mapped,
    facade_body: Bytes,
) -> Result<std::result::Result<Prepared, Outcome>> {
    let Mapped {
        edits,
        body,
        content_type,
    } = mapped;
    let body = body.unwrap_or_else(|| facade_body.clone());
    upstream::apply(route, &mut header, edits, fwd)?;
    header.remove_header(&TRANSFER_ENCODING);
    if let Some(ct) = content_type {
        header.insert_header(CONTENT_TYPE, ct)?;
    }
    // A body-less request (a GET) stays body-less; anything else says its length.
    if !body.is_empty() || header.headers.contains_key(CONTENT_LENGTH) {
        header.insert_header(CONTENT_LENGTH, body.len().to_string())?;
    }
    Ok(Ok(Prepared {
        header,
        body,
        facade_body,
    }))
}

/// A 415 when the spec lists request content types and this one is not among them. Decided
/// from the headers alone, so streamed operations get it too.
pub fn content_type_problem(validator: &RequestValidator, req: &RequestHeader) -> Option<Problem> {
    let content_type = req.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let declared_length = req
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body_present =
        declared_length.is_some_and(|n| n > 0) || req.headers.contains_key(TRANSFER_ENCODING);
    media_type_problem(validator, content_type, body_present)
}

/// The 415 for a request with `content_type` (and a body or not).
pub fn media_type_problem(
    validator: &RequestValidator,
    content_type: Option<&str>,
    body_present: bool,
) -> Option<Problem> {
    let unsupported = validator
        .check_content_type(content_type, body_present)
        .err()?;
    let detail = format!("this operation accepts {}", unsupported.allowed.join(", "));
    Some(Problem::new(ProblemKind::UnsupportedMediaType, detail))
}

/// A 400 listing each failing field by JSON pointer.
pub fn invalid(errors: Vec<FieldError>) -> Problem {
    let count = errors.len();
    let list = errors
        .into_iter()
        .map(|e| json!({"pointer": e.pointer, "reason": e.reason}))
        .collect();
    Problem::new(
        ProblemKind::InvalidRequest,
        format!("the request does not match the API's spec ({count} error(s))"),
    )
    .with_errors(list)
}

/// The whole body, or a 413 problem past `limit` (told by Content-Length before reading).
async fn read_body(
    session: &mut Session,
    limit: usize,
) -> Result<std::result::Result<Bytes, Problem>> {
    let too_large = || {
        Problem::new(
            ProblemKind::PayloadTooLarge,
            format!("the body exceeds this operation's limit of {limit} bytes"),
        )
    };
    let declared = session
        .req_header()
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Ok(Err(too_large()));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = session.read_request_body().await? {
        if body.len() + chunk.len() > limit {
            return Ok(Err(too_large()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Ok(body.freeze()))
}
