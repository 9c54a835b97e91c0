//! Pure policy logic for Propylon. Nothing here does network or file I/O and nothing takes
//! Pingora's `Session`: the gateway asks a policy for a decision and carries it out.

pub mod auth;
pub mod circuit;
pub mod forwarding;
pub mod limits;
pub mod maintenance;
pub mod mapping;
pub mod problem;
pub mod query;
pub mod request_id;
pub mod retry;
pub mod xml;

pub use problem::{Problem, ProblemKind};
