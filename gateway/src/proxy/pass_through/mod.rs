//! The pass-through path: plain HTTP/1.1 GET and HEAD requests of streaming operations (no
//! body mapping, no edits of headers, query or answer, no jobs, a plain-HTTP backend) are
//! served here, on the client connection, without Pingora's proxy session; everything else
//! is handed back, unread, to Pingora's `HttpProxy` and `FacadeProxy`'s phases.
//!
//! Why: a proxied request through Pingora's session costs about twice nginx's CPU on this
//! kind of route (bench/README.md) — header maps built and cloned, a pooled-connection
//! check per reuse, large state machines moved per request. This path relays the backend's
//! bytes as they are, with the same policies: routing, admission (auth, rate limits,
//! quotas), parameter validation, the forwarding fields, the `RateLimit` and `X-Request-Id`
//! fields of the answer, problems rendered by `respond`, errors decided by `errors` from
//! Pingora's error types, and the access log and metrics of `access`.

mod framing;
mod head;
mod pool;

use super::admission::{self, Admission, RequestHeaders};
use super::{access, errors, respond, upstream};
use crate::exchange::{self, BackendClient};
use crate::jobs::client_api;
use crate::snapshot::{FacadeRoute, Snapshot};
use crate::state::GatewayState;
use framing::{ChunkedEnd, Framing};
use head::{BackendAnswer, ClientRequest, Forwarded, GatewayFields, Parsed};
use http::Method;
use pingora_core::protocols::Stream;
use pingora_error::{Error, ErrorType};
use pingora_http::ResponseHeader;
use pool::UpstreamPool;
use propylon_openapi::{PathParams, RouteLookup};
use propylon_policies::Problem;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest request head read here; a longer one goes to Pingora's path (and its limits).
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Largest answer head relayed; a longer one is a 502.
const MAX_ANSWER_HEAD: usize = 64 * 1024;
/// Reads from a backend: 8 KiB, a small object for mimalloc (at most 10 KiB), so the
/// buffer of each request comes from a page already in use rather than a fresh one.
const READ_CHUNK: usize = 8 * 1024;

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
    /// The request's head was this long.
    KeepAlive(usize),
    Close,
    Handover,
}

pub struct PassThrough {
    state: Arc<GatewayState>,
    client: Arc<BackendClient>,
    pool: UpstreamPool,
    /// How long a client may take to send the rest of a request head.
    head_timeout: Duration,
}

impl PassThrough {
    pub fn new(
        state: Arc<GatewayState>,
        client: Arc<BackendClient>,
        head_timeout: Duration,
    ) -> Self {
        PassThrough {
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
    ) -> Served {
        let started = Instant::now();
        let mut buf = read;
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(2048);
        }
        // Most heads come whole in the first read: no timer for those.
        if !has_blank_line(&buf, 0) {
            match tokio::time::timeout(self.head_timeout, read_head(stream, &mut buf)).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => return Served::Handover(buf),
                Ok(Err(_)) | Err(_) => return Served::Close,
            }
        }
        match self.try_serve(&buf, stream, client_ip, started).await {
            Decision::KeepAlive(head_len) => Served::KeepAlive(buf.split_off(head_len)),
            Decision::Close => Served::Close,
            Decision::Handover => Served::Handover(buf),
        }
    }

    async fn try_serve(
        &self,
        buf: &[u8],
        stream: &mut Stream,
        client_ip: Option<&str>,
        started: Instant,
    ) -> Decision {
        // On the heap: the request's future is moved into its box whole.
        let mut slots = vec![httparse::EMPTY_HEADER; head::MAX_HEADERS];
        let Parsed::Simple(req) = head::parse_request(buf, &mut slots) else {
            return Decision::Handover;
        };
        let snapshot = self.state.current();
        if req.method == Method::GET && client_api::parse(req.path).is_some() {
            return Decision::Handover;
        }
        let (route, params) = match snapshot.routes.lookup(&req.method, req.path) {
            RouteLookup::Found { value, params } if streams_plainly(value) => {
                (value.clone(), params)
            }
            _ => return Decision::Handover,
        };
        let request_id = propylon_policies::request_id::request_id(
            req.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("x-request-id"))
                .map(|h| h.value),
        );
        let mut call = Call {
            pass: self,
            snapshot: &snapshot,
            route: &route,
            req: &req,
            request_id: &request_id,
            started,
            limit_headers: Vec::new(),
        };
        call.run(stream, client_ip, &params).await
    }
}

/// Whether `route` needs nothing this path does not do.
fn streams_plainly(route: &FacadeRoute) -> bool {
    route.exchange.is_none()
        && route.jobs.is_none()
        && route.method.is_none()
        && route.headers.is_empty()
        && route.query.is_empty()
        && route.response.status.is_none()
        && route.response.headers.is_empty()
        && route.validator.as_ref().is_none_or(|v| !v.reads_headers())
        && !route.backend.peer.is_tls()
        && route.backend.peer._address.as_inet().is_some()
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
    tail.windows(2).enumerate().any(|(i, w)| {
        w[0] == b'\n' && (w[1] == b'\n' || (w[1] == b'\r' && tail.get(i + 2) == Some(&b'\n')))
    })
}

/// One request on its way: the snapshot it runs on from start to end.
struct Call<'a> {
    pass: &'a PassThrough,
    snapshot: &'a Snapshot,
    route: &'a FacadeRoute,
    req: &'a ClientRequest<'a>,
    request_id: &'a str,
    started: Instant,
    limit_headers: Vec<(&'static str, String)>,
}

impl Call<'_> {
    async fn run(
        &mut self,
        stream: &mut Stream,
        client_ip: Option<&str>,
        params: &PathParams,
    ) -> Decision {
        let pass = self.pass;
        let admitted = admission::admit(
            &pass.state,
            &pass.client,
            self.snapshot,
            self.route,
            self.req.headers,
            client_ip,
        )
        .await;
        match admitted {
            Admission::Admit(admitted) => self.limit_headers = admitted.limit_headers,
            Admission::Refuse(problem) => return self.answer_problem(stream, problem, "").await,
        }
        if let Some(validator) = &self.route.validator {
            let errors =
                validator.validate_parameters(params, self.req.query, &http::HeaderMap::new());
            if !errors.is_empty() {
                return self
                    .answer_problem(stream, exchange::invalid(errors), "")
                    .await;
            }
            let content_type = self.req.headers.header("content-type");
            if let Some(problem) = exchange::media_type_problem(validator, content_type, false) {
                return self.answer_problem(stream, problem, "").await;
            }
        }
        let target = upstream::target(
            self.route,
            params,
            self.req.path,
            self.req.query,
            &Value::Null,
        )
        .unwrap_or_else(|| match self.req.query {
            Some(q) => format!("{}?{q}", self.req.path),
            None => self.req.path.to_string(),
        });
        let mut out = Vec::with_capacity(512);
        let fwd = Forwarded {
            authority: self.route.backend.authority.as_bytes(),
            request_id: self.request_id,
            client_ip,
        };
        head::write_upstream_head(&mut out, self.req, &target, &fwd);
        let head_request = self.req.method == Method::HEAD;
        match self.relay(stream, &out, head_request).await {
            Ok((status, decision)) => {
                self.finish(status, "");
                decision
            }
            Err(Failure::Upstream(e)) => {
                errors::count_upstream(&pass.state, &self.route.backend.name, &e);
                match errors::problem_of(&e, Some(&self.route.backend.name)) {
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
            Err(Failure::AfterHead(status, error)) => {
                self.finish(status, error);
                Decision::Close
            }
        }
    }

    /// Calls the backend and relays its answer to the client.
    async fn relay(
        &self,
        stream: &mut Stream,
        request: &[u8],
        head_request: bool,
    ) -> Result<(u16, Decision), Failure> {
        let backend = &self.route.backend;
        let opts = &backend.peer.options;
        let addr = *backend
            .peer
            ._address
            .as_inet()
            .ok_or_else(|| Failure::Upstream(Error::new(ErrorType::InternalError)))?;
        let read_timeout = opts.read_timeout.unwrap_or(Duration::from_secs(60));
        let question = Question {
            request,
            head_request,
            read_timeout,
            write_timeout: opts.write_timeout.unwrap_or(read_timeout),
            fields: GatewayFields {
                extra: &self.limit_headers,
                request_id: self.request_id,
            },
        };
        let pool = &self.pass.pool;
        let max_idle = opts.idle_timeout.unwrap_or(Duration::from_secs(60));
        let mut rbuf = Vec::with_capacity(READ_CHUNK);
        let mut out = Vec::with_capacity(1024);
        let mut exchange = None;
        if let Some(conn) = pool.take(addr, max_idle) {
            exchange = question.ask(conn, &mut rbuf, &mut out).await?;
        }
        let (mut conn, answer) = match exchange {
            Some(done) => done,
            None => {
                let conn = connect(addr, opts.connection_timeout).await?;
                question
                    .ask(conn, &mut rbuf, &mut out)
                    .await?
                    .ok_or_else(|| upstream_error(ErrorType::ConnectionClosed, None))?
            }
        };
        let close = answer.framing == Framing::UntilClose;
        let status = answer.status;
        let after_head = |e: &'static str| Failure::AfterHead(status, e);
        let mut body = Body::new(answer.framing);
        let first = &rbuf[answer.head_len..];
        let (used, mut done) = body
            .take(first)
            .map_err(|_| after_head("InvalidHTTPHeader"))?;
        let mut reusable = answer.reusable && used == first.len();
        out.extend_from_slice(&first[..used]);
        write_client(stream, &out)
            .await
            .map_err(|_| after_head("WriteError"))?;
        while !done {
            rbuf.clear();
            let n = match tokio::time::timeout(read_timeout, conn.read_buf(&mut rbuf)).await {
                Ok(Ok(n)) => n,
                Ok(Err(_)) => return Err(after_head("ReadError")),
                Err(_) => return Err(after_head("ReadTimedout")),
            };
            if n == 0 {
                if body.framing == Framing::UntilClose {
                    break;
                }
                return Err(after_head("ConnectionClosed"));
            }
            let (used, end) = body
                .take(&rbuf)
                .map_err(|_| after_head("InvalidHTTPHeader"))?;
            reusable &= used == rbuf.len();
            done = end;
            write_client(stream, &rbuf[..used])
                .await
                .map_err(|_| after_head("WriteError"))?;
        }
        if reusable {
            pool.put(addr, conn);
        }
        let decision = if close {
            Decision::Close
        } else {
            Decision::KeepAlive(self.req.head_len)
        };
        Ok((status, decision))
    }

    /// Answers with `problem`, as `FacadeProxy` does (instance, request id, `RateLimit`).
    async fn answer_problem(&self, stream: &mut Stream, problem: Problem, error: &str) -> Decision {
        let problem = problem
            .with_instance(self.req.path)
            .with_request_id(self.request_id.to_string());
        let status = problem.status;
        let Ok((header, body)) =
            respond::problem_answer(&problem, self.request_id, &self.limit_headers)
        else {
            self.finish(0, "InternalError");
            return Decision::Close;
        };
        let mut out = Vec::with_capacity(256 + body.len());
        serialize(&header, &mut out);
        if self.req.method != Method::HEAD {
            out.extend_from_slice(&body);
        }
        let written = write_client(stream, &out).await;
        self.finish(if written.is_ok() { status } else { 0 }, error);
        if written.is_ok() {
            Decision::KeepAlive(self.req.head_len)
        } else {
            Decision::Close
        }
    }

    fn finish(&self, status: u16, error: &str) {
        access::record(
            &self.pass.state,
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

/// How a call failed: before anything was written to the client (it gets a problem), or
/// after the answer's head was (the connection is closed; the status is what it got).
enum Failure {
    Upstream(Box<Error>),
    AfterHead(u16, &'static str),
}

impl From<Box<Error>> for Failure {
    fn from(e: Box<Error>) -> Self {
        Failure::Upstream(e)
    }
}

fn upstream_error(etype: ErrorType, cause: Option<std::io::Error>) -> Box<Error> {
    let mut e = Error::new_up(etype);
    if let Some(cause) = cause {
        e.set_cause(cause);
    }
    e
}

/// A new connection, with the error types Pingora's connector gives.
async fn connect(addr: SocketAddr, timeout: Option<Duration>) -> Result<TcpStream, Box<Error>> {
    let attempt = TcpStream::connect(addr);
    let result = match timeout {
        Some(t) => tokio::time::timeout(t, attempt)
            .await
            .map_err(|_| upstream_error(ErrorType::ConnectTimedout, None))?,
        None => attempt.await,
    };
    let conn = result.map_err(|e| {
        let etype = match e.kind() {
            std::io::ErrorKind::ConnectionRefused => ErrorType::ConnectRefused,
            std::io::ErrorKind::TimedOut => ErrorType::ConnectTimedout,
            _ => ErrorType::ConnectError,
        };
        upstream_error(etype, Some(e))
    })?;
    conn.set_nodelay(true)
        .map_err(|e| upstream_error(ErrorType::ConnectError, Some(e)))?;
    Ok(conn)
}

/// The request for the backend and how long it may take.
struct Question<'a> {
    request: &'a [u8],
    head_request: bool,
    read_timeout: Duration,
    write_timeout: Duration,
    fields: GatewayFields<'a>,
}

impl Question<'_> {
    /// Sends the request and reads the answer's head into `rbuf`, and the client's head into
    /// `out`. `Ok(None)`: the connection was closed before any byte of an answer (a pooled
    /// one the backend had closed): safe to try once more on a new one, the request being
    /// GET or HEAD.
    async fn ask(
        &self,
        mut conn: TcpStream,
        rbuf: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<Option<(TcpStream, BackendAnswer)>, Box<Error>> {
        rbuf.clear();
        // A head fits the socket's buffer: written at once, without a timer.
        let request = self.request;
        let written = match conn.try_write(request) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(_) => return Ok(None),
        };
        if written < request.len() {
            let rest = conn.write_all(&request[written..]);
            match tokio::time::timeout(self.write_timeout, rest).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Ok(None),
                Err(_) => return Err(upstream_error(ErrorType::WriteTimedout, None)),
            }
        }
        loop {
            let read = tokio::time::timeout(self.read_timeout, conn.read_buf(rbuf))
                .await
                .map_err(|_| upstream_error(ErrorType::ReadTimedout, None))?;
            match read {
                Ok(0) | Err(_) if rbuf.is_empty() => return Ok(None),
                Ok(0) => return Err(upstream_error(ErrorType::ConnectionClosed, None)),
                Err(e) => return Err(upstream_error(ErrorType::ReadError, Some(e))),
                Ok(_) => {}
            }
            match head::parse_answer(rbuf, self.head_request, &self.fields, out) {
                Ok(Some(answer)) => return Ok(Some((conn, answer))),
                Ok(None) if rbuf.len() < MAX_ANSWER_HEAD => {
                    if rbuf.len() == rbuf.capacity() {
                        rbuf.reserve(rbuf.capacity());
                    }
                }
                Ok(None) | Err(_) => {
                    return Err(upstream_error(ErrorType::InvalidHTTPHeader, None))
                }
            }
        }
    }
}

/// Tracks where the answer's body ends.
struct Body {
    framing: Framing,
    remaining: u64,
    chunks: ChunkedEnd,
}

impl Body {
    fn new(framing: Framing) -> Self {
        let remaining = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        Body {
            framing,
            remaining,
            chunks: ChunkedEnd::default(),
        }
    }

    /// How many of `bytes` belong to the body, and whether it is complete with them.
    fn take(&mut self, bytes: &[u8]) -> Result<(usize, bool), framing::BadChunk> {
        Ok(match self.framing {
            Framing::Empty => (0, true),
            Framing::Length(_) => {
                let used = bytes
                    .len()
                    .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                self.remaining -= used as u64;
                (used, self.remaining == 0)
            }
            Framing::Chunked => match self.chunks.feed(bytes)? {
                Some(end) => (end, true),
                None => (bytes.len(), false),
            },
            Framing::UntilClose => (bytes.len(), false),
        })
    }
}

async fn write_client(stream: &mut Stream, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// A head made by `respond` (a problem), as HTTP/1.1 bytes.
fn serialize(header: &ResponseHeader, out: &mut Vec<u8>) {
    let status = header.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in header.headers.iter() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
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

    #[test]
    fn a_body_ends_where_its_framing_says() {
        let mut length = Body::new(Framing::Length(5));
        assert_eq!(length.take(b"abc").ok(), Some((3, false)));
        assert_eq!(length.take(b"deXX").ok(), Some((2, true)));
        let mut chunked = Body::new(Framing::Chunked);
        assert_eq!(chunked.take(b"2\r\nab\r\n").ok(), Some((7, false)));
        assert_eq!(chunked.take(b"0\r\n\r\nX").ok(), Some((5, true)));
        assert_eq!(Body::new(Framing::Empty).take(b"x").ok(), Some((0, true)));
        assert_eq!(
            Body::new(Framing::UntilClose).take(b"xy").ok(),
            Some((2, false))
        );
    }
}
