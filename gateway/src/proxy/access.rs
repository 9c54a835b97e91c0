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
        duration_ms = milliseconds(elapsed),
        error = done.error,
        config_version = done.config_version,
        "request"
    );
}

/// `elapsed` in milliseconds to the microsecond, for the access log: `seconds * 1000.0` logged
/// binary noise (`duration_ms=0.49420200000000003`).
fn milliseconds(elapsed: std::time::Duration) -> f64 {
    // Whole microseconds are exact in an `f64` for over 285 years.
    #[allow(clippy::cast_precision_loss)]
    let micros = elapsed.as_micros() as f64;
    micros / 1000.0
}

#[cfg(test)]
mod tests {
    use super::milliseconds;
    use std::time::Duration;

    #[test]
    fn durations_are_logged_in_milliseconds_to_the_microsecond() {
        assert_eq!(
            milliseconds(Duration::from_nanos(494_202)).to_string(),
            "0.494"
        );
        assert_eq!(
            milliseconds(Duration::from_micros(1_293_886)).to_string(),
            "1293.886"
        );
        assert_eq!(milliseconds(Duration::from_nanos(999)).to_string(), "0");
        assert_eq!(milliseconds(Duration::from_secs(2)).to_string(), "2000");
    }
}
