//! Talking to the gateway: a blocking client (`agent`, `send`, `try_send`, `Resp`), raw
//! HTTP/1.1 over a `TcpStream` for requests ureq will not shape, e.g. chunked bodies
//! (`raw_http`, `RawResp`, `chunked_body`), and answers read one by one from a keep-alive
//! connection (`read_answer`, `Answer`, `fill`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    /// A header's value (the first one), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body text if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}); status {}, body: {}",
                self.status,
                self.text()
            )
        })
    }
}

/// A blocking client that returns 4xx/5xx as responses, uses no proxy, and gives up after
/// 20 s per call.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// Sends one request; `Err` only on a transport error (connection refused, reset...).
pub fn try_send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Resp, ureq::Error> {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut response = match body {
        Some(bytes) => agent.run(builder.body(bytes.to_vec()).expect("build request"))?,
        None => agent.run(builder.body(()).expect("build request"))?,
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()?;
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// Sends one request; panics on a transport error.
pub fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Resp {
    try_send(agent, method, url, headers, body)
        .unwrap_or_else(|e| panic!("{method} {url} failed at the transport level: {e}"))
}

// ---------------------------------------------------------------------------------------
// Raw HTTP/1.1 over a TcpStream (for requests ureq will not shape, e.g. chunked bodies)
// ---------------------------------------------------------------------------------------

/// A response read off a raw connection.
#[derive(Debug)]
pub struct RawResp {
    pub status: u16,
    /// Header names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked if the response was chunked.
    pub body: Vec<u8>,
}

impl RawResp {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        first_header(&self.headers, name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "raw response body is not JSON ({e}); status {}, body: {}",
                self.status,
                self.text()
            )
        })
    }

    /// As a `Resp`, so that `assert_problem` applies.
    pub fn into_resp(self) -> Resp {
        let mut headers = ureq::http::HeaderMap::new();
        for (name, value) in &self.headers {
            if let (Ok(n), Ok(v)) = (
                ureq::http::HeaderName::from_bytes(name.as_bytes()),
                ureq::http::HeaderValue::from_str(value),
            ) {
                headers.append(n, v);
            }
        }
        Resp {
            status: self.status,
            headers,
            body: self.body,
        }
    }
}

/// The first value of header `name` (case-insensitive) in `(lower-case name, value)` pairs,
/// as `RawResp` and `Recorded` keep them.
pub fn first_header(headers: &[(String, String)], name: &str) -> Option<String> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.clone())
}

/// Every value of header `name` (case-insensitive) in `(lower-case name, value)` pairs, in
/// order.
pub fn all_headers(headers: &[(String, String)], name: &str) -> Vec<String> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// `data` encoded as an HTTP/1.1 chunked body of `chunk` bytes per chunk, with the final
/// zero-size chunk.
pub fn chunked_body(data: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / chunk.max(1) * 8 + 8);
    for piece in data.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Writes `request` (head and body, as bytes) on a new connection to `addr` and reads one
/// response. Write errors are ignored (a server may answer early and close); reads stop at
/// the end of the response, at EOF, or after 20 s.
pub fn raw_http(addr: SocketAddr, request: &[u8]) -> RawResp {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to gateway");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("set read timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .expect("set write timeout");
    let _ = stream.write_all(request);
    let _ = stream.flush();

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut head_end: Option<usize> = None;
    loop {
        if let Some(end) = head_end {
            if raw_response_complete(&buf[..end], &buf[end..]) {
                break;
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
        if head_end.is_none() {
            head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
        }
    }
    let end = head_end.unwrap_or_else(|| {
        panic!(
            "no complete response head from {addr}; got: {:?}",
            String::from_utf8_lossy(&buf)
        )
    });
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &buf[end..];
    let chunked = all_headers(&headers, "transfer-encoding")
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest).unwrap_or_else(|| rest.to_vec())
    } else if let Some(len) =
        first_header(&headers, "content-length").and_then(|v| v.parse::<usize>().ok())
    {
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    RawResp {
        status,
        headers,
        body,
    }
}

fn raw_response_complete(head: &[u8], rest: &[u8]) -> bool {
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        return rest.ends_with(b"0\r\n\r\n") && dechunk(rest).is_some();
    }
    match head
        .split("\r\n")
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        Some(len) => rest.len() >= len,
        None => false,
    }
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// One answer read from a client connection: status, lower-case headers, de-chunked body.
/// Bytes of a following answer stay in `buf`.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads what `conn` has into `buf`; `false` when it is closed (or fails).
pub fn fill(conn: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match conn.read(&mut chunk) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// Reads one answer to a request (`head_request`: its body is empty whatever the length).
pub fn read_answer(conn: &mut TcpStream, buf: &mut Vec<u8>, head_request: bool) -> Answer {
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        assert!(
            fill(conn, buf),
            "closed before a head: {:?}",
            String::from_utf8_lossy(buf)
        );
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head[9..12].parse().expect("status");
    let headers: Vec<(String, String)> = head
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    buf.drain(..end);
    let field = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let body = if head_request {
        Vec::new()
    } else if field("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut body = Vec::new();
        loop {
            let Some(line) = buf.windows(2).position(|w| w == b"\r\n") else {
                assert!(fill(conn, buf), "closed mid-chunk");
                continue;
            };
            let size_text = String::from_utf8_lossy(&buf[..line]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .expect("chunk size");
            if size == 0 {
                // Trailers, then the empty line.
                while !buf[line..].windows(4).any(|w| w == b"\r\n\r\n") {
                    assert!(fill(conn, buf), "closed in trailers");
                }
                let p = buf[line..]
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .unwrap_or(0);
                buf.drain(..line + p + 4);
                break body;
            }
            while buf.len() < line + 2 + size + 2 {
                assert!(fill(conn, buf), "closed mid-chunk");
            }
            body.extend_from_slice(&buf[line + 2..line + 2 + size]);
            buf.drain(..line + 2 + size + 2);
        }
    } else if let Some(len) = field("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while buf.len() < len {
            assert!(fill(conn, buf), "closed mid-body");
        }
        buf.drain(..len).collect()
    } else {
        while fill(conn, buf) {}
        std::mem::take(buf)
    };
    Answer {
        status,
        headers,
        body,
    }
}
