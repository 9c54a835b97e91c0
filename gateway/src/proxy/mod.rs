//! The data plane: one `ProxyHttp` whose phases each do one visible job.
//!
//! - `request_filter`: take a snapshot, the request id, route the facade operation
//!   (404 / 405 problems), serve `/openapi.json`.
//! - `upstream_peer`: the operation's backend.
//! - `upstream_request_filter`: method, path, query and headers for the backend.
//! - `fail_to_connect`: record the typed connect error, no blind retries.
//! - `response_filter`: `X-Request-Id` to the client.
//! - `fail_to_proxy`: gateway errors as problems (502 / 504 / 400).
//! - `logging`: the access log line and the metrics.

mod respond;
mod upstream;

use crate::snapshot::{FacadeRoute, Snapshot};
use crate::state::GatewayState;
use async_trait::async_trait;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use propylon_openapi::{PathParams, RouteLookup};
use propylon_policies::{Problem, ProblemKind};
use std::sync::Arc;
use std::time::Instant;

pub struct FacadeProxy {
    state: Arc<GatewayState>,
}

impl FacadeProxy {
    pub fn new(state: Arc<GatewayState>) -> Self {
        FacadeProxy { state }
    }
}

/// Per-request state: the snapshot it runs on from start to end, and what routing found.
pub struct RequestCtx {
    started: Instant,
    snapshot: Option<Arc<Snapshot>>,
    route: Option<Arc<FacadeRoute>>,
    params: PathParams,
    request_id: String,
}

#[async_trait]
impl ProxyHttp for FacadeProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            snapshot: None,
            route: None,
            params: PathParams::default(),
            request_id: String::new(),
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let snapshot = self.state.current();
        let req = session.req_header();
        ctx.request_id = propylon_policies::request_id::request_id(
            req.headers.get("x-request-id").map(|v| v.as_bytes()),
        );
        let path = req.uri.path();
        let lookup = snapshot.routes.lookup(&req.method, path);
        let answer = match lookup {
            RouteLookup::Found { value, params } => {
                ctx.route = Some(value.clone());
                ctx.params = params;
                None
            }
            _ if path == "/openapi.json"
                && matches!(req.method, http::Method::GET | http::Method::HEAD) =>
            {
                let spec = snapshot.merged_spec.clone();
                respond::ok(session, "application/json", spec, &ctx.request_id).await?;
                ctx.snapshot = Some(snapshot);
                return Ok(true);
            }
            RouteLookup::MethodNotAllowed { allow } => Some(
                Problem::new(
                    ProblemKind::MethodNotAllowed,
                    format!("{} is not allowed on {path}", req.method),
                )
                .with_header("allow", allow),
            ),
            RouteLookup::NotFound => Some(Problem::new(
                ProblemKind::NoRoute,
                format!("no facade operation matches {} {path}", req.method),
            )),
        };
        ctx.snapshot = Some(snapshot);
        match answer {
            None => Ok(false),
            Some(problem) => {
                let problem = problem
                    .with_instance(session.req_header().uri.path())
                    .with_request_id(ctx.request_id.clone());
                respond::problem(session, &problem, &ctx.request_id).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let route = ctx.route.as_ref().ok_or_else(upstream::no_route)?;
        Ok(Box::new(route.backend.peer.clone()))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let route = ctx.route.as_ref().ok_or_else(upstream::no_route)?;
        let client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip().to_string());
        let fwd = upstream::Forwarding {
            request_id: &ctx.request_id,
            client_ip,
        };
        upstream::rewrite(route, &ctx.params, upstream_request, fwd)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        _ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // A refused or timed-out connect is an answer about the backend, not a transient
        // glitch: retrying it at once only delays the client's 502/504.
        e.set_retry(false);
        e
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        upstream_response.insert_header("x-request-id", ctx.request_id.as_str())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        if e.esource() == &ErrorSource::Upstream {
            let backend = ctx
                .route
                .as_ref()
                .map(|r| r.backend.name.as_str())
                .unwrap_or("");
            self.state
                .metrics
                .upstream_errors
                .with_label_values(&[backend, e.etype().as_str()])
                .inc();
        }
        let Some(kind) = classify(e) else {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        };
        if ctx.request_id.is_empty() {
            ctx.request_id = propylon_policies::request_id::request_id(None);
        }
        let mut problem =
            Problem::new(kind, describe(e, ctx)).with_request_id(ctx.request_id.clone());
        if let ErrorType::HTTPStatus(code) = e.etype() {
            problem.status = *code;
        }
        let code = problem.status;
        if session.response_written().is_none() {
            if let Err(write_error) = respond::problem(session, &problem, &ctx.request_id).await {
                tracing::debug!(error = %write_error, "cannot send the error answer");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |h| h.status.as_u16());
        let (api, operation, backend) = match &ctx.route {
            Some(r) => (
                r.api.as_str(),
                r.operation_id.as_str(),
                r.backend.name.as_str(),
            ),
            None => ("", "", ""),
        };
        let elapsed = ctx.started.elapsed();
        let metrics = &self.state.metrics;
        let status_label = status.to_string();
        metrics
            .requests
            .with_label_values(&[api, operation, status_label.as_str()])
            .inc();
        metrics
            .duration
            .with_label_values(&[api, operation])
            .observe(elapsed.as_secs_f64());
        let req = session.req_header();
        tracing::info!(
            target: "propylon::access",
            request_id = %ctx.request_id,
            method = %req.method,
            path = %req.uri.path(),
            api,
            operation,
            status,
            upstream = backend,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            error = e.map(|e| e.etype().as_str()).unwrap_or(""),
            config_version = ctx.snapshot.as_ref().map_or(0, |s| s.version),
            "request"
        );
    }
}

/// What the client is told, decided from Pingora's typed errors (never from messages).
/// `None`: the client is gone, nothing to answer.
fn classify(e: &Error) -> Option<ProblemKind> {
    use ErrorType::*;
    match (e.esource(), e.etype()) {
        (_, HTTPStatus(code)) if (400..500).contains(code) => Some(ProblemKind::BadRequest),
        (_, HTTPStatus(_)) => Some(ProblemKind::Internal),
        (ErrorSource::Upstream, ConnectTimedout | ReadTimedout | WriteTimedout) => {
            Some(ProblemKind::BackendTimeout)
        }
        (
            ErrorSource::Upstream,
            ConnectRefused | ConnectNoRoute | ConnectError | ConnectProxyFailure | BindError
            | SocketError | TLSHandshakeFailure | TLSHandshakeTimedout | InvalidCert,
        ) => Some(ProblemKind::BackendUnreachable),
        (ErrorSource::Upstream, _) => Some(ProblemKind::BadGateway),
        (ErrorSource::Downstream, ReadError | WriteError | ConnectionClosed) => None,
        (ErrorSource::Downstream, _) => Some(ProblemKind::BadRequest),
        _ => Some(ProblemKind::Internal),
    }
}

/// The `detail` of a problem: what happened, naming the backend but not its internals.
fn describe(e: &Error, ctx: &RequestCtx) -> String {
    let backend = ctx
        .route
        .as_ref()
        .map(|r| r.backend.name.as_str())
        .unwrap_or("the backend");
    match classify(e) {
        Some(ProblemKind::BackendTimeout) => format!("backend `{backend}` did not answer in time"),
        Some(ProblemKind::BackendUnreachable) => format!(
            "backend `{backend}` cannot be reached ({})",
            e.etype().as_str()
        ),
        Some(ProblemKind::BadGateway) => format!(
            "backend `{backend}` gave an answer that cannot be relayed ({})",
            e.etype().as_str()
        ),
        Some(ProblemKind::BadRequest) => "the request cannot be processed".to_string(),
        _ => "the gateway failed to handle this request".to_string(),
    }
}
