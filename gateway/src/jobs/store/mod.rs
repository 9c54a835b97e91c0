//! The durable job store: the [`JobStore`] trait the gateway and its worker use, and its
//! embedded implementation on SQLite ([`SqliteJobStore`], in the store's `propylon.db`).
//!
//! The trait is shaped so that a Redis implementation for several nodes can follow (a stream
//! and consumer group for due jobs, a sorted set for delayed ones, a hash per job): every call
//! names a job by id or asks for a bounded set, claims carry a lease, and no call depends on
//! SQL. Times are unix milliseconds, passed in by the caller so that tests control the clock.

mod sqlite;
mod writer;

#[cfg(test)]
mod tests;

pub use sqlite::SqliteJobStore;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    InFlight,
    Succeeded,
    Dead,
}

impl JobStatus {
    /// The name used in the API and stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::InFlight => "in_flight",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Dead => "dead",
        }
    }

    /// The inverse of [`JobStatus::as_str`]; `None` for anything else.
    pub fn parse(text: &str) -> Option<JobStatus> {
        match text {
            "queued" => Some(JobStatus::Queued),
            "in_flight" => Some(JobStatus::InFlight),
            "succeeded" => Some(JobStatus::Succeeded),
            "dead" => Some(JobStatus::Dead),
            _ => None,
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The facade request as received (hop-by-hop headers and credentials already removed by the caller).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The caller's verified token claims, for mappings replayed by the worker (the token
    /// itself is never stored).
    #[serde(default)]
    pub claims: Option<serde_json::Value>,
}

/// The mapped answer the client will read at /jobs/{id}/result.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A job to accept.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub consumer: String,
    pub api: String,
    pub operation: String,
    pub request: StoredRequest,
    pub request_id: String,
    pub idempotency_key: Option<String>,
    /// Hex sha-256 of method+path+query+body, for the 422 check on a reused idempotency key.
    pub body_digest: String,
    pub max_attempts: u32,
    /// Unix ms.
    pub next_attempt_at: i64,
    /// Unix ms.
    pub created_at: i64,
}

/// A stored job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub consumer: String,
    pub api: String,
    pub operation: String,
    pub status: JobStatus,
    pub attempts: u32,
    pub max_attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub request: StoredRequest,
    pub request_id: String,
    pub idempotency_key: Option<String>,
    pub body_digest: String,
    pub result: Option<StoredAnswer>,
    /// Set while in flight: when the claim lapses and another worker may take the job.
    pub lease_until: Option<i64>,
}

/// What [`JobStore::claim_due`] took, and when the store next has a job due.
#[derive(Debug, Default)]
pub struct Claimed {
    pub jobs: Vec<Job>,
    /// The earliest time (unix ms) a job not claimed now becomes due: a queued job's next
    /// attempt, or the end of an in-flight job's lease (these just claimed included). `None`
    /// when no job is queued or in flight.
    pub next_due: Option<i64>,
}

/// What [`JobStore::insert`] did.
#[derive(Debug)]
pub enum InsertOutcome {
    Inserted,
    /// The same (consumer, idempotency_key) is already stored: that job.
    Existing(Box<Job>),
}

/// Jobs per status, for `/metrics` and health.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct JobCounts {
    pub queued: u64,
    pub in_flight: u64,
    pub succeeded: u64,
    pub dead: u64,
    /// next_attempt_at of the oldest due queued job.
    pub oldest_due: Option<i64>,
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("job store: {context}: {error}")]
    Sqlite {
        context: String,
        error: rusqlite::Error,
    },
    #[error("job store: {context}: {error}")]
    Io {
        context: String,
        error: std::io::Error,
    },
    #[error("job store: encoding {context}: {error}")]
    Encode {
        context: String,
        error: serde_json::Error,
    },
    #[error("job store: job {0} not found")]
    NotFound(String),
    /// The batch this call was part of could not be committed; nothing of it was stored.
    #[error("job store: committing a batch of {batch} writes failed: {detail}")]
    Commit { batch: usize, detail: String },
    #[error("job store: the writer thread has stopped")]
    WriterGone,
    #[error("job store: a blocking read task failed: {0}")]
    Task(String),
}

impl StoreError {
    pub(crate) fn sqlite(context: impl Into<String>, error: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            context: context.into(),
            error,
        }
    }
}

/// Durable jobs. Object-safe: the gateway holds `Arc<dyn JobStore>`.
#[async_trait::async_trait]
pub trait JobStore: Send + Sync {
    /// Durable (committed, fsynced) when it returns Ok. Concurrent inserts share one commit.
    /// With an idempotency key already stored for the same consumer, stores nothing and
    /// returns that job.
    async fn insert(&self, job: NewJob) -> Result<InsertOutcome, StoreError>;

    async fn get(&self, id: &str) -> Result<Option<Job>, StoreError>;

    /// The job a consumer made with this `Idempotency-Key`, if any.
    async fn find_by_key(&self, consumer: &str, key: &str) -> Result<Option<Job>, StoreError>;

    /// Claims up to `limit` jobs that are queued and due (next_attempt_at <= now), or in_flight
    /// with an expired lease (lease_until <= now); marks them in_flight with
    /// lease_until = now + lease_ms. Oldest due first (an expired lease counts as due at its
    /// lease_until). Does not change `attempts`: the worker reports them on the outcome.
    /// Also says when the next job not claimed becomes due, so an idle worker can sleep
    /// until then.
    async fn claim_due(&self, now: i64, lease_ms: i64, limit: usize)
        -> Result<Claimed, StoreError>;

    /// → succeeded with the answer, whatever the status (a success is final).
    /// `NotFound` when the job is gone (deleted while in flight).
    async fn succeed(
        &self,
        id: &str,
        attempts: u32,
        answer: StoredAnswer,
        now: i64,
    ) -> Result<(), StoreError>;

    /// in_flight → queued, due at `next_attempt_at`. Ignored (Ok) when the job is no longer
    /// in flight (another worker finished it after this one's lease lapsed); `NotFound` when gone.
    async fn retry_later(
        &self,
        id: &str,
        attempts: u32,
        next_attempt_at: i64,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    /// in_flight → dead, `reason` as last_error. Same rules as [`JobStore::retry_later`].
    async fn kill(&self, id: &str, attempts: u32, reason: &str, now: i64)
        -> Result<(), StoreError>;

    /// Newest first, at most `limit`, full rows. With a status: by updated_at (the most
    /// recently dead first); without: by insertion.
    async fn list(&self, status: Option<JobStatus>, limit: usize) -> Result<Vec<Job>, StoreError>;

    /// Admin replay: a dead (or any not-in-flight) job back to queued, attempts 0, due now,
    /// result cleared (last_error kept). false when no such job.
    async fn requeue(&self, id: &str, now: i64) -> Result<bool, StoreError>;

    /// Every dead job back to queued as in [`JobStore::requeue`]. Returns how many.
    async fn requeue_dead(&self, now: i64) -> Result<u64, StoreError>;

    /// Deletes a job in any status. false when no such job.
    async fn delete(&self, id: &str) -> Result<bool, StoreError>;

    async fn counts(&self, now: i64) -> Result<JobCounts, StoreError>;

    /// Deletes succeeded jobs whose updated_at (completion) is older than `before` (result
    /// retention). Returns how many.
    async fn purge_succeeded(&self, before: i64) -> Result<u64, StoreError>;
}
