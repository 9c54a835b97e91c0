//! The end of every request: the access log line and the request metrics, the same whether
//! Pingora's proxy or the lean path served it.

use crate::snapshot::FacadeRoute;
use crate::state::GatewayState;
use std::time::Instant;

pub struct Finished<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub route: Option<&'a FacadeRoute>,
    /// 0 when no answer was written.
    pub status: u16,
    pub started: Instant,
    pub request_id: &'a str,
    /// The error type (`ConnectRefused`, ...), empty when none.
    pub error: &'a str,
    pub config_version: u64,
}

pub fn record(state: &GatewayState, done: Finished<'_>) {
    let (api, operation, backend) = match done.route {
        Some(r) => (
            r.api.as_str(),
            r.operation_id.as_str(),
            r.backend.name.as_str(),
        ),
        None => ("", "", ""),
    };
    let elapsed = done.started.elapsed();
    let seconds = elapsed.as_secs_f64();
    match done.route {
        Some(route) => {
            route
                .metrics
                .observe(&state.metrics, [api, operation], done.status, seconds)
        }
        None => {
            let metrics = &state.metrics;
            crate::metrics::with_status_label(done.status, |status| {
                metrics
                    .requests
                    .with_label_values(&[api, operation, status])
                    .inc();
            });
            metrics
                .duration
                .with_label_values(&[api, operation])
                .observe(seconds);
        }
    }
    tracing::info!(
        target: "propylon::access",
        request_id = %done.request_id,
        method = %done.method,
        path = %done.path,
        api,
        operation,
        status = done.status,
        upstream = backend,
        duration_ms = seconds * 1000.0,
        error = done.error,
        config_version = done.config_version,
        "request"
    );
}
