//! The HTTP/1 heads the lean path reads and writes: the client's request (and
//! whether this path may serve it), the request sent upstream, the backend's answer head and
//! the head the client gets.

use super::framing::Framing;
use crate::proxy::admission::RequestHeaders;
use http::Method;
use propylon_policies::forwarding::forwarded_for;
use propylon_policies::limits::LimitFields;
use std::borrow::Cow;
use std::mem::MaybeUninit;

/// Most header fields in a head this path reads; more go to Pingora's full path.
pub const MAX_HEADERS: usize = 64;

/// Room for a head's fields, left uninitialised: httparse writes the fields it finds, and
/// filling 64 empty ones first cost ~500 instructions per head read.
pub type HeaderSlots<'b> = [MaybeUninit<httparse::Header<'b>>];

/// `MAX_HEADERS` slots on the stack.
pub fn header_slots<'b>() -> [MaybeUninit<httparse::Header<'b>>; MAX_HEADERS] {
    [const { MaybeUninit::uninit() }; MAX_HEADERS]
}

/// A client request this path may serve: HTTP/1.1, keep-alive, no upgrade, no `Expect`, and
/// a body (if any) with a `Content-Length`.
pub struct ClientRequest<'b> {
    /// Bytes of the head; the body follows, then the next (pipelined) request.
    pub head_len: usize,
    pub body_len: usize,
    pub method: Method,
    /// The request target (path and query).
    pub target: &'b str,
    pub path: &'b str,
    pub query: Option<&'b str>,
    pub headers: &'b [httparse::Header<'b>],
}

/// What a complete head is: served here, or left to Pingora's full path.
pub enum Parsed<'b> {
    Servable(ClientRequest<'b>),
    /// Anything else: Pingora's path handles it (and answers malformed requests).
    Other,
    /// More bytes are needed.
    Partial,
}

impl ClientRequest<'_> {
    /// Room for the head sent upstream: the client's head bounds the fields passed on (a
    /// bearer token alone is ~700 bytes), and the gateway's own fit in 256 more, so the
    /// buffer is not regrown (and copied) while the head is written.
    pub fn upstream_head_room(&self) -> usize {
        self.head_len + 256
    }
}

/// Parses the request head in `buf`; `slots` receives its header fields.
pub fn parse_request<'b>(buf: &'b [u8], slots: &'b mut HeaderSlots<'b>) -> Parsed<'b> {
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    if req.version != Some(1) {
        return Parsed::Other;
    }
    let method = match req.method {
        Some("GET") => Method::GET,
        Some("HEAD") => Method::HEAD,
        Some("POST") => Method::POST,
        Some("PUT") => Method::PUT,
        Some("PATCH") => Method::PATCH,
        Some("DELETE") => Method::DELETE,
        _ => return Parsed::Other,
    };
    let Some(target) = req.path else {
        return Parsed::Other;
    };
    // Origin form only, and what `http::Uri` accepts (Pingora's parser refuses the rest).
    let origin_form = plainly_valid_target(target)
        || target.starts_with('/') && target.parse::<http::uri::PathAndQuery>().is_ok();
    if !origin_form {
        return Parsed::Other;
    }
    let headers: &'b [httparse::Header<'b>] = req.headers;
    let mut body_len = None;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            // Digits only, and one value however often it is repeated (else Pingora's path
            // refuses it).
            let n = std::str::from_utf8(h.value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok());
            match (n, body_len) {
                (Some(n), None) => body_len = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Parsed::Other,
            }
        } else if !plain_field(h) {
            return Parsed::Other;
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    Parsed::Servable(ClientRequest {
        head_len,
        body_len: body_len.unwrap_or(0),
        method,
        target,
        path,
        query,
        headers,
    })
}

/// A field that keeps the request on this path: no chunked body, no upgrade, no `Expect`, no
/// `Connection` other than keep-alive.
fn plain_field(h: &httparse::Header<'_>) -> bool {
    let name = h.name;
    if name.eq_ignore_ascii_case("connection") {
        h.value.eq_ignore_ascii_case(b"keep-alive")
    } else {
        !(name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("upgrade")
            || name.eq_ignore_ascii_case("expect"))
    }
}

impl RequestHeaders for [httparse::Header<'_>] {
    fn header(&self, name: &str) -> Option<&str> {
        let field = self.iter().find(|h| h.name.eq_ignore_ascii_case(name))?;
        // What `HeaderValue::to_str` accepts: visible ASCII, spaces and tabs. httparse has
        // refused every other byte below 0x80 already, so ASCII is all that is left to check
        // (a word at a time: a bearer token is ~700 bytes).
        if field.value.is_ascii() {
            std::str::from_utf8(field.value).ok()
        } else {
            None
        }
    }
}

/// Hop-by-hop fields (RFC 9110 §7.6.1), never relayed.
pub(super) fn hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "upgrade",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// What the backend is told about the caller (as `upstream::rewrite` sets them).
pub struct Forwarded<'a> {
    pub authority: &'a [u8],
    pub request_id: &'a str,
    pub client_ip: Option<&'a str>,
}

/// The request head for the backend: the client's fields, less hop-by-hop ones, with
/// `Host`, `X-Request-Id`, `X-Forwarded-For` and `X-Forwarded-Proto` set.
pub fn write_upstream_head(
    out: &mut Vec<u8>,
    req: &ClientRequest<'_>,
    target: &str,
    fwd: &Forwarded<'_>,
) {
    request_line(out, &req.method, target);
    let mut client_xff = None;
    for h in req.headers {
        let name = h.name;
        if name.eq_ignore_ascii_case("x-forwarded-for") {
            client_xff = client_xff.or(Some(h.value));
            continue;
        }
        if hop_by_hop(name)
            || name.eq_ignore_ascii_case("host")
            || name.eq_ignore_ascii_case("x-request-id")
            || name.eq_ignore_ascii_case("x-forwarded-proto")
        {
            continue;
        }
        field(out, name.as_bytes(), h.value);
    }
    let prior = client_xff.and_then(|v| std::str::from_utf8(v).ok());
    let ours = fwd.forwarded_for(prior);
    // Without the client's address, its own `X-Forwarded-For` goes on as it came.
    fwd.write_fields(out, ours.as_deref().map(str::as_bytes).or(client_xff));
    out.extend_from_slice(b"\r\n");
}

/// `METHOD target HTTP/1.1`.
pub(super) fn request_line(out: &mut Vec<u8>, method: &Method, target: &str) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
}

/// `target` is an absolute path (and query) of bytes that `http::uri::PathAndQuery` always
/// takes: ASCII letters, digits and `/-._~!$&'()*+,;=:@%?`. Such a target (most clients',
/// every rendered path template's) needs no trial parse into one, which costs an
/// allocation; anything else is parsed, and refused as the full path refuses it.
pub(super) fn plainly_valid_target(target: &str) -> bool {
    target.starts_with('/')
        && target
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@%?".contains(&b))
}

impl Forwarded<'_> {
    /// The `X-Forwarded-For` the backend gets: `prior` (the request's) with the client's
    /// address added; `None` without a client address.
    pub(super) fn forwarded_for(&self, prior: Option<&str>) -> Option<Cow<'_, str>> {
        self.client_ip.map(|ip| forwarded_for(prior, ip))
    }

    /// `Host`, `X-Request-Id`, `X-Forwarded-For` (when `xff` is given) and
    /// `X-Forwarded-Proto`.
    pub(super) fn write_fields(&self, out: &mut Vec<u8>, xff: Option<&[u8]>) {
        field(out, b"Host", self.authority);
        field(out, b"X-Request-Id", self.request_id.as_bytes());
        if let Some(xff) = xff {
            field(out, b"X-Forwarded-For", xff);
        }
        field(out, b"X-Forwarded-Proto", b"http");
    }
}

pub(super) fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    // Separators pushed byte by byte: a copy call per two-byte slice costs more.
    out.extend_from_slice(name);
    out.push(b':');
    out.push(b' ');
    out.extend_from_slice(value);
    out.push(b'\r');
    out.push(b'\n');
}

/// The backend's answer head, as far as relaying it needs.
pub struct BackendAnswer {
    pub status: u16,
    pub head_len: usize,
    pub framing: Framing,
    /// The backend keeps the connection open for another request.
    pub reusable: bool,
}

/// Why a backend's head cannot be relayed.
#[derive(Debug, PartialEq, Eq)]
pub enum BadAnswer {
    Malformed,
    /// 1xx: not relayed by this path (a GET without `Expect` or `Upgrade` gets none).
    Interim,
}

/// The fields the gateway adds to the client's head: `extra` (the `RateLimit` fields) and
/// `X-Request-Id`.
pub struct GatewayFields<'a> {
    pub extra: &'a LimitFields,
    pub request_id: &'a str,
}

impl GatewayFields<'_> {
    /// A field the gateway sets itself, in place of one of the same name in an answer.
    fn replace(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("x-request-id")
            || self.extra.iter().any(|(n, _)| name.eq_ignore_ascii_case(n))
    }
}

/// Parses the backend's head in `buf` (`Ok(None)` while incomplete) and, once it is whole,
/// writes the client's head into `out`.
pub fn parse_answer(
    buf: &[u8],
    head_request: bool,
    fields: &GatewayFields<'_>,
    out: &mut Vec<u8>,
) -> Result<Option<BackendAnswer>, BadAnswer> {
    let write = |status, headers: &[httparse::Header<'_>], framing| {
        write_client_head(out, status, headers, fields, framing);
    };
    Ok(read_answer(buf, head_request, write)?.map(|(answer, ())| answer))
}

/// Parses the backend's head in `buf` (`Ok(None)` while incomplete); once it is whole,
/// `take` makes what the caller keeps of its status, fields and framing.
pub fn read_answer<T>(
    buf: &[u8],
    head_request: bool,
    take: impl FnOnce(u16, &[httparse::Header<'_>], Framing) -> T,
) -> Result<Option<(BackendAnswer, T)>, BadAnswer> {
    let mut slots = header_slots();
    let Some((head_len, resp)) = parse_head(buf, &mut slots)? else {
        return Ok(None);
    };
    let status = resp.code.ok_or(BadAnswer::Malformed)?;
    if (100..200).contains(&status) {
        return Err(BadAnswer::Interim);
    }
    let mut length = None;
    let mut chunked = false;
    let mut close = resp.version != Some(1);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(BadAnswer::Malformed)?;
            if length.is_some_and(|m| m != n) {
                return Err(BadAnswer::Malformed);
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only `chunked` (last) is relayable as is; anything else is not HTTP/1.1 framing
            // this path understands.
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            if !last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(BadAnswer::Malformed);
            }
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("connection") {
            close |= h
                .value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
    }
    let framing = if head_request || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let kept = take(status, resp.headers, framing);
    let answer = BackendAnswer {
        status,
        head_len,
        framing,
        reusable: !close && framing != Framing::UntilClose,
    };
    Ok(Some((answer, kept)))
}

/// The client's head: the backend's status and fields (less hop-by-hop ones and those the
/// gateway sets), then the gateway's fields; `Connection: close` when the body ends with the
/// connection. A chunked answer loses any `Content-Length` (RFC 9112 §6.3: the chunks
/// decide), so no client can be told two lengths.
fn write_client_head(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[httparse::Header<'_>],
    fields: &GatewayFields<'_>,
    framing: Framing,
) {
    let chunked = framing == Framing::Chunked;
    status_line(out, status);
    for h in headers {
        let name = h.name;
        if hop_by_hop(name)
            || (chunked && name.eq_ignore_ascii_case("content-length"))
            || fields.replace(name)
        {
            continue;
        }
        field(out, name.as_bytes(), h.value);
    }
    for (name, value) in fields.extra {
        field(out, name.as_bytes(), value.as_bytes());
    }
    field(out, b"X-Request-Id", fields.request_id.as_bytes());
    if framing == Framing::UntilClose {
        field(out, b"Connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
}

/// A head made by `respond` (a problem), as HTTP/1.1 bytes.
pub fn write_gateway_head(out: &mut Vec<u8>, header: &pingora_http::ResponseHeader) {
    status_line(out, header.status.as_u16());
    for (name, value) in header.headers.iter() {
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// A mapped answer's head with the fields `respond::answer_parts` gives it on the full path
/// (the answer's own, `fields`, then `extra`, its length and `X-Request-Id`, each replacing
/// any field of the same name), written straight from the answer: no `ResponseHeader` built
/// and dropped per request. `None` for a status that HTTP/1.1 cannot carry.
pub fn write_answer_head<'h>(
    out: &mut Vec<u8>,
    status: u16,
    fields: impl Iterator<Item = (&'h str, &'h [u8])>,
    body_len: usize,
    gateway: &GatewayFields<'_>,
) -> Option<()> {
    if !(100..=999).contains(&status) {
        return None;
    }
    status_line(out, status);
    for (name, value) in fields {
        if name.eq_ignore_ascii_case("content-length") || gateway.replace(name) {
            continue;
        }
        field(out, name.as_bytes(), value);
    }
    for (name, value) in gateway.extra {
        field(out, name.as_bytes(), value.as_bytes());
    }
    let mut length = itoa::Buffer::new();
    field(out, b"content-length", length.format(body_len).as_bytes());
    field(out, b"x-request-id", gateway.request_id.as_bytes());
    out.extend_from_slice(b"\r\n");
    Some(())
}

/// The status and fields of a backend's head that `read_answer` took whole.
pub fn answer_fields<'b, 'h>(
    head: &'b [u8],
    slots: &'h mut [MaybeUninit<httparse::Header<'b>>],
) -> Option<(u16, &'h [httparse::Header<'b>])> {
    let (_, resp) = parse_head(head, slots).ok()??;
    Some((resp.code?, resp.headers))
}

/// httparse's reading of a backend's head in `buf`, its fields in `slots`: the head's length
/// and the response; `Ok(None)` while the head is incomplete.
fn parse_head<'b, 'h>(
    buf: &'b [u8],
    slots: &'h mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<Option<(usize, httparse::Response<'h, 'b>)>, BadAnswer> {
    let mut resp = httparse::Response::new(&mut []);
    match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, slots)
    {
        Ok(httparse::Status::Complete(n)) => Ok(Some((n, resp))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(BadAnswer::Malformed),
    }
}

/// `HTTP/1.1 <code> <canonical reason>`: the reason a backend gave is not kept.
fn status_line(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa3(status).as_slice());
    out.push(b' ');
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn itoa3(status: u16) -> [u8; 3] {
    let s = status.min(999);
    [
        b'0' + (s / 100) as u8,
        b'0' + (s / 10 % 10) as u8,
        b'0' + (s % 10) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plainly_valid_targets_are_those_http_takes() {
        let mut tried = 0;
        for b in 0..=255_u8 {
            for target in [
                vec![b'/', b],
                vec![b'/', b'a', b'?', b'q', b'=', b],
                vec![b],
            ] {
                let Ok(target) = String::from_utf8(target) else {
                    continue;
                };
                if plainly_valid_target(&target) {
                    tried += 1;
                    assert!(
                        target.parse::<http::uri::PathAndQuery>().is_ok(),
                        "{target:?}"
                    );
                }
            }
        }
        assert!(tried > 150, "{tried}");
        assert!(plainly_valid_target("/base/orders/7?x=1&y=%20"));
        assert!(!plainly_valid_target("/a b"));
        assert!(!plainly_valid_target("/a#b"));
        assert!(!plainly_valid_target("a"));
        assert!(!plainly_valid_target(""));
    }

    fn parse(text: &str) -> Option<(Method, String, Option<String>)> {
        let mut slots = header_slots();
        match parse_request(text.as_bytes(), &mut slots) {
            Parsed::Servable(r) if r.body_len == 0 => {
                Some((r.method, r.path.into(), r.query.map(Into::into)))
            }
            _ => None,
        }
    }

    #[test]
    fn reads_the_length_of_a_body() {
        let mut slots = header_slots();
        let text = b"POST /orders HTTP/1.1\r\nContent-Length: 12\r\ncontent-length: 12\r\n\r\n{}";
        let Parsed::Servable(r) = parse_request(text, &mut slots) else {
            panic!("a POST with a length is served");
        };
        assert_eq!(
            (r.method, r.body_len, r.head_len),
            (Method::POST, 12, text.len() - 2)
        );
        for text in [
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n",
            "OPTIONS / HTTP/1.1\r\n\r\n",
        ] {
            let mut slots = header_slots();
            assert!(
                matches!(parse_request(text.as_bytes(), &mut slots), Parsed::Other),
                "{text:?}"
            );
        }
    }

    #[test]
    fn serves_plain_gets_and_heads() {
        let got =
            parse("GET /customers/7?x=1 HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(
            got,
            Some((Method::GET, "/customers/7".into(), Some("x=1".into())))
        );
        let head = parse("HEAD / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(head, Some((Method::HEAD, "/".into(), None)));
    }

    #[test]
    fn leaves_everything_else_to_the_full_path() {
        for text in [
            "GET / HTTP/1.0\r\n\r\n",
            "GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
            "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            "GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\n\r\n",
            "GET /\x01 HTTP/1.1\r\n\r\n",
        ] {
            assert!(parse(text).is_none(), "{text:?}");
        }
        let mut slots = header_slots();
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nHost:", &mut slots),
            Parsed::Partial
        ));
    }

    #[test]
    fn the_backend_gets_forwarding_fields_and_no_hop_by_hop_ones() {
        let text = "GET /c HTTP/1.1\r\nHost: facade\r\nConnection: keep-alive\r\nX-Forwarded-For: 10.0.0.1\r\nX-Request-Id: old\r\nAccept: */*\r\n\r\n";
        let mut slots = header_slots();
        let Parsed::Servable(req) = parse_request(text.as_bytes(), &mut slots) else {
            panic!("not simple");
        };
        let mut out = Vec::new();
        let fwd = Forwarded {
            authority: b"127.0.0.1:9",
            request_id: "rid",
            client_ip: Some("127.0.0.1"),
        };
        write_upstream_head(&mut out, &req, "/api/c", &fwd);
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            "GET /api/c HTTP/1.1\r\nAccept: */*\r\nHost: 127.0.0.1:9\r\nX-Request-Id: rid\r\n\
             X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\n"
        );
    }

    #[test]
    fn reads_how_an_answer_ends() {
        let framing = |text: &str, head: bool| {
            let fields = GatewayFields {
                extra: &LimitFields::none(),
                request_id: "rid",
            };
            parse_answer(text.as_bytes(), head, &fields, &mut Vec::new())
                .map(|a| a.map(|a| (a.framing, a.reusable)))
        };
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(framing(ok, false), Ok(Some((Framing::Length(5), true))));
        assert_eq!(framing(ok, true), Ok(Some((Framing::Empty, true))));
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(framing(chunked, false), Ok(Some((Framing::Chunked, true))));
        let both = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(framing(both, false), Ok(Some((Framing::Chunked, true))));
        let fields = GatewayFields {
            extra: &LimitFields::none(),
            request_id: "rid",
        };
        let mut out = Vec::new();
        assert!(parse_answer(both.as_bytes(), false, &fields, &mut out).is_ok());
        let head = String::from_utf8(out).expect("ascii");
        assert!(
            !head.to_ascii_lowercase().contains("content-length"),
            "{head}"
        );
        let close = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n";
        assert_eq!(framing(close, false), Ok(Some((Framing::Length(1), false))));
        let until_close = "HTTP/1.1 200 OK\r\n\r\n";
        assert_eq!(
            framing(until_close, false),
            Ok(Some((Framing::UntilClose, false)))
        );
        let old = "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n";
        assert_eq!(framing(old, false), Ok(Some((Framing::Length(1), false))));
        assert_eq!(
            framing("HTTP/1.1 204 No Content\r\n\r\n", false),
            Ok(Some((Framing::Empty, true)))
        );
        assert_eq!(framing("HTTP/1.1 200 OK\r\nContent-Le", false), Ok(None));
        assert_eq!(
            framing(
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                false
            ),
            Err(BadAnswer::Malformed)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false),
            Err(BadAnswer::Malformed)
        );
        assert_eq!(
            framing("HTTP/1.1 100 Continue\r\n\r\n", false),
            Err(BadAnswer::Interim)
        );
    }

    #[test]
    fn the_client_gets_the_backend_fields_and_the_gateway_ones() {
        let backend = b"HTTP/1.1 200 Whatever\r\nServer: b\r\nConnection: keep-alive\r\nX-Request-Id: theirs\r\nRateLimit: old\r\nContent-Length: 2\r\n\r\n";
        let mut out = Vec::new();
        let extra = LimitFields::new("\"q\";q=10", "limit=10");
        let fields = GatewayFields {
            extra: &extra,
            request_id: "rid",
        };
        let answer = parse_answer(backend, false, &fields, &mut out);
        assert_eq!(
            answer.map(|a| a.map(|a| a.head_len)),
            Ok(Some(backend.len()))
        );
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            "HTTP/1.1 200 OK\r\nServer: b\r\nContent-Length: 2\r\nratelimit-policy: \"q\";q=10\r\nratelimit: limit=10\r\nX-Request-Id: rid\r\n\r\n"
        );
    }

    #[test]
    fn a_mapped_answer_has_the_fields_the_full_path_gives_it() {
        use http::header::{HeaderName, HeaderValue};
        let value = HeaderValue::from_static;
        let answer = crate::exchange::Answer {
            status: 201,
            headers: vec![
                (
                    HeaderName::from_static("content-type"),
                    value("application/json"),
                ),
                (HeaderName::from_static("x-tag"), value("a")),
                (HeaderName::from_static("content-length"), value("999")),
                (HeaderName::from_static("x-request-id"), value("theirs")),
                (HeaderName::from_static("ratelimit"), value("old")),
                (HeaderName::from_static("x-tag"), value("b")),
            ],
            body: bytes::Bytes::from_static(b"{}"),
        };
        let extra = LimitFields::new("\"q\";q=10", "limit=10");
        let fields = |head: &[u8]| {
            let mut slots = [httparse::EMPTY_HEADER; 16];
            let mut parsed = httparse::Response::new(&mut slots);
            assert!(matches!(
                parsed.parse(head),
                Ok(httparse::Status::Complete(_))
            ));
            let mut all: Vec<String> = parsed
                .headers
                .iter()
                .map(|h| format!("{}: {}", h.name, String::from_utf8_lossy(h.value)))
                .collect();
            all.sort();
            (parsed.code, all)
        };
        let mut direct = Vec::new();
        let gateway = GatewayFields {
            extra: &extra,
            request_id: "rid",
        };
        let answer_fields = answer
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()));
        let body_len = answer.body.len();
        let written = write_answer_head(&mut direct, 201, answer_fields, body_len, &gateway);
        assert!(written.is_some());
        let (header, _) =
            crate::proxy::respond::answer_parts(answer, "rid", &extra).expect("answer parts");
        let mut full = Vec::new();
        write_gateway_head(&mut full, &header);
        assert_eq!(fields(&direct), fields(&full));
        assert_eq!(
            fields(&direct).1,
            [
                "content-length: 2",
                "content-type: application/json",
                "ratelimit-policy: \"q\";q=10",
                "ratelimit: limit=10",
                "x-request-id: rid",
                "x-tag: a",
                "x-tag: b"
            ]
        );
    }
}
