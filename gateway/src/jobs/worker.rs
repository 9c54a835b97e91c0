//! The replay worker, a Pingora `BackgroundService`: claims due jobs (with a lease, so jobs
//! of a worker that died are picked up again), replays each through the same mapping as a
//! live call with the config current at replay time, and records success, a retry with
//! backoff, or a dead letter.

use super::pacing::ReplayPaces;
use super::store::{Claimed, Job, JobStore, StoredAnswer};
use super::submit::unix_ms;
use crate::exchange::{self, BackendClient, Outcome};
use crate::proxy::upstream::{Caller, Forwarding};
use crate::state::GatewayState;
use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use pingora_http::RequestHeader;
use propylon_openapi::RouteLookup;
use propylon_policies::retry::{Attempt, ReplayDecision, RetryPolicy};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long a claimed job is ours; a worker that dies leaves it due again after this.
const LEASE_MS: i64 = 60_000;
/// The wait after a claim that took jobs: their replays, or a backend found down, make more
/// jobs due soon.
const POLL: Duration = Duration::from_millis(200);
/// The longest sleep with nothing due. New jobs, finished replays and the admin API's
/// replays wake the worker at once, and the store says when the next job is due; this only
/// bounds the wait should a job become due some other way.
const IDLE_MAX: Duration = Duration::from_secs(30);
/// The shortest sleep before a job the store says is due (a clock step, a race).
const IDLE_MIN: Duration = Duration::from_millis(10);
const BATCH: usize = 64;
/// Replays in flight at once, all backends together.
const CONCURRENCY: usize = 32;
const MAX_ANSWER: usize = 16 * 1024 * 1024;
/// The longest a job waits for a down backend before it is looked at again.
const RECHECK_DOWN_MS: i64 = 2_000;

pub struct JobWorker {
    pub state: Arc<GatewayState>,
    pub store: Arc<dyn JobStore>,
    pub client: Arc<BackendClient>,
    pub paces: Arc<ReplayPaces>,
}

#[async_trait]
impl BackgroundService for JobWorker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        // After a full batch there is likely more due: claim again without waiting.
        let mut backlog = false;
        // The first look comes a poll after start; later ones when the last claim says.
        let mut wait = POLL;
        loop {
            if !backlog {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = self.state.jobs_due.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            } else if *shutdown.borrow() {
                return;
            }
            // Wait for at least one free replay slot before claiming (leases run meanwhile).
            let Ok(first) = permits.clone().acquire_owned().await else {
                return;
            };
            let free = (permits.available_permits() + 1).min(BATCH);
            drop(first);
            let now = unix_ms();
            let Claimed { jobs, next_due } = match self.store.claim_due(now, LEASE_MS, free).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim due jobs");
                    backlog = false;
                    wait = POLL;
                    continue;
                }
            };
            wait = if jobs.is_empty() {
                idle_wait(next_due, now)
            } else {
                POLL
            };
            let full = jobs.len() == free;
            let mut delivered = 0;
            for job in jobs {
                // A backend known down: the job waits, written back here so that a long outage
                // cannot keep the worker spinning through the whole backlog.
                if postpone_if_down(&self.state, self.store.as_ref(), &job).await {
                    continue;
                }
                delivered += 1;
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (state, store) = (self.state.clone(), self.store.clone());
                let (client, paces) = (self.client.clone(), self.paces.clone());
                tokio::spawn(async move {
                    // Each backend at its own pace; others are not held up meanwhile.
                    let backend = state
                        .current()
                        .operation(&job.api, &job.operation)
                        .map(|r| (r.backend.name.clone(), r.backend.replay));
                    let _slot = match backend {
                        Some((name, pacing)) => paces.enter(&name, pacing).await,
                        None => None,
                    };
                    replay(&state, store.as_ref(), &client, job).await;
                    drop(permit);
                    // A free slot: more due jobs can be claimed now, not at the next poll.
                    state.jobs_due.notify_one();
                });
            }
            backlog = full && delivered > 0;
        }
    }
}

/// How long an idle worker sleeps: until the next job is due, within [IDLE_MIN, IDLE_MAX].
fn idle_wait(next_due: Option<i64>, now: i64) -> Duration {
    let Some(at) = next_due else {
        return IDLE_MAX;
    };
    let ms = u64::try_from(at.saturating_sub(now)).unwrap_or(0);
    Duration::from_millis(ms).clamp(IDLE_MIN, IDLE_MAX)
}

/// A backend known down (maintenance, failing health check, open circuit): the job waits
/// without spending an attempt, so a long maintenance window cannot dead-letter it. `false`
/// when the job should be delivered now (the caller may be the circuit's half-open probe).
async fn postpone_if_down(state: &GatewayState, store: &dyn JobStore, job: &Job) -> bool {
    let now = unix_ms();
    let Some(route) = state.current().operation(&job.api, &job.operation) else {
        return false;
    };
    let Some(down) = state.backend_health.down(&route.backend, now) else {
        return false;
    };
    // Looked at again soon whatever the reason says: a reload may end a window, a probe may
    // close the circuit.
    let at = state
        .backend_health
        .retry_at(&route.backend, down, now)
        .min(now + RECHECK_DOWN_MS);
    let why = down.describe(&route.backend.name);
    if let Err(e) = store
        .retry_later(&job.id, job.attempts, at, &why, now)
        .await
    {
        tracing::error!(job = %job.id, error = %e, "cannot postpone the job");
    }
    true
}

/// One delivery attempt of `job`.
async fn replay(state: &GatewayState, store: &dyn JobStore, client: &BackendClient, job: Job) {
    let started = Instant::now();
    let attempts = job.attempts + 1;
    let (attempt, answer, retry) = match deliver(state, client, &job).await {
        Ok(delivery) => delivery,
        Err(reason) => {
            finish(
                state,
                store,
                &job,
                attempts,
                ReplayDecision::Dead(reason),
                None,
            )
            .await;
            return;
        }
    };
    let decision = retry.decide(attempt, attempts, jitter(&job.id, attempts));
    finish(state, store, &job, attempts, decision, answer).await;
    state
        .metrics
        .replay_duration
        .observe(started.elapsed().as_secs_f64());
}

/// Maps and sends the stored facade request; `Err` is a reason the job can never succeed
/// (its operation is gone, or its request no longer passes the spec).
async fn deliver(
    state: &GatewayState,
    client: &BackendClient,
    job: &Job,
) -> Result<(Attempt, Option<StoredAnswer>, RetryPolicy), String> {
    let snapshot = state.current();
    let request = &job.request;
    let method = http::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| format!("bad stored method {}", request.method))?;
    let (route, params) = match snapshot.routes.lookup(&method, &request.path) {
        RouteLookup::Found { value, params }
            if value.api == job.api && value.operation_id == job.operation =>
        {
            (value.clone(), params)
        }
        _ => {
            return Err(format!(
                "operation `{}` of API `{}` is no longer routed at {} {}",
                job.operation, job.api, request.method, request.path
            ))
        }
    };
    let Some(exchange) = &route.exchange else {
        return Err(format!(
            "operation `{}` no longer accepts jobs",
            job.operation
        ));
    };
    let retry = route
        .jobs
        .as_ref()
        .map(|p| p.retry.clone())
        .unwrap_or_else(|| RetryPolicy {
            max_attempts: job.max_attempts,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            retry_statuses: vec![502, 503, 504],
        });
    let header =
        facade_header(job).map_err(|e| format!("the stored request cannot be rebuilt: {e}"))?;
    let caller = Caller {
        consumer: &job.consumer,
        claims: request.claims.as_ref(),
    };
    let fwd = Forwarding {
        request_id: &job.request_id,
        client_ip: None,
    };
    let prepared = match exchange::map_request(
        &route,
        exchange,
        &params,
        &caller,
        fwd,
        header,
        Bytes::from(request.body.clone()),
    ) {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(Outcome::Problem(problem))) => {
            return Err(format!("the request no longer passes: {}", problem.detail))
        }
        Ok(Err(Outcome::Answer(_))) | Err(_) => {
            return Err("the request cannot be mapped".to_string())
        }
    };
    let mut upstream = prepared.header;
    // At-least-once delivery: the backend can tell a repeated delivery by this key.
    let key = job
        .idempotency_key
        .clone()
        .unwrap_or_else(|| job.id.clone());
    if upstream.insert_header("idempotency-key", key).is_err() {
        return Err("the idempotency key cannot be sent".to_string());
    }
    let answer = client
        .call(&route.backend.peer, upstream, prepared.body, MAX_ANSWER)
        .await;
    let health = &state.backend_health;
    match answer {
        Ok(answer) => {
            let status = answer.header.status.as_u16();
            let up = !retry.retry_statuses.contains(&status);
            health.record(&route.backend.name, up, unix_ms());
            let stored =
                super::answers::to_stored(&exchange::shape_answer(&route, exchange, answer));
            Ok((Attempt::Answered(status), Some(stored), retry))
        }
        Err(e) => {
            health.record(&route.backend.name, false, unix_ms());
            tracing::debug!(job = %job.id, error = %e, "replay attempt failed");
            Ok((Attempt::Unreachable, None, retry))
        }
    }
}

async fn finish(
    state: &GatewayState,
    store: &dyn JobStore,
    job: &Job,
    attempts: u32,
    decision: ReplayDecision,
    answer: Option<StoredAnswer>,
) {
    let now = unix_ms();
    let metrics = &state.metrics;
    let result = match decision {
        ReplayDecision::Succeeded => {
            metrics
                .jobs
                .with_label_values(&[&job.operation, "succeeded"])
                .inc();
            let answer = answer.unwrap_or(StoredAnswer {
                status: 204,
                headers: Vec::new(),
                body: Vec::new(),
            });
            store.succeed(&job.id, attempts, answer, now).await
        }
        ReplayDecision::RetryIn(delay) => {
            let next = now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
            let error = match &answer {
                Some(a) => format!("the backend answered {}", a.status),
                None => "the backend was unreachable".to_string(),
            };
            store
                .retry_later(&job.id, attempts, next, &error, now)
                .await
        }
        ReplayDecision::Dead(reason) => {
            metrics
                .jobs
                .with_label_values(&[&job.operation, "dead"])
                .inc();
            tracing::error!(job = %job.id, operation = %job.operation, consumer = %job.consumer, attempts, reason = %reason, "job dead-lettered");
            state.alerts.notify_dead(job, attempts, &reason);
            store.kill(&job.id, attempts, &reason, now).await
        }
    };
    if let Err(e) = result {
        tracing::error!(job = %job.id, error = %e, "cannot record the replay's outcome; the lease will hand the job out again");
    }
}

/// A facade request header from the stored one.
fn facade_header(job: &Job) -> pingora_error::Result<RequestHeader> {
    let request = &job.request;
    let target = match &request.query {
        Some(q) => format!("{}?{q}", request.path),
        None => request.path.clone(),
    };
    let mut header = RequestHeader::build(
        request.method.as_str(),
        target.as_bytes(),
        Some(request.headers.len()),
    )?;
    for (name, value) in &request.headers {
        header.append_header(name.clone(), value.as_str())?;
    }
    Ok(header)
}

/// A spread in [0, 1) per job and attempt, so the retries of many jobs do not align.
fn jitter(id: &str, attempts: u32) -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(id.as_bytes());
    h.write_u32(attempts);
    (h.finish() % 10_000) as f64 / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_worker_sleeps_until_the_next_job_is_due() {
        assert_eq!(idle_wait(Some(5_000), 2_000), Duration::from_secs(3));
        assert_eq!(idle_wait(None, 2_000), IDLE_MAX);
        assert_eq!(idle_wait(Some(10_000_000), 2_000), IDLE_MAX);
        // Already due (a clock step, a race): soon, not in a busy loop.
        assert_eq!(idle_wait(Some(1_000), 2_000), IDLE_MIN);
    }
}
