//! Idle keep-alive connections to backends, for the lean path. A connection is put
//! back only after a whole answer was read from it; one idle longer than the backend's pool
//! idle timeout is closed instead of used.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Idle connections kept per backend address.
const MAX_IDLE_PER_BACKEND: usize = 128;

/// Idle connections by backend address: a list searched in order (a gateway has tens of
/// backends, and a hash of the address costs more than comparing a few).
#[derive(Default)]
pub struct UpstreamPool {
    idle: Mutex<Vec<(SocketAddr, IdleList)>>,
}

/// A backend's idle connections, each with the time it was put back; the latest last.
type IdleList = Vec<(TcpStream, Instant)>;

impl UpstreamPool {
    /// The most recently used idle connection to `addr` not older than `max_idle`.
    pub fn take(&self, addr: SocketAddr, max_idle: Duration) -> Option<TcpStream> {
        let mut idle = self.idle.lock().ok()?;
        let (_, list) = idle.iter_mut().find(|(a, _)| *a == addr)?;
        let now = Instant::now();
        while let Some((conn, since)) = list.pop() {
            if now.duration_since(since) <= max_idle {
                return Some(conn);
            }
        }
        None
    }

    pub fn put(&self, addr: SocketAddr, conn: TcpStream) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        if !idle.iter().any(|(a, _)| *a == addr) {
            idle.push((addr, Vec::new()));
        }
        let Some((_, list)) = idle.iter_mut().find(|(a, _)| *a == addr) else {
            return;
        };
        if list.len() >= MAX_IDLE_PER_BACKEND {
            // The oldest goes: it is the likeliest to have been closed by the backend.
            list.remove(0);
        }
        list.push((conn, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hands_back_the_latest_connection_and_drops_stale_ones() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let pool = UpstreamPool::default();
        assert!(pool.take(addr, Duration::from_secs(1)).is_none());
        let a = TcpStream::connect(addr).await.expect("connect");
        let b = TcpStream::connect(addr).await.expect("connect");
        let b_port = b.local_addr().expect("local").port();
        pool.put(addr, a);
        pool.put(addr, b);
        let got = pool
            .take(addr, Duration::from_secs(60))
            .expect("idle connection");
        assert_eq!(got.local_addr().expect("local").port(), b_port);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            pool.take(addr, Duration::from_millis(5)).is_none(),
            "too old"
        );
        assert!(
            pool.take(addr, Duration::from_secs(60)).is_none(),
            "removed"
        );
    }
}
