//! Config loading: read, substitute `${VAR}`, parse, compile into a `Snapshot`, collecting
//! every fault with its file and line. Nothing is published unless everything compiled.

mod apis;
mod auth;
mod backends;
mod compile;
pub mod diagnostic;
mod edits;
mod env;
mod exchange;
mod later;
mod limits;
mod lines;
pub mod raw;
mod redact;
mod target;
mod units;

#[cfg(test)]
pub(crate) use compile::compile_text;
pub use compile::load;
pub use diagnostic::Diagnostic;
pub use limits::{reusable, LimitReuse};
