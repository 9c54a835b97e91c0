//! The streaming lane: the request head is rewritten for the backend and sent on a pooled
//! connection; the answer's bytes are relayed as they come, its head with the gateway's
//! fields, its body unchanged until its framing says it ends.

use super::framing::{self, ChunkedEnd, Framing};
use super::head::{self, BackendAnswer, Forwarded, GatewayFields};
use super::{write_client, Call, Decision, READ_CHUNK};
use crate::proxy::upstream;
use http::Method;
use pingora_core::protocols::Stream;
use pingora_error::{Error, ErrorType};
use propylon_openapi::PathParams;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest answer head relayed; a longer one is a 502.
const MAX_ANSWER_HEAD: usize = 64 * 1024;

impl Call<'_> {
    /// Sends the request upstream and relays the answer; a failure before the answer's head
    /// is a problem for the client.
    pub(super) async fn stream(
        &mut self,
        stream: &mut Stream,
        client_ip: Option<&str>,
        params: &PathParams,
    ) -> Decision {
        // The client's own target when the route changes nothing in it.
        let rewritten = upstream::target(
            self.route,
            params,
            self.req.path,
            self.req.query,
            &Value::Null,
        );
        let target = rewritten.as_deref().unwrap_or(self.req.target);
        let mut out = Vec::with_capacity(512);
        let fwd = Forwarded {
            authority: self.route.backend.authority.as_bytes(),
            request_id: self.request_id,
            client_ip,
        };
        head::write_upstream_head(&mut out, self.req, target, &fwd);
        let head_request = self.req.method == Method::HEAD;
        match self.relay(stream, &out, head_request).await {
            Ok((status, decision)) => {
                self.finish(status, "");
                decision
            }
            Err(Failure::Upstream(e)) => self.upstream_failed(stream, &e).await,
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
        let pool = &self.lean.pool;
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
            Decision::KeepAlive(self.req.head_len + self.req.body_len)
        };
        Ok((status, decision))
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

#[cfg(test)]
mod tests {
    use super::*;

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
