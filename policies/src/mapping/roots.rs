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

/// The members of one context part that templates read by name (`$.headers.x-tenant`,
/// `$.claims.sub`), so that the context holds only those: a bearer token or a cookie is not
/// copied for a template that reads a tenant, nor every claim for one that reads `sub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberNames {
    Only(Vec<String>),
    /// `$.headers`, `$.headers.*`, `$..x`: any of them.
    All,
}

/// Request headers by name, in lower case (the context's names).
pub type HeaderNames = MemberNames;

/// Claims by name, as the token spells them.
pub type ClaimNames = MemberNames;

impl Default for MemberNames {
    fn default() -> Self {
        MemberNames::Only(Vec::new())
    }
}

impl MemberNames {
    /// Adds `name` as it is (headers are lower-cased by the caller).
    pub(crate) fn add(&mut self, name: &str) {
        if let MemberNames::Only(names) = self {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }

    /// The names read by either `self` or `other`.
    pub fn union(&mut self, other: &MemberNames) {
        match other {
            MemberNames::All => *self = MemberNames::All,
            MemberNames::Only(names) => names.iter().for_each(|n| self.add(n)),
        }
    }

    /// Whether the context keeps the member `name`.
    pub fn wants(&self, name: &str) -> bool {
        match self {
            MemberNames::All => true,
            MemberNames::Only(names) => names.iter().any(|n| n == name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_union_and_wants() {
        let mut names = HeaderNames::default();
        names.add("x-tenant");
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
