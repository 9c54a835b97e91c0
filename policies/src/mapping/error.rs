//! The one error type of mapping: where in the admin's template, and what to change.

/// A template mistake found at config load. `propylon check` turns the pointer into a file and
/// line, so the message is written for the admin: it says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct MappingError {
    /// JSON pointer (RFC 6901) into the template, e.g. `/Lines/$to/Qty`; `""` for the root.
    pub pointer: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl MappingError {
    pub(crate) fn new(pointer: &str, message: impl Into<String>) -> MappingError {
        MappingError {
            pointer: pointer.to_string(),
            message: message.into(),
        }
    }
}

/// Appends one reference token to a JSON pointer, escaping `~` and `/` as RFC 6901 asks.
pub(crate) fn child_pointer(parent: &str, token: &str) -> String {
    let mut out = String::with_capacity(parent.len() + token.len() + 1);
    out.push_str(parent);
    out.push('/');
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(child_pointer("", "a/b~c"), "/a~1b~0c");
        assert_eq!(child_pointer("/Lines", "$to"), "/Lines/$to");
    }

    #[test]
    fn display_shows_pointer_then_message() {
        let e = MappingError::new("/x", "fix it");
        assert_eq!(e.to_string(), "/x: fix it");
    }
}
