//! A minimal HTTP/1.1 client for the checks (readiness, the chain's mapped answer) and the
//! idle holder: one answer parsed from a buffer, `Content-Length` or chunked.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Larger answer heads than this are an error.
const MAX_HEAD: usize = 64 * 1024;

pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// An answer.
    Done(Answer),
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One answer from the start of `buf`. `eof`: the peer closed (a body without a length
/// then ends there).
pub fn parse(buf: &[u8], eof: bool) -> Result<Parsed, String> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err("answer head too large".into());
        }
        return Ok(Parsed::Incomplete);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "answer head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line `{status_line}`"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let chunked = get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let mut length = get("content-length").and_then(|v| v.parse::<usize>().ok());
    if status == 204 || status == 304 || status < 200 {
        length = Some(0);
    }
    let rest = &buf[end + 4..];
    let body = if chunked {
        match dechunk(rest)? {
            Some(body) => body,
            None => return Ok(Parsed::Incomplete),
        }
    } else if let Some(length) = length {
        if rest.len() < length {
            return Ok(Parsed::Incomplete);
        }
        rest[..length].to_vec()
    } else if eof {
        rest.to_vec()
    } else {
        return Ok(Parsed::Incomplete);
    };
    Ok(Parsed::Done(Answer { status, body }))
}

/// A chunked body, or None when incomplete.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(rest, b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size `{size_text}`"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            // Trailers (none expected) end with an empty line.
            return Ok(find(rest, b"\r\n").map(|_| body));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// A request as raw bytes (`Content-Length` added when there is a body).
pub fn request(
    method: &str,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// One request on a connection of its own, its answer (blocking, bounded by `timeout`).
pub fn exchange(addr: SocketAddr, request: &[u8], timeout: Duration) -> Result<Answer, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("socket: {e}"))?;
    stream
        .write_all(request)
        .map_err(|e| format!("write to {addr}: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream
            .read(&mut chunk)
            .map_err(|e| format!("read from {addr}: {e}"))?;
        buf.extend_from_slice(&chunk[..n]);
        match parse(&buf, n == 0)? {
            Parsed::Done(answer) => return Ok(answer),
            Parsed::Incomplete if n == 0 => {
                return Err(format!("{addr} closed the connection mid-answer"))
            }
            Parsed::Incomplete => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn done(buf: &[u8], eof: bool) -> Answer {
        match parse(buf, eof).unwrap() {
            Parsed::Done(a) => a,
            Parsed::Incomplete => panic!("incomplete"),
        }
    }

    #[test]
    fn parses_lengths_chunks_and_partial_answers() {
        let a = done(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", false);
        assert_eq!((a.status, a.body.as_slice()), (200, &b"hi"[..]));
        let chunked = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(done(chunked, false).body, b"abcde");
        assert!(matches!(
            parse(&chunked[..chunked.len() - 3], false),
            Ok(Parsed::Incomplete)
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi", false),
            Ok(Parsed::Incomplete)
        ));
        assert_eq!(done(b"HTTP/1.1 200 OK\r\n\r\nall", true).body, b"all");
    }
}
