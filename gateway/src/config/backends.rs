//! `backends:` → upstream peers with address, TLS and timeouts fixed at load time.

use super::compile::Ctx;
use super::raw::{BodyFormat, RawBackend, RawHealth, RawXml};
use crate::snapshot::{Backend, HealthCheck, ReplayPacing};
use http::HeaderValue;
use pingora_core::upstreams::peer::HttpPeer;
use propylon_policies::limits::LimitSpec;
use propylon_policies::maintenance::MaintenanceWindow;
use propylon_policies::xml::XmlShape;
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle upstream connection stays in the keepalive pool.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Time between active health checks when `health.interval` is not given.
const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(10);

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
        let maintenance = maintenance(ctx, &key, &backend.maintenance);
        let health = health(ctx, &key, backend.health.as_ref());
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
                health: health.map(|(path, interval)| HealthCheck {
                    path: format!("{}{path}", target.base_path),
                    interval,
                }),
                base_path: target.base_path,
                maintenance,
                replay: replay_pacing(ctx, &key, backend),
            })),
        );
    }
    out
}

/// Replays in flight at once to one backend when `replay.concurrency` is not set.
const DEFAULT_REPLAY_CONCURRENCY: usize = 16;

/// `replay: { concurrency, rate }`: how hard the worker may push a backend that came back.
fn replay_pacing(ctx: &mut Ctx<'_>, key: &str, backend: &RawBackend) -> ReplayPacing {
    let Some(raw) = &backend.replay else {
        return ReplayPacing {
            concurrency: DEFAULT_REPLAY_CONCURRENCY,
            rate: None,
        };
    };
    if raw.concurrency == Some(0) {
        ctx.error(
            &format!("{key}.replay.concurrency"),
            "`concurrency` must be at least 1",
            "set a positive number, e.g. 4",
        );
    }
    let rate = raw.rate.as_deref().and_then(|text| {
        LimitSpec::parse(Some(text), None, None)
            .map_err(|e| {
                ctx.error(
                    &format!("{key}.replay.rate"),
                    format!("bad replay rate: {e}"),
                    "write `N/s`, `N/m` or `N/h`, e.g. `20/s`",
                )
            })
            .ok()
            .and_then(|spec| spec.rate)
    });
    let concurrency = raw.concurrency.map_or(DEFAULT_REPLAY_CONCURRENCY, |c| {
        usize::try_from(c.max(1)).unwrap_or(1)
    });
    ReplayPacing { concurrency, rate }
}

/// `maintenance: ["Sun 02:00-04:00 UTC", ...]`: windows when the backend is known offline.
fn maintenance(ctx: &mut Ctx<'_>, key: &str, raw: &[String]) -> Vec<MaintenanceWindow> {
    let mut windows = Vec::with_capacity(raw.len());
    for (i, text) in raw.iter().enumerate() {
        match MaintenanceWindow::parse(text) {
            Ok(window) => windows.push(window),
            Err(e) => ctx.error(
                &format!("{key}.maintenance.{i}"),
                format!("bad maintenance window `{text}`: {e}"),
                "write `Sun 02:00-04:00 UTC` (day optional, times in 24h UTC)",
            ),
        }
    }
    windows
}

/// `health: { path, interval }`: the path (relative to the backend URL) and the interval.
fn health(ctx: &mut Ctx<'_>, key: &str, raw: Option<&RawHealth>) -> Option<(String, Duration)> {
    let raw = raw?;
    let mut ok = true;
    if !raw.path.starts_with('/') || http::uri::PathAndQuery::try_from(raw.path.as_str()).is_err() {
        ctx.error(
            &format!("{key}.health.path"),
            format!(
                "health path `{}` must be a path starting with `/`",
                raw.path
            ),
            "write e.g. `/ping`",
        );
        ok = false;
    }
    let interval_key = format!("{key}.health.interval");
    let interval = match ctx.duration(&interval_key, raw.interval.as_deref()) {
        Some(d) if d < Duration::from_secs(1) => {
            ctx.error(
                &interval_key,
                "the health check interval must be at least 1s",
                "write e.g. `interval: 5s`",
            );
            ok = false;
            d
        }
        Some(d) => d,
        None if raw.interval.is_some() => {
            ok = false;
            DEFAULT_HEALTH_INTERVAL
        }
        None => DEFAULT_HEALTH_INTERVAL,
    };
    ok.then(|| (raw.path.clone(), interval))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::compile::compile_text;
    use super::super::LimitReuse;
    use std::time::Duration;

    const SPEC: &str = "openapi: \"3.1.0\"\ninfo: { title: t, version: \"1\" }\npaths:\n  /c:\n    get: { operationId: getC, responses: { \"200\": { description: ok } } }\n";

    fn compile(backend: &str) -> Result<super::super::compile::Compiled, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spec.yaml"), SPEC).unwrap();
        let config = format!("server:\n  listen: 127.0.0.1:8080\nbackends:\n  crm: {backend}\napis:\n  - name: c\n    spec: ./spec.yaml\n    operations:\n      getC: {{ backend: crm }}\n");
        compile_text(
            &dir.path().join("p.yaml"),
            &config,
            1,
            &LimitReuse::new(),
            |_| None,
        )
        .map_err(|e| e.iter().map(|d| d.one_line()).collect())
    }

    #[test]
    fn health_and_maintenance_are_compiled_without_warnings() {
        let compiled = compile("{ url: \"http://127.0.0.1:8081/api/\", health: { path: /ping, interval: 5s }, maintenance: [\"Sun 02:00-04:00 UTC\", \"23:00-01:00\"] }").unwrap();
        assert!(compiled.warnings.is_empty(), "{:?}", compiled.warnings);
        let route = compiled.snapshot.operation("c", "getC").unwrap();
        let health = route.backend.health.as_ref().unwrap();
        assert_eq!(health.path, "/api/ping");
        assert_eq!(health.interval, Duration::from_secs(5));
        assert_eq!(route.backend.maintenance.len(), 2);
        let plain = compile("{ url: \"http://127.0.0.1:8081\", health: { path: /ping } }").unwrap();
        let route = plain.snapshot.operation("c", "getC").unwrap();
        assert_eq!(
            route.backend.health.as_ref().unwrap().interval,
            Duration::from_secs(10)
        );
        assert!(route.backend.maintenance.is_empty());
    }

    #[test]
    fn bad_health_and_maintenance_are_errors() {
        for (backend, needle) in [
            (
                "{ url: \"http://127.0.0.1:8081\", health: { path: ping } }",
                "must be a path",
            ),
            (
                "{ url: \"http://127.0.0.1:8081\", health: { path: /ping, interval: 100ms } }",
                "at least 1s",
            ),
            (
                "{ url: \"http://127.0.0.1:8081\", health: { path: /ping, interval: soon } }",
                "bad duration",
            ),
            (
                "{ url: \"http://127.0.0.1:8081\", maintenance: [\"Sunday 02:00-04:00\"] }",
                "bad maintenance window",
            ),
        ] {
            let errors = compile(backend)
                .err()
                .unwrap_or_else(|| panic!("{backend} compiled"));
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].contains(needle), "{errors:?}");
        }
    }
}
