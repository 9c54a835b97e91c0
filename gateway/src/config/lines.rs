//! Where each key of a YAML file is, so that `propylon check` can name the line of a fault
//! found after parsing (an unknown backend, a bad URL), not only of a syntax error.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Maps a dotted key path (`apis.0.operations.getCustomer.backend`) to its 1-based line.
#[derive(Debug, Default)]
pub struct LineIndex {
    lines: HashMap<String, usize>,
}

impl LineIndex {
    /// Builds the index; a file YAML cannot parse gives an empty index (serde reports the
    /// syntax error with its own location).
    pub fn build(text: &str) -> LineIndex {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return LineIndex::default();
        }
        LineIndex {
            lines: builder.lines,
        }
    }

    /// The line of `path`, or of its nearest ancestor that the file spells out.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(line) = self.lines.get(p) {
                return Some(*line);
            }
            p = &p[..p.rfind('.')?];
        }
    }
}

enum Frame {
    Map {
        expecting_key: bool,
        key: Option<String>,
    },
    Seq {
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    path: Vec<String>,
    lines: HashMap<String, usize>,
}

impl Builder {
    /// Called when a value (scalar or collection) starts at `mark` in the current frame.
    /// Returns true when the value is a mapping key rather than a value.
    fn enter_value(&mut self, mark: Marker, key_text: Option<&str>) -> bool {
        match self.stack.last_mut() {
            Some(Frame::Map { expecting_key, key }) if *expecting_key => {
                *expecting_key = false;
                let k = key_text.unwrap_or("?").to_string();
                *key = Some(k.clone());
                self.path.push(k);
                self.lines.insert(self.path.join("."), mark.line());
                true
            }
            Some(Frame::Map { expecting_key, .. }) => {
                *expecting_key = true;
                false
            }
            Some(Frame::Seq { next }) => {
                self.path.push(next.to_string());
                *next += 1;
                self.lines.insert(self.path.join("."), mark.line());
                false
            }
            None => false,
        }
    }

    /// Called when a value in the current frame is complete.
    fn leave_value(&mut self) {
        match self.stack.last() {
            Some(Frame::Map {
                expecting_key: true,
                key: Some(_),
            })
            | Some(Frame::Seq { .. }) => {
                self.path.pop();
            }
            _ => {}
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            // A scalar that is a key opens a path level, closed when its value ends.
            Event::Scalar(text, ..) if !self.enter_value(mark, Some(&text)) => self.leave_value(),
            Event::Alias(_) if !self.enter_value(mark, None) => self.leave_value(),
            Event::MappingStart(..) => {
                self.enter_value(mark, None);
                self.stack.push(Frame::Map {
                    expecting_key: true,
                    key: None,
                });
            }
            Event::SequenceStart(..) => {
                self.enter_value(mark, None);
                self.stack.push(Frame::Seq { next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.leave_value();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DOC: &str = "server:\n  listen: 127.0.0.1:8080\nbackends:\n  crm:\n    url: http://x\n    timeout: 2s\napis:\n  - name: a\n    operations:\n      getX: { backend: crm }\n  - name: b\n    spec: ./b.yaml\n";

    #[test]
    fn finds_nested_keys_and_sequence_items() {
        let idx = LineIndex::build(DOC);
        assert_eq!(idx.line_of("server.listen"), Some(2));
        assert_eq!(idx.line_of("backends.crm.timeout"), Some(6));
        assert_eq!(idx.line_of("apis.0.name"), Some(8));
        assert_eq!(idx.line_of("apis.0.operations.getX.backend"), Some(10));
        assert_eq!(idx.line_of("apis.1.spec"), Some(12));
    }

    #[test]
    fn falls_back_to_the_nearest_ancestor() {
        let idx = LineIndex::build(DOC);
        assert_eq!(idx.line_of("backends.crm.health.path"), Some(4));
        assert_eq!(idx.line_of("nowhere"), None);
    }
}
