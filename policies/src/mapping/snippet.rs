//! JSON text a template writes on every render (a field's `,"key":`, a literal), kept with
//! slack after it so that one of up to 16 bytes is copied as a 16-byte piece: two inline
//! moves, where copying a slice of any length is a `memcpy` call (~70 a chain request:
//! bench/README.md, stop 24).

/// Bytes of slack after the text: the piece may run past its end.
const PIECE: usize = 16;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Snippet {
    /// The text, then `PIECE` zero bytes.
    padded: Box<[u8]>,
    len: usize,
}

impl Snippet {
    pub(crate) fn new(text: &str) -> Snippet {
        let mut padded = Vec::with_capacity(text.len() + PIECE);
        padded.extend_from_slice(text.as_bytes());
        padded.resize(text.len() + PIECE, 0);
        Snippet {
            padded: padded.into_boxed_slice(),
            len: text.len(),
        }
    }

    /// Appends the text from byte `from` on.
    #[inline]
    pub(crate) fn write_from(&self, from: usize, out: &mut Vec<u8>) {
        let n = self.len.saturating_sub(from);
        match self.padded.get(from..from + PIECE) {
            // Nearly every key and literal: one piece of known size, then the slack written
            // past the text goes.
            Some(piece) if n <= PIECE => {
                let end = out.len() + n;
                out.extend_from_slice(piece);
                out.truncate(end);
            }
            _ => out.extend_from_slice(self.padded.get(from..self.len).unwrap_or_default()),
        }
    }

    /// Appends the whole text.
    #[inline]
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        self.write_from(0, out);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn any_length_is_written_whole_and_nothing_after_it() {
        for len in 0..50 {
            let text: String = ('a'..='z').cycle().take(len).collect();
            let snippet = Snippet::new(&text);
            for from in 0..=len + 1 {
                let mut out = b"[".to_vec();
                snippet.write_from(from, &mut out);
                assert_eq!(&out[1..], text.as_bytes().get(from..).unwrap_or_default());
            }
            let mut out = Vec::new();
            snippet.write(&mut out);
            assert_eq!(out, text.as_bytes());
        }
    }
}
