//! The group-commit writer: one thread owns the write connection. Every mutating call sends
//! a [`Command`] with a oneshot responder; the thread takes the first command, drains what
//! else is queued (up to [`MAX_BATCH`]), runs them all in one transaction, commits once
//! (synchronous=FULL: one fsync for the batch) and only then answers each caller.

use super::sqlite::{self, InsertRow};
use super::{Claimed, InsertOutcome, StoreError, StoredAnswer};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

/// Most commands in one transaction.
pub(crate) const MAX_BATCH: usize = 512;
/// Commands waiting for the writer before senders wait (back pressure).
pub(crate) const QUEUE: usize = 8192;

type Responder<T> = oneshot::Sender<Result<T, StoreError>>;

pub(crate) enum Command {
    Insert(Box<InsertRow>, Responder<InsertOutcome>),
    Claim {
        now: i64,
        lease_ms: i64,
        limit: usize,
        reply: Responder<Claimed>,
    },
    Succeed {
        id: String,
        attempts: u32,
        answer: StoredAnswer,
        now: i64,
        reply: Responder<()>,
    },
    RetryLater {
        id: String,
        attempts: u32,
        next_attempt_at: i64,
        error: String,
        now: i64,
        reply: Responder<()>,
    },
    Kill {
        id: String,
        attempts: u32,
        reason: String,
        now: i64,
        reply: Responder<()>,
    },
    Requeue {
        id: String,
        now: i64,
        reply: Responder<bool>,
    },
    RequeueDead {
        now: i64,
        reply: Responder<u64>,
    },
    Delete {
        id: String,
        reply: Responder<bool>,
    },
    PurgeSucceeded {
        before: i64,
        reply: Responder<u64>,
    },
}

/// A command that has run inside the open transaction: its answer waits for the commit.
trait Pending: Send {
    /// Sends the result, or `failure` when the batch was not committed.
    fn answer(self: Box<Self>, failure: Option<&(usize, String)>);
}

struct Done<T> {
    result: Result<T, StoreError>,
    reply: Responder<T>,
}

impl<T: Send> Pending for Done<T> {
    fn answer(self: Box<Self>, failure: Option<&(usize, String)>) {
        let result = match (failure, self.result) {
            // A call that failed on its own keeps its own error: it changed nothing.
            (Some((batch, detail)), Ok(_)) => Err(StoreError::Commit {
                batch: *batch,
                detail: detail.clone(),
            }),
            (_, result) => result,
        };
        // The caller may have gone away (its request was cancelled): nothing to do.
        let _ = self.reply.send(result);
    }
}

fn done<T: Send + 'static>(result: Result<T, StoreError>, reply: Responder<T>) -> Box<dyn Pending> {
    Box::new(Done { result, reply })
}

impl Command {
    /// Runs the command on `conn` (inside the batch's transaction).
    fn run(self, conn: &Connection) -> Box<dyn Pending> {
        match self {
            Command::Insert(row, reply) => done(sqlite::insert(conn, &row), reply),
            Command::Claim {
                now,
                lease_ms,
                limit,
                reply,
            } => done(sqlite::claim_due(conn, now, lease_ms, limit), reply),
            Command::Succeed {
                id,
                attempts,
                answer,
                now,
                reply,
            } => done(sqlite::succeed(conn, &id, attempts, &answer, now), reply),
            Command::RetryLater {
                id,
                attempts,
                next_attempt_at,
                error,
                now,
                reply,
            } => done(
                sqlite::retry_later(conn, &id, attempts, next_attempt_at, &error, now),
                reply,
            ),
            Command::Kill {
                id,
                attempts,
                reason,
                now,
                reply,
            } => done(sqlite::kill(conn, &id, attempts, &reason, now), reply),
            Command::Requeue { id, now, reply } => done(sqlite::requeue(conn, &id, now), reply),
            Command::RequeueDead { now, reply } => done(sqlite::requeue_dead(conn, now), reply),
            Command::Delete { id, reply } => done(sqlite::delete(conn, &id), reply),
            Command::PurgeSucceeded { before, reply } => {
                done(sqlite::purge_succeeded(conn, before), reply)
            }
        }
    }

    /// Answers without running: the batch could not start or was already lost.
    fn fail(self, failure: &(usize, String)) {
        let make = || StoreError::Commit {
            batch: failure.0,
            detail: failure.1.clone(),
        };
        match self {
            Command::Insert(_, reply) => drop(reply.send(Err(make()))),
            Command::Claim { reply, .. } => drop(reply.send(Err(make()))),
            Command::Succeed { reply, .. }
            | Command::RetryLater { reply, .. }
            | Command::Kill { reply, .. } => drop(reply.send(Err(make()))),
            Command::Requeue { reply, .. } | Command::Delete { reply, .. } => {
                drop(reply.send(Err(make())))
            }
            Command::RequeueDead { reply, .. } | Command::PurgeSucceeded { reply, .. } => {
                drop(reply.send(Err(make())))
            }
        }
    }
}

/// The writer thread's body: runs until every sender is dropped, finishing the queued work.
pub(crate) fn run(mut conn: Connection, mut commands: mpsc::Receiver<Command>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = commands.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, &mut batch);
    }
    tracing::debug!("job store writer stopped");
}

fn run_batch(conn: &mut Connection, batch: &mut Vec<Command>) {
    let size = batch.len();
    if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
        let failure = (size, format!("beginning the transaction: {error}"));
        tracing::error!(batch = size, %error, "job store: cannot begin a write transaction");
        for command in batch.drain(..) {
            command.fail(&failure);
        }
        return;
    }
    let mut pending = Vec::with_capacity(size);
    let mut lost: Option<(usize, String)> = None;
    let mut commands = batch.drain(..);
    for command in commands.by_ref() {
        pending.push(command.run(conn));
        // Some errors (I/O, disk full) make SQLite roll the whole transaction back; what
        // follows would then run outside it. Stop, and fail the batch.
        if conn.is_autocommit() {
            lost = Some((
                size,
                "the transaction was rolled back by SQLite".to_string(),
            ));
            break;
        }
    }
    if let Some(failure) = &lost {
        for command in commands {
            command.fail(failure);
        }
    }
    let failure = match lost {
        Some(failure) => Some(failure),
        None => match conn.execute_batch("COMMIT") {
            Ok(()) => None,
            Err(error) => {
                if !conn.is_autocommit() {
                    if let Err(rollback) = conn.execute_batch("ROLLBACK") {
                        tracing::error!(%rollback, "job store: rollback after a failed commit");
                    }
                }
                Some((size, format!("committing: {error}")))
            }
        },
    };
    if let Some((_, detail)) = &failure {
        tracing::error!(
            batch = size,
            detail,
            "job store: a write batch was not committed"
        );
    }
    for done in pending {
        done.answer(failure.as_ref());
    }
}
