//! The compiled, immutable configuration a request runs on. Built once per (re)load by
//! `config::compile`, published with `arc-swap`; nothing here is parsed per request.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::Method;
use pingora_core::upstreams::peer::HttpPeer;
use propylon_openapi::security::Security;
use propylon_openapi::validate::RequestValidator;
use propylon_openapi::{PathTemplate, RouteTable};
use propylon_policies::auth::{ApiKeys, JwtVerifier, KeySet, TokenCache};
use propylon_policies::limits::Limit;
use propylon_policies::mapping::{
    BodyTemplate, ClaimNames, HeaderNames, Reads, Roots, StatusMap, ValueTemplate,
};
use propylon_policies::retry::RetryPolicy;
use propylon_policies::xml::XmlShape;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
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
    pub auth: AuthSettings,
    pub limits: LimitPlan,
    /// `alerts.webhook`: POSTed when a job dead-letters.
    pub alert_webhook: Option<HttpTarget>,
    /// Every routed operation by `(api, operationId)`, for jobs that name their operation.
    pub operations: HashMap<(String, String), Arc<FacadeRoute>>,
}

impl Snapshot {
    pub fn operation(&self, api: &str, operation_id: &str) -> Option<Arc<FacadeRoute>> {
        self.operations
            .get(&(api.to_string(), operation_id.to_string()))
            .cloned()
    }
}

/// `auth:` compiled: who may call, and how to tell.
pub struct AuthSettings {
    pub verifier: Option<JwtVerifier>,
    /// Keys from `jwks_file` and `hmac_secrets`; keys fetched from `jwks_url` live in
    /// `GatewayState` so they survive reloads.
    pub static_keys: KeySet,
    pub jwks_url: Option<HttpTarget>,
    pub jwks_cooldown: Duration,
    pub api_keys: ApiKeys,
    pub consumer_claim: String,
    pub token_cache: TokenCache,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            verifier: None,
            static_keys: KeySet::default(),
            jwks_url: None,
            jwks_cooldown: Duration::from_secs(10),
            api_keys: ApiKeys::default(),
            consumer_claim: "sub".into(),
            token_cache: TokenCache::new(1),
        }
    }
}

/// An http endpoint the gateway itself calls (the JWKS, the alert webhook).
pub struct HttpTarget {
    pub peer: HttpPeer,
    pub authority: HeaderValue,
    pub path: String,
}

/// `quotas:` compiled. Limits keep their counters across reloads when their spec is unchanged
/// (see `LimitPlan::adopt`).
#[derive(Default)]
pub struct LimitPlan {
    pub default: Option<Arc<Limit>>,
    pub consumers: HashMap<String, Arc<Limit>>,
    /// Every limit of the snapshot, operations' included, for the next reload to adopt.
    pub all: Vec<Arc<Limit>>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub apis: usize,
    pub operations: usize,
    pub backends: usize,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// `store.path`, resolved from the config's folder (default `./data`).
    pub store_path: PathBuf,
    /// `store.result_retention`: how long succeeded jobs and their answers are kept.
    pub result_retention: Duration,
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
    /// `format: xml` on the backend: the default XML shape of its operations.
    pub xml: Option<XmlShape>,
    /// Path prefix of the backend URL (`http://x/api` → `/api`), without a trailing `/`.
    pub base_path: String,
    /// `maintenance:` windows: known offline, calls go straight to the queue.
    pub maintenance: Vec<propylon_policies::maintenance::MaintenanceWindow>,
    /// `health: { path, interval }`: the active health check, if any.
    pub health: Option<HealthCheck>,
    pub replay: ReplayPacing,
}

/// `replay: { concurrency, rate }` of a backend: the job worker's pace towards it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayPacing {
    pub concurrency: usize,
    pub rate: Option<propylon_policies::limits::Rate>,
}

/// `health:` of a backend, checked by `crate::health::HealthChecker`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// The path sent upstream: the backend URL's path prefix + `health.path`.
    pub path: String,
    /// Time between checks (default 10s).
    pub interval: Duration,
}

/// A facade operation bound to its backend: what the proxy phases apply.
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
    /// Parameter and body checks from the facade spec; `None` when there is nothing to check.
    pub validator: Option<RequestValidator>,
    /// `Some` when the operation needs whole bodies (mapping, XML, body validation); such
    /// requests are read, checked and mapped before the backend is called. `None` streams.
    pub exchange: Option<BufferedExchange>,
    /// `response.status` and `response.headers`, applied on both paths.
    pub response: ResponseEdits,
    /// Which parts of the request context the operation's templates read.
    pub roots: Roots,
    /// Which request headers they read.
    pub header_names: HeaderNames,
    /// Which claims they read.
    pub claim_names: ClaimNames,
    /// The spec's `security` for this operation.
    pub security: Security,
    /// The operation's own limit (`quotas:` on the operation), instead of the consumer's tier.
    pub limit: Option<Arc<Limit>>,
    /// `async` and `retry`: when a call becomes a durable job, and how it is replayed.
    pub jobs: Option<JobPolicy>,
    /// The operation's request metrics, resolved on its first request (`proxy::access`).
    pub metrics: crate::metrics::RouteMetrics,
}

#[derive(Debug, Clone)]
pub struct JobPolicy {
    /// `always`: every call is a job; `false` (fallback): only when the backend is down.
    pub always: bool,
    pub retry: RetryPolicy,
}

/// What a buffered operation does with whole bodies.
pub struct BufferedExchange {
    /// Bodies above this get a 413 problem.
    pub max_body: usize,
    pub validate_body: bool,
    pub request_body: Option<BodyTemplate>,
    /// Render the (mapped) JSON request as XML for the backend.
    pub request_xml: Option<XmlShape>,
    pub response_body: Option<BodyTemplate>,
    /// Parse the backend's XML answers into JSON before mapping.
    pub response_xml: bool,
    /// Turn the backend's 4xx/5xx answers into problems instead of relaying them.
    pub errors_as_problems: bool,
    /// The request's templates read a [`Borrowed`](propylon_policies::mapping::Borrowed)
    /// body (validated and mapped from one parse): direct paths only and no XML.
    pub request_borrowed: bool,
    /// The same for the answer's body template and header templates.
    pub response_borrowed: bool,
    /// The parts of the response context those templates read.
    pub response_roots: Roots,
    /// What they read of the backend's answer: a borrowed answer is built only that far.
    pub response_reads: Reads,
}

/// `{set, remove, rename}` on headers; `set` values are templates over the request context.
#[derive(Default)]
pub struct HeaderEdits {
    pub set: Vec<(HeaderName, ValueTemplate)>,
    pub remove: Vec<HeaderName>,
    pub rename: Vec<(HeaderName, HeaderName)>,
}

impl HeaderEdits {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty() && self.rename.is_empty()
    }
}

/// `request.query: {set, remove, rename}`.
#[derive(Default)]
pub struct QueryEdits {
    pub set: Vec<(String, ValueTemplate)>,
    pub remove: Vec<String>,
    pub rename: Vec<(String, String)>,
}

impl QueryEdits {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty() && self.rename.is_empty()
    }
}

#[derive(Default)]
pub struct ResponseEdits {
    pub status: Option<StatusMap>,
    pub headers: HeaderEdits,
}
