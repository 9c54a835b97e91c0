//! The whole lane's backend call: the mapped request (head and body in one write) on the
//! lean path's pool, and the whole answer read back (its `Content-Length`, chunks, or until
//! the backend closes; at most `MAX_ANSWER` bytes) as the `BackendAnswer` that
//! `exchange::shape_answer` shapes. It does what `BackendClient::call` does on the full path,
//! without a Pingora client session per call.

use super::backend::{Body, Upstream};
use super::framing::Framing;
use super::head;
use super::{Call, READ_CHUNK};
use crate::exchange::client::BackendAnswer;
use crate::proxy::MAX_ANSWER;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use pingora_error::{Error, ErrorType, Result};
use pingora_http::ResponseHeader;

impl Call<'_> {
    /// Sends `request` (head and body, as `mapped::write_mapped_head` wrote it) and reads
    /// the whole answer; `head_request`: the answer to a HEAD has no body.
    pub(super) async fn fetch(&self, request: &[u8], head_request: bool) -> Result<BackendAnswer> {
        let upstream = Upstream::new(&self.route.backend, &self.lean.pool, self.read_deadline)?;
        let mut buf = Vec::with_capacity(READ_CHUNK);
        let parse = |bytes: &[u8]| {
            let take =
                |status, fields: &[httparse::Header<'_>], _| response_header(bytes, status, fields);
            head::read_answer(bytes, head_request, take)
        };
        let (mut conn, answer, made) = upstream.ask(request, &mut buf, parse).await?;
        let header = made.map_err(|e| e.into_up())?;
        // The body is gathered in `buf`, after its head; bytes past its end (which no
        // backend should send) make the connection unfit for reuse.
        buf.drain(..answer.head_len);
        let mut framing = Body::new(answer.framing);
        let bad_framing =
            || Error::explain(ErrorType::InvalidHTTPHeader, "bad chunked framing").into_up();
        let (used, mut done) = framing.take(&buf).map_err(|_| bad_framing())?;
        let mut surplus = buf.len() - used;
        buf.truncate(used);
        while !done {
            if buf.len() > MAX_ANSWER {
                let e = Error::explain(
                    ErrorType::new("AnswerTooLarge"),
                    format!("the backend's answer exceeds {MAX_ANSWER} bytes"),
                );
                return Err(e.into_up());
            }
            let start = buf.len();
            if buf.capacity() - start < READ_CHUNK / 2 {
                buf.reserve(READ_CHUNK);
            }
            let read = framing.read_more(&upstream, &mut conn, &mut buf);
            let (used, end) = read.await?;
            surplus += buf.len() - start - used;
            buf.truncate(start + used);
            done = end;
        }
        if answer.reusable && surplus == 0 {
            upstream.release(conn);
        }
        let body = match answer.framing {
            Framing::Chunked => dechunk(&buf).ok_or_else(bad_framing)?,
            _ => buf,
        };
        Ok(BackendAnswer {
            header,
            body: Bytes::from(body),
        })
    }
}

/// The backend's head as the `ResponseHeader` that `exchange` reads; `fields` were parsed
/// from `read`.
fn response_header(
    read: &[u8],
    status: u16,
    fields: &[httparse::Header<'_>],
) -> Result<ResponseHeader> {
    // `shape_answer` copies the fields by name: no map of their original case, so the
    // fields go straight into a header map, with no owned copy of each name first.
    let bad = |what| Error::explain(ErrorType::InvalidHTTPHeader, what).into_up();
    let mut headers =
        HeaderMap::try_with_capacity(fields.len()).map_err(|_| bad("too many header fields"))?;
    // The values are slices of one copy of the head: one allocation, not one per value,
    // and `shape_answer` copies a value by counting a reference.
    let start = read.as_ptr() as usize;
    let offset = |value: &[u8]| (value.as_ptr() as usize).saturating_sub(start);
    let end = fields.iter().map(|f| offset(f.value) + f.value.len()).max();
    let head = Bytes::copy_from_slice(read.get(..end.unwrap_or(0)).unwrap_or_default());
    for field in fields {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| bad("invalid header name"))?;
        let at = offset(field.value);
        let value = head
            .get(at..at + field.value.len())
            .filter(|copy| *copy == field.value)
            .map(|copy| head.slice_ref(copy))
            .ok_or_else(|| bad("invalid header value"))?;
        let value =
            HeaderValue::from_maybe_shared(value).map_err(|_| bad("invalid header value"))?;
        headers
            .try_append(name, value)
            .map_err(|_| bad("too many header fields"))?;
    }
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = http::StatusCode::from_u16(status).map_err(|_| bad("invalid status"))?;
    parts.headers = headers;
    Ok(ResponseHeader::from(parts))
}

/// The data of a whole chunked body (its framing already checked while it was read); the
/// trailer fields are dropped, as Pingora's client drops them.
fn dechunk(framed: &[u8]) -> Option<Vec<u8>> {
    let mut data = Vec::with_capacity(framed.len());
    let mut rest = framed;
    loop {
        let httparse::Status::Complete((used, size)) = httparse::parse_chunk_size(rest).ok()?
        else {
            return None;
        };
        if size == 0 {
            return Some(data);
        }
        let size = usize::try_from(size).ok()?;
        let chunk = rest.get(used..used + size)?;
        data.extend_from_slice(chunk);
        rest = rest.get(used + size..)?.strip_prefix(b"\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_joined_and_trailers_dropped() {
        let framed = b"3\r\nabc\r\n1;ext=1\r\nd\r\n0\r\nX-Sum: 1\r\n\r\n";
        assert_eq!(dechunk(framed).as_deref(), Some(&b"abcd"[..]));
        assert_eq!(dechunk(b"0\r\n\r\n").as_deref(), Some(&b""[..]));
        assert_eq!(dechunk(b"3\r\nab"), None);
        assert_eq!(dechunk(b"2\r\nabc\r\n0\r\n\r\n"), None);
    }
}
