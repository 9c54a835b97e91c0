//! One header or query value: a JSONPath or a literal string, rendered as text.

use super::compile::{Compiler, Scope};
use super::doc::Doc;
use super::error::MappingError;
use super::path::JsonPath;
use super::roots::{ClaimNames, HeaderNames, Roots};
use serde_json::Value;

/// A header or query value template.
#[derive(Debug, Clone)]
pub struct ValueTemplate {
    kind: Kind,
    roots: Roots,
    headers: HeaderNames,
    claims: ClaimNames,
}

#[derive(Debug, Clone)]
enum Kind {
    Literal(String),
    Path(JsonPath),
}

impl ValueTemplate {
    /// A text starting with `$` is a JSONPath over the context; any other text is a literal.
    pub fn compile(text: &str) -> Result<ValueTemplate, MappingError> {
        if !text.starts_with('$') {
            return Ok(ValueTemplate::literal(text));
        }
        let mut compiler = Compiler::default();
        match compiler.path(text, "", Scope::Context) {
            Some(path) => Ok(ValueTemplate {
                kind: Kind::Path(path),
                roots: compiler.roots,
                headers: compiler.headers,
                claims: compiler.claims,
            }),
            None => Err(compiler.errors.into_iter().next().unwrap_or_else(|| {
                MappingError::new("", format!("`{text}` is not a valid JSONPath"))
            })),
        }
    }

    /// A literal value even when it starts with `$` (the config's `{ $literal: "$5" }`).
    pub fn literal(text: &str) -> ValueTemplate {
        ValueTemplate {
            kind: Kind::Literal(text.to_string()),
            roots: Roots::default(),
            headers: HeaderNames::default(),
            claims: ClaimNames::default(),
        }
    }

    /// The text for `ctx`: strings as they are, numbers and booleans printed, objects and
    /// arrays as compact JSON. `None` (leave the header or parameter out) when the path finds
    /// nothing or finds `null`.
    pub fn render_string<D: Doc>(&self, ctx: &D) -> Option<String> {
        match &self.kind {
            Kind::Literal(text) => Some(text.clone()),
            Kind::Path(path) => match path.find(ctx).to_value()? {
                Value::Null => None,
                Value::String(s) => Some(s),
                other => Some(other.to_string()),
            },
        }
    }

    /// The path, for a value that is one.
    pub(crate) fn path(&self) -> Option<&JsonPath> {
        match &self.kind {
            Kind::Path(path) => Some(path),
            Kind::Literal(_) => None,
        }
    }

    /// The context parts this value reads.
    pub fn roots(&self) -> Roots {
        self.roots
    }

    /// The headers this value reads, by name.
    pub fn header_names(&self) -> &HeaderNames {
        &self.headers
    }

    /// The claims this value reads, by name.
    pub fn claim_names(&self) -> &ClaimNames {
        &self.claims
    }

    /// True when the value may read a [`Borrowed`](super::Borrowed) document (see
    /// [`BodyTemplate::reads_borrowed`](super::BodyTemplate::reads_borrowed)).
    pub fn reads_borrowed(&self) -> bool {
        match &self.kind {
            Kind::Literal(_) => true,
            Kind::Path(path) => !path.needs_engine(),
        }
    }

    /// True for a literal: the gateway may precompute it (e.g. as a `HeaderValue`).
    pub fn is_literal(&self) -> bool {
        matches!(self.kind, Kind::Literal(_))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({
            "body": {"n": 42, "f": 1.5, "ok": true, "o": {"a": [1, "x"]}, "s": "text", "z": null,
                     "items": [{"sku": "A"}, {"sku": "B"}]},
            "headers": {"x-tenant": "acme"}
        })
    }

    fn render(text: &str) -> Option<String> {
        ValueTemplate::compile(text).unwrap().render_string(&ctx())
    }

    #[test]
    fn renders_scalars_and_json() {
        assert_eq!(render("$.body.n").as_deref(), Some("42"));
        assert_eq!(render("$.body.f").as_deref(), Some("1.5"));
        assert_eq!(render("$.body.ok").as_deref(), Some("true"));
        assert_eq!(render("$.body.s").as_deref(), Some("text"));
        assert_eq!(render("$.body.o").as_deref(), Some(r#"{"a":[1,"x"]}"#));
        assert_eq!(
            render("$.body.items[*].sku").as_deref(),
            Some(r#"["A","B"]"#)
        );
        assert_eq!(render("$.headers.x-tenant").as_deref(), Some("acme"));
    }

    #[test]
    fn nothing_and_null_leave_the_value_out() {
        assert_eq!(render("$.body.missing"), None);
        assert_eq!(render("$.body.z"), None);
    }

    #[test]
    fn literals_and_roots() {
        let lit = ValueTemplate::compile("propylon").unwrap();
        assert!(lit.is_literal());
        assert_eq!(lit.roots(), Roots::default());
        assert_eq!(lit.render_string(&json!({})).as_deref(), Some("propylon"));
        let dollar = ValueTemplate::literal("$5");
        assert!(dollar.is_literal());
        assert_eq!(dollar.render_string(&json!({})).as_deref(), Some("$5"));
        let path = ValueTemplate::compile("$.headers.x-tenant").unwrap();
        assert!(!path.is_literal());
        assert_eq!(
            path.roots(),
            Roots {
                headers: true,
                ..Roots::default()
            }
        );
    }

    #[test]
    fn bad_paths_are_errors_at_the_root_pointer() {
        let e = ValueTemplate::compile("$.a[").unwrap_err();
        assert_eq!(e.pointer, "");
        assert!(e.message.contains("not a valid JSONPath"), "{e}");
        let e = ValueTemplate::compile("$.tenant").unwrap_err();
        assert!(e.message.contains("start at one of"), "{e}");
    }
}
