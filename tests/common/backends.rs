//! Mock backends: axum servers on 127.0.0.1:0 on a shared tokio runtime, stopped on Drop.
//! `MockBackend` serves any router (echo and status routers here); `RecordingBackend` keeps
//! every request and answers with a `Reply` the test sets and may change between requests.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use super::http::{all_headers, first_header};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .thread_name("mock-backend")
            .enable_all()
            .build()
            .expect("build the mock backends' tokio runtime")
    })
}

/// An axum server on 127.0.0.1:0, stopped on Drop.
pub struct MockBackend {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MockBackend {
    /// Like `start`, and counts the TCP connections the backend accepts.
    pub fn start_counting(router: Router) -> (MockBackend, Arc<AtomicUsize>) {
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let (listener, addr) = bind_loopback();
        let task = runtime().spawn(async move {
            use axum::serve::ListenerExt;
            let listener = tokio::net::TcpListener::from_std(listener)
                .expect("tokio listener from std")
                .tap_io(move |_| {
                    counter.fetch_add(1, Ordering::SeqCst);
                });
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("mock backend {addr} stopped: {e}");
            }
        });
        (MockBackend { addr, task }, accepted)
    }

    pub fn start(router: Router) -> MockBackend {
        let (listener, addr) = bind_loopback();
        let task = runtime().spawn(async move {
            let listener =
                tokio::net::TcpListener::from_std(listener).expect("tokio listener from std");
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("mock backend {addr} stopped: {e}");
            }
        });
        MockBackend { addr, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A non-blocking listener on 127.0.0.1:0, ready for tokio, and its address.
fn bind_loopback() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind mock backend");
    listener
        .set_nonblocking(true)
        .expect("set mock listener non-blocking");
    let addr = listener.local_addr().expect("mock local_addr");
    (listener, addr)
}

impl Drop for MockBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Echoes every request as 200 JSON `{backend, method, path, query, headers, body}`, except
/// paths under `/raw`, which get the exact request bytes back as application/octet-stream.
pub fn echo_router() -> Router {
    tagged_echo_router("echo")
}

/// `echo_router` whose answers carry `"backend": tag`, to tell backends apart.
pub fn tagged_echo_router(tag: &str) -> Router {
    echo_router_with(tag, None)
}

/// An echo backend (tag "slow") that waits `delay` before answering.
pub fn slow_router(delay: Duration) -> Router {
    echo_router_with("slow", Some(delay))
}

fn echo_router_with(tag: &str, delay: Option<Duration>) -> Router {
    let tag = tag.to_string();
    Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let tag = tag.clone();
            async move {
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                echo(&tag, method, uri, headers, body)
            }
        },
    )
}

fn echo(tag: &str, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if uri.path() == "/raw" || uri.path().starts_with("/raw/") {
        return (
            StatusCode::OK,
            [("content-type", "application/octet-stream")],
            body,
        )
            .into_response();
    }
    let mut header_map = serde_json::Map::new();
    for name in headers.keys() {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        header_map.insert(name.as_str().to_string(), Value::String(values.join(", ")));
    }
    let answer = json!({
        "backend": tag,
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query().unwrap_or(""),
        "headers": header_map,
        "body": String::from_utf8_lossy(&body),
    });
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        answer.to_string(),
    )
        .into_response()
}

/// Answers every request with `code` and JSON `{"backend_status": code}`, plus header
/// `x-backend: status`.
pub fn status_router(code: u16) -> Router {
    Router::new().fallback(move || async move {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [
                ("content-type", "application/json"),
                ("x-backend", "status"),
            ],
            json!({ "backend_status": code }).to_string(),
        )
            .into_response()
    })
}

// ---------------------------------------------------------------------------------------
// Recording backends (mapping and validation tests): every request is kept, the answer is
// set by the test and may change between requests.
// ---------------------------------------------------------------------------------------

/// One request as a mock backend received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string (`None` when the URI has no `?`).
    pub query: Option<String>,
    /// Header names lower-case, in arrival order, one entry per value.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// What an axum handler received.
    pub fn of(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Recorded {
        Recorded {
            method: method.as_str().to_string(),
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            headers: headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        }
    }

    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        first_header(&self.headers, name)
    }

    /// Every value of a header (name case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<String> {
        all_headers(&self.headers, name)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body text if it is not JSON.
    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the backend received a body that is not JSON ({e}): {:?}",
                self.body_text()
            )
        })
    }

    /// The query string split into `(name, value)` pairs (not decoded), sorted.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = self
            .query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (p.to_string(), String::new()),
            })
            .collect();
        pairs.sort();
        pairs
    }
}

/// What a recording backend answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Answer with the request's own body (application/octet-stream) instead of `body`.
    pub echo_body: bool,
}

impl Reply {
    /// `status` with a JSON body (`content-type: application/json`).
    pub fn json(status: u16, value: Value) -> Reply {
        Reply::new(status, "application/json", value.to_string().as_bytes())
    }

    /// `status` with this content type and body.
    pub fn new(status: u16, content_type: &str, body: &[u8]) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".to_string(), content_type.to_string())],
            body: body.to_vec(),
            echo_body: false,
        }
    }

    /// 200 with the request's body echoed as application/octet-stream.
    pub fn echo_body() -> Reply {
        Reply {
            status: 200,
            headers: vec![(
                "content-type".to_string(),
                "application/octet-stream".to_string(),
            )],
            body: Vec::new(),
            echo_body: true,
        }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// A mock backend that records every request and answers with the current `Reply`.
pub struct RecordingBackend {
    pub backend: MockBackend,
    calls: Arc<Mutex<Vec<Recorded>>>,
    reply: Arc<Mutex<Reply>>,
}

impl RecordingBackend {
    pub fn start(reply: Reply) -> RecordingBackend {
        let calls: Arc<Mutex<Vec<Recorded>>> = Arc::new(Mutex::new(Vec::new()));
        let reply = Arc::new(Mutex::new(reply));
        let (calls_in, reply_in) = (calls.clone(), reply.clone());
        let router = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (calls, reply) = (calls_in.clone(), reply_in.clone());
                async move {
                    let recorded = Recorded::of(&method, &uri, &headers, &body);
                    lock(&calls).push(recorded);
                    let reply = lock(&reply).clone();
                    let mut builder = axum::http::Response::builder().status(
                        StatusCode::from_u16(reply.status)
                            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    );
                    for (name, value) in &reply.headers {
                        builder = builder.header(name.as_str(), value.as_str());
                    }
                    let out = if reply.echo_body {
                        body.to_vec()
                    } else {
                        reply.body.clone()
                    };
                    builder
                        .body(axum::body::Body::from(out))
                        .expect("build mock reply")
                }
            },
        );
        RecordingBackend {
            backend: MockBackend::start(router),
            calls,
            reply,
        }
    }

    pub fn url(&self) -> String {
        self.backend.url()
    }

    /// Changes the answer for the next requests.
    pub fn set_reply(&self, reply: Reply) {
        *lock(&self.reply) = reply;
    }

    /// Every request received so far.
    pub fn calls(&self) -> Vec<Recorded> {
        lock(&self.calls).clone()
    }

    pub fn call_count(&self) -> usize {
        lock(&self.calls).len()
    }

    /// The last request received; panics if there was none.
    pub fn last(&self) -> Recorded {
        self.calls()
            .last()
            .cloned()
            .expect("the backend received no request")
    }
}

/// Locks `mutex`; a test that panicked while holding it leaves the data usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
