//! The answer side: backend errors as problems, XML to JSON, the body template, status and
//! header maps.

use super::client::BackendAnswer;
use super::Outcome;
use crate::snapshot::{BufferedExchange, FacadeRoute, HeaderEdits};
use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING,
};
use propylon_policies::mapping::{arena_for, parse_pruned, response_context, Borrowed, Doc, Roots};
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

pub fn shape_answer(
    route: &FacadeRoute,
    exchange: &BufferedExchange,
    answer: BackendAnswer,
) -> Outcome {
    let upstream_status = answer.header.status.as_u16();
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
        return Outcome::Problem(problem);
    }
    // `errors: pass`: a backend error is relayed as it is (status and headers still mapped);
    // the body template describes successful answers.
    let relay_error = upstream_status >= 400;
    let template = exchange.response_body.as_ref().filter(|_| !relay_error);
    let roots = exchange.response_roots;
    let headers = &answer.header.headers;
    if exchange.response_borrowed {
        // Direct paths, no XML: the answer is read where it lies, as far as they read it.
        let arena = arena_for(answer.body.len());
        let body_json = if template.is_none() || answer.body.is_empty() {
            None
        } else {
            match parse_pruned(&answer.body, &exchange.response_reads, &arena) {
                Ok(v) => Some(v),
                Err(e) => return unusable(route, format!("its JSON cannot be read: {e}")),
            }
        };
        let ctx: Borrowed = response_context(&*arena, roots, upstream_status, headers, body_json);
        let body = template.map(|t| super::rendered_body(t.render_json(&ctx).unwrap_or_else(null)));
        return shaped(route, status, &answer, body, &ctx);
    }
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let needs_json = template.is_some() || (exchange.response_xml && !relay_error);
    let body_json = if !needs_json || answer.body.is_empty() {
        None
    } else if exchange.response_xml && !super::is_json(content_type) {
        match propylon_policies::xml::xml_to_json(&answer.body, false) {
            Ok(v) => Some(v),
            Err(e) => return unusable(route, format!("its XML cannot be read: {e}")),
        }
    } else {
        match serde_json::from_slice::<Value>(&answer.body) {
            Ok(v) => Some(v),
            Err(e) => return unusable(route, format!("its JSON cannot be read: {e}")),
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
    shaped(route, status, &answer, body, &ctx)
}

fn null() -> Vec<u8> {
    b"null".to_vec()
}

/// The client's answer: the backend's headers less framing, `body` (JSON, when the gateway
/// made it) or the backend's own, and the operation's header edits read over `ctx`.
fn shaped<D: Doc>(
    route: &FacadeRoute,
    status: u16,
    answer: &BackendAnswer,
    body: Option<Bytes>,
    ctx: &D,
) -> Outcome {
    let made = body.is_some();
    let mut headers: Vec<(HeaderName, HeaderValue)> = answer
        .header
        .headers
        .iter()
        .filter(|(name, _)| !(is_framing(name) || (made && *name == CONTENT_TYPE)))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    if made {
        headers.push((CONTENT_TYPE, HeaderValue::from_static("application/json")));
    }
    apply_header_edits(&mut headers, &route.response.headers, ctx);
    Outcome::Answer(Answer {
        status,
        headers,
        body: body.unwrap_or_else(|| answer.body.clone()),
    })
}

/// Applies `{set, remove, rename}` to a header list; `set` templates read `ctx`.
pub fn apply_header_edits<D: Doc>(
    headers: &mut Vec<(HeaderName, HeaderValue)>,
    edits: &HeaderEdits,
    ctx: &D,
) {
    if edits.is_empty() {
        return;
    }
    headers.retain(|(n, _)| !edits.remove.contains(n));
    for (from, to) in &edits.rename {
        for (name, _) in headers.iter_mut().filter(|(n, _)| n == from) {
            *name = to.clone();
        }
    }
    for (name, template) in &edits.set {
        headers.retain(|(n, _)| n != name);
        if let Some(value) = template
            .render_string(ctx)
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            headers.push((name.clone(), value));
        }
    }
}

fn unusable(route: &FacadeRoute, why: String) -> Outcome {
    Outcome::Problem(Problem::new(
        ProblemKind::BadGateway,
        format!("backend `{}` answered, but {why}", route.backend.name),
    ))
}

fn is_framing(name: &HeaderName) -> bool {
    *name == CONTENT_LENGTH
        || *name == TRANSFER_ENCODING
        || *name == CONNECTION
        || name.as_str() == "keep-alive"
}
