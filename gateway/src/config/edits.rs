//! `headers` / `query` `{set, remove, rename}` and `response.status`, compiled once.

use super::compile::Ctx;
use super::raw::{RawFieldMap, RawResponseMap};
use crate::snapshot::{HeaderEdits, QueryEdits, ResponseEdits};
use http::header::HeaderName;
use propylon_policies::mapping::{
    BodyTemplate, ClaimNames, HeaderNames, MemberNames, Roots, StatusMap, ValueTemplate,
};

const HEADER_HELP: &str = "header names are tokens (letters, digits, `-`)";

pub(super) fn headers(ctx: &mut Ctx<'_>, key: &str, raw: Option<&RawFieldMap>) -> HeaderEdits {
    let mut edits = HeaderEdits::default();
    let Some(raw) = raw else { return edits };
    for (name, value) in &raw.set {
        let Some(n) = header_name(ctx, &format!("{key}.set.{name}"), name) else {
            continue;
        };
        match ValueTemplate::compile(value) {
            Ok(t) => edits.set.push((n, t)),
            Err(e) => ctx.error(
                &format!("{key}.set.{name}"),
                format!("bad value for header `{name}`: {e}"),
                "write a literal or a JSONPath such as `$.claims.sub`",
            ),
        }
    }
    for name in &raw.remove {
        if let Some(n) = header_name(ctx, &format!("{key}.remove"), name) {
            edits.remove.push(n);
        }
    }
    for (from, to) in &raw.rename {
        let path = format!("{key}.rename.{from}");
        if let (Some(f), Some(t)) = (header_name(ctx, &path, from), header_name(ctx, &path, to)) {
            edits.rename.push((f, t));
        }
    }
    edits
}

fn header_name(ctx: &mut Ctx<'_>, key: &str, name: &str) -> Option<HeaderName> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| ctx.error(key, format!("`{name}` is not a header name"), HEADER_HELP))
        .ok()
}

pub(super) fn query(ctx: &mut Ctx<'_>, key: &str, raw: Option<&RawFieldMap>) -> QueryEdits {
    let Some(raw) = raw else {
        return QueryEdits::default();
    };
    let names = raw
        .set
        .keys()
        .chain(raw.remove.iter())
        .chain(raw.rename.iter().flat_map(|(a, b)| [a, b]));
    if names.into_iter().any(|k| k.is_empty()) {
        ctx.error(
            key,
            "a query parameter name is empty",
            "name every parameter",
        );
    }
    let mut set = Vec::new();
    for (name, value) in &raw.set {
        match ValueTemplate::compile(value) {
            Ok(t) => set.push((name.clone(), t)),
            Err(e) => ctx.error(
                &format!("{key}.set.{name}"),
                format!("bad value for query parameter `{name}`: {e}"),
                "write a literal or a JSONPath such as `$.path.id`",
            ),
        }
    }
    QueryEdits {
        set,
        remove: raw.remove.clone(),
        rename: raw
            .rename
            .iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect(),
    }
}

pub(super) fn response(
    ctx: &mut Ctx<'_>,
    key: &str,
    raw: Option<&RawResponseMap>,
) -> ResponseEdits {
    let Some(raw) = raw else {
        return ResponseEdits::default();
    };
    let status = if raw.status.is_empty() {
        None
    } else {
        StatusMap::compile(&raw.status)
            .map_err(|e| ctx.error(&format!("{key}.status"), format!("bad status map: {e}"), "map HTTP status codes (100-599) to HTTP status codes, e.g. `{404: 404, 500: 502}`"))
            .ok()
    };
    ResponseEdits {
        status,
        headers: headers(ctx, &format!("{key}.headers"), raw.headers.as_ref()),
    }
}

/// The request headers read by name by the request's templates (see `HeaderNames`).
pub(super) fn header_names(
    headers: &HeaderEdits,
    query: &QueryEdits,
    body: Option<&BodyTemplate>,
) -> HeaderNames {
    read_names(
        headers,
        query,
        body,
        ValueTemplate::header_names,
        BodyTemplate::header_names,
    )
}

/// The claims read by name by the request's templates (see `ClaimNames`).
pub(super) fn claim_names(
    headers: &HeaderEdits,
    query: &QueryEdits,
    body: Option<&BodyTemplate>,
) -> ClaimNames {
    read_names(
        headers,
        query,
        body,
        ValueTemplate::claim_names,
        BodyTemplate::claim_names,
    )
}

fn read_names(
    headers: &HeaderEdits,
    query: &QueryEdits,
    body: Option<&BodyTemplate>,
    of_value: fn(&ValueTemplate) -> &MemberNames,
    of_body: fn(&BodyTemplate) -> &MemberNames,
) -> MemberNames {
    let mut names = MemberNames::default();
    let values = headers
        .set
        .iter()
        .map(|(_, t)| t)
        .chain(query.set.iter().map(|(_, t)| t));
    for t in values {
        names.union(of_value(t));
    }
    if let Some(t) = body {
        names.union(of_body(t));
    }
    names
}

/// The context parts read by the request's header and query templates.
pub(super) fn roots(headers: &HeaderEdits, query: &QueryEdits) -> Roots {
    let mut roots = Roots::default();
    for t in headers
        .set
        .iter()
        .map(|(_, t)| t)
        .chain(query.set.iter().map(|(_, t)| t))
    {
        roots = roots.union(t.roots());
    }
    roots
}
