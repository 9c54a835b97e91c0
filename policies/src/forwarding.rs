//! `X-Forwarded-For` / `X-Forwarded-Proto`, as de-facto standard proxies set them.

/// The `X-Forwarded-For` value to send upstream: the client's list with the peer appended.
pub fn forwarded_for(existing: Option<&str>, client_ip: &str) -> String {
    match existing.map(str::trim) {
        Some(prev) if !prev.is_empty() => format!("{prev}, {client_ip}"),
        _ => client_ip.to_string(),
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
