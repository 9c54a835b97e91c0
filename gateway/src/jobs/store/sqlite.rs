//! [`SqliteJobStore`]: the jobs table in the embedded store's `propylon.db` (WAL,
//! synchronous=FULL). Writes go through the group-commit writer thread ([`super::writer`]);
//! reads use their own connection on a blocking task.
//!
//! Operators can read it with sqlite3, e.g.
//! `SELECT id, status, attempts, last_error FROM jobs WHERE status = 'dead';` — headers are
//! JSON text (`[["name","value"],…]`), bodies are BLOBs (`CAST(req_body AS TEXT)`).

use super::writer::{self, Command};
use super::{
    Claimed, InsertOutcome, Job, JobCounts, JobStatus, JobStore, NewJob, StoreError, StoredAnswer,
    StoredRequest,
};
use rusqlite::config::DbConfig;
use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long a connection waits for another one's write lock (the quota store, sqlite3).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id              TEXT PRIMARY KEY,
    consumer        TEXT NOT NULL,
    api             TEXT NOT NULL,
    operation       TEXT NOT NULL,
    status          TEXT NOT NULL
                    CHECK (status IN ('queued', 'in_flight', 'succeeded', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    request_id      TEXT NOT NULL,
    idempotency_key TEXT,
    body_digest     TEXT NOT NULL,
    req_method      TEXT NOT NULL,
    req_path        TEXT NOT NULL,
    req_query       TEXT,
    req_headers     TEXT NOT NULL,
    req_body        BLOB NOT NULL,
    req_claims      TEXT,
    result_status   INTEGER,
    result_headers  TEXT,
    result_body     BLOB
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (status, next_attempt_at);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON jobs (consumer, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_status_updated ON jobs (status, updated_at);
";

const COLUMNS: &str = "id, consumer, api, operation, status, attempts, max_attempts, \
     next_attempt_at, lease_until, last_error, created_at, updated_at, request_id, \
     idempotency_key, body_digest, req_method, req_path, req_query, req_headers, req_body, \
     result_status, result_headers, result_body, req_claims";

/// The embedded job store. Cheap to share behind `Arc<dyn JobStore>`.
pub struct SqliteJobStore {
    commands: Option<mpsc::Sender<Command>>,
    writer: Option<std::thread::JoinHandle<()>>,
    reader: Arc<Mutex<Connection>>,
}

impl SqliteJobStore {
    /// Opens (or creates) the jobs table and its indexes in `db_path` (normally
    /// `<store.path>/propylon.db`) and starts the writer thread. Blocking: call at start-up.
    pub fn open(db_path: &Path) -> Result<SqliteJobStore, StoreError> {
        if let Some(dir) = db_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|error| StoreError::Io {
                context: format!("creating the store folder {}", dir.display()),
                error,
            })?;
        }
        let at = |what: &str| format!("{what} {}", db_path.display());
        let write = Connection::open(db_path).map_err(|e| StoreError::sqlite(at("opening"), e))?;
        configure(&write).map_err(|e| StoreError::sqlite(at("configuring"), e))?;
        write
            .execute_batch(SCHEMA)
            .map_err(|e| StoreError::sqlite(at("creating the jobs table in"), e))?;
        // The embedded store belongs to this one process: whatever a previous run had in
        // flight when it died (`kill -9`) is due again now, not when its lease would end.
        write
            .execute(
                "UPDATE jobs SET status = 'queued', lease_until = NULL WHERE status = 'in_flight'",
                [],
            )
            .map_err(|e| StoreError::sqlite(at("releasing the leases of a previous run in"), e))?;
        let read = Connection::open(db_path)
            .map_err(|e| StoreError::sqlite(at("opening (for reading)"), e))?;
        configure(&read).map_err(|e| StoreError::sqlite(at("configuring"), e))?;
        read.pragma_update(None, "query_only", true)
            .map_err(|e| StoreError::sqlite(at("configuring"), e))?;

        let (sender, receiver) = mpsc::channel(writer::QUEUE);
        let handle = std::thread::Builder::new()
            .name("job-store-writer".into())
            .spawn(move || writer::run(write, receiver))
            .map_err(|error| StoreError::Io {
                context: "starting the job store writer thread".into(),
                error,
            })?;
        Ok(SqliteJobStore {
            commands: Some(sender),
            writer: Some(handle),
            reader: Arc::new(Mutex::new(read)),
        })
    }

    /// Sends a command to the writer and waits for its committed answer.
    async fn write<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Command,
    ) -> Result<T, StoreError> {
        let commands = self.commands.as_ref().ok_or(StoreError::WriterGone)?;
        let (reply, answer) = oneshot::channel();
        commands
            .send(make(reply))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Runs `read` on the read connection on a blocking task.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || {
            let conn = reader
                .lock()
                .map_err(|_| StoreError::Task("the read connection's lock is poisoned".into()))?;
            read(&conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

impl Drop for SqliteJobStore {
    /// Closes the queue and waits for the writer to finish what was queued.
    fn drop(&mut self) {
        drop(self.commands.take());
        if let Some(handle) = self.writer.take() {
            if handle.join().is_err() {
                tracing::error!("the job store writer thread panicked");
            }
        }
    }
}

pub(super) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Stable plans: without this, SQLite re-prepares a statement whenever a value is bound to
    // its `LIMIT ?` (to plan with the value), so every claim of due jobs compiled both its
    // queries afresh, ~228,000 instructions each.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

#[async_trait::async_trait]
impl JobStore for SqliteJobStore {
    async fn insert(&self, job: NewJob) -> Result<InsertOutcome, StoreError> {
        // Encoding happens here, on the caller's task, to keep the writer thread's work small.
        let row = Box::new(InsertRow::new(job)?);
        self.write(|reply| Command::Insert(row, reply)).await
    }

    async fn get(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            get_on(conn, &id).map_err(|e| StoreError::sqlite(format!("reading job {id}"), e))
        })
        .await
    }

    async fn find_by_key(&self, consumer: &str, key: &str) -> Result<Option<Job>, StoreError> {
        let (consumer, key) = (consumer.to_string(), key.to_string());
        self.read(move |conn| {
            find_by_key_on(conn, &consumer, &key)
                .map_err(|e| StoreError::sqlite(format!("reading the job of key {key}"), e))
        })
        .await
    }

    async fn claim_due(
        &self,
        now: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Claimed, StoreError> {
        if limit == 0 {
            return Ok(Claimed::default());
        }
        self.write(|reply| Command::Claim {
            now,
            lease_ms,
            limit,
            reply,
        })
        .await
    }

    async fn succeed(
        &self,
        id: &str,
        attempts: u32,
        answer: StoredAnswer,
        now: i64,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(|reply| Command::Succeed {
            id,
            attempts,
            answer,
            now,
            reply,
        })
        .await
    }

    async fn retry_later(
        &self,
        id: &str,
        attempts: u32,
        next_attempt_at: i64,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let (id, error) = (id.to_string(), error.to_string());
        self.write(|reply| Command::RetryLater {
            id,
            attempts,
            next_attempt_at,
            error,
            now,
            reply,
        })
        .await
    }

    async fn kill(
        &self,
        id: &str,
        attempts: u32,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let (id, reason) = (id.to_string(), reason.to_string());
        self.write(|reply| Command::Kill {
            id,
            attempts,
            reason,
            now,
            reply,
        })
        .await
    }

    async fn list(&self, status: Option<JobStatus>, limit: usize) -> Result<Vec<Job>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let run = || -> rusqlite::Result<Vec<Job>> {
                match status {
                    Some(status) => {
                        let sql = format!(
                            "SELECT {COLUMNS} FROM jobs WHERE status = ?1 \
                             ORDER BY updated_at DESC, rowid DESC LIMIT ?2"
                        );
                        let mut stmt = conn.prepare_cached(&sql)?;
                        let rows = stmt.query_map(params![status.as_str(), limit], job_from_row)?;
                        rows.collect()
                    }
                    None => {
                        let sql =
                            format!("SELECT {COLUMNS} FROM jobs ORDER BY rowid DESC LIMIT ?1");
                        let mut stmt = conn.prepare_cached(&sql)?;
                        let rows = stmt.query_map([limit], job_from_row)?;
                        rows.collect()
                    }
                }
            };
            run().map_err(|e| StoreError::sqlite("listing jobs", e))
        })
        .await
    }

    async fn requeue(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(|reply| Command::Requeue { id, now, reply })
            .await
    }

    async fn requeue_dead(&self, now: i64) -> Result<u64, StoreError> {
        self.write(|reply| Command::RequeueDead { now, reply })
            .await
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(|reply| Command::Delete { id, reply }).await
    }

    async fn counts(&self, now: i64) -> Result<JobCounts, StoreError> {
        self.read(move |conn| {
            let run = || -> rusqlite::Result<JobCounts> {
                let mut counts = JobCounts::default();
                let mut stmt =
                    conn.prepare_cached("SELECT status, COUNT(*) FROM jobs GROUP BY status")?;
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    let status: String = row.get(0)?;
                    let n = u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0);
                    match JobStatus::parse(&status) {
                        Some(JobStatus::Queued) => counts.queued = n,
                        Some(JobStatus::InFlight) => counts.in_flight = n,
                        Some(JobStatus::Succeeded) => counts.succeeded = n,
                        Some(JobStatus::Dead) => counts.dead = n,
                        None => {}
                    }
                }
                counts.oldest_due = conn
                    .prepare_cached(
                        "SELECT MIN(next_attempt_at) FROM jobs \
                         WHERE status = 'queued' AND next_attempt_at <= ?1",
                    )?
                    .query_row([now], |row| row.get(0))?;
                Ok(counts)
            };
            run().map_err(|e| StoreError::sqlite("counting jobs", e))
        })
        .await
    }

    async fn purge_succeeded(&self, before: i64) -> Result<u64, StoreError> {
        self.write(|reply| Command::PurgeSucceeded { before, reply })
            .await
    }
}

// ---- rows ----

/// A [`NewJob`] with its headers already encoded, ready for the writer.
pub(crate) struct InsertRow {
    job: NewJob,
    req_headers: String,
    req_claims: Option<String>,
}

impl InsertRow {
    fn new(job: NewJob) -> Result<InsertRow, StoreError> {
        let req_headers =
            serde_json::to_string(&job.request.headers).map_err(|error| StoreError::Encode {
                context: format!("the request headers of job {}", job.id),
                error,
            })?;
        let req_claims = match &job.request.claims {
            None => None,
            Some(claims) => {
                Some(
                    serde_json::to_string(claims).map_err(|error| StoreError::Encode {
                        context: format!("the token claims of job {}", job.id),
                        error,
                    })?,
                )
            }
        };
        Ok(InsertRow {
            job,
            req_headers,
            req_claims,
        })
    }
}

fn conversion(column: usize, detail: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, detail.into())
}

fn headers_from(column: usize, text: &str) -> rusqlite::Result<Vec<(String, String)>> {
    serde_json::from_str(text).map_err(|e| conversion(column, format!("headers: {e}")))
}

fn u32_from(column: usize, value: i64) -> rusqlite::Result<u32> {
    u32::try_from(value).map_err(|_| conversion(column, format!("{value} is not a u32")))
}

/// Reads a row selected with [`COLUMNS`].
fn job_from_row(row: &Row<'_>) -> rusqlite::Result<Job> {
    let status: String = row.get(4)?;
    let status =
        JobStatus::parse(&status).ok_or_else(|| conversion(4, format!("status {status:?}")))?;
    let result_status: Option<i64> = row.get(20)?;
    let result = match result_status {
        None => None,
        Some(code) => {
            let headers: Option<String> = row.get(21)?;
            Some(StoredAnswer {
                status: u16::try_from(code)
                    .map_err(|_| conversion(20, format!("{code} is not a status")))?,
                headers: headers_from(21, headers.as_deref().unwrap_or("[]"))?,
                body: row.get::<_, Option<Vec<u8>>>(22)?.unwrap_or_default(),
            })
        }
    };
    let req_headers: String = row.get(18)?;
    Ok(Job {
        id: row.get(0)?,
        consumer: row.get(1)?,
        api: row.get(2)?,
        operation: row.get(3)?,
        status,
        attempts: u32_from(5, row.get(5)?)?,
        max_attempts: u32_from(6, row.get(6)?)?,
        next_attempt_at: row.get(7)?,
        lease_until: row.get(8)?,
        last_error: row.get(9)?,
        created_at: row.get(10)?,
        updated_at: row.get(11)?,
        request_id: row.get(12)?,
        idempotency_key: row.get(13)?,
        body_digest: row.get(14)?,
        request: StoredRequest {
            method: row.get(15)?,
            path: row.get(16)?,
            query: row.get(17)?,
            headers: headers_from(18, &req_headers)?,
            body: row.get(19)?,
            claims: match row.get::<_, Option<String>>(23)? {
                None => None,
                Some(text) => Some(
                    serde_json::from_str(&text)
                        .map_err(|e| conversion(23, format!("claims: {e}")))?,
                ),
            },
        },
        result,
    })
}

// ---- writes, run by the writer thread inside the batch's transaction ----

fn get_on(conn: &Connection, id: &str) -> rusqlite::Result<Option<Job>> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([id], job_from_row)
        .optional()
}

fn find_by_key_on(conn: &Connection, consumer: &str, key: &str) -> rusqlite::Result<Option<Job>> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE consumer = ?1 AND idempotency_key = ?2");
    conn.prepare_cached(&sql)?
        .query_row(params![consumer, key], job_from_row)
        .optional()
}

pub(crate) fn insert(conn: &Connection, row: &InsertRow) -> Result<InsertOutcome, StoreError> {
    let job = &row.job;
    let context = || format!("inserting job {}", job.id);
    if let Some(key) = &job.idempotency_key {
        // The writer is the only one inserting, so this check and the insert cannot race;
        // the unique index backs it up.
        let existing = find_by_key_on(conn, &job.consumer, key)
            .map_err(|e| StoreError::sqlite(context(), e))?;
        if let Some(existing) = existing {
            return Ok(InsertOutcome::Existing(Box::new(existing)));
        }
    }
    conn.prepare_cached(
        "INSERT INTO jobs (id, consumer, api, operation, status, attempts, max_attempts, \
         next_attempt_at, created_at, updated_at, request_id, idempotency_key, body_digest, \
         req_method, req_path, req_query, req_headers, req_body, req_claims) \
         VALUES (?1, ?2, ?3, ?4, 'queued', 0, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            job.id,
            job.consumer,
            job.api,
            job.operation,
            job.max_attempts,
            job.next_attempt_at,
            job.created_at,
            job.request_id,
            job.idempotency_key,
            job.body_digest,
            job.request.method,
            job.request.path,
            job.request.query,
            row.req_headers,
            job.request.body,
            row.req_claims,
        ])
    })
    .map_err(|e| StoreError::sqlite(context(), e))?;
    Ok(InsertOutcome::Inserted)
}

/// In-flight jobs whose lease has ended (their worker died), oldest lease first.
pub(super) static LEASE_ENDED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM jobs WHERE status = 'in_flight' AND lease_until <= ?1 \
         ORDER BY lease_until LIMIT ?2"
    )
});

/// Queued jobs due now, earliest first.
pub(super) static QUEUED_DUE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM jobs WHERE status = 'queued' AND next_attempt_at <= ?1 \
         ORDER BY next_attempt_at LIMIT ?2"
    )
});

/// When the next job becomes due: a queued job's next attempt or an in-flight job's lease
/// end (both read through the `jobs_due` index's status prefix).
const NEXT_DUE: &str = "SELECT MIN(at) FROM ( \
     SELECT MIN(next_attempt_at) AS at FROM jobs WHERE status = 'queued' \
     UNION ALL SELECT MIN(lease_until) FROM jobs WHERE status = 'in_flight')";

pub(crate) fn claim_due(
    conn: &Connection,
    now: i64,
    lease_ms: i64,
    limit: usize,
) -> Result<Claimed, StoreError> {
    let lease_until = now.saturating_add(lease_ms);
    let n = i64::try_from(limit).unwrap_or(i64::MAX);
    let run = || -> rusqlite::Result<Claimed> {
        // (due at, job): an expired lease is due at its lease_until.
        let mut due: Vec<(i64, Job)> = Vec::new();
        let mut stmt = conn.prepare_cached(&LEASE_ENDED)?;
        for job in stmt.query_map(params![now, n], job_from_row)? {
            let job = job?;
            due.push((job.lease_until.unwrap_or(i64::MIN), job));
        }
        let mut stmt = conn.prepare_cached(&QUEUED_DUE)?;
        for job in stmt.query_map(params![now, n], job_from_row)? {
            let job = job?;
            due.push((job.next_attempt_at, job));
        }
        due.sort_by_key(|(at, _)| *at);
        due.truncate(limit);
        let mut update = conn.prepare_cached(
            "UPDATE jobs SET status = 'in_flight', lease_until = ?2, updated_at = ?3 WHERE id = ?1",
        )?;
        let mut claimed = Vec::with_capacity(due.len());
        for (_, mut job) in due {
            update.execute(params![job.id, lease_until, now])?;
            job.status = JobStatus::InFlight;
            job.lease_until = Some(lease_until);
            job.updated_at = now;
            claimed.push(job);
        }
        let next_due = conn
            .prepare_cached(NEXT_DUE)?
            .query_row([], |row| row.get(0))?;
        Ok(Claimed {
            jobs: claimed,
            next_due,
        })
    };
    // Several statements: a savepoint keeps a failure from leaving half a claim in the batch.
    conn.execute_batch("SAVEPOINT claim")
        .map_err(|e| StoreError::sqlite("claiming due jobs", e))?;
    match run() {
        Ok(claimed) => {
            conn.execute_batch("RELEASE claim")
                .map_err(|e| StoreError::sqlite("claiming due jobs", e))?;
            Ok(claimed)
        }
        Err(e) => {
            if let Err(rollback) = conn.execute_batch("ROLLBACK TO claim; RELEASE claim") {
                tracing::error!(%rollback, "job store: rolling back a failed claim");
            }
            Err(StoreError::sqlite("claiming due jobs", e))
        }
    }
}

/// When an update touched no row: `NotFound` if the job is gone, else Ok (it moved on).
fn gone_or_moved_on(conn: &Connection, id: &str, what: &str) -> Result<(), StoreError> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM jobs WHERE id = ?1")
        .and_then(|mut stmt| stmt.exists([id]))
        .map_err(|e| StoreError::sqlite(format!("{what} job {id}"), e))?;
    if exists {
        tracing::debug!(
            job = id,
            "job store: {what} ignored, the job is no longer in flight"
        );
        Ok(())
    } else {
        Err(StoreError::NotFound(id.to_string()))
    }
}

pub(crate) fn succeed(
    conn: &Connection,
    id: &str,
    attempts: u32,
    answer: &StoredAnswer,
    now: i64,
) -> Result<(), StoreError> {
    let context = || format!("marking job {id} succeeded");
    let headers = serde_json::to_string(&answer.headers).map_err(|error| StoreError::Encode {
        context: format!("the answer headers of job {id}"),
        error,
    })?;
    let changed = conn
        .prepare_cached(
            "UPDATE jobs SET status = 'succeeded', attempts = ?2, lease_until = NULL, \
             result_status = ?3, result_headers = ?4, result_body = ?5, updated_at = ?6 \
             WHERE id = ?1",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                id,
                attempts,
                answer.status,
                headers,
                answer.body,
                now
            ])
        })
        .map_err(|e| StoreError::sqlite(context(), e))?;
    if changed == 0 {
        return Err(StoreError::NotFound(id.to_string()));
    }
    Ok(())
}

pub(crate) fn retry_later(
    conn: &Connection,
    id: &str,
    attempts: u32,
    next_attempt_at: i64,
    error: &str,
    now: i64,
) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE jobs SET status = 'queued', attempts = ?2, next_attempt_at = ?3, \
             last_error = ?4, lease_until = NULL, updated_at = ?5 \
             WHERE id = ?1 AND status = 'in_flight'",
        )
        .and_then(|mut stmt| stmt.execute(params![id, attempts, next_attempt_at, error, now]))
        .map_err(|e| StoreError::sqlite(format!("rescheduling job {id}"), e))?;
    if changed == 0 {
        return gone_or_moved_on(conn, id, "rescheduling");
    }
    Ok(())
}

pub(crate) fn kill(
    conn: &Connection,
    id: &str,
    attempts: u32,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE jobs SET status = 'dead', attempts = ?2, last_error = ?3, \
             lease_until = NULL, updated_at = ?4 WHERE id = ?1 AND status = 'in_flight'",
        )
        .and_then(|mut stmt| stmt.execute(params![id, attempts, reason, now]))
        .map_err(|e| StoreError::sqlite(format!("dead-lettering job {id}"), e))?;
    if changed == 0 {
        return gone_or_moved_on(conn, id, "dead-lettering");
    }
    Ok(())
}

const REQUEUE: &str = "UPDATE jobs SET status = 'queued', attempts = 0, next_attempt_at = ?1, \
     lease_until = NULL, result_status = NULL, result_headers = NULL, result_body = NULL, \
     updated_at = ?1";

pub(crate) fn requeue(conn: &Connection, id: &str, now: i64) -> Result<bool, StoreError> {
    let sql = format!("{REQUEUE} WHERE id = ?2 AND status <> 'in_flight'");
    let changed = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| stmt.execute(params![now, id]))
        .map_err(|e| StoreError::sqlite(format!("requeueing job {id}"), e))?;
    Ok(changed > 0)
}

pub(crate) fn requeue_dead(conn: &Connection, now: i64) -> Result<u64, StoreError> {
    let sql = format!("{REQUEUE} WHERE status = 'dead'");
    let changed = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| stmt.execute([now]))
        .map_err(|e| StoreError::sqlite("requeueing dead jobs", e))?;
    Ok(changed as u64)
}

pub(crate) fn delete(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached("DELETE FROM jobs WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute([id]))
        .map_err(|e| StoreError::sqlite(format!("deleting job {id}"), e))?;
    Ok(changed > 0)
}

pub(crate) fn purge_succeeded(conn: &Connection, before: i64) -> Result<u64, StoreError> {
    let changed = conn
        .prepare_cached("DELETE FROM jobs WHERE status = 'succeeded' AND updated_at < ?1")
        .and_then(|mut stmt| stmt.execute([before]))
        .map_err(|e| StoreError::sqlite("purging succeeded jobs", e))?;
    Ok(changed as u64)
}
