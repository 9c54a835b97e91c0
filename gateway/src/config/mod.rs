//! Config loading: read, substitute `${VAR}`, parse, compile into a `Snapshot`, collecting
//! every fault with its file and line. Nothing is published unless everything compiled.

mod apis;
mod backends;
mod compile;
pub mod diagnostic;
mod edits;
mod env;
mod exchange;
mod later;
mod lines;
pub mod raw;
mod redact;
mod units;

pub use compile::load;
pub use diagnostic::Diagnostic;
