//! Calls a backend with a whole request and reads its whole answer, through Pingora's own
//! connector (same peers, pool and timeouts as the proxy). Used by operations that map or
//! validate bodies: Pingora cannot forward a body that `request_filter` has already read
//! (its retry buffer stops at 64 KiB; cloudflare/pingora#67, #575), so those operations
//! make the upstream call here. Errors keep Pingora's typed `ErrorType`s.

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use pingora_core::connectors::http::Connector;
use pingora_core::protocols::http::client::HttpSession;
use pingora_core::protocols::http::v1::client::{
    http_req_header_to_wire, HttpSession as H1Session,
};
use pingora_core::upstreams::peer::{HttpPeer, Peer};
use pingora_error::{Error, ErrorType, OrErr, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Bodies up to this size go out in the same write as the request header.
const ONE_WRITE_MAX: usize = 64 * 1024;

pub struct BackendAnswer {
    pub header: ResponseHeader,
    pub body: Bytes,
}

pub struct BackendClient {
    connector: Connector,
}

impl Default for BackendClient {
    fn default() -> Self {
        BackendClient {
            connector: Connector::new(None),
        }
    }
}

impl BackendClient {
    /// Sends `header` + `body` to `peer` and reads the answer, at most `max_answer` bytes.
    /// A pooled connection the backend closed meanwhile is retried once on a fresh one.
    pub async fn call(
        &self,
        peer: &HttpPeer,
        header: RequestHeader,
        body: Bytes,
        max_answer: usize,
    ) -> Result<BackendAnswer> {
        match self
            .attempt(peer, header.clone(), body.clone(), max_answer)
            .await
        {
            Err((e, true)) if e.retry() => self
                .attempt(peer, header, body, max_answer)
                .await
                .map_err(|(e, _)| e),
            other => other.map_err(|(e, _)| e),
        }
    }

    /// The error comes with whether it happened on a reused connection.
    async fn attempt(
        &self,
        peer: &HttpPeer,
        header: RequestHeader,
        body: Bytes,
        max_answer: usize,
    ) -> std::result::Result<BackendAnswer, (Box<Error>, bool)> {
        let (session, reused) = self
            .connector
            .get_http_session(peer)
            .await
            .map_err(|e| (e.into_up(), false))?;
        let fail = |e: Box<Error>| {
            let mut e = e.into_up();
            // Only a stale pooled connection is worth a second try.
            e.set_retry(reused);
            (e, reused)
        };
        let options = peer.get_peer_options();
        let write_timeout = options.and_then(|o| o.write_timeout);
        let (mut session, sent) = match session {
            HttpSession::H1(h1) if fits_one_write(&header, &body) => {
                let h1 = send_whole(h1, peer, &header, &body, write_timeout)
                    .await
                    .map_err(fail)?;
                (HttpSession::H1(h1), true)
            }
            other => (other, false),
        };
        session.set_read_timeout(options.and_then(|o| o.read_timeout));
        session.set_write_timeout(write_timeout);
        if !sent {
            session
                .write_request_header(Box::new(header))
                .await
                .map_err(fail)?;
            if !body.is_empty() {
                session.write_request_body(body, true).await.map_err(fail)?;
            }
            session.finish_request_body().await.map_err(fail)?;
        }
        session.read_response_header().await.map_err(fail)?;
        let header = session.response_header().cloned().ok_or_else(|| {
            (
                Error::explain(ErrorType::InvalidHTTPHeader, "no response header").into_up(),
                false,
            )
        })?;
        let mut answer = BytesMut::new();
        while let Some(chunk) = session
            .read_response_body()
            .await
            .map_err(|e| (e.into_up(), false))?
        {
            if answer.len() + chunk.len() > max_answer {
                let e = Error::explain(
                    ErrorType::new("AnswerTooLarge"),
                    format!("the backend's answer exceeds {max_answer} bytes"),
                );
                return Err((e.into_up(), false));
            }
            answer.extend_from_slice(&chunk);
        }
        let idle = options.and_then(|o| o.idle_timeout);
        self.connector
            .release_http_session(session, peer, idle)
            .await;
        Ok(BackendAnswer {
            header,
            body: answer.freeze(),
        })
    }
}

/// A request whose framing is a Content-Length and whose body is small: written whole.
/// (HEAD is left to Pingora's session, which must know it to read a body-less answer.)
fn fits_one_write(header: &RequestHeader, body: &[u8]) -> bool {
    !body.is_empty()
        && body.len() <= ONE_WRITE_MAX
        && header.method != http::Method::HEAD
        && header.headers.contains_key(CONTENT_LENGTH)
        && !header.headers.contains_key(TRANSFER_ENCODING)
}

/// The request line, headers and body in one write and one flush: one TCP segment and one
/// wake-up of the backend instead of two (Pingora's session flushes the header on its own).
/// The answer is then read by a fresh session on the same connection.
async fn send_whole(
    session: H1Session,
    peer: &HttpPeer,
    header: &RequestHeader,
    body: &[u8],
    write_timeout: Option<Duration>,
) -> Result<H1Session> {
    let mut wire = http_req_header_to_wire(header).ok_or_else(|| {
        Error::explain(
            ErrorType::InvalidHTTPHeader,
            "the request line or a header cannot be written",
        )
    })?;
    wire.extend_from_slice(body);
    let mut stream = session.into_inner();
    let write = async {
        stream.write_all(&wire).await?;
        stream.flush().await
    };
    match write_timeout {
        Some(limit) => tokio::time::timeout(limit, write)
            .await
            .or_err(ErrorType::WriteTimedout, "while writing the request")?,
        None => write.await,
    }
    .or_err(ErrorType::WriteError, "while writing the request")?;
    Ok(H1Session::new_with_options(stream, peer))
}
