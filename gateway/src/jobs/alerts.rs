//! Dead-letter alerts: a JSON POST to `alerts.webhook`, itself retried, never blocking the
//! worker.

use super::store::Job;
use crate::exchange::BackendClient;
use crate::state::GatewayState;
use bytes::Bytes;
use pingora_http::RequestHeader;
use serde_json::json;
use std::sync::{Arc, Weak};
use std::time::Duration;

const ATTEMPTS: u32 = 5;
const FIRST_DELAY: Duration = Duration::from_millis(500);

pub struct Alerts {
    client: Arc<BackendClient>,
    state: std::sync::OnceLock<Weak<GatewayState>>,
}

impl Alerts {
    pub fn new(client: Arc<BackendClient>) -> Self {
        Alerts {
            client,
            state: std::sync::OnceLock::new(),
        }
    }

    /// The webhook is read from the current config at send time.
    pub fn bind(&self, state: &Arc<GatewayState>) {
        let _ = self.state.set(Arc::downgrade(state));
    }

    pub fn notify_dead(&self, job: &Job, attempts: u32, reason: &str) {
        let Some(state) = self.state.get().and_then(Weak::upgrade) else {
            return;
        };
        let body = json!({
            "event": "job.dead",
            "job": {"id": job.id, "api": job.api, "operation": job.operation, "consumer": job.consumer,
                    "attempts": attempts, "reason": reason, "request_id": job.request_id, "created_at": job.created_at},
        });
        let client = self.client.clone();
        tokio::spawn(async move {
            let mut delay = FIRST_DELAY;
            for attempt in 1..=ATTEMPTS {
                let snapshot = state.current();
                let Some(target) = &snapshot.alert_webhook else {
                    return;
                };
                match post(&client, target, body.to_string()).await {
                    Ok(()) => return,
                    Err(e) => tracing::warn!(attempt, error = %e, "alert webhook failed"),
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            tracing::error!("alert webhook gave up after {ATTEMPTS} attempts");
        });
    }
}

async fn post(
    client: &BackendClient,
    target: &crate::snapshot::HttpTarget,
    body: String,
) -> anyhow::Result<()> {
    let mut header = RequestHeader::build("POST", target.path.as_bytes(), None)?;
    header.insert_header(http::header::HOST, target.authority.clone())?;
    header.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    header.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    let answer = client
        .call(&target.peer, header, Bytes::from(body), 64 * 1024)
        .await?;
    let status = answer.header.status;
    anyhow::ensure!(status.is_success(), "the webhook answered {status}");
    Ok(())
}
