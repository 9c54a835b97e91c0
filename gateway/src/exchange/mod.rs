//! Operations that need whole bodies: read (bounded), check, map, call, map the answer.
//! Each step is a decision from a pure policy; a refusal is a `Problem`, never an `Err`.

pub mod client;
mod header_edits;
mod request;
mod response;

pub use client::BackendClient;
pub use header_edits::RenderedEdits;
pub use request::{
    content_type_problem, invalid, map_parts, map_request, media_type_problem, prepare,
    FacadeParts, Mapped,
};
pub use response::{shape, shape_answer, Answer, BackendParts, RESPONSE_ROOTS};

/// What a buffered exchange ends with, for the proxy to write.
pub enum Outcome {
    Answer(Answer),
    Problem(propylon_policies::Problem),
}

/// A rendered body as `Bytes` without a second allocation. `Bytes::from` a vector with room
/// to spare allocates a shared header for it; a boxed slice it takes as it is. The shrink
/// is in place (mimalloc keeps a block that shrinks by less than half; a template's buffer
/// is sized from the largest body it wrote, so it nearly always does).
pub(crate) fn rendered_body(body: Vec<u8>) -> bytes::Bytes {
    bytes::Bytes::from(body.into_boxed_slice())
}

/// `application/json` or any `+json` type, parameters ignored.
pub(crate) fn is_json(content_type: Option<&str>) -> bool {
    // Compared without case and without a lower-case copy per request.
    content_type.is_some_and(|ct| {
        let mime = ct.split(';').next().unwrap_or("").trim().as_bytes();
        mime.eq_ignore_ascii_case(b"application/json")
            || mime
                .len()
                .checked_sub(5)
                .and_then(|at| mime.get(at..))
                .is_some_and(|end| end.eq_ignore_ascii_case(b"+json"))
    })
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_media_types_are_told_without_case() {
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            " application/problem+json ",
            "application/vnd.api+JSON",
        ] {
            assert!(is_json(Some(json)), "{json}");
        }
        for other in ["text/plain", "application/xml", "json", "+jso", ""] {
            assert!(!is_json(Some(other)), "{other}");
        }
        assert!(!is_json(None));
    }
}
