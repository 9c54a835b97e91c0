//! The upstream request of a facade operation: method, path, query and headers.

use crate::snapshot::FacadeRoute;
use http::header::HeaderValue;
use pingora_error::{Error, ErrorType, OrErr, Result};
use pingora_http::RequestHeader;
use propylon_openapi::{PathParams, PathTemplate};
use propylon_policies::forwarding::forwarded_for;
use propylon_policies::mapping::{Doc, Roots};
use propylon_policies::query::edit_query;
use serde_json::Value;

/// Who is calling, for templates that read `$.consumer` and `$.claims`.
pub struct Caller<'a> {
    pub consumer: &'a str,
    pub claims: Option<&'a Value>,
}

impl<'a> Caller<'a> {
    /// The claims for a request context, only when a template reads them.
    pub fn claims_for(&self, roots: Roots) -> Option<&'a Value> {
        self.claims.filter(|_| roots.claims)
    }
}

pub struct Forwarding<'a> {
    pub request_id: &'a str,
    pub client_ip: Option<&'a str>,
}

/// Rewrites the request for the backend according to the route; `context` is the JSONPath
/// request context its header and query templates read (`Value::Null` when they are all
/// literals).
pub fn rewrite<D: Doc>(
    route: &FacadeRoute,
    params: &PathParams,
    request: &mut RequestHeader,
    context: &D,
    fwd: Forwarding<'_>,
) -> Result<()> {
    let rendered = render(
        route,
        params,
        request.uri.path(),
        request.uri.query(),
        context,
    );
    apply(route, request, rendered, fwd)
}

/// What the route's templates make of a request: its target, and the value of each header
/// `set` (`None`: the header is removed). Rendered from the context, which borrows the
/// request, before the request is changed.
pub struct Rendered {
    pub target: Option<String>,
    /// One value per `route.headers.set`, in order.
    pub set: Vec<Option<HeaderValue>>,
}

pub fn render<D: Doc>(
    route: &FacadeRoute,
    params: &PathParams,
    path: &str,
    query: Option<&str>,
    context: &D,
) -> Rendered {
    let target = target(route, params, path, query, context);
    let set = route.headers.set.iter().map(|(_, template)| {
        template
            .render_string(context)
            .and_then(|v| HeaderValue::from_str(&v).ok())
    });
    Rendered {
        target,
        set: set.collect(),
    }
}

/// Applies the route's method, `rendered`, its header edits and the forwarding fields.
pub fn apply(
    route: &FacadeRoute,
    request: &mut RequestHeader,
    rendered: Rendered,
    fwd: Forwarding<'_>,
) -> Result<()> {
    if let Some(method) = &route.method {
        request.set_method(method.clone());
    }
    if let Some(target) = rendered.target {
        let uri = http::Uri::builder()
            .path_and_query(target)
            .build()
            .or_err(ErrorType::InternalError, "building the upstream URI")?;
        request.set_uri(uri);
    }
    let headers = &route.headers;
    for name in &headers.remove {
        request.remove_header(name);
    }
    for (from, to) in &headers.rename {
        if let Some(value) = request.remove_header(from) {
            request.insert_header(to.clone(), value)?;
        }
    }
    for ((name, _), value) in headers.set.iter().zip(rendered.set) {
        match value {
            Some(value) => request.insert_header(name.clone(), value)?,
            None => {
                request.remove_header(name);
            }
        }
    }
    request.insert_header(http::header::HOST, route.backend.authority.clone())?;
    request.insert_header("x-request-id", fwd.request_id)?;
    if let Some(ip) = fwd.client_ip {
        let xff = forwarded_for(
            request
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok()),
            ip,
        );
        request.insert_header("x-forwarded-for", xff.as_ref())?;
    }
    request.insert_header("x-forwarded-proto", "http")?;
    Ok(())
}

/// The backend's path and query (`request.path`, the backend URL's prefix, `request.query`
/// edits); `None` when the client's are sent unchanged.
pub fn target<D: Doc>(
    route: &FacadeRoute,
    params: &PathParams,
    path: &str,
    query: Option<&str>,
    context: &D,
) -> Option<String> {
    let backend = &route.backend;
    if route.path.is_none() && backend.base_path.is_empty() && route.query.is_empty() {
        return None;
    }
    // A `set` whose path finds nothing still replaces the client's parameter: the admin
    // owns that name.
    let mut set = Vec::with_capacity(route.query.set.len());
    let mut remove = route.query.remove.clone();
    for (name, template) in &route.query.set {
        match template.render_string(context) {
            Some(value) => set.push((name.clone(), value)),
            None => remove.push(name.clone()),
        }
    }
    let query = edit_query(query, &set, &remove, &route.query.rename);
    // The path is written straight into the target: one string per request, not two.
    let path_len = route
        .path
        .as_ref()
        .map_or(path.len(), PathTemplate::rendered_len_hint);
    let query_len = query.as_ref().map_or(0, |q| q.len() + 1);
    let mut target = String::with_capacity(backend.base_path.len() + path_len + query_len);
    target.push_str(&backend.base_path);
    match &route.path {
        Some(template) => template.render_into(params, &mut target),
        None => target.push_str(path),
    }
    if let Some(q) = query {
        target.push('?');
        target.push_str(&q);
    }
    Some(target)
}

/// An error for a phase reached without a route, which `request_filter` rules out.
pub fn no_route() -> Box<Error> {
    Error::explain(ErrorType::InternalError, "no route in context")
}
