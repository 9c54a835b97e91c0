//! Keys fetched from `auth.jwt.jwks_url`: cached, refreshed when a token names an unknown
//! `kid` (one fetch in flight, at most one per cooldown), served stale when the endpoint
//! fails. Lives in `GatewayState`, so a reload does not drop the keys.

use crate::exchange::BackendClient;
use crate::snapshot::HttpTarget;
use arc_swap::ArcSwap;
use bytes::Bytes;
use pingora_http::RequestHeader;
use propylon_policies::auth::KeySet;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAX_JWKS: usize = 1024 * 1024;

#[derive(Default)]
pub struct JwksCache {
    keys: ArcSwap<KeySet>,
    /// When the last fetch started; guards the cooldown and makes fetches single-flight.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl JwksCache {
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// Fetches the key set unless a fetch started less than `cooldown` ago. Concurrent
    /// callers wait for the fetch in flight instead of starting their own.
    pub async fn refresh(&self, client: &BackendClient, source: &HttpTarget, cooldown: Duration) {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < cooldown) {
            return;
        }
        *last = Some(Instant::now());
        match fetch(client, source).await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "JWKS fetched");
                self.keys.store(Arc::new(keys));
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWKS fetch failed; keeping the keys already known")
            }
        }
    }
}

async fn fetch(client: &BackendClient, source: &HttpTarget) -> anyhow::Result<KeySet> {
    let mut header = RequestHeader::build("GET", source.path.as_bytes(), None)?;
    header.insert_header(http::header::HOST, source.authority.clone())?;
    header.insert_header(http::header::ACCEPT, "application/json")?;
    let answer = client
        .call(&source.peer, header, Bytes::new(), MAX_JWKS)
        .await?;
    let status = answer.header.status;
    anyhow::ensure!(
        status == http::StatusCode::OK,
        "the JWKS endpoint answered {status}"
    );
    Ok(KeySet::from_jwks(&answer.body)?)
}
