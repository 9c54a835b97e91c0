//! The buffered part of an operation: body templates, XML and body validation. An operation
//! that needs none of them streams; one that needs any reads the whole body first.

use super::compile::Ctx;
use super::raw::{AsyncMode, BodyFormat, ErrorMode, RawOperation, RawXml, XmlEnvelope};
use crate::exchange::RESPONSE_ROOTS;
use crate::snapshot::{BufferedExchange, HeaderEdits, QueryEdits, ResponseEdits};
use propylon_openapi::validate::RequestValidator;
use propylon_policies::mapping::{BodyTemplate, Reads, Roots, ValueTemplate};
use propylon_policies::xml::{Envelope, XmlShape};

pub(super) fn compile(
    ctx: &mut Ctx<'_>,
    key: &str,
    op: &RawOperation,
    validator: Option<&RequestValidator>,
    backend_xml: Option<XmlShape>,
    roots: &mut Roots,
) -> Option<BufferedExchange> {
    let request = op.request.as_ref();
    let response = op.response.as_ref();
    let request_body = template(
        ctx,
        &format!("{key}.request.body"),
        request.and_then(|r| r.body.as_ref()),
    );
    let response_body = template(
        ctx,
        &format!("{key}.response.body"),
        response.and_then(|r| r.body.as_ref()),
    );
    if request_body.as_ref().is_some_and(|t| t.roots().status) {
        ctx.error(
            &format!("{key}.request.body"),
            "a request template cannot read `$.status`",
            "the request context has path, query, headers, body, claims and consumer",
        );
    }
    if let Some(t) = &response_body {
        if !within(t.roots(), RESPONSE_ROOTS) {
            ctx.error(&format!("{key}.response.body"), "a response template reads only `$.body`, `$.status` and `$.headers`", "request values are not part of the answer's context; copy them with a request header if the backend echoes it");
        }
    }
    let xml = match (op.format, &op.xml) {
        (Some(BodyFormat::Json), _) => None,
        (Some(BodyFormat::Xml), Some(raw)) | (None, Some(raw)) => {
            xml_shape(ctx, &format!("{key}.xml"), raw)
        }
        (Some(BodyFormat::Xml), None) => backend_xml.or_else(|| {
            xml_shape(
                ctx,
                key,
                &RawXml {
                    root: None,
                    namespace: None,
                    envelope: None,
                },
            )
        }),
        (None, None) => backend_xml,
    };
    // Checked for every operation (a streamed one ignores it), reported once.
    let max_body = match op.max_body.as_deref() {
        Some(text) => ctx
            .size(&format!("{key}.max_body"), Some(text))
            .map_or(ctx.max_body, |s| usize::try_from(s).unwrap_or(usize::MAX)),
        None => ctx.max_body,
    };
    let validate_body = validator.is_some_and(RequestValidator::wants_json_body);
    if let Some(t) = &request_body {
        *roots = roots.union(t.roots());
    }
    let mapped = request_body.is_some() || response_body.is_some() || xml.is_some();
    // A call that may become a job needs its whole body before the backend is tried.
    let may_be_job = matches!(op.async_mode, Some(AsyncMode::Fallback | AsyncMode::Always));
    if !mapped && !validate_body && !roots.body && !may_be_job {
        return None;
    }
    let errors_as_problems = match response.and_then(|r| r.errors) {
        Some(ErrorMode::Problem) => true,
        Some(ErrorMode::Pass) => false,
        None => mapped,
    };
    Some(BufferedExchange {
        max_body,
        validate_body,
        request_body,
        response_xml: xml.is_some(),
        request_xml: xml,
        response_body,
        errors_as_problems,
        request_borrowed: false,
        response_borrowed: false,
        response_roots: Roots::default(),
        response_reads: Reads::all(),
    })
}

/// Which documents the exchange's templates read (see `BufferedExchange::request_borrowed`),
/// once the operation's header and query edits are known.
pub(super) fn choose_documents(
    mut exchange: BufferedExchange,
    headers: &HeaderEdits,
    query: &QueryEdits,
    response: &ResponseEdits,
) -> BufferedExchange {
    let body_reads = |t: &Option<BodyTemplate>| t.as_ref().is_none_or(BodyTemplate::reads_borrowed);
    exchange.request_borrowed = body_reads(&exchange.request_body)
        && values_read(&headers.set)
        && values_read(&query.set)
        && exchange.request_xml.is_none();
    exchange.response_borrowed = body_reads(&exchange.response_body)
        && values_read(&response.headers.set)
        && !exchange.response_xml;
    let edits = response.headers.set.iter().map(|(_, t)| t.roots());
    let body = exchange.response_body.as_ref().map(BodyTemplate::roots);
    exchange.response_roots = edits.chain(body).fold(Roots::default(), Roots::union);
    let values = response.headers.set.iter().map(|(_, t)| t);
    exchange.response_reads = Reads::of_body(exchange.response_body.as_ref(), values);
    exchange
}

fn values_read<K>(set: &[(K, ValueTemplate)]) -> bool {
    set.iter().all(|(_, t)| t.reads_borrowed())
}

fn template(ctx: &mut Ctx<'_>, key: &str, raw: Option<&serde_json::Value>) -> Option<BodyTemplate> {
    match BodyTemplate::compile(raw?) {
        Ok(t) => Some(t),
        Err(errors) => {
            for e in errors {
                let at = if e.pointer.is_empty() {
                    "the top".to_string()
                } else {
                    format!("`{}`", e.pointer)
                };
                // The pointer's segments continue the key path: the line of the very leaf.
                let leaf: String = e
                    .pointer
                    .split('/')
                    .skip(1)
                    .map(|seg| format!(".{}", seg.replace("~1", "/").replace("~0", "~")))
                    .collect();
                ctx.error(
                    &format!("{key}{leaf}"),
                    format!("bad body template at {at}: {}", e.message),
                    "leaves are literals or JSONPaths (`$.body.name`); see docs/mapping.md",
                );
            }
            None
        }
    }
}

/// Also used for a backend's `xml:`.
pub(super) fn xml_shape(ctx: &mut Ctx<'_>, key: &str, raw: &RawXml) -> Option<XmlShape> {
    let envelope = match raw.envelope {
        None | Some(XmlEnvelope::None) => Envelope::None,
        Some(XmlEnvelope::Soap11) => Envelope::Soap11,
        Some(XmlEnvelope::Soap12) => Envelope::Soap12,
    };
    XmlShape::new(
        raw.root.as_deref().unwrap_or("request"),
        raw.namespace.as_deref(),
        envelope,
    )
    .map_err(|e| {
        ctx.error(
            key,
            format!("bad XML settings: {e}"),
            "`root` is an XML element name such as `GetCustomerRequest`",
        )
    })
    .ok()
}

/// Whether every part `used` reads is in `allowed`.
fn within(used: Roots, allowed: Roots) -> bool {
    used.union(allowed) == allowed
}
