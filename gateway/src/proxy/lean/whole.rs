//! The whole lane: operations with a buffered exchange (body mapping, body validation, XML)
//! and no jobs. The body is read here with its head; checking and mapping the request and
//! shaping its answer are `exchange`'s, as on the full path (`FacadeProxy::serve_buffered`);
//! the backend is called on the lean path's pool (`fetch`).

use super::{head, Call, Decision};
use crate::exchange::{self, Answer, Outcome};
use crate::proxy::upstream::{Caller, Forwarding};
use crate::snapshot::BufferedExchange;
use bytes::Bytes;
use pingora_core::protocols::Stream;
use pingora_error::Result;
use pingora_http::RequestHeader;
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
        let Ok(facade) = self.facade_header() else {
            let problem = Problem::new(ProblemKind::BadRequest, "the request cannot be processed");
            return self
                .answer_problem(stream, problem, "InvalidHTTPHeader")
                .await;
        };
        let caller = Caller {
            consumer: &self.consumer,
            claims: self.claims.as_deref(),
        };
        let fwd = Forwarding {
            request_id: self.request_id,
            client_ip,
        };
        let body = Bytes::copy_from_slice(body);
        let mapped =
            exchange::map_request(self.route, exchange, params, &caller, fwd, facade, body);
        let prepared = match mapped {
            Ok(Ok(prepared)) => prepared,
            Ok(Err(Outcome::Problem(problem))) => {
                return self.answer_problem(stream, problem, "").await
            }
            Ok(Err(Outcome::Answer(answer))) => return self.answer(stream, answer).await,
            Err(e) => return self.upstream_failed(stream, &e).await,
        };
        let call = self.fetch(&prepared.header, &prepared.body);
        let answer = match Box::pin(call).await {
            Ok(answer) => answer,
            Err(e) => return self.upstream_failed(stream, &e).await,
        };
        match exchange::shape_answer(self.route, exchange, answer) {
            Outcome::Answer(answer) => self.answer(stream, answer).await,
            Outcome::Problem(problem) => self.answer_problem(stream, problem, "").await,
        }
    }

    /// The client's request as Pingora's parser gives it to `exchange`.
    fn facade_header(&self) -> Result<RequestHeader> {
        let req = self.req;
        let mut header = RequestHeader::build(
            req.method.clone(),
            req.target.as_bytes(),
            Some(req.headers.len()),
        )?;
        for h in req.headers {
            header.append_header(h.name.to_string(), h.value)?;
        }
        Ok(header)
    }

    async fn answer(&self, stream: &mut Stream, answer: Answer) -> Decision {
        let mut out = Vec::with_capacity(256 + answer.body.len());
        let fields = head::GatewayFields {
            extra: &self.limit_headers,
            request_id: self.request_id,
        };
        let head = head::write_answer_head(&mut out, &answer, &fields);
        if head.is_none() {
            self.finish(0, "InternalError");
            return Decision::Close;
        }
        self.send_answer(stream, out, &answer.body, answer.status, "")
            .await
    }
}
