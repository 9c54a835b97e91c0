//! The lean path: plain HTTP/1.1 requests are served here, on the client connection,
//! without Pingora's proxy session, in one of two lanes:
//!
//! - `relay`: GET and HEAD of an operation without mapping, edits or jobs: the head is
//!   rewritten for the backend and the answer's bytes are relayed as they come;
//! - `whole`: an operation with a buffered exchange (mapping, body validation, XML) and no
//!   jobs, its body sent with a `Content-Length`: read whole, then `exchange` checks and maps
//!   it as on the full path, and `fetch` calls the backend on the same pool as `relay`.
//!
//! Everything else (other methods, chunked or oversized bodies, `Expect`, upgrades, HTTP/1.0,
//! jobs, TLS backends, unrouted paths, `/jobs/...`, the spec) is handed back unread to
//! Pingora's `HttpProxy` and `FacadeProxy`'s phases.
//!
//! Why: a proxied request through Pingora's session cost about twice nginx's CPU on a plain
//! route (bench/README.md): header maps built and cloned, a pooled-connection check per reuse,
//! large state machines moved per request. This path applies the same policies in the same
//! order: routing, admission (auth, rate limits, quotas), parameter and media type checks, the
//! forwarding fields, the `RateLimit` and `X-Request-Id` fields of the answer, problems made by
//! `respond`, errors decided by `errors` from Pingora's error types, and the access log and
//! metrics of `access`.

mod backend;
mod fetch;
mod framing;
mod head;
mod mapped;
mod pool;
mod relay;
mod whole;

use super::admission::{self, Admission, RequestHeaders};
use super::{access, respond};
use crate::exchange::{self, BackendClient};
use crate::jobs::client_api;
use crate::snapshot::{BufferedExchange, FacadeRoute, Snapshot};
use crate::state::GatewayState;
use backend::ReadDeadline;
use head::{ClientRequest, Parsed};
use http::Method;
use pingora_core::protocols::Stream;
use pingora_http::ResponseHeader;
use pingora_timeout::fast_timeout::fast_timeout;
use pool::UpstreamPool;
use propylon_openapi::{PathParams, RouteLookup};
use propylon_policies::auth::LastToken;
use propylon_policies::limits::LimitFields;
use propylon_policies::request_id::{request_id_in, IdBuffer};
use propylon_policies::{Problem, ProblemKind};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest request head read here; a longer one goes to Pingora's path (and its limits).
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Reads from a backend: 8 KiB, a small object for mimalloc (at most 10 KiB), so the
/// buffer of each request comes from a page already in use rather than a fresh one.
const READ_CHUNK: usize = 8 * 1024;

/// Free room a request's buffer gets before the rest of a head that did not come whole is
/// read into it (a head that came whole is served from a buffer of its own size).
const READ_ROOM: usize = 1024;

/// How one request on the connection went.
pub enum Served {
    /// Answered; the connection may carry the next request, of which these bytes (pipelined
    /// behind this one) are already read.
    KeepAlive(Vec<u8>),
    /// The connection is done (closed by the client, an error, or a close-delimited answer).
    Close,
    /// Not for this path: these bytes, already read, go back to the stream for Pingora.
    Handover(Vec<u8>),
}

/// What `try_serve` decided, before the bytes it read are given back or dropped.
enum Decision {
    /// Answered; the request (head and body) was this long.
    KeepAlive(usize),
    /// The body is not all read yet: the request is this long.
    NeedBody(usize),
    Close,
    Handover,
}

/// What the lean path keeps for a client connection from one request to the next.
#[derive(Default)]
pub struct ConnectionMemory {
    /// The deadline for reads from backends.
    read_deadline: ReadDeadline,
    /// The bearer token of the connection's last request, with its claims.
    last_token: LastToken,
}

pub struct LeanPath {
    state: Arc<GatewayState>,
    /// For admission's JWKS fetches; backend calls use `pool`.
    client: Arc<BackendClient>,
    pool: UpstreamPool,
    /// How long a client may take to send the rest of a request head.
    head_timeout: Duration,
}

impl LeanPath {
    pub fn new(
        state: Arc<GatewayState>,
        client: Arc<BackendClient>,
        head_timeout: Duration,
    ) -> Self {
        LeanPath {
            state,
            client,
            pool: UpstreamPool::default(),
            head_timeout,
        }
    }

    /// Serves the request that starts with `read` (pipelined bytes of an earlier one) or on
    /// `stream` (its first byte has arrived).
    pub async fn serve(
        &self,
        stream: &mut Stream,
        client_ip: Option<&str>,
        read: Vec<u8>,
        memory: &ConnectionMemory,
    ) -> Served {
        let started = Instant::now();
        let mut buf = read;
        // Most heads come whole in the first read: no timer, and no room to read more, for
        // those.
        if !has_blank_line(&buf, 0) {
            if buf.capacity() - buf.len() < READ_ROOM {
                buf.reserve(2 * READ_ROOM);
            }
            match fast_timeout(self.head_timeout, read_head(stream, &mut buf)).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => return Served::Handover(buf),
                Ok(Err(_)) | Err(_) => return Served::Close,
            }
        }
        loop {
            match self
                .try_serve(&buf, stream, client_ip, started, memory)
                .await
            {
                Decision::KeepAlive(used) => return Served::KeepAlive(buf.split_off(used)),
                Decision::Close => return Served::Close,
                Decision::Handover => return Served::Handover(buf),
                Decision::NeedBody(total) => {
                    let rest = read_to(stream, &mut buf, total);
                    match fast_timeout(self.head_timeout, rest).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) | Err(_) => return Served::Close,
                    }
                }
            }
        }
    }

    async fn try_serve(
        &self,
        buf: &[u8],
        stream: &mut Stream,
        client_ip: Option<&str>,
        started: Instant,
        memory: &ConnectionMemory,
    ) -> Decision {
        // On the heap: the request's future is moved into its box whole.
        let mut slots = Box::<[httparse::Header]>::new_uninit_slice(head::MAX_HEADERS);
        let Parsed::Servable(req) = head::parse_request(buf, &mut slots) else {
            return Decision::Handover;
        };
        let snapshot = self.state.current();
        if req.method == Method::GET && client_api::parse(req.path).is_some() {
            return Decision::Handover;
        }
        let (route, params) = match snapshot.routes.lookup(&req.method, req.path) {
            RouteLookup::Found { value, params } => (value.clone(), params),
            _ => return Decision::Handover,
        };
        let Some(lane) = lane(&route, &req) else {
            return Decision::Handover;
        };
        let total = req.head_len + req.body_len;
        if buf.len() < total {
            return Decision::NeedBody(total);
        }
        let mut made_id = IdBuffer::default();
        let request_id = request_id_in(
            req.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("x-request-id"))
                .map(|h| h.value),
            &mut made_id,
        );
        let mut call = Call {
            lean: self,
            snapshot: &snapshot,
            route: &route,
            req: &req,
            request_id,
            started,
            read_deadline: &memory.read_deadline,
            last_token: &memory.last_token,
            consumer: String::new(),
            claims: None,
            limit_headers: LimitFields::none(),
        };
        let body = &buf[req.head_len..total];
        call.run(stream, client_ip, &params, lane, body).await
    }
}

/// How this path serves a request of an operation.
#[derive(Clone, Copy)]
enum Lane<'r> {
    /// Relayed as it comes (`relay`): GET and HEAD of an operation without mapping or edits.
    Stream,
    /// Read whole, checked, mapped, and the answer too (`whole`): an operation with a buffered
    /// exchange and no jobs.
    Whole(&'r BufferedExchange),
}

/// The lane for `req` on `route`, if this path serves it (a plain-HTTP backend, and nothing
/// the full path alone does).
fn lane<'r>(route: &'r FacadeRoute, req: &ClientRequest<'_>) -> Option<Lane<'r>> {
    let peer = &route.backend.peer;
    if peer.is_tls() || peer._address.as_inet().is_none() {
        return None;
    }
    match &route.exchange {
        None => {
            let plain = route.jobs.is_none()
                && route.method.is_none()
                && route.headers.is_empty()
                && route.query.is_empty()
                && route.response.status.is_none()
                && route.response.headers.is_empty()
                && route.validator.as_ref().is_none_or(|v| !v.reads_headers())
                && matches!(req.method, Method::GET | Method::HEAD)
                && req.body_len == 0;
            plain.then_some(Lane::Stream)
        }
        // Idempotency keys, 413s and jobs stay with the full path.
        Some(exchange) => (route.jobs.is_none() && req.body_len <= exchange.max_body)
            .then_some(Lane::Whole(exchange)),
    }
}

/// Reads until `buf` holds `total` bytes.
async fn read_to(stream: &mut Stream, buf: &mut Vec<u8>, total: usize) -> std::io::Result<()> {
    buf.reserve(total.saturating_sub(buf.len()));
    while buf.len() < total {
        if stream.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(())
}

/// Reads until the request head is complete (`true`) or too long for this path (`false`).
async fn read_head(stream: &mut Stream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut scanned = 0;
    loop {
        if has_blank_line(buf, scanned) {
            return Ok(true);
        }
        if buf.len() > MAX_REQUEST_HEAD {
            return Ok(false);
        }
        scanned = buf.len().saturating_sub(3);
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity());
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// A line end followed by an empty line (`\n\n` or `\n\r\n`) at or after `from`.
fn has_blank_line(buf: &[u8], from: usize) -> bool {
    let tail = &buf[from.min(buf.len())..];
    // memchr jumps from line end to line end: a head with a bearer token is ~1 KB.
    memchr::memchr_iter(b'\n', tail).any(|i| match tail.get(i + 1) {
        Some(b'\n') => true,
        Some(b'\r') => tail.get(i + 2) == Some(&b'\n'),
        _ => false,
    })
}

/// One request on its way: the snapshot it runs on from start to end.
struct Call<'a> {
    lean: &'a LeanPath,
    snapshot: &'a Snapshot,
    route: &'a FacadeRoute,
    req: &'a ClientRequest<'a>,
    request_id: &'a str,
    started: Instant,
    /// The client connection's deadline for reads from backends.
    read_deadline: &'a ReadDeadline,
    /// The client connection's last token, for admission.
    last_token: &'a LastToken,
    /// Set by admission (as `FacadeProxy`'s context is).
    consumer: String,
    claims: Option<Arc<Value>>,
    limit_headers: LimitFields,
}

impl Call<'_> {
    /// Admission and the parameter checks, as `FacadeProxy::request_filter` does them, then
    /// the lane.
    async fn run(
        &mut self,
        stream: &mut Stream,
        client_ip: Option<&str>,
        params: &PathParams,
        lane: Lane<'_>,
        body: &[u8],
    ) -> Decision {
        let lean = self.lean;
        let admitted = admission::admit(
            &lean.state,
            &lean.client,
            self.snapshot,
            self.route,
            self.req.headers,
            client_ip,
            Some(self.last_token),
        )
        .await;
        match admitted {
            Admission::Admit(admitted) => {
                self.consumer = admitted.consumer;
                self.claims = admitted.claims;
                self.limit_headers = admitted.limit_headers;
            }
            Admission::Refuse(problem) => return self.answer_problem(stream, problem, "").await,
        }
        if let Some(validator) = &self.route.validator {
            // Only the whole lane gets here with header parameters (see `lane`).
            let headers = if validator.reads_headers() {
                let Some(fields) = mapped::parameter_fields(self.req, validator) else {
                    let problem =
                        Problem::new(ProblemKind::BadRequest, "the request cannot be processed");
                    return self
                        .answer_problem(stream, problem, "InvalidHTTPHeader")
                        .await;
                };
                fields
            } else {
                http::HeaderMap::new()
            };
            let errors = validator.validate_parameters(params, self.req.query, &headers);
            if !errors.is_empty() {
                return self
                    .answer_problem(stream, exchange::invalid(errors), "")
                    .await;
            }
            let content_type = self.req.headers.header("content-type");
            let body_present = self.req.body_len > 0;
            if let Some(problem) =
                exchange::media_type_problem(validator, content_type, body_present)
            {
                return self.answer_problem(stream, problem, "").await;
            }
        }
        match lane {
            Lane::Stream => self.stream(stream, client_ip, params).await,
            Lane::Whole(exchange) => self.whole(stream, client_ip, params, exchange, body).await,
        }
    }

    /// Answers with `problem`, as `FacadeProxy` does (instance, request id, `RateLimit`).
    async fn answer_problem(&self, stream: &mut Stream, problem: Problem, error: &str) -> Decision {
        let problem = problem
            .with_instance(self.req.path)
            .with_request_id(self.request_id.to_string());
        match respond::problem_answer(&problem, self.request_id, &self.limit_headers) {
            Ok((head, body)) => self.write_answer(stream, &head, &body, error).await,
            Err(_) => {
                self.finish(0, "InternalError");
                Decision::Close
            }
        }
    }

    /// A backend call failed before the client got anything: counted, and a problem decided
    /// by `errors` from Pingora's error type (or nothing, when the client is gone).
    async fn upstream_failed(&self, stream: &mut Stream, e: &pingora_error::Error) -> Decision {
        let backend = self.route.backend.name.as_str();
        super::errors::count_upstream(&self.lean.state, backend, e);
        match super::errors::problem_of(e, Some(backend)) {
            Some(problem) => {
                self.answer_problem(stream, problem, e.etype().as_str())
                    .await
            }
            None => {
                self.finish(0, e.etype().as_str());
                Decision::Close
            }
        }
    }

    /// Writes a whole answer made here (`head` by `respond`), then records the request.
    async fn write_answer(
        &self,
        stream: &mut Stream,
        head: &ResponseHeader,
        body: &[u8],
        error: &str,
    ) -> Decision {
        let mut out = Vec::with_capacity(256 + body.len());
        head::write_gateway_head(&mut out, head);
        self.send_answer(stream, out, body, head.status.as_u16(), error)
            .await
    }

    /// Sends an answer whose head is in `out`, then its body (none to a HEAD request).
    async fn send_answer(
        &self,
        stream: &mut Stream,
        mut out: Vec<u8>,
        body: &[u8],
        status: u16,
        error: &str,
    ) -> Decision {
        if self.req.method != Method::HEAD {
            out.extend_from_slice(body);
        }
        let written = write_client(stream, &out).await;
        let status = if written.is_ok() { status } else { 0 };
        self.finish(status, error);
        if written.is_ok() {
            Decision::KeepAlive(self.req.head_len + self.req.body_len)
        } else {
            Decision::Close
        }
    }

    fn finish(&self, status: u16, error: &str) {
        access::record(
            &self.lean.state,
            access::Finished {
                method: self.req.method.as_str(),
                path: self.req.path,
                route: Some(self.route),
                status,
                started: self.started,
                request_id: self.request_id,
                error,
                config_version: self.snapshot.version,
            },
        );
    }
}

async fn write_client(stream: &mut Stream, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_of_a_head() {
        assert!(has_blank_line(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0));
        assert!(has_blank_line(b"GET / HTTP/1.1\nHost: a\n\n", 0));
        assert!(!has_blank_line(b"GET / HTTP/1.1\r\nHost: a\r\n", 0));
        assert!(!has_blank_line(b"GET / HTTP/1.1\r\nHost: a\r\n\r", 0));
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert!(has_blank_line(head, head.len() - 4));
    }
}
