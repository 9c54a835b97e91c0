pub mod alerts;
pub mod answers;
pub mod client_api;
pub mod idempotency;
pub mod pacing;
pub mod store;
pub mod submit;
pub mod worker;

use crate::snapshot::FacadeRoute;
use propylon_openapi::security::{SchemeKind, Security};

/// The API key headers of an operation: credentials, never stored in a job.
pub fn api_key_headers(route: &FacadeRoute) -> Vec<&str> {
    match &route.security {
        Security::Public => Vec::new(),
        Security::AnyOf(alternatives) => alternatives
            .iter()
            .flatten()
            .filter_map(|r| match &r.kind {
                SchemeKind::ApiKeyHeader(name) => Some(name.as_str()),
                SchemeKind::Jwt => None,
            })
            .collect(),
    }
}
