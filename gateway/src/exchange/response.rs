//! The answer side: backend errors as problems, XML to JSON, the body template, status and
//! header maps.

use super::client::BackendAnswer;
use super::Outcome;
use crate::snapshot::{BufferedExchange, FacadeRoute, HeaderEdits};
use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING,
};
use propylon_policies::mapping::{response_context, Roots};
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
    let content_type = answer
        .header
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    // `errors: pass`: a backend error is relayed as it is (status and headers still mapped);
    // the body template describes successful answers.
    let relay_error = upstream_status >= 400;
    let needs_json = !relay_error && (exchange.response_body.is_some() || exchange.response_xml);
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
    // The parsed body moves into the template's context; it is kept aside only when there
    // is no template (an XML answer converted as it is). A 1 KB body is ~40 allocations.
    let templated = exchange.response_body.is_some() && !relay_error;
    let (context_body, converted) = if templated {
        (body_json, None)
    } else {
        (None, body_json)
    };
    let context = (templated || converted.is_some()).then(|| {
        response_context(
            RESPONSE_ROOTS,
            upstream_status,
            &answer.header.headers,
            // Header templates of an XML answer without a body template read the converted body.
            context_body.or_else(|| converted.clone()),
        )
    });
    let (body, new_type) = match (&exchange.response_body, converted) {
        (Some(template), _) if !relay_error => {
            let ctx = context.as_ref().unwrap_or(&Value::Null);
            let bytes = template
                .render_json(ctx)
                .unwrap_or_else(|| b"null".to_vec());
            (Bytes::from(bytes), Some("application/json"))
        }
        (_, Some(converted)) => (
            Bytes::from(serde_json::to_vec(&converted).unwrap_or_default()),
            Some("application/json"),
        ),
        (_, None) => (answer.body, None),
    };
    let mut headers: Vec<(HeaderName, HeaderValue)> = answer
        .header
        .headers
        .iter()
        .filter(|(name, _)| !(is_framing(name) || (new_type.is_some() && *name == CONTENT_TYPE)))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    if let Some(ct) = new_type {
        headers.push((CONTENT_TYPE, HeaderValue::from_static(ct)));
    }
    let ctx = context.unwrap_or_else(|| {
        response_context(
            RESPONSE_ROOTS,
            upstream_status,
            &answer.header.headers,
            None,
        )
    });
    apply_header_edits(&mut headers, &route.response.headers, &ctx);
    Outcome::Answer(Answer {
        status,
        headers,
        body,
    })
}

/// Applies `{set, remove, rename}` to a header list; `set` templates read `ctx`.
pub fn apply_header_edits(
    headers: &mut Vec<(HeaderName, HeaderValue)>,
    edits: &HeaderEdits,
    ctx: &Value,
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
