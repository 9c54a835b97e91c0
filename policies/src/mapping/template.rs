//! `request.body` / `response.body`: a whole JSON body built from the context.

use super::compile::{Compiler, Scope};
use super::doc::Doc;
use super::error::MappingError;
use super::node::Node;
use super::roots::{ClaimNames, HeaderNames, Roots};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A body template, compiled once at config load and rendered per request.
#[derive(Debug, Clone)]
pub struct BodyTemplate {
    node: Node,
    roots: Roots,
    headers: HeaderNames,
    claims: ClaimNames,
    engine: bool,
    written: LargestBody,
}

/// The largest body a template has written (up to 64 KiB), so that the next one's buffer is
/// allocated once instead of grown two or three times. Stored only when it grows: no write to
/// this shared line per request.
#[derive(Debug, Default)]
struct LargestBody(AtomicUsize);

impl LargestBody {
    const FIRST: usize = 512;
    const MOST: usize = 64 * 1024;

    fn capacity(&self) -> usize {
        self.0.load(Ordering::Relaxed).max(Self::FIRST)
    }

    fn wrote(&self, len: usize) {
        if len <= Self::MOST && len > self.0.load(Ordering::Relaxed) {
            self.0.fetch_max(len, Ordering::Relaxed);
        }
    }
}

impl Clone for LargestBody {
    fn clone(&self) -> Self {
        LargestBody(AtomicUsize::new(self.0.load(Ordering::Relaxed)))
    }
}

impl BodyTemplate {
    /// Compiles the admin's template; on failure returns every mistake found, each with its
    /// JSON pointer into the template.
    pub fn compile(template: &Value) -> Result<BodyTemplate, Vec<MappingError>> {
        let mut compiler = Compiler::default();
        let node = compiler.node(template, "", Scope::Context);
        match node {
            Some(node) if compiler.errors.is_empty() => Ok(BodyTemplate {
                node,
                roots: compiler.roots,
                headers: compiler.headers,
                claims: compiler.claims,
                engine: compiler.engine,
                written: LargestBody::default(),
            }),
            _ => Err(compiler.errors),
        }
    }

    /// The body for `ctx`; `None` when the template is a path (or `$each`) that finds nothing.
    pub fn render(&self, ctx: &Value) -> Option<Value> {
        self.node.render(ctx)
    }

    /// The body for `ctx` as JSON bytes: the same as `render` then `serde_json::to_vec`, but
    /// written directly (about twice as fast; no output `Value` is built).
    pub fn render_json<D: Doc>(&self, ctx: &D) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(self.written.capacity());
        let found = self.node.write_json(ctx, &mut out);
        self.written.wrote(out.len());
        found.then_some(out)
    }

    pub(crate) fn node(&self) -> &Node {
        &self.node
    }

    /// The context parts this template reads.
    pub fn roots(&self) -> Roots {
        self.roots
    }

    /// The headers this template reads, by name.
    pub fn header_names(&self) -> &HeaderNames {
        &self.headers
    }

    /// The claims this template reads, by name.
    pub fn claim_names(&self) -> &ClaimNames {
        &self.claims
    }

    /// True when every path is direct (names, indexes, `[*]`), so the template may read a
    /// [`Borrowed`](super::Borrowed) document; slices, filters, unions and `..` need the
    /// jsonpath-rust engine, which reads serde_json's `Value`.
    pub fn reads_borrowed(&self) -> bool {
        !self.engine
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_next_body_is_allocated_at_the_size_of_the_largest_so_far() {
        let template = BodyTemplate::compile(&json!({"s": "$.body.s"})).unwrap();
        let ctx = json!({"body": {"s": "x".repeat(2000)}});
        let first = template.render_json(&ctx).unwrap();
        let second = template.render_json(&ctx).unwrap();
        assert_eq!(first, second);
        assert_eq!(second.capacity(), first.len());
        let small = template.render_json(&json!({"body": {"s": "y"}})).unwrap();
        assert_eq!(
            small.capacity(),
            first.len(),
            "a smaller body keeps the hint"
        );
        assert_eq!(template.clone().written.capacity(), first.len());
    }
}
