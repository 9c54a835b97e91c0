//! `backends:` → upstream peers with address, TLS and timeouts fixed at load time.

use super::compile::Ctx;
use super::raw::{BodyFormat, RawBackend, RawXml};
use crate::snapshot::Backend;
use http::HeaderValue;
use pingora_core::upstreams::peer::HttpPeer;
use propylon_policies::xml::XmlShape;
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle upstream connection stays in the keepalive pool.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) fn compile(
    ctx: &mut Ctx<'_>,
    raw: &BTreeMap<String, RawBackend>,
) -> BTreeMap<String, Option<Arc<Backend>>> {
    let mut out = BTreeMap::new();
    for (name, backend) in raw {
        let key = format!("backends.{name}");
        let timeout = ctx.duration(&format!("{key}.timeout"), backend.timeout.as_deref());
        let connect = ctx.duration(
            &format!("{key}.connect_timeout"),
            backend.connect_timeout.as_deref(),
        );
        let read_timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
        let connect_timeout = connect.unwrap_or(read_timeout.min(MAX_DEFAULT_CONNECT_TIMEOUT));
        let Some(target) = parse_url(ctx, &format!("{key}.url"), &backend.url) else {
            out.insert(name.clone(), None);
            continue;
        };
        let mut peer = HttpPeer::new(target.addr, target.tls, target.host.clone());
        peer.options.connection_timeout = Some(connect_timeout);
        peer.options.read_timeout = Some(read_timeout);
        peer.options.write_timeout = Some(read_timeout);
        peer.options.idle_timeout = Some(POOL_IDLE_TIMEOUT);
        out.insert(
            name.clone(),
            Some(Arc::new(Backend {
                name: name.clone(),
                xml: backend_xml(ctx, &key, backend),
                peer,
                authority: target.authority,
                base_path: target.base_path,
            })),
        );
    }
    out
}

/// `format: xml` (with optional `xml:` settings) on a backend applies to all its operations.
fn backend_xml(ctx: &mut Ctx<'_>, key: &str, backend: &RawBackend) -> Option<XmlShape> {
    let raw = match (backend.format, &backend.xml) {
        (Some(BodyFormat::Json), _) | (None, None) => return None,
        (_, Some(raw)) => raw.clone(),
        (Some(BodyFormat::Xml), None) => RawXml {
            root: None,
            namespace: None,
            envelope: None,
        },
    };
    super::exchange::xml_shape(ctx, &format!("{key}.xml"), &raw)
}

struct Target {
    addr: SocketAddr,
    tls: bool,
    host: String,
    authority: HeaderValue,
    base_path: String,
}

fn parse_url(ctx: &mut Ctx<'_>, key: &str, text: &str) -> Option<Target> {
    let example =
        "write an absolute http(s) URL, e.g. `http://127.0.0.1:8081` or `https://crm.internal/api`";
    let url = match url::Url::parse(text) {
        Ok(url) => url,
        Err(e) => {
            ctx.error(key, format!("`{text}` is not a valid URL ({e})"), example);
            return None;
        }
    };
    let tls = match url.scheme() {
        "http" => false,
        // TLS to backends needs one of Pingora's TLS features, which this build leaves out
        // (they cost build time and system libraries); say so rather than fail at connect.
        "https" => {
            ctx.error(key, format!("`{text}`: https backends are not supported by this build yet"), "reach the backend over http (e.g. through a local TLS-originating sidecar), or follow the TLS issue");
            return None;
        }
        other => {
            ctx.error(
                key,
                format!("backend URL scheme `{other}` is not supported"),
                example,
            );
            return None;
        }
    };
    if url.query().is_some() || url.fragment().is_some() {
        ctx.error(
            key,
            format!("backend URL `{text}` has a query or fragment"),
            "put query parameters under the operation's `request.query.set`",
        );
        return None;
    }
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        ctx.error(key, format!("backend URL `{text}` has no host"), example);
        return None;
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    // Resolved once per load: HttpPeer takes an address, and the hot path must not block on DNS.
    let addr = match (host.as_str(), port)
        .to_socket_addrs()
        .map(|mut a| a.next())
    {
        Ok(Some(addr)) => addr,
        Ok(None) | Err(_) => {
            ctx.error(
                key,
                format!("cannot resolve the host of `{text}`"),
                "use an IP address or a host name this machine can resolve",
            );
            return None;
        }
    };
    let authority = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or(&host)),
        None => url.host_str().unwrap_or(&host).to_string(),
    };
    let Ok(authority) = HeaderValue::from_str(&authority) else {
        ctx.error(
            key,
            format!("backend URL `{text}` has a host that cannot be sent as a header"),
            example,
        );
        return None;
    };
    Some(Target {
        addr,
        tls,
        host,
        authority,
        base_path: url.path().trim_end_matches('/').to_string(),
    })
}
