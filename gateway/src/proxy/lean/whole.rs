//! The whole lane: operations with a buffered exchange (body mapping, body validation, XML)
//! and no jobs. The body is read here with its head; checking and mapping the request and
//! shaping its answer are `exchange`'s, as on the full path (`FacadeProxy::serve_buffered`);
//! the backend is called on the lean path's pool (`fetch`).

use super::head::{self, Forwarded};
use super::{mapped, Call, Decision};
use crate::exchange::{self, Answer, Outcome};
use crate::proxy::upstream::Caller;
use crate::snapshot::BufferedExchange;
use http::Method;
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
        match exchange::shape_answer(self.route, exchange, answer) {
            Outcome::Answer(answer) => self.answer(stream, answer).await,
            Outcome::Problem(problem) => self.answer_problem(stream, problem, "").await,
        }
    }

    async fn answer(&self, stream: &mut Stream, answer: Answer) -> Decision {
        // Room for the whole head (the fields kept of the backend's, the `RateLimit` ones, and
        // 512 bytes for the status line, the length and a request id of up to 200): the body
        // is then appended without the head being copied to a larger buffer.
        let kept = answer
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len());
        let limits = self.limit_headers.iter().map(|(n, v)| n.len() + v.len());
        let fields = kept.chain(limits).map(|length| length + 4).sum::<usize>();
        let mut out = Vec::with_capacity(512 + fields + answer.body.len());
        let gateway = head::GatewayFields {
            extra: &self.limit_headers,
            request_id: self.request_id,
        };
        let head = head::write_answer_head(&mut out, &answer, &gateway);
        if head.is_none() {
            self.finish(0, "InternalError");
            return Decision::Close;
        }
        self.send_answer(stream, out, &answer.body, answer.status, "")
            .await
    }
}
