//! `X-Request-Id`: keep a client's id when it is sane, otherwise make one.

/// Longest client-supplied id we keep; longer ones are replaced so logs and jobs stay small.
const MAX_LEN: usize = 200;

/// Returns the id to use for this request. A client id is kept when it is printable ASCII
/// without spaces and at most 200 bytes, so it can be logged and forwarded verbatim.
pub fn request_id(client_value: Option<&[u8]>) -> String {
    let mut made = IdBuffer::default();
    request_id_in(client_value, &mut made).to_owned()
}

/// Room for a made id (a hyphenated UUID).
pub struct IdBuffer([u8; uuid::fmt::Hyphenated::LENGTH]);

impl Default for IdBuffer {
    fn default() -> Self {
        IdBuffer([0; uuid::fmt::Hyphenated::LENGTH])
    }
}

/// [`request_id`] without an allocation: the client's id borrowed, or a new one written
/// into `made`. The UUID's encoder gives its text as a `str`, so the made id is not checked
/// as UTF-8 again (a `from_utf8` of its 36 bytes cost ~160 instructions per request).
pub fn request_id_in<'a>(client_value: Option<&'a [u8]>, made: &'a mut IdBuffer) -> &'a str {
    let given = client_value
        .filter(|v| is_acceptable(v))
        .and_then(|v| std::str::from_utf8(v).ok());
    match given {
        Some(id) => id,
        None => uuid::Uuid::new_v4().hyphenated().encode_lower(&mut made.0),
    }
}

fn is_acceptable(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= MAX_LEN && v.iter().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_sane_client_id() {
        assert_eq!(request_id(Some(b"req-123")), "req-123");
    }

    #[test]
    fn replaces_missing_empty_or_odd_ids_with_uuids() {
        for v in [
            None,
            Some(&b""[..]),
            Some(&b"has space"[..]),
            Some(&[0xff, 0x00][..]),
        ] {
            let id = request_id(v);
            assert_eq!(id.len(), 36, "{id}");
            assert!(uuid::Uuid::parse_str(&id).is_ok());
        }
        let long = vec![b'a'; MAX_LEN + 1];
        assert_eq!(request_id(Some(&long)).len(), 36);
    }

    #[test]
    fn the_id_in_place_is_the_same_choice() {
        let mut made = IdBuffer::default();
        assert_eq!(request_id_in(Some(b"req-123"), &mut made), "req-123");
        assert_eq!(made.0, [0; 36], "a kept id writes nothing");
        let long = vec![b'a'; MAX_LEN + 1];
        for v in [
            None,
            Some(&b"has space"[..]),
            Some(&[0xff][..]),
            Some(&long[..]),
        ] {
            let mut made = IdBuffer::default();
            let id = request_id_in(v, &mut made).to_owned();
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
            assert_eq!(made.0, id.as_bytes());
        }
    }
}
