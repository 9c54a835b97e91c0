//! The admin API on its own listener (a Pingora service apart from the data plane), every
//! route behind the bearer token: health, config, reload, metrics.

use crate::admin_jobs;
use crate::jobs::store::JobStore;
use crate::reload::ConfigReloader;
use crate::state::GatewayState;
use async_trait::async_trait;
use http::{header, Method, Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use propylon_policies::problem::CONTENT_TYPE as PROBLEM_JSON;
use propylon_policies::{Problem, ProblemKind};
use serde_json::json;
use std::sync::Arc;

pub struct AdminApi {
    pub state: Arc<GatewayState>,
    pub reloader: Arc<ConfigReloader>,
    pub jobs: Arc<dyn JobStore>,
}

#[async_trait]
impl ServeHttp for AdminApi {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let request_id = propylon_policies::request_id::request_id(
            req.headers.get("x-request-id").map(|v| v.as_bytes()),
        );
        let (method, path) = (req.method.clone(), req.uri.path().to_string());
        if !self.authorized(req.headers.get(header::AUTHORIZATION)) {
            let problem = Problem::new(
                ProblemKind::Unauthorized,
                "the admin API needs `Authorization: Bearer <admin_token>`",
            )
            .with_header("www-authenticate", "Bearer realm=\"propylon-admin\"");
            return problem_response(problem, &request_id);
        }
        let query = req.uri.query().map(str::to_string);
        if let Some(answer) =
            admin_jobs::route(self.jobs.as_ref(), &method, &path, query.as_deref()).await
        {
            if method == Method::POST && answer.is_ok() {
                // Replayed jobs are due now: the worker may be asleep until a later one.
                self.state.jobs_due.notify_one();
            }
            return match answer {
                Ok((status, body)) => json_response(status, &body),
                Err(problem) => problem_response(problem, &request_id),
            };
        }
        match (method, path.as_str()) {
            (Method::GET, "/admin/health") => json_response(StatusCode::OK, &self.health()),
            (Method::GET, "/admin/config") => json_response(StatusCode::OK, &self.config()),
            (Method::POST, "/admin/reload") => self.reload(&request_id).await,
            (Method::GET, "/metrics") => {
                self.count_jobs().await;
                Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
                    .body(self.state.metrics.render())
                    .unwrap_or_default()
            }
            (_, "/admin/health" | "/admin/config" | "/admin/reload" | "/metrics") => {
                let allow = if path == "/admin/reload" {
                    "POST"
                } else {
                    "GET"
                };
                let problem = Problem::new(
                    ProblemKind::MethodNotAllowed,
                    format!("{path} accepts {allow}"),
                )
                .with_header("allow", allow);
                problem_response(problem, &request_id)
            }
            _ => problem_response(
                Problem::new(ProblemKind::NoRoute, format!("no admin route {path}")),
                &request_id,
            ),
        }
    }
}

impl AdminApi {
    /// The job gauges, counted when they are scraped: the count reads the whole status index
    /// (a queue of a million jobs is tens of ms), too much to pay every second for a metric
    /// scraped every 15–60 s. A store that cannot count leaves the last values.
    async fn count_jobs(&self) {
        let now = crate::jobs::submit::unix_ms();
        match self.jobs.counts(now).await {
            Ok(counts) => self.state.metrics.set_job_counts(&counts, now),
            Err(e) => tracing::warn!(error = %e, "cannot count jobs for /metrics"),
        }
    }

    fn authorized(&self, value: Option<&http::HeaderValue>) -> bool {
        let snapshot = self.state.current();
        let (Some(expected), Some(given)) = (snapshot.server.admin_token.as_deref(), value) else {
            return false;
        };
        let Some(token) = given.as_bytes().strip_prefix(b"Bearer ") else {
            return false;
        };
        constant_time_eq(token, expected.as_bytes())
    }

    fn health(&self) -> serde_json::Value {
        let snapshot = self.state.current();
        let ready = self.state.reloader_ready();
        json!({
            "status": if ready { "ok" } else { "starting" },
            "config_version": snapshot.version,
            "backends": self.state.backend_health.report(crate::jobs::submit::unix_ms()),
        })
    }

    fn config(&self) -> serde_json::Value {
        let snapshot = self.state.current();
        json!({
            "version": snapshot.version,
            "loaded_at": humantime::format_rfc3339_seconds(snapshot.loaded_at).to_string(),
            "last_reload_error": self.state.last_reload_error(),
            "summary": {
                "apis": snapshot.summary.apis,
                "operations": snapshot.summary.operations,
                "backends": snapshot.summary.backends,
            },
            "config": snapshot.redacted_config,
        })
    }

    async fn reload(&self, request_id: &str) -> Response<Vec<u8>> {
        match self.reloader.reload("admin API").await {
            Ok(version) => json_response(
                StatusCode::OK,
                &json!({"result": "reloaded", "version": version}),
            ),
            Err(errors) => {
                let count = errors.len();
                let errors = errors
                    .iter()
                    .filter_map(|e| serde_json::to_value(e).ok())
                    .collect();
                let problem = Problem::new(ProblemKind::InvalidConfig, format!("the config was not reloaded: {count} error(s); the running config is unchanged"))
                    .with_errors(errors);
                problem_response(problem, request_id)
            }
        }
    }
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(body).unwrap_or_default())
        .unwrap_or_default()
}

fn problem_response(problem: Problem, request_id: &str) -> Response<Vec<u8>> {
    let problem = problem.with_request_id(request_id);
    let mut builder = Response::builder()
        .status(problem.status_code())
        .header(header::CONTENT_TYPE, PROBLEM_JSON)
        .header("x-request-id", request_id);
    for (name, value) in &problem.headers {
        builder = builder.header(*name, value.as_str());
    }
    builder.body(problem.to_body()).unwrap_or_default()
}

/// Compares without an early exit, so timing does not reveal how much of a token matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
