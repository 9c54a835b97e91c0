//! Routes a request (method + path) to a value, using matchit.
//!
//! One matchit route per distinct path template holds a small per-method
//! table, so 404 and 405 fall out of one lookup and the `Allow` header is
//! computed once at build time.

use std::collections::HashMap;

use http::Method;

mod params;
#[cfg(test)]
mod tests;

pub use params::PathParams;

/// Immutable routing table, built once and shared by requests.
#[derive(Debug)]
pub struct RouteTable<T> {
    router: matchit::Router<usize>,
    entries: Vec<PathEntry<T>>,
}

/// Collects routes; insertion reports conflicts immediately so config
/// errors point at the offending route.
#[derive(Debug)]
pub struct RouteTableBuilder<T> {
    router: matchit::Router<usize>,
    entries: Vec<PathEntry<T>>,
    by_template: HashMap<String, usize>,
}

#[derive(Debug)]
struct PathEntry<T> {
    methods: Vec<(Method, T)>,
    allow: String,
}

/// Outcome of a lookup.
#[derive(Debug)]
pub enum RouteLookup<'a, T> {
    Found {
        value: &'a T,
        params: PathParams,
    },
    /// The path exists but not for this method; `allow` is the value for
    /// the `Allow` header of the 405 response.
    MethodNotAllowed {
        allow: String,
    },
    NotFound,
}

/// Why a route could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("route {method} {path} is defined twice; each method and path may have one operation")]
    Duplicate { method: String, path: String },
    #[error("route {path} is not valid: {message}")]
    Conflict { path: String, message: String },
}

impl<T> Default for RouteTableBuilder<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> RouteTableBuilder<T> {
    pub fn new() -> Self {
        RouteTableBuilder {
            router: matchit::Router::new(),
            entries: Vec::new(),
            by_template: HashMap::new(),
        }
    }

    /// Adds `value` for `method` on `path_template` (matchit / OpenAPI
    /// `{name}` syntax, whole segments).
    pub fn insert(
        &mut self,
        method: Method,
        path_template: &str,
        value: T,
    ) -> Result<(), RouteError> {
        let existing = self.by_template.get(path_template);
        if let Some(entry) = existing.and_then(|&index| self.entries.get_mut(index)) {
            if entry.methods.iter().any(|(m, _)| *m == method) {
                return Err(RouteError::Duplicate {
                    method: method.to_string(),
                    path: path_template.to_owned(),
                });
            }
            entry.methods.push((method, value));
            return Ok(());
        }
        if !path_template.starts_with('/') {
            return Err(RouteError::Conflict {
                path: path_template.to_owned(),
                message: "a path template must start with '/'".to_owned(),
            });
        }
        let index = self.entries.len();
        self.router
            .insert(path_template, index)
            .map_err(|err| conflict(path_template, err))?;
        self.by_template.insert(path_template.to_owned(), index);
        self.entries.push(PathEntry {
            methods: vec![(method, value)],
            allow: String::new(),
        });
        Ok(())
    }

    /// Freezes the table and precomputes each path's `Allow` value.
    pub fn build(self) -> RouteTable<T> {
        let mut entries = self.entries;
        for entry in &mut entries {
            entry.allow = allow_header(&entry.methods);
        }
        RouteTable {
            router: self.router,
            entries,
        }
    }
}

impl<T> RouteTable<T> {
    /// Looks up `path` (the request path without query, still
    /// percent-encoded). HEAD falls back to GET when no HEAD route exists.
    pub fn lookup(&self, method: &Method, path: &str) -> RouteLookup<'_, T> {
        let Ok(matched) = self.router.at(path) else {
            return RouteLookup::NotFound;
        };
        let Some(entry) = self.entries.get(*matched.value) else {
            return RouteLookup::NotFound;
        };
        let value = entry.find(method).or_else(|| {
            if *method == Method::HEAD {
                entry.find(&Method::GET)
            } else {
                None
            }
        });
        match value {
            Some(value) => RouteLookup::Found {
                value,
                params: PathParams::from_raw(&matched.params),
            },
            None => RouteLookup::MethodNotAllowed {
                allow: entry.allow.clone(),
            },
        }
    }
}

impl<T> PathEntry<T> {
    fn find(&self, method: &Method) -> Option<&T> {
        self.methods
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, value)| value)
    }
}

/// Defined methods in a conventional order, plus HEAD when GET exists
/// because lookup serves HEAD from GET.
fn allow_header<T>(methods: &[(Method, T)]) -> String {
    let mut names: Vec<&str> = methods.iter().map(|(m, _)| m.as_str()).collect();
    if names.contains(&"GET") && !names.contains(&"HEAD") {
        names.push("HEAD");
    }
    names.sort_by_key(|name| (method_rank(name), *name));
    names.join(", ")
}

fn method_rank(name: &str) -> usize {
    const ORDER: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
    ];
    ORDER
        .iter()
        .position(|known| *known == name)
        .unwrap_or(ORDER.len())
}

/// Turns matchit's error into a message that says what to change.
fn conflict(path: &str, err: matchit::InsertError) -> RouteError {
    let message = match err {
        matchit::InsertError::Conflict { with } if shape(&with) == shape(path) => format!(
            "it differs from `{with}` only in parameter names, so both match the same requests; use the same parameter names"
        ),
        matchit::InsertError::Conflict { with } => {
            format!("it conflicts with the already registered route `{with}`")
        }
        matchit::InsertError::InvalidParamSegment => {
            "only one parameter per path segment is allowed, and no text may follow it in the segment"
                .to_owned()
        }
        matchit::InsertError::InvalidParam => {
            "parameters must be written `{name}` with a non-empty name and balanced braces"
                .to_owned()
        }
        matchit::InsertError::InvalidCatchAll => {
            "a catch-all parameter `{*name}` must be the last segment".to_owned()
        }
        other => other.to_string(),
    };
    RouteError::Conflict {
        path: path.to_owned(),
        message,
    }
}

/// The template with parameter names erased: `/a/{x}` -> `/a/{}`.
fn shape(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut in_param = false;
    for c in template.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push('{');
            }
            '}' => {
                in_param = false;
                out.push('}');
            }
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}
