//! `request.body` / `response.body`: a whole JSON body built from the context.

use super::compile::{Compiler, Scope};
use super::doc::Doc;
use super::error::MappingError;
use super::node::Node;
use super::roots::{ClaimNames, HeaderNames, Roots};
use serde_json::Value;

/// A body template, compiled once at config load and rendered per request.
#[derive(Debug, Clone)]
pub struct BodyTemplate {
    node: Node,
    roots: Roots,
    headers: HeaderNames,
    claims: ClaimNames,
    engine: bool,
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
        let mut out = Vec::with_capacity(512);
        self.node.write_json(ctx, &mut out).then_some(out)
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
