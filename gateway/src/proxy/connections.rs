//! The client connection loop around Pingora's HTTP/1 proxy.
//!
//! Pingora's own loop (`ServerApp` for any `HttpServerApp`) enters the proxy's request
//! future, about 8 KB, and allocates a 4 KiB header buffer before the next request of a
//! keep-alive connection has arrived, and holds both while the client is idle: with 10,000
//! idle clients that was most of the gateway's memory (bench/README.md). This loop waits
//! for the first byte of each request with a future of a few hundred bytes, then hands the
//! connection to the same proxy for exactly one request, as Pingora's loop does.
//!
//! Each request is first offered to the pass-through path (`pass_through`), which serves
//! plain GET and HEAD requests of streaming operations itself and hands everything else back
//! unread (its bytes rewound into the stream) for Pingora's proxy.
//!
//! Plain HTTP/1 only, as the listener is: no TLS and no h2c here. Pipelined requests are
//! served in order by the pass-through path; Pingora's own pipelining stays off (its
//! default), so it serves one request of a pipelined batch it is handed.

use super::pass_through::{PassThrough, Served};
use super::FacadeProxy;
use async_trait::async_trait;
use pingora_core::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::l4::stream::Stream as TcpStream;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use pingora_proxy::HttpProxy;
use std::sync::Arc;
use std::time::Duration;

pub struct ClientConnections {
    proxy: Arc<HttpProxy<FacadeProxy>>,
    pass: PassThrough,
}

impl ClientConnections {
    pub fn new(proxy: HttpProxy<FacadeProxy>, pass: PassThrough) -> Self {
        ClientConnections {
            proxy: Arc::new(proxy),
            pass,
        }
    }
}

/// How long a client may wait between requests, and take to send a request head.
pub const KEEPALIVE: Duration = Duration::from_secs(60);

#[async_trait]
impl ServerApp for ClientConnections {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let mut persistent: Option<HttpPersistentSettings> = None;
        // Bytes read by the pass-through path are put back with `rewind`, which only the
        // plain TCP stream has.
        let rewindable = stream.as_any().is::<TcpStream>();
        let client_ip = stream.get_socket_digest().and_then(|d| {
            d.peer_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip().to_string())
        });
        // A next request's bytes, read (pipelined) with the one before.
        let mut pending = Vec::new();
        loop {
            if pending.is_empty() && !request_arrives(&mut stream, shutdown).await {
                return None;
            }
            if rewindable {
                // Boxed: the request's state lives only while it is served, not while the
                // connection idles.
                let read = std::mem::take(&mut pending);
                match Box::pin(self.pass.serve(&mut stream, client_ip.as_deref(), read)).await {
                    Served::KeepAlive(next) => {
                        pending = next;
                        continue;
                    }
                    Served::Close => return None,
                    Served::Handover(read) => stream = rewind(stream, &read)?,
                }
            }
            let mut session = ServerSession::new_http1(stream);
            match persistent.take() {
                Some(settings) => settings.apply_to_session(&mut session),
                None => session.set_keepalive((!*shutdown.borrow()).then_some(KEEPALIVE.as_secs())),
            }
            let reused = self.proxy.process_new_http(session, shutdown).await?;
            (stream, persistent) = reused.consume();
        }
    }

    async fn cleanup(&self) {
        self.proxy.http_cleanup().await;
    }
}

/// `stream` with `read` put back in front of its unread bytes.
fn rewind(stream: Stream, read: &[u8]) -> Option<Stream> {
    let mut tcp = stream.into_any().downcast::<TcpStream>().ok()?;
    tcp.rewind(read);
    Some(tcp)
}

/// Waits until the client sends a byte (kept for the request parser); gives up on a closed
/// connection, the keep-alive timeout, or shutdown (a request already sent is still served).
async fn request_arrives(stream: &mut Stream, shutdown: &ShutdownWatch) -> bool {
    let mut shutdown = shutdown.clone();
    let stopping = *shutdown.borrow_and_update();
    let patience = if stopping { Duration::ZERO } else { KEEPALIVE };
    let mut first = [0u8; 1];
    tokio::select! {
        biased;
        read = stream.try_peek(&mut first) => read.is_ok(),
        _ = shutdown.changed(), if !stopping => false,
        () = tokio::time::sleep(patience) => false,
    }
}
