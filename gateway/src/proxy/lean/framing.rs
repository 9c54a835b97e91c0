//! Where a relayed HTTP/1 answer ends: `Content-Length`, `chunked`, or the connection's
//! close. The lean path forwards the backend's bytes unchanged and only needs to know
//! when the message is over (RFC 9112 §6.3).

/// How the answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: a HEAD request, 204, 304.
    Empty,
    Length(u64),
    Chunked,
    /// Until the backend closes: the client connection closes after it too.
    UntilClose,
}

/// Finds the end of a chunked body as its bytes pass by, without copying them.
#[derive(Debug, Default)]
pub struct ChunkedEnd {
    state: State,
    size: u64,
    digits: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size.
    #[default]
    Size,
    /// `;ext` after the size, up to the line end.
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// Start of a trailer line (or the final empty line).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// The chunked framing is broken: the answer cannot be relayed.
#[derive(Debug, PartialEq, Eq)]
pub struct BadChunk;

impl ChunkedEnd {
    /// Feeds the next bytes; `Some(n)`: the body ends after the first `n` of them.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, BadChunk> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match self.state {
                State::Size => match hex(b) {
                    Some(d) => {
                        self.digits += 1;
                        if self.digits > 15 {
                            return Err(BadChunk);
                        }
                        self.size = self.size * 16 + u64::from(d);
                    }
                    None if self.digits == 0 => return Err(BadChunk),
                    None => match b {
                        b'\r' => self.state = State::SizeLf,
                        b';' | b' ' | b'\t' => self.state = State::Extension,
                        _ => return Err(BadChunk),
                    },
                },
                State::Extension => {
                    if b == b'\r' {
                        self.state = State::SizeLf;
                    } else if b == b'\n' {
                        return Err(BadChunk);
                    }
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(BadChunk);
                    }
                    self.digits = 0;
                    self.state = if self.size == 0 {
                        State::TrailerStart
                    } else {
                        State::Data
                    };
                }
                State::Data => {
                    let take =
                        (bytes.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                    self.size -= take as u64;
                    i += take;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                State::DataCr => self.state = expect(b, b'\r', State::DataLf)?,
                State::DataLf => self.state = expect(b, b'\n', State::Size)?,
                State::TrailerStart => {
                    self.state = if b == b'\r' {
                        State::EndLf
                    } else {
                        State::TrailerLine
                    }
                }
                State::TrailerLine => {
                    if b == b'\r' {
                        self.state = State::TrailerLf;
                    }
                }
                State::TrailerLf => self.state = expect(b, b'\n', State::TrailerStart)?,
                State::EndLf => {
                    expect(b, b'\n', State::Done)?;
                    self.state = State::Done;
                    return Ok(Some(i + 1));
                }
                State::Done => return Ok(Some(i)),
            }
            i += 1;
        }
        Ok((self.state == State::Done).then_some(bytes.len()))
    }
}

fn expect(b: u8, want: u8, next: State) -> Result<State, BadChunk> {
    if b == want {
        Ok(next)
    } else {
        Err(BadChunk)
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end_in_pieces(body: &[u8], piece: usize) -> Result<Option<usize>, BadChunk> {
        let mut scan = ChunkedEnd::default();
        let mut seen = 0;
        for part in body.chunks(piece) {
            if let Some(n) = scan.feed(part)? {
                return Ok(Some(seen + n));
            }
            seen += part.len();
        }
        Ok(None)
    }

    #[test]
    fn finds_the_end_whatever_the_pieces() {
        let body = b"5\r\nhello\r\n1a;name=x\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\nNEXT";
        let end = body.len() - 4;
        for piece in 1..body.len() {
            assert_eq!(end_in_pieces(body, piece), Ok(Some(end)), "piece {piece}");
        }
    }

    #[test]
    fn reads_trailers() {
        let body = b"3\r\nabc\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n";
        assert_eq!(end_in_pieces(body, 1), Ok(Some(body.len())));
        assert_eq!(end_in_pieces(body, 100), Ok(Some(body.len())));
    }

    #[test]
    fn an_unfinished_body_has_no_end() {
        assert_eq!(end_in_pieces(b"5\r\nhel", 2), Ok(None));
        assert_eq!(end_in_pieces(b"5\r\nhello\r\n0\r\n", 3), Ok(None));
    }

    #[test]
    fn refuses_broken_framing() {
        assert_eq!(end_in_pieces(b"zz\r\n", 1), Err(BadChunk));
        assert_eq!(end_in_pieces(b"3\r\nabcX\r\n", 1), Err(BadChunk));
        assert_eq!(end_in_pieces(b"3\nabc", 1), Err(BadChunk));
        assert_eq!(end_in_pieces(b"ffffffffffffffff1\r\n", 4), Err(BadChunk));
    }
}
