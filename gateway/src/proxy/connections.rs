//! The client connection loop around Pingora's HTTP/1 proxy.
//!
//! Pingora's own loop (`ServerApp` for any `HttpServerApp`) enters the proxy's request
//! future, about 8 KB, and allocates a 4 KiB header buffer before the next request of a
//! keep-alive connection has arrived, and holds both while the client is idle: with 10,000
//! idle clients that was most of the gateway's memory (bench/README.md). This loop waits
//! for each request with a future of about a kilobyte and no heap buffer.
//!
//! Each request is first offered to the lean path (`lean`), which serves plain
//! requests itself and hands everything else back unread (its bytes rewound into the stream)
//! to Pingora's proxy for exactly one request, as Pingora's loop does.
//!
//! Plain HTTP/1 only, as the listener is: no TLS and no h2c here. Pipelined requests are
//! served in order by the lean path; Pingora's own pipelining stays off (its
//! default), so it serves one request of a pipelined batch it is handed.

use super::lean::{ConnectionMemory, LeanPath, Served};
use super::FacadeProxy;
use async_trait::async_trait;
use pingora_core::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::l4::stream::Stream as TcpStream;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use pingora_proxy::HttpProxy;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Sleep};

pub struct ClientConnections {
    proxy: Arc<HttpProxy<FacadeProxy>>,
    lean: LeanPath,
}

impl ClientConnections {
    pub fn new(proxy: HttpProxy<FacadeProxy>, lean: LeanPath) -> Self {
        ClientConnections {
            proxy: Arc::new(proxy),
            lean,
        }
    }
}

/// How long a client may wait between requests, and take to send a request head.
pub const KEEPALIVE: Duration = Duration::from_secs(60);
/// How far behind its ideal deadline the keep-alive timer may be (it fires early by at most
/// this much).
const IDLE_SLACK: Duration = Duration::from_secs(1);

#[async_trait]
impl ServerApp for ClientConnections {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let mut persistent: Option<HttpPersistentSettings> = None;
        // Bytes read by the lean path are put back with `rewind`, which only the
        // plain TCP stream has.
        let rewindable = stream.as_any().is::<TcpStream>();
        let client_ip = stream.get_socket_digest().and_then(|d| {
            d.peer_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip().to_string())
        });
        // A next request's bytes, read (pipelined) with the one before.
        let mut pending = Vec::new();
        // One keep-alive timer per connection, moved forward at most once a second: a timer
        // made and dropped per request costs more than the rest of the wait.
        let idle = tokio::time::sleep(KEEPALIVE);
        tokio::pin!(idle);
        // One wait for shutdown per connection, for the same reason: a wait made per request
        // joins and leaves the watch's list of waiters each time.
        let mut stop_watch = shutdown.clone();
        let stop = async move {
            let _ = stop_watch.changed().await;
        };
        tokio::pin!(stop);
        // The lean path's memory of this connection: one deadline for its reads from
        // backends, moved forward per read, and the last bearer token.
        let memory = ConnectionMemory::default();
        loop {
            let waits = Waits {
                shutdown,
                stop: stop.as_mut(),
                idle: idle.as_mut(),
            };
            if rewindable && pending.is_empty() {
                pending = request_arrives(&mut stream, Arrival::Read, waits).await?;
            } else if pending.is_empty() {
                request_arrives(&mut stream, Arrival::Peek, waits).await?;
            }
            if rewindable {
                // Boxed: the request's state lives only while it is served, not while the
                // connection idles.
                let read = std::mem::take(&mut pending);
                match Box::pin(
                    self.lean
                        .serve(&mut stream, client_ip.as_deref(), read, &memory),
                )
                .await
                {
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

/// How a request's arrival is noticed: its first bytes read (for the lean path, which gives
/// back what it does not serve), or its first byte peeked and kept in the stream (for
/// Pingora's parser).
enum Arrival {
    Read,
    Peek,
}

/// What ends a wait for the next request besides its arrival: `stop`, done when `shutdown`
/// changes (once: after it, `shutdown` says so and it is not polled again), and the idle timer.
struct Waits<'w, S> {
    shutdown: &'w ShutdownWatch,
    stop: Pin<&'w mut S>,
    idle: Pin<&'w mut Sleep>,
}

/// Waits until the client sends something: `Some(bytes)`, those read (none when peeked);
/// `None` on a closed connection, the keep-alive timeout, or shutdown (a request already
/// sent is still served).
async fn request_arrives<S: Future<Output = ()>>(
    stream: &mut Stream,
    how: Arrival,
    waits: Waits<'_, S>,
) -> Option<Vec<u8>> {
    let Waits {
        shutdown,
        stop,
        mut idle,
    } = waits;
    let stopping = *shutdown.borrow();
    let deadline = Instant::now() + if stopping { Duration::ZERO } else { KEEPALIVE };
    if stopping || idle.deadline() + IDLE_SLACK < deadline {
        idle.as_mut().reset(deadline);
    }
    let arrived = async {
        match how {
            Arrival::Read => read_first(stream)
                .await
                .ok()
                .filter(|read| !read.is_empty()),
            Arrival::Peek => {
                let mut first = [0u8; 1];
                stream.try_peek(&mut first).await.ok().map(|_| Vec::new())
            }
        }
    };
    tokio::select! {
        biased;
        arrived = arrived => arrived,
        () = stop, if !stopping => None,
        () = idle => None,
    }
}

/// Bytes a request's first read may take at once: a head with a bearer token and a small
/// body, in one system call.
const FIRST_READ: usize = 16 * 1024;

thread_local! {
    /// The buffer a request's first read lands in, one per thread: a waiting keep-alive
    /// connection holds none, and what arrived is copied out at its own size.
    static FIRST_READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; FIRST_READ].into_boxed_slice());
}

/// What the client sent first, as soon as it arrives (empty when the connection closed).
/// The thread's buffer is borrowed only within one poll, never across a wait.
async fn read_first(stream: &mut Stream) -> std::io::Result<Vec<u8>> {
    std::future::poll_fn(|cx| {
        FIRST_READ_BUF.with(|buf| {
            // Only a poll inside this one could find it borrowed; none does.
            let Ok(mut buf) = buf.try_borrow_mut() else {
                return Poll::Ready(Err(std::io::ErrorKind::WouldBlock.into()));
            };
            let mut read = ReadBuf::new(&mut buf[..]);
            match Pin::new(&mut *stream).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    // At its own size: the lean path makes room only for a request that did not
                    // come whole (and a small allocation is mimalloc's fast path).
                    Poll::Ready(Ok(read.filled().to_vec()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
    })
    .await
}
