//! A call becomes a durable job: stored (committed before the 202 is written), answered with
//! `202 Accepted`, `Location: /jobs/{id}` and `Retry-After` (the Asynchronous Request-Reply
//! pattern), `Preference-Applied: respond-async` when the client asked with `Prefer`.

use super::store::{InsertOutcome, JobStore, NewJob, StoredRequest};
use crate::exchange::{Answer, Outcome};
use crate::snapshot::{FacadeRoute, JobPolicy};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use pingora_error::{Error, ErrorType, Result};
use pingora_http::RequestHeader;
use propylon_policies::{Problem, ProblemKind};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds a client is told to wait before polling the job.
const RETRY_AFTER_SECS: &str = "1";

/// Headers never kept in a job: hop-by-hop ones and credentials (a replay does not
/// authenticate again; the job keeps the consumer).
const NOT_STORED: [&str; 12] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
    "content-length",
    "host",
];

/// Everything a job needs from the live request.
pub struct Submission<'a> {
    pub route: &'a FacadeRoute,
    pub policy: &'a JobPolicy,
    pub request: &'a RequestHeader,
    pub body: Bytes,
    pub consumer: &'a str,
    pub claims: Option<&'a Value>,
    pub request_id: &'a str,
    /// The client asked for it with `Prefer: respond-async`.
    pub preferred: bool,
    /// The backend was just tried and found down (`async: fallback`).
    pub fallback: bool,
}

/// `Prefer: respond-async` (RFC 7240), among other preferences.
pub fn prefers_async(request: &RequestHeader) -> bool {
    request
        .headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',').any(|p| {
                p.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("respond-async"))
            })
        })
}

/// What a submission did: the answer for the client, and whether a new job was stored
/// (an `Idempotency-Key` repeat returns the existing one).
pub struct Submitted {
    pub outcome: Outcome,
    pub created: bool,
}

/// Stores the job durably and makes the 202, or the 422 of an `Idempotency-Key` reused with
/// another body.
pub async fn submit(store: &dyn JobStore, s: Submission<'_>) -> Result<Submitted> {
    let now = unix_ms();
    let job = new_job(&s, uuid::Uuid::new_v4().to_string(), now);
    let (id, digest) = (job.id.clone(), job.body_digest.clone());
    let outcome = store
        .insert(job)
        .await
        .map_err(|e| Error::explain(ErrorType::InternalError, format!("storing the job: {e}")))?;
    let (id, status, created) = match outcome {
        InsertOutcome::Inserted => (id, "queued".to_string(), true),
        InsertOutcome::Existing(existing) if existing.body_digest != digest => {
            let problem = reused(&existing.id);
            return Ok(Submitted {
                outcome: Outcome::Problem(problem),
                created: false,
            });
        }
        InsertOutcome::Existing(existing) => {
            let status = existing.status.as_str().to_string();
            (existing.id, status, false)
        }
    };
    Ok(Submitted {
        outcome: Outcome::Answer(accepted(&id, &status, s.preferred)),
        created,
    })
}

/// The answer to a request whose `Idempotency-Key` already made a job: the same job (202),
/// or a 422 when the request differs. `None` when the key is new.
pub async fn repeated(
    store: &dyn JobStore,
    consumer: &str,
    key: &str,
    request: &StoredRequest,
) -> Result<Option<Outcome>> {
    let existing = store.find_by_key(consumer, key).await.map_err(|e| {
        Error::explain(
            ErrorType::InternalError,
            format!("reading the job store: {e}"),
        )
    })?;
    Ok(existing.map(|job| {
        if job.body_digest != digest(request) {
            Outcome::Problem(reused(&job.id))
        } else if let Some(answer) = job.result.as_ref().filter(|_| answered_live(&job)) {
            // The first call was answered at once: the same answer again.
            Outcome::Answer(super::answers::from_stored(answer))
        } else {
            Outcome::Answer(accepted(&job.id, job.status.as_str(), false))
        }
    }))
}

/// Records the live answer of a call made with an `Idempotency-Key`, as a job that
/// succeeded without a replay (attempts 0), so that a repeat gets the same answer and is
/// never sent to the backend again.
pub async fn record_live_answer(
    store: &dyn JobStore,
    s: Submission<'_>,
    outcome: &Outcome,
) -> Result<()> {
    let answer = super::answers::to_stored(outcome);
    let now = unix_ms();
    let id = uuid::Uuid::new_v4().to_string();
    let job = new_job(&s, id.clone(), now);
    let fail = |e: super::store::StoreError| {
        Error::explain(
            ErrorType::InternalError,
            format!("recording the answer: {e}"),
        )
    };
    if let InsertOutcome::Inserted = store.insert(job).await.map_err(fail)? {
        store.succeed(&id, 0, answer, now).await.map_err(fail)?;
    }
    Ok(())
}

/// The job of a submission: the facade request less credentials, who made it, and when it
/// is first due.
fn new_job(s: &Submission<'_>, id: String, now: i64) -> NewJob {
    let request = stored_request(s.request, s.body.clone(), s.route, s.claims);
    let idempotency_key = s
        .request
        .headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    NewJob {
        id,
        consumer: s.consumer.to_string(),
        api: s.route.api.clone(),
        operation: s.route.operation_id.clone(),
        body_digest: digest(&request),
        request,
        request_id: s.request_id.to_string(),
        idempotency_key,
        max_attempts: s.policy.retry.max_attempts,
        // A fallback job's backend has just failed: its first replay waits one backoff.
        next_attempt_at: if s.fallback {
            now + millis(s.policy.retry.backoff)
        } else {
            now
        },
        created_at: now,
    }
}

/// A job that succeeded with no replay holds the answer its first call got live.
fn answered_live(job: &super::store::Job) -> bool {
    job.status == super::store::JobStatus::Succeeded && job.attempts == 0
}

fn reused(id: &str) -> Problem {
    Problem::new(
        ProblemKind::IdempotencyKeyReused,
        format!("Idempotency-Key was used for job {id} with another request"),
    )
}

/// The 409 of a key whose first request is still being handled.
pub fn key_in_progress(key: &str) -> Problem {
    Problem::new(
        ProblemKind::IdempotencyKeyInProgress,
        format!("a request with Idempotency-Key `{key}` is still being handled; retry later"),
    )
}

fn accepted(id: &str, status: &str, preferred: bool) -> Answer {
    let mut headers = vec![
        (http::header::LOCATION, header_value(&format!("/jobs/{id}"))),
        (
            http::header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECS),
        ),
        (
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
    ];
    if preferred {
        headers.push((
            HeaderName::from_static("preference-applied"),
            HeaderValue::from_static("respond-async"),
        ));
    }
    let body = json!({"id": id, "status": status});
    Answer {
        status: 202,
        headers,
        body: Bytes::from(body.to_string()),
    }
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("/jobs"))
}

pub fn stored_request(
    request: &RequestHeader,
    body: Bytes,
    route: &FacadeRoute,
    claims: Option<&Value>,
) -> StoredRequest {
    let api_key_headers = super::api_key_headers(route);
    let headers = request
        .headers
        .iter()
        .filter(|(name, _)| {
            !NOT_STORED.contains(&name.as_str()) && !api_key_headers.contains(&name.as_str())
        })
        .filter_map(|(name, value)| {
            Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
        })
        .collect();
    StoredRequest {
        method: request.method.as_str().to_string(),
        path: request.uri.path().to_string(),
        query: request.uri.query().map(str::to_string),
        headers,
        body: body.to_vec(),
        claims: claims.cloned(),
    }
}

/// What makes two submissions "the same request" for `Idempotency-Key`.
fn digest(request: &StoredRequest) -> String {
    let mut hash = Sha256::new();
    hash.update(request.method.as_bytes());
    hash.update(b"\n");
    hash.update(request.path.as_bytes());
    hash.update(b"\n");
    hash.update(request.query.as_deref().unwrap_or("").as_bytes());
    hash.update(b"\n");
    hash.update(&request.body);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}
