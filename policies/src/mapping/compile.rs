//! Turns an admin's template (YAML read into a `Value`) into a [`Node`] tree, collecting every
//! mistake with its JSON pointer so `propylon check` can list them all at once.

use super::error::{child_pointer, MappingError};
use super::node::{Each, Field, Lit, Node, ObjectNode};
use super::path::JsonPath;
use super::roots::{ClaimNames, HeaderNames, Roots, ROOT_NAMES};
use serde_json::{Map, Value};

const DIRECTIVES: [&str; 5] = ["$path", "$default", "$each", "$to", "$literal"];

/// Compilation state: the errors so far, the context parts read, and whether any path needs
/// the jsonpath-rust engine (and so serde_json's `Value`).
#[derive(Default)]
pub(crate) struct Compiler {
    pub(crate) errors: Vec<MappingError>,
    pub(crate) roots: Roots,
    pub(crate) headers: HeaderNames,
    pub(crate) claims: ClaimNames,
    pub(crate) engine: bool,
}

/// Whether `$` means the whole context (`false`) or an `$each` item (`true`).
#[derive(Clone, Copy)]
pub(crate) enum Scope {
    Context,
    Item,
}

impl Compiler {
    /// Compiles one template node; `None` when it holds an error (already recorded).
    pub(crate) fn node(&mut self, template: &Value, ptr: &str, scope: Scope) -> Option<Node> {
        match template {
            Value::String(text) if text.starts_with('$') => {
                self.path(text, ptr, scope).map(Node::Path)
            }
            Value::Object(map) if map.keys().any(|k| k.starts_with('$')) => {
                self.directive(map, ptr, scope)
            }
            Value::Object(map) => {
                let fields: Vec<(String, Option<Node>)> = map
                    .iter()
                    .map(|(k, v)| (k.clone(), self.node(v, &child_pointer(ptr, k), scope)))
                    .collect();
                let fields: Option<Vec<Field>> = fields
                    .into_iter()
                    .map(|(k, n)| Some(Field::new(k, n?)))
                    .collect();
                fields.map(|fields| Node::Object(ObjectNode::new(fields)))
            }
            Value::Array(items) => {
                let nodes: Vec<Option<Node>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.node(v, &child_pointer(ptr, &i.to_string()), scope))
                    .collect();
                nodes
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .map(Node::Array)
            }
            literal => Some(Node::Literal(Lit::new(literal.clone()))),
        }
    }

    /// Compiles a JSONPath and, in the context scope, records (and checks) its root.
    pub(crate) fn path(&mut self, text: &str, ptr: &str, scope: Scope) -> Option<JsonPath> {
        let path = match JsonPath::compile(text) {
            Ok(path) => {
                self.engine |= path.needs_engine();
                path
            }
            Err(message) => {
                self.errors.push(MappingError::new(ptr, message));
                return None;
            }
        };
        if let Scope::Context = scope {
            match path.root() {
                Some(name) if !self.roots.mark(name) => {
                    self.errors.push(MappingError::new(
                        ptr,
                        format!(
                            "`{text}` starts at `{name}`, which the context does not have; \
                             start at one of {ROOT_NAMES} (e.g. `$.body.{name}`)"
                        ),
                    ));
                    return None;
                }
                Some("headers") => match path.member_below_root() {
                    Some(name) => self.headers.add(&name.to_ascii_lowercase()),
                    None => self.headers = HeaderNames::All,
                },
                Some("claims") => match path.member_below_root() {
                    Some(name) => self.claims.add(name),
                    None => self.claims = ClaimNames::All,
                },
                Some(_) => {}
                None => {
                    self.roots = Roots::ALL;
                    self.headers = HeaderNames::All;
                    self.claims = ClaimNames::All;
                }
            }
        }
        Some(path)
    }

    /// An object with `$` keys: `$literal`, `{ $path, $default }` or `{ $each, $to }`.
    fn directive(&mut self, map: &Map<String, Value>, ptr: &str, scope: Scope) -> Option<Node> {
        let before = self.errors.len();
        let head = ["$literal", "$path", "$each"]
            .into_iter()
            .find(|h| map.contains_key(*h));
        let allowed: &[&str] = match head {
            Some("$literal") => &["$literal"],
            Some("$path") => &["$path", "$default"],
            Some(_) => &["$each", "$to"],
            None => &[],
        };
        for (key, value) in map {
            let at = child_pointer(ptr, key);
            let message = match (key.as_str(), head) {
                (k, _) if allowed.contains(&k) => continue,
                ("$to", _) if !map.contains_key("$each") => {
                    "`$to` needs `$each` beside it: `{ $each: \"$.body.items[*]\", $to: <template> }`"
                        .to_string()
                }
                ("$default", _) if !map.contains_key("$path") => {
                    "`$default` needs `$path` beside it: `{ $path: \"$.body.x\", $default: <value> }`"
                        .to_string()
                }
                (k, Some(h)) if DIRECTIVES.contains(&k) => {
                    format!("`{k}` cannot be combined with `{h}`; use one per object")
                }
                (k, _) if k.starts_with('$') => format!(
                    "unknown directive `{k}`; the directives are {} \
                     (a literal starting with `$` is written {{ $literal: \"...\" }})",
                    DIRECTIVES.join(", ")
                ),
                (k, Some(h)) => {
                    format!("`{k}` cannot sit beside `{h}`; move it out of the `{h}` object")
                }
                // No head: the typo is in a `$` key; still check the ordinary fields.
                (_, None) => {
                    let _ = self.node(value, &at, scope);
                    continue;
                }
            };
            self.errors.push(MappingError::new(&at, message));
        }
        let node = match head {
            Some("$literal") => map
                .get("$literal")
                .cloned()
                .map(|v| Node::Literal(Lit::new(v))),
            Some("$path") => {
                let path = self.path_field(map, "$path", ptr, scope);
                let default = map.get("$default").cloned().map(Lit::new);
                match (path, default) {
                    (Some(p), Some(d)) => Some(Node::Default(p, d)),
                    (Some(p), None) => Some(Node::Path(p)),
                    _ => None,
                }
            }
            Some(_) => {
                let source = self.path_field(map, "$each", ptr, scope);
                let to = match map.get("$to") {
                    Some(t) => self.node(t, &child_pointer(ptr, "$to"), Scope::Item),
                    None => {
                        self.errors.push(MappingError::new(
                            ptr,
                            "`$each` needs `$to`: the template for one item, e.g. `$to: { Sku: \"$.sku\" }`",
                        ));
                        None
                    }
                };
                match (source, to) {
                    (Some(source), Some(to)) => Some(Node::Each(Box::new(Each {
                        list: source.list_parent(),
                        source,
                        to,
                    }))),
                    _ => None,
                }
            }
            None => None,
        };
        node.filter(|_| self.errors.len() == before)
    }

    /// The JSONPath under a `$path` or `$each` key.
    fn path_field(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        ptr: &str,
        scope: Scope,
    ) -> Option<JsonPath> {
        let at = child_pointer(ptr, key);
        match map.get(key) {
            Some(Value::String(text)) if text.starts_with('$') => self.path(text, &at, scope),
            _ => {
                self.errors.push(MappingError::new(
                    &at,
                    format!("`{key}` takes a JSONPath string starting with `$`, e.g. \"$.body.items[*]\""),
                ));
                None
            }
        }
    }
}
