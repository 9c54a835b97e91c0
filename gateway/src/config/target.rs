//! An http endpoint the gateway calls itself (JWKS, alert webhook), resolved at load.

use super::compile::Ctx;
use crate::snapshot::HttpTarget;
use http::HeaderValue;
use pingora_core::upstreams::peer::HttpPeer;
use std::net::ToSocketAddrs;
use std::time::Duration;

pub(super) fn http_target(
    ctx: &mut Ctx<'_>,
    key: &str,
    text: &str,
    timeout: Duration,
) -> Option<HttpTarget> {
    let url = url::Url::parse(text)
        .map_err(|e| {
            ctx.error(
                key,
                format!("`{text}` is not a URL ({e})"),
                "write an absolute http URL, e.g. `http://127.0.0.1:8090/alerts`",
            )
        })
        .ok()?;
    if url.scheme() != "http" {
        ctx.error(
            key,
            format!("`{text}`: only http URLs are supported by this build"),
            "use an http endpoint on a trusted network",
        );
        return None;
    }
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        ctx.error(
            key,
            format!("`{text}` has no host"),
            "write an absolute http URL",
        );
        return None;
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let Some(addr) = (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        ctx.error(
            key,
            format!("cannot resolve the host of `{text}`"),
            "use an IP address or a resolvable host name",
        );
        return None;
    };
    let mut peer = HttpPeer::new(addr, false, host.clone());
    peer.options.connection_timeout = Some(timeout);
    peer.options.read_timeout = Some(timeout);
    let authority = HeaderValue::from_str(&format!("{host}:{port}")).ok()?;
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    Some(HttpTarget {
        peer,
        authority,
        path,
    })
}
