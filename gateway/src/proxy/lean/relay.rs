//! The streaming lane: the request head is rewritten for the backend and sent on a pooled
//! connection; the answer's bytes are relayed as they come, its head with the gateway's
//! fields, its body unchanged until its framing says it ends.

use super::backend::{Body, Upstream};
use super::framing::Framing;
use super::head::{self, Forwarded, GatewayFields};
use super::{write_client, Call, Decision, READ_CHUNK};
use crate::proxy::upstream;
use http::Method;
use pingora_core::protocols::Stream;
use pingora_error::Error;
use propylon_openapi::PathParams;
use serde_json::Value;

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
        let mut out = Vec::with_capacity(self.req.upstream_head_room());
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
        let upstream = Upstream::new(&self.route.backend, &self.lean.pool, self.read_deadline)?;
        let fields = GatewayFields {
            extra: &self.limit_headers,
            request_id: self.request_id,
        };
        let mut rbuf = Vec::with_capacity(READ_CHUNK);
        let mut out = Vec::with_capacity(1024);
        // The client's head is written into `out` once the backend's is whole.
        let parse = |buf: &[u8]| {
            let answer = head::parse_answer(buf, head_request, &fields, &mut out)?;
            Ok(answer.map(|a| (a, ())))
        };
        let (mut conn, answer, ()) = upstream.ask(request, &mut rbuf, parse).await?;
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
            let (used, end) = body
                .read_more(&upstream, &mut conn, &mut rbuf)
                .await
                .map_err(|e| after_head(e.etype().as_str()))?;
            reusable &= used == rbuf.len();
            done = end;
            // Nothing to pass on when a close-delimited body ends with the connection.
            if used > 0 {
                write_client(stream, &rbuf[..used])
                    .await
                    .map_err(|_| after_head("WriteError"))?;
            }
        }
        if reusable {
            upstream.release(conn);
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
