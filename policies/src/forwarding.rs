//! `X-Forwarded-For` / `X-Forwarded-Proto`, as de-facto standard proxies set them.

use std::borrow::Cow;

/// The `X-Forwarded-For` value to send upstream: the client's list with the peer appended
/// (the peer's address itself, not a copy, when the client sent none).
pub fn forwarded_for<'a>(existing: Option<&str>, client_ip: &'a str) -> Cow<'a, str> {
    match existing.map(str::trim) {
        Some(prev) if !prev.is_empty() => Cow::Owned(format!("{prev}, {client_ip}")),
        _ => Cow::Borrowed(client_ip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_the_peer() {
        assert_eq!(forwarded_for(None, "127.0.0.1"), "127.0.0.1");
        assert_eq!(forwarded_for(Some(" "), "127.0.0.1"), "127.0.0.1");
        assert_eq!(
            forwarded_for(Some("10.0.0.1"), "127.0.0.1"),
            "10.0.0.1, 127.0.0.1"
        );
    }
}
