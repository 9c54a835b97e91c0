//! The lean path's side of a backend call, shared by both lanes: a request sent on a pooled
//! connection (or a new one), the answer's head read and parsed, and where its body ends.
//! Failures carry the error types Pingora's connector and client give, so `errors` decides
//! them as on the full path.

use super::framing::{self, ChunkedEnd, Framing};
use super::head::{BackendAnswer, BadAnswer};
use super::pool::UpstreamPool;
use crate::snapshot::Backend;
use pingora_error::{Error, ErrorType};
use pingora_timeout::fast_timeout::fast_timeout;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Mutex;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Sleep;

// The rare waits (connecting, a write the socket cannot take at once) are bounded with
// Pingora's `fast_timeout`: its timers live on a clock thread in 10 ms buckets, whereas a
// tokio timer made for the wait, ending before every other one on the thread, wakes the
// thread's driver (an eventfd write and an extra epoll round). Reads for an answer, one or
// more per call, are bounded by the client connection's `ReadDeadline`.

/// Largest answer head read; a longer one is a 502.
const MAX_ANSWER_HEAD: usize = 64 * 1024;

/// The deadline of the reads for a backend's answer, one per client connection: a tokio
/// timer kept and moved forward per read. Moving a timer later is a compare-and-swap in
/// tokio (it never wakes the driver), where Pingora's `fast_timeout` looks up its bucket,
/// boxes a wait and joins a `Notify` per read: ~1,500 instructions, 7 % of a pass-through
/// request (callgrind). The connection's own task is the only one that polls the timer, so
/// a waker it keeps never outlives the connection; the `Mutex` (never contended) is there
/// because the connection's future must be `Send`.
#[derive(Default)]
pub struct ReadDeadline(Mutex<Option<Pin<Box<Sleep>>>>);

impl ReadDeadline {
    /// Reads from `conn` into `buf`; `None` when `timeout` passes first.
    async fn read(
        &self,
        timeout: Duration,
        conn: &mut TcpStream,
        buf: &mut Vec<u8>,
    ) -> Option<std::io::Result<usize>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let kept = self.0.lock().ok().and_then(|mut kept| kept.take());
        let mut timer = match kept {
            Some(mut timer) => {
                timer.as_mut().reset(deadline);
                timer
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        let mut read = pin!(conn.read_buf(buf));
        let outcome = poll_fn(|cx| {
            if let Poll::Ready(done) = read.as_mut().poll(cx) {
                return Poll::Ready(Some(done));
            }
            timer.as_mut().poll(cx).map(|()| None)
        })
        .await;
        if let Ok(mut kept) = self.0.lock() {
            *kept = Some(timer);
        }
        outcome
    }
}

/// One call to a backend: where, and how long each step may take.
pub(super) struct Upstream<'a> {
    pub addr: SocketAddr,
    read_timeout: Duration,
    write_timeout: Duration,
    connect_timeout: Option<Duration>,
    max_idle: Duration,
    pool: &'a UpstreamPool,
    deadline: &'a ReadDeadline,
}

impl<'a> Upstream<'a> {
    /// The backend's address and timeouts (those of its Pingora peer); a backend that is not
    /// plain TCP is an internal error (the lean path hands those to Pingora).
    pub fn new(
        backend: &Backend,
        pool: &'a UpstreamPool,
        deadline: &'a ReadDeadline,
    ) -> Result<Upstream<'a>, Box<Error>> {
        let opts = &backend.peer.options;
        let addr = *backend
            .peer
            ._address
            .as_inet()
            .ok_or_else(|| Error::new(ErrorType::InternalError))?;
        let read_timeout = opts.read_timeout.unwrap_or(Duration::from_secs(60));
        Ok(Upstream {
            addr,
            read_timeout,
            write_timeout: opts.write_timeout.unwrap_or(read_timeout),
            connect_timeout: opts.connection_timeout,
            max_idle: opts.idle_timeout.unwrap_or(Duration::from_secs(60)),
            pool,
            deadline,
        })
    }

    /// Sends `request` and reads the answer's head into `rbuf` (which may hold the start of
    /// the body after it); `parse` makes what the caller keeps of the head. A pooled
    /// connection the backend closed before answering is replaced by a new one, once.
    pub async fn ask<T>(
        &self,
        request: &[u8],
        rbuf: &mut Vec<u8>,
        mut parse: impl FnMut(&[u8]) -> Result<Option<(BackendAnswer, T)>, BadAnswer>,
    ) -> Result<(TcpStream, BackendAnswer, T), Box<Error>> {
        if let Some(conn) = self.pool.take(self.addr, self.max_idle) {
            if let Some(done) = self.ask_on(conn, request, rbuf, &mut parse).await? {
                return Ok(done);
            }
        }
        let conn = connect(self.addr, self.connect_timeout).await?;
        self.ask_on(conn, request, rbuf, &mut parse)
            .await?
            .ok_or_else(|| upstream_error(ErrorType::ConnectionClosed, None))
    }

    /// Reads more of the answer from `conn` into `buf`, within the read timeout.
    pub async fn read(
        &self,
        conn: &mut TcpStream,
        buf: &mut Vec<u8>,
    ) -> Result<std::io::Result<usize>, Box<Error>> {
        self.deadline
            .read(self.read_timeout, conn, buf)
            .await
            .ok_or_else(|| upstream_error(ErrorType::ReadTimedout, None))
    }

    /// Keeps a connection whose answer was read whole for the next call.
    pub fn release(&self, conn: TcpStream) {
        self.pool.put(self.addr, conn);
    }

    /// `Ok(None)`: the connection was closed before any byte of an answer (a pooled one the
    /// backend had closed): safe to try once more on a new one.
    async fn ask_on<T>(
        &self,
        mut conn: TcpStream,
        request: &[u8],
        rbuf: &mut Vec<u8>,
        parse: &mut impl FnMut(&[u8]) -> Result<Option<(BackendAnswer, T)>, BadAnswer>,
    ) -> Result<Option<(TcpStream, BackendAnswer, T)>, Box<Error>> {
        rbuf.clear();
        // A head (and a small body) fits the socket's buffer: written at once, no timer.
        let written = match conn.try_write(request) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(_) => return Ok(None),
        };
        if written < request.len() {
            let rest = conn.write_all(&request[written..]);
            match fast_timeout(self.write_timeout, rest).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Ok(None),
                Err(_) => return Err(upstream_error(ErrorType::WriteTimedout, None)),
            }
        }
        loop {
            let read = self.read(&mut conn, rbuf).await?;
            match read {
                Ok(0) | Err(_) if rbuf.is_empty() => return Ok(None),
                Ok(0) => return Err(upstream_error(ErrorType::ConnectionClosed, None)),
                Err(e) => return Err(upstream_error(ErrorType::ReadError, Some(e))),
                Ok(_) => {}
            }
            match parse(rbuf) {
                Ok(Some((answer, kept))) => return Ok(Some((conn, answer, kept))),
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

pub(super) fn upstream_error(etype: ErrorType, cause: Option<std::io::Error>) -> Box<Error> {
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
        Some(t) => fast_timeout(t, attempt)
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

/// Tracks where the answer's body ends.
pub(super) struct Body {
    pub framing: Framing,
    remaining: u64,
    chunks: ChunkedEnd,
}

impl Body {
    pub fn new(framing: Framing) -> Self {
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

    /// Reads the body's next bytes from `conn`, appended to `buf`: how many of them belong to
    /// the body (the rest is past its end), and whether it is complete. A close-delimited body
    /// ends with the connection; any other closing first is an error, as is a broken chunk.
    pub async fn read_more(
        &mut self,
        upstream: &Upstream<'_>,
        conn: &mut TcpStream,
        buf: &mut Vec<u8>,
    ) -> Result<(usize, bool), Box<Error>> {
        let start = buf.len();
        let read = upstream.read(conn, buf).await?;
        match read {
            Ok(0) if self.framing == Framing::UntilClose => Ok((0, true)),
            Ok(0) => Err(upstream_error(ErrorType::ConnectionClosed, None)),
            Ok(_) => self.take(&buf[start..]).map_err(|_| {
                Error::explain(ErrorType::InvalidHTTPHeader, "bad chunked framing").into_up()
            }),
            Err(e) => Err(upstream_error(ErrorType::ReadError, Some(e))),
        }
    }

    /// How many of `bytes` belong to the body, and whether it is complete with them.
    pub fn take(&mut self, bytes: &[u8]) -> Result<(usize, bool), framing::BadChunk> {
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

    /// One deadline serves every read of a connection: each read gets the whole timeout from
    /// its own start, and the timer still works after it has fired.
    #[tokio::test]
    async fn each_read_gets_its_own_timeout_from_one_kept_timer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let mut conn = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (mut backend, _) = listener.accept().await.expect("accept");
        let deadline = ReadDeadline::default();
        let timeout = Duration::from_millis(150);
        let mut buf = Vec::with_capacity(64);

        backend.write_all(b"a").await.expect("write");
        let read = deadline.read(timeout, &mut conn, &mut buf).await;
        assert_eq!(read.map(|r| r.ok()), Some(Some(1)));

        // Later than the first read's deadline would have been: the second read still
        // waits its whole timeout before giving up.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        assert!(deadline.read(timeout, &mut conn, &mut buf).await.is_none());
        let waited = started.elapsed();
        assert!(
            waited >= timeout && waited < Duration::from_secs(2),
            "waited {waited:?}"
        );

        backend.write_all(b"bc").await.expect("write");
        let read = deadline.read(timeout, &mut conn, &mut buf).await;
        assert_eq!(read.map(|r| r.ok()), Some(Some(2)));
        assert_eq!(buf, b"abc");
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
