//! The compiled, immutable configuration a request runs on. Built once per (re)load by
//! `config::compile`, published with `arc-swap`; nothing here is parsed per request.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::Method;
use pingora_core::upstreams::peer::HttpPeer;
use propylon_openapi::{PathTemplate, RouteTable};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

pub struct Snapshot {
    /// 1 for the config the process started with, +1 per successful reload.
    pub version: u64,
    pub loaded_at: SystemTime,
    pub server: ServerSettings,
    pub routes: RouteTable<Arc<FacadeRoute>>,
    /// `GET /openapi.json`, serialised once.
    pub merged_spec: Bytes,
    /// The effective config as JSON with secrets redacted, for `/admin/config`.
    pub redacted_config: serde_json::Value,
    /// The config file and every file it references: a change to any of them reloads.
    pub watched_files: Vec<PathBuf>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub apis: usize,
    pub operations: usize,
    pub backends: usize,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: String,
    pub admin_listen: Option<String>,
    pub admin_token: Option<String>,
    pub threads: usize,
}

/// An upstream system, with its peer prototype (address, TLS, timeouts) built once.
pub struct Backend {
    pub name: String,
    pub peer: HttpPeer,
    /// `Host` sent upstream: the URL's authority.
    pub authority: HeaderValue,
    /// Path prefix of the backend URL (`http://x/api` → `/api`), without a trailing `/`.
    pub base_path: String,
}

/// A facade operation bound to its backend: what `upstream_request_filter` applies.
pub struct FacadeRoute {
    pub api: String,
    pub operation_id: String,
    pub backend: Arc<Backend>,
    /// `request.method`; `None` keeps the client's method.
    pub method: Option<Method>,
    /// `request.path`; `None` keeps the facade path.
    pub path: Option<PathTemplate>,
    pub headers: HeaderEdits,
    pub query: QueryEdits,
}

/// `request.headers: {set, remove}`, validated at load.
#[derive(Default)]
pub struct HeaderEdits {
    pub set: Vec<(HeaderName, HeaderValue)>,
    pub remove: Vec<HeaderName>,
}

/// `request.query: {set, remove}`.
#[derive(Default)]
pub struct QueryEdits {
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
}

impl QueryEdits {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}
