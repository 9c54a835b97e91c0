//! The admin API's job routes: list by status, replay one or all dead jobs, purge one.

use crate::jobs::store::{Job, JobStatus, JobStore};
use crate::jobs::submit::unix_ms;
use http::{Method, StatusCode};
use propylon_policies::{Problem, ProblemKind};
use serde_json::{json, Value};

const DEFAULT_LIST: usize = 100;
const MAX_LIST: usize = 1000;

/// The answer of a `/admin/jobs…` route, or `None` when the path is not one.
pub async fn route(
    store: &dyn JobStore,
    method: &Method,
    path: &str,
    query: Option<&str>,
) -> Option<Result<(StatusCode, Value), Problem>> {
    let rest = path.strip_prefix("/admin/jobs")?;
    let answer = match (method, rest) {
        (&Method::GET, "") => list(store, query).await,
        (&Method::POST, "/replay-dead") => store
            .requeue_dead(unix_ms())
            .await
            .map(|n| (StatusCode::OK, json!({"requeued": n})))
            .map_err(internal),
        (&Method::POST, r) if r.ends_with("/replay") => {
            let id = r.trim_start_matches('/').trim_end_matches("/replay");
            match store.requeue(id, unix_ms()).await {
                Ok(true) => Ok((StatusCode::OK, json!({"id": id, "status": "queued"}))),
                Ok(false) => Err(Problem::new(
                    ProblemKind::NoRoute,
                    format!("no job {id} to replay (unknown, or in flight)"),
                )),
                Err(e) => Err(internal(e)),
            }
        }
        (&Method::DELETE, r) if r.starts_with('/') && r.len() > 1 => {
            let id = &r[1..];
            match store.delete(id).await {
                Ok(true) => Ok((StatusCode::OK, json!({"id": id, "deleted": true}))),
                Ok(false) => Err(Problem::new(ProblemKind::NoRoute, format!("no job {id}"))),
                Err(e) => Err(internal(e)),
            }
        }
        _ => Err(Problem::new(
            ProblemKind::NoRoute,
            format!("no admin route {method} {path}"),
        )),
    };
    Some(answer)
}

async fn list(store: &dyn JobStore, query: Option<&str>) -> Result<(StatusCode, Value), Problem> {
    let mut status = None;
    let mut limit = DEFAULT_LIST;
    for (key, value) in query
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('='))
    {
        match key {
            "status" => {
                status = Some(
                    serde_json::from_value::<JobStatus>(Value::String(value.to_string())).map_err(
                        |_| {
                            Problem::new(
                                ProblemKind::BadRequest,
                                format!(
                                "status `{value}` is not one of queued, in_flight, succeeded, dead"
                            ),
                            )
                        },
                    )?,
                )
            }
            "limit" => limit = value.parse::<usize>().unwrap_or(DEFAULT_LIST).min(MAX_LIST),
            _ => {}
        }
    }
    let jobs = store.list(status, limit).await.map_err(internal)?;
    Ok((
        StatusCode::OK,
        json!({"jobs": jobs.iter().map(summary).collect::<Vec<_>>()}),
    ))
}

fn summary(job: &Job) -> Value {
    json!({
        "id": job.id, "status": job.status, "api": job.api, "operation": job.operation,
        "consumer": job.consumer, "attempts": job.attempts, "max_attempts": job.max_attempts,
        "last_error": job.last_error, "created_at": job.created_at, "next_attempt_at": job.next_attempt_at,
        "request_id": job.request_id,
    })
}

fn internal(e: impl std::fmt::Display) -> Problem {
    Problem::new(ProblemKind::Internal, format!("job store: {e}"))
}
