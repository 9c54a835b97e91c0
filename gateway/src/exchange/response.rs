//! The answer side: backend errors as problems, XML to JSON, the body template, status and
//! header maps.

use super::client::BackendAnswer;
use super::header_edits::{Field, RenderedEdits};
use super::Outcome;
use crate::snapshot::{BufferedExchange, FacadeRoute};
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use propylon_policies::mapping::{arena_for, parse_pruned, response_context, Borrowed, Roots};
use propylon_policies::{Problem, ProblemKind};
use serde_json::Value;

/// An answer for the client, made from the backend's.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

/// Everything response templates may read (`config` refuses templates that read more).
pub const RESPONSE_ROOTS: Roots = Roots {
    path: false,
    query: false,
    headers: true,
    body: true,
    claims: false,
    consumer: false,
    status: true,
};

/// A backend's answer as shaping reads it, wherever its head was parsed: Pingora's
/// `ResponseHeader` (the full path, jobs) or the bytes as read (the lean path).
pub struct BackendParts<'a> {
    pub status: u16,
    /// Its `Content-Type`, when the value is text.
    pub content_type: Option<&'a str>,
    /// Its fields as response templates read them (`$.headers`); an empty map will do for an
    /// operation whose templates do not read them.
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The client's answer, shaped from a backend's: its status, the body the gateway made
/// (`None`: the backend's own), and how its fields are made from the backend's (`fields`).
pub struct Shaped<'e> {
    pub status: u16,
    pub body: Option<Bytes>,
    edits: RenderedEdits<'e>,
}

static JSON: HeaderValue = HeaderValue::from_static("application/json");

impl Shaped<'_> {
    /// The client's fields: the backend's (`backend`, in either form `Field` takes) less
    /// framing, and less their type when the gateway made the body (then
    /// `application/json`), with the operation's header edits.
    pub fn fields<'h, F: Field<'h> + 'h>(
        &'h self,
        backend: impl Iterator<Item = F> + 'h,
    ) -> impl Iterator<Item = F> + 'h {
        let made = self.body.is_some();
        let kept = backend.filter(move |f| {
            let name = f.name();
            !(is_framing(name) || made && name.eq_ignore_ascii_case(CONTENT_TYPE.as_str()))
        });
        let json = made.then(|| F::made(&CONTENT_TYPE, &JSON));
        self.edits.apply(kept.chain(json))
    }
}

/// The full path's and the jobs' shaping: the backend's answer made into the client's.
pub fn shape_answer(
    route: &FacadeRoute,
    exchange: &BufferedExchange,
    answer: BackendAnswer,
) -> Outcome {
    let headers = &answer.header.headers;
    let parts = BackendParts {
        status: answer.header.status.as_u16(),
        content_type: headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        headers,
        body: &answer.body,
    };
    match shape(route, exchange, parts) {
        Ok(shaped) => {
            let fields = shaped.fields(headers.iter());
            let headers = fields.map(|(n, v)| (n.clone(), v.clone())).collect();
            // The made body is moved, not cloned: a clone of a boxed slice's `Bytes` would
            // allocate its shared header.
            Outcome::Answer(Answer {
                status: shaped.status,
                headers,
                body: shaped.body.unwrap_or_else(|| answer.body.clone()),
            })
        }
        Err(problem) => Outcome::Problem(*problem),
    }
}

/// Shapes the client's answer from the backend's: its status mapped, a backend error made a
/// problem (`errors: problem`), the body template rendered (or an XML body converted), and
/// the header edits rendered, over the answer's context.
pub fn shape<'e>(
    route: &'e FacadeRoute,
    exchange: &BufferedExchange,
    answer: BackendParts<'_>,
) -> Result<Shaped<'e>, Box<Problem>> {
    let upstream_status = answer.status;
    let status = route
        .response
        .status
        .as_ref()
        .map_or(upstream_status, |m| m.map(upstream_status));
    if exchange.errors_as_problems && upstream_status >= 400 {
        let detail = format!(
            "backend `{}` answered {upstream_status}",
            route.backend.name
        );
        let mut problem = Problem::new(ProblemKind::BackendError, detail);
        problem.status = status;
        return Err(Box::new(problem));
    }
    // `errors: pass`: a backend error is relayed as it is (status and headers still mapped);
    // the body template describes successful answers.
    let relay_error = upstream_status >= 400;
    let template = exchange.response_body.as_ref().filter(|_| !relay_error);
    let roots = exchange.response_roots;
    let headers = answer.headers;
    let edits = &route.response.headers;
    if exchange.response_borrowed {
        // Direct paths, no XML: the answer is read where it lies, as far as they read it.
        let arena = arena_for(answer.body.len());
        let body_json = if template.is_none() || answer.body.is_empty() {
            None
        } else {
            match parse_pruned(answer.body, &exchange.response_reads, &arena) {
                Ok(v) => Some(v),
                Err(e) => return Err(unusable(route, format!("its JSON cannot be read: {e}"))),
            }
        };
        let ctx: Borrowed = response_context(&*arena, roots, upstream_status, headers, body_json);
        let body = template.map(|t| super::rendered_body(t.render_json(&ctx).unwrap_or_else(null)));
        let edits = RenderedEdits::new(edits, &ctx);
        return Ok(Shaped {
            status,
            body,
            edits,
        });
    }
    let needs_json = template.is_some() || (exchange.response_xml && !relay_error);
    let body_json = if !needs_json || answer.body.is_empty() {
        None
    } else if exchange.response_xml && !super::is_json(answer.content_type) {
        match propylon_policies::xml::xml_to_json(answer.body, false) {
            Ok(v) => Some(v),
            Err(e) => return Err(unusable(route, format!("its XML cannot be read: {e}"))),
        }
    } else {
        match serde_json::from_slice::<Value>(answer.body) {
            Ok(v) => Some(v),
            Err(e) => return Err(unusable(route, format!("its JSON cannot be read: {e}"))),
        }
    };
    // The parsed body moves into the template's context; without a template (an XML answer
    // converted as it is) it is written out, and header templates read it too.
    let (ctx, body) = match template {
        Some(t) => {
            let ctx: Value = response_context(&(), roots, upstream_status, headers, body_json);
            let body = super::rendered_body(t.render_json(&ctx).unwrap_or_else(null));
            (ctx, Some(body))
        }
        None => {
            let converted = body_json
                .as_ref()
                .map(|v| Bytes::from(serde_json::to_vec(v).unwrap_or_default()));
            let ctx = response_context(&(), roots, upstream_status, headers, body_json);
            (ctx, converted)
        }
    };
    let edits = RenderedEdits::new(edits, &ctx);
    Ok(Shaped {
        status,
        body,
        edits,
    })
}

fn null() -> Vec<u8> {
    b"null".to_vec()
}

fn unusable(route: &FacadeRoute, why: String) -> Box<Problem> {
    Box::new(Problem::new(
        ProblemKind::BadGateway,
        format!("backend `{}` answered, but {why}", route.backend.name),
    ))
}

/// A field that frames the backend's message, not the client's (any case).
fn is_framing(name: &str) -> bool {
    [
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
    ]
    .iter()
    .any(|framing| name.eq_ignore_ascii_case(framing))
}
