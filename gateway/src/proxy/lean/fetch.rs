//! The whole lane's backend call: the mapped request (head and body in one write) on the
//! lean path's pool, and the whole answer read back (its `Content-Length`, chunks, or until
//! the backend closes; at most `MAX_ANSWER` bytes) into one buffer, its head as it came and
//! its body after it, which `whole` shapes where it lies. It does what `BackendClient::call`
//! does on the full path, without a Pingora client session per call, and without the header
//! map, the copy of the head and the shared body that Pingora's `ResponseHeader` and `Bytes`
//! would cost (five allocations per call).

use super::backend::{Body, Upstream};
use super::framing::Framing;
use super::head;
use super::{Call, READ_CHUNK};
use crate::proxy::MAX_ANSWER;
use pingora_error::{Error, ErrorType, Result};

/// A backend's whole answer as read: its head, then its body's data (chunks joined).
pub(super) struct WholeAnswer {
    bytes: Vec<u8>,
    head_len: usize,
}

impl WholeAnswer {
    /// `bytes`: the head, `head_len` long, then the body's data.
    pub fn new(bytes: Vec<u8>, head_len: usize) -> Self {
        WholeAnswer { bytes, head_len }
    }

    pub fn head(&self) -> &[u8] {
        self.bytes.get(..self.head_len).unwrap_or_default()
    }

    pub fn body(&self) -> &[u8] {
        self.bytes.get(self.head_len..).unwrap_or_default()
    }
}

impl Call<'_> {
    /// Sends `request` (head and body, as `mapped::write_mapped_head` wrote it) and reads
    /// the whole answer; `head_request`: the answer to a HEAD has no body.
    pub(super) async fn fetch(&self, request: &[u8], head_request: bool) -> Result<WholeAnswer> {
        let upstream = Upstream::new(&self.route.backend, &self.lean.pool, self.read_deadline)?;
        let mut buf = Vec::with_capacity(READ_CHUNK);
        // The head is only checked here; `whole` reads its fields once the body is in.
        let parse = |bytes: &[u8]| head::read_answer(bytes, head_request, |_, _, _| ());
        let (mut conn, answer, ()) = upstream.ask(request, &mut buf, parse).await?;
        let head_len = answer.head_len;
        // Bytes past the body's end (which no backend should send) make the connection
        // unfit for reuse.
        let mut framing = Body::new(answer.framing);
        let bad_framing =
            || Error::explain(ErrorType::InvalidHTTPHeader, "bad chunked framing").into_up();
        let read = buf.get(head_len..).unwrap_or_default();
        let (used, mut done) = framing.take(read).map_err(|_| bad_framing())?;
        let mut surplus = read.len() - used;
        buf.truncate(head_len + used);
        while !done {
            if buf.len() - head_len > MAX_ANSWER {
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
        if answer.framing == Framing::Chunked {
            dechunk(&mut buf, head_len).ok_or_else(bad_framing)?;
        }
        Ok(WholeAnswer::new(buf, head_len))
    }
}

/// Joins the data of the whole chunked body that starts at `start` in `buf`, in place (its
/// framing was checked while it was read); the trailer fields are dropped, as Pingora's
/// client drops them.
fn dechunk(buf: &mut Vec<u8>, start: usize) -> Option<()> {
    let (mut read, mut write) = (start, start);
    loop {
        let httparse::Status::Complete((used, size)) =
            httparse::parse_chunk_size(buf.get(read..)?).ok()?
        else {
            return None;
        };
        if size == 0 {
            buf.truncate(write);
            return Some(());
        }
        let from = read + used;
        let to = from.checked_add(usize::try_from(size).ok()?)?;
        let next = to.checked_add(2)?;
        if buf.get(to..next)? != b"\r\n" {
            return None;
        }
        buf.copy_within(from..to, write);
        write += to - from;
        read = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dechunked(framed: &[u8]) -> Option<Vec<u8>> {
        let mut buf = b"HEAD".to_vec();
        buf.extend_from_slice(framed);
        dechunk(&mut buf, 4)?;
        Some(buf)
    }

    #[test]
    fn chunks_are_joined_in_place_and_trailers_dropped() {
        let framed = b"3\r\nabc\r\n1;ext=1\r\nd\r\n0\r\nX-Sum: 1\r\n\r\n";
        assert_eq!(dechunked(framed).as_deref(), Some(&b"HEADabcd"[..]));
        assert_eq!(dechunked(b"0\r\n\r\n").as_deref(), Some(&b"HEAD"[..]));
        assert_eq!(dechunked(b"3\r\nab"), None);
        assert_eq!(dechunked(b"2\r\nabc\r\n0\r\n\r\n"), None);
    }
}
