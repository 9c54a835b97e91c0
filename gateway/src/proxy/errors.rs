//! What an upstream or downstream error means, decided from Pingora's typed errors (never
//! from messages): a job (backend down), a problem for the client, or nothing (client gone).

use crate::state::GatewayState;
use pingora_error::{Error, ErrorSource, ErrorType};
use propylon_policies::{Problem, ProblemKind};

/// The backend is known down: these become jobs under `async: fallback` (decided from
/// Pingora's typed errors, never from messages).
pub fn backend_down(e: &Error) -> bool {
    use ErrorType::*;
    matches!(
        e.etype(),
        ConnectRefused
            | ConnectTimedout
            | ConnectNoRoute
            | ConnectError
            | ConnectProxyFailure
            | TLSHandshakeFailure
            | TLSHandshakeTimedout
            | ReadTimedout
            | WriteTimedout
    )
}

/// The problem the client is told about `e`, naming `backend`; `None`: the client is gone,
/// nothing to answer.
pub fn problem_of(e: &Error, backend: Option<&str>) -> Option<Problem> {
    let kind = classify(e)?;
    let mut problem = Problem::new(kind, describe(e, backend.unwrap_or("the backend")));
    if let ErrorType::HTTPStatus(code) = e.etype() {
        problem.status = *code;
    }
    Some(problem)
}

/// Counts an upstream error by backend and type (`propylon_upstream_errors_total`).
pub fn count_upstream(state: &GatewayState, backend: &str, e: &Error) {
    if e.esource() == &ErrorSource::Upstream {
        state
            .metrics
            .upstream_errors
            .with_label_values(&[backend, e.etype().as_str()])
            .inc();
    }
}

fn classify(e: &Error) -> Option<ProblemKind> {
    use ErrorType::*;
    match (e.esource(), e.etype()) {
        (_, HTTPStatus(code)) if (400..500).contains(code) => Some(ProblemKind::BadRequest),
        (_, HTTPStatus(_)) => Some(ProblemKind::Internal),
        (ErrorSource::Upstream, ConnectTimedout | ReadTimedout | WriteTimedout) => {
            Some(ProblemKind::BackendTimeout)
        }
        (
            ErrorSource::Upstream,
            ConnectRefused | ConnectNoRoute | ConnectError | ConnectProxyFailure | BindError
            | SocketError | TLSHandshakeFailure | TLSHandshakeTimedout | InvalidCert,
        ) => Some(ProblemKind::BackendUnreachable),
        (ErrorSource::Upstream, _) => Some(ProblemKind::BadGateway),
        (ErrorSource::Downstream, ReadError | WriteError | ConnectionClosed) => None,
        (ErrorSource::Downstream, _) => Some(ProblemKind::BadRequest),
        _ => Some(ProblemKind::Internal),
    }
}

/// The `detail` of a problem: what happened, naming the backend but not its internals.
fn describe(e: &Error, backend: &str) -> String {
    match classify(e) {
        Some(ProblemKind::BackendTimeout) => format!("backend `{backend}` did not answer in time"),
        Some(ProblemKind::BackendUnreachable) => format!(
            "backend `{backend}` cannot be reached ({})",
            e.etype().as_str()
        ),
        Some(ProblemKind::BadGateway) => format!(
            "backend `{backend}` gave an answer that cannot be relayed ({})",
            e.etype().as_str()
        ),
        Some(ProblemKind::BadRequest) => "the request cannot be processed".to_string(),
        _ => "the gateway failed to handle this request".to_string(),
    }
}
