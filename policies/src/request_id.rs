//! `X-Request-Id`: keep a client's id when it is sane, otherwise make one.

/// Longest client-supplied id we keep; longer ones are replaced so logs and jobs stay small.
const MAX_LEN: usize = 200;

/// Returns the id to use for this request. A client id is kept when it is printable ASCII
/// without spaces and at most 200 bytes, so it can be logged and forwarded verbatim.
pub fn request_id(client_value: Option<&[u8]>) -> String {
    RequestId::new(client_value).as_str().to_owned()
}

/// [`request_id`] without an allocation: the client's id borrowed, or a new one in place.
pub enum RequestId<'a> {
    Given(&'a str),
    Made([u8; uuid::fmt::Hyphenated::LENGTH]),
}

impl<'a> RequestId<'a> {
    /// The id for a request whose `X-Request-Id` is `client_value`, as [`request_id`] picks it.
    pub fn new(client_value: Option<&'a [u8]>) -> Self {
        let given = client_value
            .filter(|v| is_acceptable(v))
            .and_then(|v| std::str::from_utf8(v).ok());
        match given {
            Some(id) => RequestId::Given(id),
            None => {
                let mut made = [0; uuid::fmt::Hyphenated::LENGTH];
                uuid::Uuid::new_v4().hyphenated().encode_lower(&mut made);
                RequestId::Made(made)
            }
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            RequestId::Given(id) => id,
            // A hyphenated UUID is ASCII.
            RequestId::Made(made) => std::str::from_utf8(made).unwrap_or_default(),
        }
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
        assert_eq!(RequestId::new(Some(b"req-123")).as_str(), "req-123");
        let long = vec![b'a'; MAX_LEN + 1];
        for v in [
            None,
            Some(&b"has space"[..]),
            Some(&[0xff][..]),
            Some(&long[..]),
        ] {
            let made = RequestId::new(v);
            assert!(matches!(made, RequestId::Made(_)));
            assert!(
                uuid::Uuid::parse_str(made.as_str()).is_ok(),
                "{}",
                made.as_str()
            );
        }
    }
}
