//! `GET /jobs/{id}` and `GET /jobs/{id}/result` on the data plane. A job is visible only to
//! the consumer who made it (authenticated as its operation requires); others get a 404, so
//! ids cannot be probed.

use super::store::{Job, JobStatus};
use crate::exchange::Answer;
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use propylon_policies::{Problem, ProblemKind};
use serde_json::json;

/// Which job route a path is, if any.
pub enum JobPath {
    Status(String),
    Result(String),
}

impl JobPath {
    pub fn id(&self) -> &str {
        match self {
            JobPath::Status(id) | JobPath::Result(id) => id,
        }
    }
}

pub fn parse(path: &str) -> Option<JobPath> {
    let rest = path.strip_prefix("/jobs/")?;
    match rest.split_once('/') {
        None if !rest.is_empty() => Some(JobPath::Status(rest.to_string())),
        Some((id, "result")) if !id.is_empty() => Some(JobPath::Result(id.to_string())),
        _ => None,
    }
}

pub fn not_found(id: &str) -> Problem {
    Problem::new(ProblemKind::NoRoute, format!("no job {id}"))
}

pub fn status(job: &Job) -> Answer {
    let body = json!({
        "id": job.id,
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "next_attempt_at": (job.status == JobStatus::Queued).then(|| rfc3339(job.next_attempt_at)),
        "last_error": job.last_error,
        "created_at": rfc3339(job.created_at),
        "operation": job.operation,
        "result": (job.status == JobStatus::Succeeded).then(|| format!("/jobs/{}/result", job.id)),
    });
    json_answer(200, body.to_string())
}

/// The stored answer of a succeeded job; a 404 problem before that.
pub fn result(job: &Job) -> Result<Answer, Box<Problem>> {
    let Some(answer) = job
        .result
        .as_ref()
        .filter(|_| job.status == JobStatus::Succeeded)
    else {
        let status = job.status.as_str();
        return Err(Box::new(Problem::new(
            ProblemKind::NoRoute,
            format!("job {} has no result yet (status {status})", job.id),
        )));
    };
    Ok(super::answers::from_stored(answer))
}

fn json_answer(status: u16, body: String) -> Answer {
    Answer {
        status,
        headers: vec![(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body: Bytes::from(body),
    }
}

fn rfc3339(unix_ms: i64) -> String {
    let t = std::time::UNIX_EPOCH
        + std::time::Duration::from_millis(u64::try_from(unix_ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_paths() {
        assert!(matches!(parse("/jobs/abc"), Some(JobPath::Status(id)) if id == "abc"));
        assert!(matches!(parse("/jobs/abc/result"), Some(JobPath::Result(id)) if id == "abc"));
        assert!(parse("/jobs/").is_none());
        assert!(parse("/jobs/abc/other").is_none());
        assert!(parse("/jobsx/abc").is_none());
    }
}
