//! The whole lane: operations with a buffered exchange (body mapping, body validation, XML)
//! and no jobs. The body is read here with its head; checking and mapping the request and
//! shaping its answer are `exchange`'s, as on the full path (`FacadeProxy::serve_buffered`);
//! the backend is called on the lean path's pool (`fetch`), and its answer is shaped and
//! written from the bytes as read.

use super::admission::RequestHeaders;
use super::fetch::WholeAnswer;
use super::head::{self, Forwarded};
use super::{mapped, Call, Decision};
use crate::exchange::{self, BackendParts};
use crate::proxy::upstream::Caller;
use crate::snapshot::{BufferedExchange, FacadeRoute};
use bytes::Bytes;
use http::{HeaderMap, Method};
use pingora_core::protocols::Stream;
use pingora_error::{Error, ErrorType};
use propylon_openapi::PathParams;
use propylon_policies::{Problem, ProblemKind};

impl Call<'_> {
    pub(super) async fn whole(
        &mut self,
        stream: &mut Stream,
        client_ip: Option<&str>,
        params: &PathParams,
        exchange: &BufferedExchange,
        body: &[u8],
    ) -> Decision {
        let Some(fields) = mapped::client_fields(self.req, &self.route.header_names) else {
            let problem = Problem::new(ProblemKind::BadRequest, "the request cannot be processed");
            return self
                .answer_problem(stream, problem, "InvalidHTTPHeader")
                .await;
        };
        let caller = Caller {
            consumer: &self.consumer,
            claims: self.claims.as_deref(),
        };
        let facade = mapped::facade_parts(self.req, &fields);
        let mapped = match exchange::map_parts(self.route, exchange, params, &caller, facade, body)
        {
            Ok(mapped) => mapped,
            Err(problem) => return self.answer_problem(stream, *problem, "").await,
        };
        let sent = mapped.body(body);
        let mut request = Vec::with_capacity(self.req.upstream_head_room() + sent.len());
        let fwd = Forwarded {
            authority: self.route.backend.authority.as_bytes(),
            request_id: self.request_id,
            client_ip,
        };
        if mapped::write_mapped_head(&mut request, self.req, self.route, &mapped, sent, &fwd)
            .is_err()
        {
            let e = Error::explain(ErrorType::InternalError, "building the upstream URI");
            return self.upstream_failed(stream, &e).await;
        }
        request.extend_from_slice(sent);
        let head_request = self.route.method.as_ref().unwrap_or(&self.req.method) == Method::HEAD;
        let answer = match Box::pin(self.fetch(&request, head_request)).await {
            Ok(answer) => answer,
            Err(e) => return self.upstream_failed(stream, &e).await,
        };
        let gateway = head::GatewayFields {
            extra: &self.limit_headers,
            request_id: self.request_id,
        };
        match write_shaped(self.route, exchange, &answer, &gateway) {
            Ok(written) => {
                let body = written.made.as_deref().unwrap_or(answer.body());
                self.send_answer(stream, written.out, body, written.status, "")
                    .await
            }
            Err(NotWritten::Problem(problem)) => self.answer_problem(stream, *problem, "").await,
            Err(NotWritten::BadHead(e)) => self.upstream_failed(stream, &e).await,
            Err(NotWritten::BadStatus) => {
                self.finish(0, "InternalError");
                Decision::Close
            }
        }
    }
}

/// Shapes the client's answer from the backend's (`exchange::shape`, as on the full path) and
/// writes its head with the gateway's fields. The backend's fields are read from its head
/// where it lies, and put in a header map only for templates that read `$.headers`.
fn write_shaped(
    route: &FacadeRoute,
    exchange: &BufferedExchange,
    answer: &WholeAnswer,
    gateway: &head::GatewayFields<'_>,
) -> Result<Written, NotWritten> {
    let bad_head = || {
        let e = Error::explain(ErrorType::InvalidHTTPHeader, "invalid header");
        NotWritten::BadHead(e.into_up())
    };
    let mut slots = head::header_slots();
    let (status, fields) = head::answer_fields(answer.head(), &mut slots).ok_or_else(bad_head)?;
    let map = if exchange.response_roots.headers {
        mapped::header_map(fields, |_| true).ok_or_else(bad_head)?
    } else {
        HeaderMap::new()
    };
    let parts = BackendParts {
        status,
        content_type: fields.header("content-type"),
        headers: &map,
        body: answer.body(),
    };
    let shaped = exchange::shape(route, exchange, parts).map_err(NotWritten::Problem)?;
    let body_len = shaped.body.as_ref().map_or(answer.body().len(), Bytes::len);
    let client_fields = || shaped.fields(fields.iter().map(|f| (f.name, f.value)));
    // Room for the whole head (the fields kept of the backend's, the `RateLimit` ones, and
    // 512 bytes for the status line, the length and a request id of up to 200): the body is
    // then appended without the head being copied to a larger buffer.
    let kept = client_fields().map(|(n, v)| n.len() + v.len());
    let limits = gateway.extra.iter().map(|(n, v)| n.len() + v.len());
    let room = kept.chain(limits).map(|length| length + 4).sum::<usize>();
    let mut out = Vec::with_capacity(512 + room + body_len);
    head::write_answer_head(&mut out, shaped.status, client_fields(), body_len, gateway)
        .ok_or(NotWritten::BadStatus)?;
    Ok(Written {
        out,
        status: shaped.status,
        made: shaped.body,
    })
}

/// The client's answer with its head written.
struct Written {
    /// The head, with room for the body after it.
    out: Vec<u8>,
    status: u16,
    /// The body the gateway made; `None`: the backend's own.
    made: Option<Bytes>,
}

/// Why no answer was shaped from the backend's.
enum NotWritten {
    Problem(Box<Problem>),
    /// The backend's head does not read again as it did, or not into a header map.
    BadHead(Box<Error>),
    /// A status HTTP/1.1 cannot carry.
    BadStatus,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::exchange::{client, Outcome};
    use propylon_policies::limits::LimitFields;

    /// `(status, sorted "name: value" fields in lower case, body)` of a client's answer.
    fn read(bytes: &[u8]) -> (u16, Vec<String>, Vec<u8>) {
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut slots);
        let Ok(httparse::Status::Complete(len)) = parsed.parse(bytes) else {
            panic!("not a whole head");
        };
        let mut fields: Vec<String> = parsed
            .headers
            .iter()
            .map(|h| {
                let value = String::from_utf8_lossy(h.value);
                format!("{}: {value}", h.name.to_ascii_lowercase())
            })
            .collect();
        fields.sort();
        (parsed.code.unwrap(), fields, bytes[len..].to_vec())
    }

    /// The client's answer to `backend` (a whole answer, not chunked) by the lean path and
    /// by the full path (`shape_answer`, `respond::answer_parts`).
    fn both(operation: &str, backend: &str) -> [(u16, Vec<String>, Vec<u8>); 2] {
        let (route, _) = crate::proxy::lean::mapped::tests::route(operation);
        let exchange = route.exchange.as_ref().unwrap();
        let extra = LimitFields::new("\"q\";q=10", "limit=10");
        let gateway = head::GatewayFields {
            extra: &extra,
            request_id: "rid",
        };
        let head_len = backend.find("\r\n\r\n").unwrap() + 4;
        let answer = WholeAnswer::new(backend.as_bytes().to_vec(), head_len);
        let Ok(mut written) = write_shaped(&route, exchange, &answer, &gateway) else {
            panic!("not shaped on the lean path");
        };
        let body = written.made.as_deref().unwrap_or(answer.body());
        written.out.extend_from_slice(body);
        // The full path's answer: Pingora's head of the backend's fields.
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut slots);
        parsed.parse(backend.as_bytes()).unwrap();
        let mut header = pingora_http::ResponseHeader::build(parsed.code.unwrap(), None).unwrap();
        for h in parsed.headers.iter() {
            header.append_header(h.name.to_string(), h.value).unwrap();
        }
        let body = bytes::Bytes::copy_from_slice(answer.body());
        let answer = client::BackendAnswer { header, body };
        let Outcome::Answer(answer) = exchange::shape_answer(&route, exchange, answer) else {
            panic!("not shaped on the full path");
        };
        let (header, body) = crate::proxy::respond::answer_parts(answer, "rid", &extra).unwrap();
        let mut full = Vec::new();
        head::write_gateway_head(&mut full, &header);
        full.extend_from_slice(&body);
        [read(&written.out), read(&full)]
    }

    #[test]
    fn a_mapped_answer_is_the_full_paths() {
        let operation = r#"{ backend: erp, response: { status: { 201: 200 }, body: { id: "$.body.id", tag: "$.headers.x-tag" }, headers: { set: { x-status: "$.status" }, remove: [server], rename: { x-old: x-new } } } }"#;
        let body = r#"{"id":"A7","junk":[1,2]}"#;
        let backend = format!("HTTP/1.1 201 Created\r\nServer: b\r\nX-Tag: t1\r\nX-Old: o\r\nX-Request-Id: theirs\r\nContent-Type: text/json\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n{body}", body.len());
        let [lean, full] = both(operation, &backend);
        assert_eq!(lean, full);
        assert_eq!(lean.0, 200);
        assert_eq!(
            lean.1,
            [
                "content-length: 22",
                "content-type: application/json",
                "ratelimit-policy: \"q\";q=10",
                "ratelimit: limit=10",
                "x-new: o",
                "x-request-id: rid",
                "x-status: 201",
                "x-tag: t1",
            ]
        );
        assert_eq!(lean.2, br#"{"id":"A7","tag":"t1"}"#);
    }

    #[test]
    fn a_relayed_answer_keeps_the_backends_body_and_type() {
        // No body template: the backend's body and type go through, its error too.
        let operation =
            r#"{ backend: erp, request: { body: { r: "$.body.r" } }, response: { errors: pass } }"#;
        let backend = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nX-Tag: t\r\nContent-Length: 4\r\n\r\ngone";
        let [lean, full] = both(operation, backend);
        assert_eq!(lean, full);
        assert_eq!(lean.0, 404);
        assert!(lean.1.contains(&"content-type: text/plain".to_string()));
        assert_eq!(lean.2, b"gone");
    }
}
