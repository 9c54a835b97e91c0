//! The data plane: one `ProxyHttp` whose phases each do one visible job. Plain requests are
//! served before Pingora's session by the lean path (`lean`), which calls the same
//! policies, `respond`, `errors` and `access`; everything else runs these phases.
//!
//! - `request_filter`: take a snapshot, the request id, route the facade operation
//!   (404 / 405 problems), serve `/openapi.json`, check parameters (400); operations that
//!   need whole bodies are served by the buffered exchange (`crate::exchange`) here.
//! - `upstream_peer`: the operation's backend.
//! - `upstream_request_filter`: method, path, query and headers for the backend.
//! - `fail_to_connect`: record the typed connect error, no blind retries.
//! - `response_filter`: `response.status` / `response.headers`, `X-Request-Id`.
//! - `fail_to_proxy`: gateway errors as problems (502 / 504 / 400).
//! - `logging`: the access log line and the metrics.

mod access;
mod admission;
pub mod connections;
pub mod errors;
pub mod lean;
use admission::Admission;
mod respond;
pub mod upstream;

use crate::exchange::{self, BackendClient, Outcome};
use crate::jobs::store::JobStore;
use crate::jobs::{client_api, submit};
use crate::snapshot::{BufferedExchange, FacadeRoute, JobPolicy, ResponseEdits, Snapshot};
use crate::state::GatewayState;
use async_trait::async_trait;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use propylon_openapi::{PathParams, RouteLookup};
use propylon_policies::limits::LimitFields;
use propylon_policies::mapping::{response_context, RequestParts, Roots};
use propylon_policies::{Problem, ProblemKind};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

pub struct FacadeProxy {
    state: Arc<GatewayState>,
    client: Arc<BackendClient>,
    jobs: Arc<dyn JobStore>,
}

impl FacadeProxy {
    pub fn new(
        state: Arc<GatewayState>,
        client: Arc<BackendClient>,
        jobs: Arc<dyn JobStore>,
    ) -> Self {
        FacadeProxy {
            state,
            client,
            jobs,
        }
    }

    /// Reads, checks and maps the whole request, calls the backend, maps its answer.
    async fn serve_buffered(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &FacadeRoute,
        exchange: &BufferedExchange,
    ) -> Result<Outcome> {
        let fwd = upstream::Forwarding {
            request_id: &ctx.request_id,
            client_ip: ctx.client_ip.as_deref(),
        };
        let caller = ctx.caller();
        let prepared =
            match exchange::prepare(session, route, exchange, &ctx.params, &caller, fwd).await? {
                Ok(prepared) => prepared,
                Err(outcome) => return Ok(outcome),
            };
        let Some(policy) = &route.jobs else {
            let answer = self
                .call_backend(route, prepared.header, prepared.body)
                .await?;
            return Ok(exchange::shape_answer(route, exchange, answer));
        };
        // `Idempotency-Key`: a repeat is answered from the job store, never sent again; a
        // repeat while the first request is still being handled is a 409.
        let key = session
            .req_header()
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let _in_progress = match &key {
            Some(key) => match self.state.idempotency.begin(&ctx.consumer, key) {
                Some(guard) => Some(guard),
                None => return Ok(Outcome::Problem(submit::key_in_progress(key))),
            },
            None => None,
        };
        if let Some(key) = &key {
            let request = submit::stored_request(
                session.req_header(),
                prepared.facade_body.clone(),
                route,
                None,
            );
            if let Some(outcome) =
                submit::repeated(self.jobs.as_ref(), &ctx.consumer, key, &request).await?
            {
                return Ok(outcome);
            }
        }
        let preferred = submit::prefers_async(session.req_header());
        if policy.always || preferred {
            return self
                .submit_job(session, ctx, route, policy, prepared.facade_body, preferred)
                .await;
        }
        // `async: fallback`: a backend known down (open circuit, failing health check,
        // maintenance window) is not tried at all; otherwise try it, and if it turns out
        // down, the call becomes a job.
        let health = &self.state.backend_health;
        let name = route.backend.name.as_str();
        if let Some(down) = health.down(&route.backend, submit::unix_ms()) {
            tracing::debug!(
                backend = name,
                reason = down.as_str(),
                "backend known down: queued"
            );
            return self
                .submit_job(session, ctx, route, policy, prepared.facade_body, false)
                .await;
        }
        let answer = self
            .call_backend(route, prepared.header, prepared.body)
            .await;
        let now = submit::unix_ms();
        match answer {
            Ok(answer)
                if policy
                    .retry
                    .retry_statuses
                    .contains(&answer.header.status.as_u16()) =>
            {
                health.record(name, false, now);
                self.submit_job(session, ctx, route, policy, prepared.facade_body, false)
                    .await
            }
            Ok(answer) => {
                health.record(name, true, now);
                let outcome = exchange::shape_answer(route, exchange, answer);
                if key.is_some() {
                    let submission =
                        self.submission(session, ctx, route, policy, prepared.facade_body, false);
                    submit::record_live_answer(self.jobs.as_ref(), submission, &outcome).await?;
                }
                Ok(outcome)
            }
            Err(e) if errors::backend_down(&e) => {
                health.record(name, false, now);
                errors::count_upstream(&self.state, name, &e);
                self.submit_job(session, ctx, route, policy, prepared.facade_body, false)
                    .await
            }
            Err(e) => {
                // Reachable, but the answer could not be used: not the backend being down.
                health.record(name, true, now);
                Err(e)
            }
        }
    }

    fn submission<'a>(
        &self,
        session: &'a Session,
        ctx: &'a RequestCtx,
        route: &'a FacadeRoute,
        policy: &'a JobPolicy,
        body: bytes::Bytes,
        preferred: bool,
    ) -> submit::Submission<'a> {
        submit::Submission {
            route,
            policy,
            request: session.req_header(),
            body,
            consumer: &ctx.consumer,
            claims: ctx.claims.as_deref(),
            request_id: &ctx.request_id,
            preferred,
            fallback: !policy.always && !preferred,
        }
    }

    /// The whole upstream exchange of a buffered operation (Pingora's connector and pool).
    async fn call_backend(
        &self,
        route: &FacadeRoute,
        header: RequestHeader,
        body: bytes::Bytes,
    ) -> Result<exchange::client::BackendAnswer> {
        self.client
            .call(&route.backend.peer, header, body, MAX_ANSWER)
            .await
    }

    async fn submit_job(
        &self,
        session: &Session,
        ctx: &RequestCtx,
        route: &FacadeRoute,
        policy: &JobPolicy,
        body: bytes::Bytes,
        preferred: bool,
    ) -> Result<Outcome> {
        let submission = self.submission(session, ctx, route, policy, body, preferred);
        let submitted = submit::submit(self.jobs.as_ref(), submission).await?;
        if submitted.created {
            self.state
                .metrics
                .jobs
                .with_label_values(&[route.operation_id.as_str(), "created"])
                .inc();
            self.state.jobs_due.notify_one();
        }
        Ok(submitted.outcome)
    }

    /// `GET /jobs/{id}` and `/jobs/{id}/result`, for the consumer who made the job.
    async fn serve_job(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        path: client_api::JobPath,
    ) -> Result<bool> {
        let id = path.id().to_string();
        let job =
            self.jobs.get(&id).await.map_err(|e| {
                Error::explain(ErrorType::InternalError, format!("reading job: {e}"))
            })?;
        let snapshot = ctx.snapshot.clone().ok_or_else(upstream::no_route)?;
        let route = job
            .as_ref()
            .and_then(|j| snapshot.operation(&j.api, &j.operation));
        let (Some(job), Some(route)) = (job, route) else {
            return self
                .respond_problem(session, ctx, client_api::not_found(&id))
                .await;
        };
        let ip = client_ip(session);
        let consumer = match admission::admit(
            &self.state,
            &self.client,
            &snapshot,
            &route,
            &session.req_header().headers,
            ip.as_deref(),
            None,
        )
        .await
        {
            Admission::Admit(admitted) => admitted.consumer,
            Admission::Refuse(problem) => return self.respond_problem(session, ctx, problem).await,
        };
        if consumer != job.consumer {
            return self
                .respond_problem(session, ctx, client_api::not_found(&id))
                .await;
        }
        let answer = match path {
            client_api::JobPath::Status(_) => client_api::status(&job),
            client_api::JobPath::Result(_) => match client_api::result(&job) {
                Ok(answer) => answer,
                Err(problem) => return self.respond_problem(session, ctx, *problem).await,
            },
        };
        respond::answer(session, answer, &ctx.request_id, &LimitFields::none()).await?;
        Ok(true)
    }

    /// Writes a problem decided by a policy; the request is answered.
    async fn respond_problem(
        &self,
        session: &mut Session,
        ctx: &RequestCtx,
        problem: Problem,
    ) -> Result<bool> {
        let problem = problem
            .with_instance(session.req_header().uri.path())
            .with_request_id(ctx.request_id.clone());
        respond::problem(session, &problem, &ctx.request_id, &ctx.limit_headers).await?;
        Ok(true)
    }
}

/// Largest backend answer a buffered operation reads; beyond it the client gets a 502.
pub(crate) const MAX_ANSWER: usize = 16 * 1024 * 1024;

fn client_ip(session: &Session) -> Option<String> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip().to_string())
}

/// Per-request state: the snapshot it runs on from start to end, and what routing found.
pub struct RequestCtx {
    started: Instant,
    snapshot: Option<Arc<Snapshot>>,
    route: Option<Arc<FacadeRoute>>,
    params: PathParams,
    request_id: String,
    /// The client's address, formatted once: admission keys anonymous callers by it and
    /// `X-Forwarded-For` carries it.
    client_ip: Option<String>,
    /// Set by admission: the API key's consumer, the token's consumer claim, or the address.
    consumer: String,
    claims: Option<Arc<Value>>,
    /// `RateLimit-Policy` / `RateLimit`, on every answer of an admitted request.
    limit_headers: LimitFields,
}

impl RequestCtx {
    fn caller(&self) -> upstream::Caller<'_> {
        upstream::Caller {
            consumer: &self.consumer,
            claims: self.claims.as_deref(),
        }
    }
}

#[async_trait]
impl ProxyHttp for FacadeProxy {
    type CTX = RequestCtx;

    /// No HTTP modules: Pingora's default adds a response-compression module, disabled, that
    /// still gets a context and a call in every phase of every request.
    fn init_downstream_modules(&self, _modules: &mut pingora_core::modules::http::HttpModules) {}

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            snapshot: None,
            route: None,
            params: PathParams::default(),
            request_id: String::new(),
            client_ip: None,
            consumer: String::new(),
            claims: None,
            limit_headers: LimitFields::none(),
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let snapshot = self.state.current();
        let req = session.req_header();
        ctx.request_id = propylon_policies::request_id::request_id(
            req.headers.get("x-request-id").map(|v| v.as_bytes()),
        );
        let path = req.uri.path();
        if req.method == http::Method::GET {
            if let Some(job_path) = client_api::parse(path) {
                ctx.snapshot = Some(snapshot);
                return Box::pin(self.serve_job(session, ctx, job_path)).await;
            }
        }
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
        if let Some(problem) = answer {
            return Box::pin(self.respond_problem(session, ctx, problem)).await;
        }
        let Some(route) = ctx.route.clone() else {
            return Ok(false);
        };
        let snapshot = ctx.snapshot.clone().ok_or_else(upstream::no_route)?;
        ctx.client_ip = client_ip(session);
        // Boxed, as are the rarer paths below: the phase's own future stays small, and Pingora
        // moves it on every request (bench/README.md).
        let admission = Box::pin(admission::admit(
            &self.state,
            &self.client,
            &snapshot,
            &route,
            &session.req_header().headers,
            ctx.client_ip.as_deref(),
            None,
        ))
        .await;
        match admission {
            Admission::Admit(admitted) => {
                ctx.consumer = admitted.consumer;
                ctx.claims = admitted.claims;
                ctx.limit_headers = admitted.limit_headers;
            }
            Admission::Refuse(problem) => {
                return Box::pin(self.respond_problem(session, ctx, problem)).await
            }
        }
        if let Some(validator) = &route.validator {
            let req = session.req_header();
            let errors = validator.validate_parameters(&ctx.params, req.uri.query(), &req.headers);
            if !errors.is_empty() {
                return self
                    .respond_problem(session, ctx, exchange::invalid(errors))
                    .await;
            }
            if let Some(problem) = exchange::content_type_problem(validator, session.req_header()) {
                return Box::pin(self.respond_problem(session, ctx, problem)).await;
            }
        }
        let Some(buffered) = &route.exchange else {
            return Ok(false);
        };
        match Box::pin(self.serve_buffered(session, ctx, &route, buffered)).await? {
            Outcome::Answer(answer) => {
                respond::answer(session, answer, &ctx.request_id, &ctx.limit_headers).await?;
                Ok(true)
            }
            Outcome::Problem(problem) => {
                Box::pin(self.respond_problem(session, ctx, problem)).await
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
        let fwd = upstream::Forwarding {
            request_id: &ctx.request_id,
            client_ip: ctx.client_ip.as_deref(),
        };
        // Literal-only edits read nothing: skip building the context.
        let context = if route.roots == Roots::default() {
            Value::Null
        } else {
            let req = session.req_header();
            RequestParts::new(
                route.roots,
                &route.header_names,
                ctx.params.iter(),
                req.uri.query(),
                &req.headers,
                Some(ctx.consumer.as_str()),
            )
            .context(&(), None, ctx.caller().claims_for(route.roots).cloned())
        };
        upstream::rewrite(route, &ctx.params, upstream_request, &context, fwd)
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
        if let Some(route) = &ctx.route {
            apply_response_edits(&route.response, upstream_response)?;
        }
        for (name, value) in &ctx.limit_headers {
            upstream_response.insert_header(name, value)?;
        }
        upstream_response.insert_header("x-request-id", ctx.request_id.as_str())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let backend = ctx.route.as_ref().map(|r| r.backend.name.as_str());
        errors::count_upstream(&self.state, backend.unwrap_or(""), e);
        let Some(problem) = errors::problem_of(e, backend) else {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        };
        if ctx.request_id.is_empty() {
            ctx.request_id = propylon_policies::request_id::request_id(None);
        }
        let problem = problem
            .with_instance(session.req_header().uri.path())
            .with_request_id(ctx.request_id.clone());
        let code = problem.status;
        if session.response_written().is_none() {
            if let Err(write_error) =
                respond::problem(session, &problem, &ctx.request_id, &ctx.limit_headers).await
            {
                tracing::debug!(error = %write_error, "cannot send the error answer");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let req = session.req_header();
        access::record(
            &self.state,
            access::Finished {
                method: req.method.as_str(),
                path: req.uri.path(),
                route: ctx.route.as_deref(),
                status: session.response_written().map_or(0, |h| h.status.as_u16()),
                started: ctx.started,
                request_id: &ctx.request_id,
                error: e.map(|e| e.etype().as_str()).unwrap_or(""),
                config_version: ctx.snapshot.as_ref().map_or(0, |s| s.version),
            },
        );
    }
}

/// `response.status` and `response.headers` on a streamed answer.
fn apply_response_edits(edits: &ResponseEdits, response: &mut ResponseHeader) -> Result<()> {
    if let Some(map) = &edits.status {
        response.set_status(map.map(response.status.as_u16()))?;
    }
    if edits.headers.is_empty() {
        return Ok(());
    }
    let context: Value = response_context(
        &(),
        RESPONSE_HEADER_ROOTS,
        response.status.as_u16(),
        &response.headers,
        None,
    );
    let rendered = exchange::RenderedEdits::new(&edits.headers, &context);
    let headers: Vec<_> = rendered
        .apply(response.headers.iter())
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    let names: Vec<_> = response.headers.keys().cloned().collect();
    for name in names {
        response.remove_header(&name);
    }
    for (name, value) in headers {
        response.append_header(name, value)?;
    }
    Ok(())
}

/// A streamed answer's body is not read, so its header templates see status and headers.
const RESPONSE_HEADER_ROOTS: Roots = Roots {
    path: false,
    query: false,
    headers: true,
    body: false,
    claims: false,
    consumer: false,
    status: true,
};
