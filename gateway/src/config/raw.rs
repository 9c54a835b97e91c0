//! The config file as admins write it (DESIGN.md). Parsed with serde, unknown fields refused,
//! then compiled into a `Snapshot` by `compile.rs`. Sections whose behaviour comes in later
//! releases are typed here too, so a typo in them is an error today.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<RawStore>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RawAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<RawQuotas>,
    #[serde(default)]
    pub backends: BTreeMap<String, RawBackend>,
    #[serde(default)]
    pub apis: Vec<RawApi>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<RawAlerts>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Embedded,
    Redis,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub kind: StoreKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// How long a succeeded job's answer stays at `/jobs/{id}/result` (default 24h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_retention: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<RawJwt>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_keys: Vec<RawApiKey>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub algorithms: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_claim: Option<String>,
    /// Clock skew accepted on `exp` / `nbf` (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leeway: Option<String>,
    /// Shortest time between two JWKS fetches triggered by unknown `kid`s (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_cooldown: Option<String>,
    /// HS256 keys held in the config (use `${VAR}`), for IdPs that sign with a shared secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hmac_secrets: Vec<RawHmacSecret>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHmacSecret {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    pub secret: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
    pub consumer: String,
    pub key_sha256: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuotas {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<RawLimit>,
    #[serde(default)]
    pub consumers: BTreeMap<String, RawLimit>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackend {
    pub url: String,
    /// Read and write timeout of one upstream call (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// TCP (and TLS) connect timeout (default: `timeout`, at most 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<RawHealth>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintenance: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<RawReplay>,
    /// `xml`: every operation on this backend speaks XML (an operation may override).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<BodyFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xml: Option<RawXml>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    Json,
    Xml,
}

/// How JSON becomes XML for an XML backend.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawXml {
    /// The document element of the request, e.g. `GetCustomerRequest` (default `request`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `none` (default), `soap11` or `soap12`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<XmlEnvelope>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum XmlEnvelope {
    None,
    Soap11,
    Soap12,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawReplay {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub name: String,
    pub spec: String,
    #[serde(default)]
    pub operations: BTreeMap<String, RawOperation>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AsyncMode {
    Never,
    Fallback,
    Always,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawOperation {
    pub backend: String,
    /// This operation's own limit, instead of the consumer's tier (keyed by consumer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<RawLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RawRequestMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<RawResponseMap>,
    #[serde(default, rename = "async", skip_serializing_if = "Option::is_none")]
    pub async_mode: Option<AsyncMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RawRetry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body: Option<String>,
    /// Validate requests against the facade spec (default true). `false` lets a large
    /// upload with a body schema stream instead of being buffered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<BodyFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xml: Option<RawXml>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequestMap {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<RawFieldMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<RawFieldMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawResponseMap {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub status: BTreeMap<u16, u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<RawFieldMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// `problem` (default when the operation maps a body) turns a backend's 4xx/5xx answer
    /// into an RFC 9457 problem so clients never see a legacy error page; `pass` relays it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<ErrorMode>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ErrorMode {
    Problem,
    Pass,
}

/// `{set, remove, rename}` for headers or query parameters.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawFieldMap {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rename: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Backend statuses that mean "try again later": they turn a `fallback` call into a job
    /// and make a replay retry (default 502, 503, 504; 408 and 429 always retry a replay).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_status: Vec<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}
