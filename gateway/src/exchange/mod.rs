//! Operations that need whole bodies: read (bounded), check, map, call, map the answer.
//! Each step is a decision from a pure policy; a refusal is a `Problem`, never an `Err`.

pub mod client;
mod request;
mod response;

pub use client::BackendClient;
pub use request::{
    content_type_problem, invalid, map_parts, map_request, media_type_problem, prepare,
    FacadeParts, Mapped,
};
pub use response::{apply_header_edits, shape_answer, Answer, RESPONSE_ROOTS};

/// What a buffered exchange ends with, for the proxy to write.
pub enum Outcome {
    Answer(Answer),
    Problem(propylon_policies::Problem),
}

/// `application/json` or any `+json` type, parameters ignored.
pub(crate) fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        mime == "application/json" || mime.ends_with("+json")
    })
}
