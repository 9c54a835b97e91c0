//! The lean path: plain requests are served on the client connection without Pingora's
//! proxy session (GET and HEAD relayed as they come, mapped operations read whole). What a
//! client sees must be what the full path gives: whole answers whatever their framing, the
//! forwarding fields, problems for a backend that is down, slow or broken, and connections
//! that carry requests of both paths.

mod common;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

/// What the raw backend does with one request.
struct Scripted {
    answer: Vec<u8>,
    /// Close the connection after answering (without saying so when the answer has no
    /// `Connection: close`).
    close: bool,
}

/// A backend on a raw socket: each request (its body, if it has a length, is read and
/// dropped) is recorded with the number of the connection it came on, and answered with the next scripted answer, or else 200 with the request target
/// as the body.
struct RawBackend {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(usize, String)>>>,
    script: Arc<Mutex<VecDeque<Scripted>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl RawBackend {
    fn start() -> RawBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, q, halt) = (seen.clone(), script.clone(), stop.clone());
        let acceptor = std::thread::spawn(move || {
            let connections = AtomicUsize::new(0);
            for conn in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let number = connections.fetch_add(1, Ordering::SeqCst);
                let (s, q, halt) = (s.clone(), q.clone(), halt.clone());
                std::thread::spawn(move || serve_raw(conn, number, &s, &q, &halt));
            }
        });
        RawBackend {
            addr,
            seen,
            script,
            stop,
            acceptor: Some(acceptor),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn then(&self, answer: &str, close: bool) {
        self.script.lock().expect("script").push_back(Scripted {
            answer: answer.as_bytes().to_vec(),
            close,
        });
    }

    fn seen(&self) -> Vec<(usize, String)> {
        self.seen.lock().expect("seen").clone()
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn serve_raw(
    mut conn: TcpStream,
    number: usize,
    seen: &Mutex<Vec<(usize, String)>>,
    script: &Mutex<VecDeque<Scripted>>,
    stop: &AtomicBool,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match conn.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(_) => continue,
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
        let length = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        while buf.len() < end + 4 + length {
            match conn.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(_) if stop.load(Ordering::SeqCst) => return,
                Err(_) => continue,
            }
        }
        buf.drain(..end + 4 + length);
        let target = head.split(' ').nth(1).unwrap_or("").to_string();
        seen.lock().expect("seen").push((number, head));
        let next = script.lock().expect("script").pop_front();
        let (answer, close) = match next {
            Some(s) => (s.answer, s.close),
            None => (
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{target}",
                    target.len()
                )
                .into_bytes(),
                false,
            ),
        };
        if conn.write_all(&answer).is_err() || close {
            return;
        }
    }
}

const CONFIG: &str = r#"server:
  listen: "{{LISTEN}}"
  admin_listen: "{{ADMIN}}"
  admin_token: "{{TOKEN}}"
backends:
  erp:
    url: "@URL@"
    timeout: 1s
apis:
  - name: orders
    spec: ./orders.yaml
    operations:
      listOrders:
        backend: erp
      getOrder:
        backend: erp
"#;

fn gateway_for(url: &str) -> Gateway {
    Gateway::start_with_files(
        &CONFIG.replace("@URL@", url),
        &[("orders.yaml", ORDERS_SPEC)],
    )
}

fn client(gw: &Gateway) -> TcpStream {
    let conn = TcpStream::connect(gw.listen).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    conn
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: gw\r\n\r\n")
}

/// `GET path` on `conn`, and its answer.
fn get_on(conn: &mut TcpStream, buf: &mut Vec<u8>, path: &str) -> Answer {
    conn.write_all(get(path).as_bytes()).expect("write");
    read_answer(conn, buf, false)
}

#[test]
fn a_chunked_answer_with_trailers_is_relayed_whole_and_both_connections_are_reused() {
    let backend = RawBackend::start();
    backend.then(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Checksum: 1\r\n\r\n",
        false,
    );
    let gw = gateway_for(&backend.url());
    let mut conn = client(&gw);
    let mut buf = Vec::new();
    let first = get_on(&mut conn, &mut buf, "/orders");
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), "hello world");
    let second = get_on(&mut conn, &mut buf, "/orders/7");
    assert_eq!((second.status, second.text().as_str()), (200, "/orders/7"));
    assert!(buf.is_empty(), "bytes after the answers: {buf:?}");
    let seen = backend.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[0].0, seen[1].0,
        "the upstream connection is reused after a chunked answer"
    );
}

/// Pingora's clock thread for `fast_timeout`, once started, wakes every 10 ms on the
/// proxy's CPU for the life of the process. A gateway that has accepted connections, read a
/// head that came in two parts and opened a backend connection (each bounded by a timeout)
/// must not have started it.
#[cfg(target_os = "linux")]
#[test]
fn serving_requests_starts_no_thread_that_ticks_every_10_ms() {
    let backend = RawBackend::start();
    let gw = gateway_for(&backend.url());
    let mut conn = client(&gw);
    let mut buf = Vec::new();
    assert_eq!(get_on(&mut conn, &mut buf, "/orders").status, 200);
    conn.write_all(b"GET /orders/7 HTTP/1.1\r\nHo")
        .expect("write");
    std::thread::sleep(Duration::from_millis(50));
    conn.write_all(b"st: gw\r\n\r\n").expect("write");
    let split = read_answer(&mut conn, &mut buf, false);
    assert_eq!((split.status, split.text().as_str()), (200, "/orders/7"));
    let names: Vec<String> = gw.threads().into_iter().map(|t| t.name).collect();
    assert!(names.iter().any(|n| n == "proxy"), "{names:?}");
    assert!(!names.iter().any(|n| n == "Timer thread"), "{names:?}");
}

#[test]
fn an_answer_delimited_by_the_backend_closing_reaches_the_client_whole_then_it_closes_too() {
    let backend = RawBackend::start();
    let body = "x".repeat(50_000);
    backend.then(
        &format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n{body}"),
        true,
    );
    let gw = gateway_for(&backend.url());
    let mut conn = client(&gw);
    let mut buf = Vec::new();
    let answer = get_on(&mut conn, &mut buf, "/orders");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("connection"), Some("close"));
    assert_eq!(answer.body.len(), body.len());
    // The gateway closed its side: a read gets EOF.
    assert!(!fill(&mut conn, &mut buf), "the connection stayed open");
}

#[test]
fn a_pooled_connection_the_backend_closed_is_replaced_without_the_client_noticing() {
    let backend = RawBackend::start();
    // Answers with a length and keep-alive, then closes anyway (as a backend restarting or
    // timing out idle connections does).
    backend.then("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst", true);
    let gw = gateway_for(&backend.url());
    assert_eq!(gw.get("/orders").text(), "first");
    std::thread::sleep(Duration::from_millis(200));
    let second = gw.get("/orders/2");
    assert_eq!((second.status, second.text().as_str()), (200, "/orders/2"));
    let connections: Vec<usize> = backend.seen().iter().map(|(c, _)| *c).collect();
    assert_eq!(connections.len(), 2);
    assert_ne!(
        connections[0], connections[1],
        "a new connection for the second call"
    );
}

#[test]
fn a_head_request_gets_the_fields_and_no_body_and_the_connection_stays_in_step() {
    let backend = RawBackend::start();
    backend.then(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n",
        false,
    );
    let gw = gateway_for(&backend.url());
    let mut conn = client(&gw);
    let mut buf = Vec::new();
    conn.write_all(b"HEAD /orders HTTP/1.1\r\nHost: gw\r\n\r\n")
        .expect("write");
    let head = read_answer(&mut conn, &mut buf, true);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("17"));
    let next = get_on(&mut conn, &mut buf, "/orders/after-head");
    assert_eq!(next.text(), "/orders/after-head");
    assert!(backend.seen()[0].1.starts_with("HEAD /orders "));
}

#[test]
fn one_connection_carries_plain_pipelined_unrouted_and_closing_requests_in_order() {
    let backend = RawBackend::start();
    let gw = gateway_for(&backend.url());
    let mut conn = client(&gw);
    let mut buf = Vec::new();
    assert_eq!(get_on(&mut conn, &mut buf, "/orders/1").text(), "/orders/1");
    // Two requests in one write: the second is pipelined behind the first.
    let pipelined = format!("{}{}", get("/orders/2"), get("/orders/3"));
    conn.write_all(pipelined.as_bytes()).expect("write");
    assert_eq!(read_answer(&mut conn, &mut buf, false).text(), "/orders/2");
    assert_eq!(read_answer(&mut conn, &mut buf, false).text(), "/orders/3");
    // No operation: Pingora's path answers the 404, then the connection goes on.
    let missing = get_on(&mut conn, &mut buf, "/nowhere");
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert_eq!(get_on(&mut conn, &mut buf, "/orders/4").text(), "/orders/4");
    conn.write_all(b"GET /orders/5 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .expect("write");
    let last = read_answer(&mut conn, &mut buf, false);
    assert_eq!(last.text(), "/orders/5");
    assert!(!fill(&mut conn, &mut buf), "Connection: close is honoured");
}

#[test]
fn the_backend_gets_the_forwarding_fields_and_the_client_its_request_id() {
    let backend = RawBackend::start();
    let gw = gateway_for(&backend.url());
    let mut conn = client(&gw);
    let mut buf = Vec::new();
    conn.write_all(
        b"GET /orders/9?page=2&x=a%20b HTTP/1.1\r\nHost: facade.example\r\nConnection: keep-alive\r\n\
          X-Request-Id: trace-1234\r\nX-Forwarded-For: 10.1.1.1\r\nX-Custom: kept\r\n\r\n",
    )
    .expect("write");
    let answer = read_answer(&mut conn, &mut buf, false);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-request-id"), Some("trace-1234"));
    let (_, head) = backend.seen().pop().expect("a request");
    let lower = head.to_ascii_lowercase();
    assert!(
        head.starts_with("GET /orders/9?page=2&x=a%20b HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        lower.contains(&format!("\r\nhost: {}\r\n", backend.addr)),
        "{head}"
    );
    assert!(
        lower.contains("\r\nx-forwarded-for: 10.1.1.1, 127.0.0.1\r\n"),
        "{head}"
    );
    assert!(lower.contains("\r\nx-forwarded-proto: http\r\n"), "{head}");
    assert!(lower.contains("\r\nx-request-id: trace-1234\r\n"), "{head}");
    assert!(lower.contains("\r\nx-custom: kept\r\n"), "{head}");
    assert!(
        !lower.contains("\r\nconnection:"),
        "hop-by-hop field forwarded: {head}"
    );
}

#[test]
fn a_down_slow_or_broken_backend_is_a_problem_for_the_client() {
    // Nothing listens: 502.
    let gw = gateway_for(&closed_port_url());
    let problem = assert_problem(&gw.get("/orders"), 502);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("ConnectRefused"),
        "{problem}"
    );
    let metrics = gw.metrics();
    assert!(
        metrics.contains("ConnectRefused"),
        "upstream error counted: {metrics}"
    );
    drop(gw);

    // Accepts, never answers: 504 after the backend's 1 s timeout.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let gw = gateway_for(&format!("http://{}", silent.local_addr().expect("addr")));
    let started = Instant::now();
    assert_problem(&gw.get("/orders"), 504);
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(gw);

    // Answers something that is not HTTP: 502.
    let backend = RawBackend::start();
    backend.then("NOT HTTP AT ALL\r\n\r\n", true);
    let gw = gateway_for(&backend.url());
    assert_problem(&gw.get("/orders"), 502);
    // The next call works.
    assert_eq!(gw.get("/orders/ok").text(), "/orders/ok");
}

#[test]
fn each_backend_read_on_a_kept_alive_connection_gets_the_whole_timeout() {
    use axum::routing::get as route_get;
    let router = axum::Router::new()
        .route(
            "/orders/slow",
            route_get(|| async {
                tokio::time::sleep(Duration::from_secs(4)).await;
                "late"
            }),
        )
        .fallback(|| async { "prompt" });
    let backend = MockBackend::start(router);
    let gw = gateway_for(&backend.url());
    let mut conn = client(&gw);
    let mut buf = Vec::new();
    // Prompt answers 0.7 s apart on one connection: together longer than the backend's 1 s
    // timeout, each well within it.
    for path in ["/orders/1", "/orders/2"] {
        assert_eq!(get_on(&mut conn, &mut buf, path).status, 200, "{path}");
        std::thread::sleep(Duration::from_millis(700));
    }
    // A backend that does not answer: the 504 comes a whole timeout after this call began.
    let started = Instant::now();
    let slow = get_on(&mut conn, &mut buf, "/orders/slow");
    let waited = started.elapsed();
    assert_eq!(slow.status, 504, "{}", slow.text());
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(3),
        "answered after {waited:?}"
    );
    // The connection goes on: after a timeout that fired, the next call is served.
    assert_eq!(get_on(&mut conn, &mut buf, "/orders/3").text(), "prompt");
}

const MAPPED_SPEC: &str = r#"openapi: 3.0.3
info: { title: Orders, version: "1" }
paths:
  /orders:
    post:
      operationId: createOrder
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [customer]
              properties: { customer: { type: string } }
      responses:
        "200": { description: the order }
  /orders/{orderId}:
    get:
      operationId: getOrder
      parameters:
        - { name: orderId, in: path, required: true, schema: { type: string } }
      responses:
        "200": { description: one order }
"#;

const MAPPED_CONFIG: &str = r#"server:
  listen: "{{LISTEN}}"
  admin_listen: "{{ADMIN}}"
  admin_token: "{{TOKEN}}"
backends:
  erp:
    url: "@URL@"
    timeout: 2s
apis:
  - name: orders
    spec: ./orders.yaml
    operations:
      createOrder:
        backend: erp
        request:
          path: /erp/orders
          body: { Customer: "$.body.customer" }
        response:
          body: { id: "$.body.OrderNo" }
      getOrder:
        backend: erp
"#;

#[test]
fn a_mapped_post_whose_body_comes_late_is_answered_then_a_pipelined_get_behind_it() {
    let backend = RawBackend::start();
    let order = r#"{"OrderNo":"A-17","Internal":true}"#;
    backend.then(
        &format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{order}",
            order.len()
        ),
        false,
    );
    let gw = Gateway::start_with_files(
        &MAPPED_CONFIG.replace("@URL@", &backend.url()),
        &[("orders.yaml", MAPPED_SPEC)],
    );
    let mut conn = client(&gw);
    let mut buf = Vec::new();
    let body = r#"{"customer":"c-9"}"#;
    let head = format!(
        "POST /orders HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // The head, then the body in two pieces with pauses, then a GET pipelined behind it.
    conn.write_all(head.as_bytes()).expect("write");
    std::thread::sleep(Duration::from_millis(150));
    conn.write_all(&body.as_bytes()[..5]).expect("write");
    std::thread::sleep(Duration::from_millis(150));
    let rest = format!("{}{}", &body[5..], get("/orders/after-post"));
    conn.write_all(rest.as_bytes()).expect("write");
    let mapped = read_answer(&mut conn, &mut buf, false);
    assert_eq!(mapped.status, 200, "{}", mapped.text());
    assert_eq!(mapped.text(), r#"{"id":"A-17"}"#);
    let next = read_answer(&mut conn, &mut buf, false);
    assert_eq!(next.text(), "/orders/after-post");
    let seen = backend.seen();
    assert!(
        seen[0].1.starts_with("POST /erp/orders HTTP/1.1\r\n"),
        "{seen:?}"
    );

    // An invalid body is refused before the backend, on the same connection.
    let bad = "{}";
    conn.write_all(
        format!(
            "POST /orders HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{bad}",
            bad.len()
        )
        .as_bytes(),
    )
    .expect("write");
    let refused = read_answer(&mut conn, &mut buf, false);
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused.text().contains("/body/customer"),
        "{}",
        refused.text()
    );
    assert_eq!(
        backend.seen().len(),
        2,
        "the invalid order never reached the backend"
    );
}

#[test]
fn a_mapped_post_reads_every_answer_framing_and_outlives_a_pooled_connection_the_backend_closed() {
    let backend = RawBackend::start();
    let json = "Content-Type: application/json";
    let (start, end) = (r#"{"Order"#, r#"No":"C-1","X":1}"#);
    // Chunked, with a trailer: the data is joined, the connection kept.
    backend.then(
        &format!(
            "HTTP/1.1 200 OK\r\n{json}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{start}\r\n{:x}\r\n{end}\r\n0\r\nX-Sum: 1\r\n\r\n",
            start.len(),
            end.len()
        ),
        false,
    );
    // A length, then the backend closes that connection without saying so.
    let second = r#"{"OrderNo":"C-2"}"#;
    backend.then(
        &format!(
            "HTTP/1.1 200 OK\r\n{json}\r\nContent-Length: {}\r\n\r\n{second}",
            second.len()
        ),
        true,
    );
    let third = r#"{"OrderNo":"C-3"}"#;
    backend.then(
        &format!(
            "HTTP/1.1 200 OK\r\n{json}\r\nContent-Length: {}\r\n\r\n{third}",
            third.len()
        ),
        false,
    );
    // No length: the answer ends when the backend closes.
    backend.then(
        &format!("HTTP/1.1 200 OK\r\n{json}\r\nConnection: close\r\n\r\n{{\"OrderNo\":\"C-4\"}}"),
        true,
    );
    backend.then(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\nnot",
        false,
    );
    let gw = Gateway::start_with_files(
        &MAPPED_CONFIG.replace("@URL@", &backend.url()),
        &[("orders.yaml", MAPPED_SPEC)],
    );
    let order = br#"{"customer":"c-9"}"#;
    for n in 1..=4 {
        let resp = gw.post_json("/orders", order);
        assert_eq!(resp.status, 200, "order {n}: {}", resp.text());
        assert_eq!(resp.text(), format!(r#"{{"id":"C-{n}"}}"#));
    }
    let resp = gw.post_json("/orders", order);
    let problem = assert_problem(&resp, 502);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("JSON cannot be read"),
        "{problem}"
    );
    let connections: Vec<usize> = backend.seen().iter().map(|(c, _)| *c).collect();
    assert_eq!(connections.len(), 5, "one backend request per order");
    assert_eq!(
        connections[0], connections[1],
        "the chunked answer's connection is reused"
    );
    assert_ne!(
        connections[1], connections[2],
        "a closed pooled connection is replaced"
    );
    assert_ne!(
        connections[3], connections[4],
        "after a close-delimited answer, a new one"
    );
    assert!(backend.seen()[0]
        .1
        .starts_with("POST /erp/orders HTTP/1.1\r\n"));
}
