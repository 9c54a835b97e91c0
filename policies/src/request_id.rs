//! `X-Request-Id`: keep a client's id when it is sane, otherwise make one.

/// Longest client-supplied id we keep; longer ones are replaced so logs and jobs stay small.
const MAX_LEN: usize = 200;

/// Returns the id to use for this request. A client id is kept when it is printable ASCII
/// without spaces and at most 200 bytes, so it can be logged and forwarded verbatim.
pub fn request_id(client_value: Option<&[u8]>) -> String {
    match client_value {
        Some(v) if is_acceptable(v) => String::from_utf8_lossy(v).into_owned(),
        // Encoded into a stack buffer: `to_string` goes through the formatting machinery.
        _ => uuid::Uuid::new_v4()
            .hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer())
            .to_owned(),
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
}
