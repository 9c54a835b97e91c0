//! Which top-level parts of the context a template reads, so the gateway builds only those
//! (no header map, no body parse when nothing asks for them).

/// The top-level context keys read by a template. `RequestParts::context` / `response_context`
/// build only the parts set here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roots {
    pub path: bool,
    pub query: bool,
    pub headers: bool,
    pub body: bool,
    pub claims: bool,
    pub consumer: bool,
    pub status: bool,
}

/// The names a context path may start with, in the order error messages list them.
pub(crate) const ROOT_NAMES: &str = "path, query, headers, body, claims, consumer, status";

impl Roots {
    /// Every part: for paths that may read anything (`$..x`, `$.*`, a filter naming `$`).
    pub const ALL: Roots = Roots {
        path: true,
        query: true,
        headers: true,
        body: true,
        claims: true,
        consumer: true,
        status: true,
    };

    /// Marks the part called `name`; `false` when no context part has that name.
    pub(crate) fn mark(&mut self, name: &str) -> bool {
        let slot = match name {
            "path" => &mut self.path,
            "query" => &mut self.query,
            "headers" => &mut self.headers,
            "body" => &mut self.body,
            "claims" => &mut self.claims,
            "consumer" => &mut self.consumer,
            "status" => &mut self.status,
            _ => return false,
        };
        *slot = true;
        true
    }

    /// The parts read by either `self` or `other` (a route with several templates).
    pub fn union(self, other: Roots) -> Roots {
        Roots {
            path: self.path || other.path,
            query: self.query || other.query,
            headers: self.headers || other.headers,
            body: self.body || other.body,
            claims: self.claims || other.claims,
            consumer: self.consumer || other.consumer,
            status: self.status || other.status,
        }
    }
}

/// The request headers a template reads by name (`$.headers.x-tenant`), so the context holds
/// only those: a bearer token or a cookie is not copied for a template that reads a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderNames {
    Only(Vec<String>),
    /// `$.headers`, `$.headers.*`, `$..x`: any of them.
    All,
}

impl Default for HeaderNames {
    fn default() -> Self {
        HeaderNames::Only(Vec::new())
    }
}

impl HeaderNames {
    /// Adds `name` (lower-case, as the context's names are).
    pub(crate) fn add(&mut self, name: &str) {
        if let HeaderNames::Only(names) = self {
            let name = name.to_ascii_lowercase();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }

    /// The names read by either `self` or `other`.
    pub fn union(&mut self, other: &HeaderNames) {
        match other {
            HeaderNames::All => *self = HeaderNames::All,
            HeaderNames::Only(names) => names.iter().for_each(|n| self.add(n)),
        }
    }

    /// Whether the context keeps the header `name` (lower-case).
    pub fn wants(&self, name: &str) -> bool {
        match self {
            HeaderNames::All => true,
            HeaderNames::Only(names) => names.iter().any(|n| n == name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_union_and_wants() {
        let mut names = HeaderNames::default();
        names.add("X-Tenant");
        names.union(&HeaderNames::Only(vec!["accept".into(), "x-tenant".into()]));
        assert_eq!(
            names,
            HeaderNames::Only(vec!["x-tenant".into(), "accept".into()])
        );
        assert!(names.wants("x-tenant") && !names.wants("authorization"));
        names.union(&HeaderNames::All);
        assert!(names.wants("authorization"));
        names.add("x");
        assert_eq!(names, HeaderNames::All);
    }

    #[test]
    fn mark_sets_only_the_named_part() {
        let mut r = Roots::default();
        assert!(r.mark("headers"));
        assert!(!r.mark("bodyy"));
        assert_eq!(
            r,
            Roots {
                headers: true,
                ..Roots::default()
            }
        );
    }

    #[test]
    fn union_combines() {
        let a = Roots {
            body: true,
            ..Roots::default()
        };
        let b = Roots {
            status: true,
            ..Roots::default()
        };
        let u = a.union(b);
        assert!(u.body && u.status && !u.path);
        assert_eq!(Roots::ALL.union(a), Roots::ALL);
    }
}
