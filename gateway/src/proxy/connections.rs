//! The client connection loop around Pingora's HTTP/1 proxy.
//!
//! Pingora's own loop (`ServerApp` for any `HttpServerApp`) enters the proxy's request
//! future, about 8 KB, and allocates a 4 KiB header buffer before the next request of a
//! keep-alive connection has arrived, and holds both while the client is idle: with 10,000
//! idle clients that was most of the gateway's memory (bench/README.md). This loop waits
//! for the first byte of each request with a future of a few hundred bytes, then hands the
//! connection to the same proxy for exactly one request, as Pingora's loop does.
//!
//! Plain HTTP/1 only, as the listener is: no TLS and no h2c here. HTTP/1 pipelining stays
//! off (Pingora's default), so a next request is never held back in a pipelined prefix.

use super::FacadeProxy;
use async_trait::async_trait;
use pingora_core::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use pingora_proxy::HttpProxy;
use std::sync::Arc;
use std::time::Duration;

/// How long a keep-alive connection may wait for its next request (Pingora's default).
const KEEPALIVE: Duration = Duration::from_secs(60);

pub struct ClientConnections {
    proxy: Arc<HttpProxy<FacadeProxy>>,
}

impl ClientConnections {
    pub fn new(proxy: HttpProxy<FacadeProxy>) -> Self {
        ClientConnections {
            proxy: Arc::new(proxy),
        }
    }
}

#[async_trait]
impl ServerApp for ClientConnections {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let mut persistent: Option<HttpPersistentSettings> = None;
        loop {
            if !request_arrives(&mut stream, shutdown).await {
                return None;
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
