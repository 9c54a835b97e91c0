//! The one place where the data plane writes an answer of its own: problems (RFC 9457) and
//! the merged spec. Policies decide *what* to answer; this writes it to the session.

use crate::exchange::Answer;
use bytes::Bytes;
use pingora_error::Result;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use propylon_policies::limits::LimitFields;
use propylon_policies::problem::{Problem, CONTENT_TYPE};

/// Writes `problem` as `application/problem+json`, with `X-Request-Id` and `extra` headers
/// (the caller's `RateLimit` fields).
pub async fn problem(
    session: &mut Session,
    problem: &Problem,
    request_id: &str,
    extra: &LimitFields,
) -> Result<()> {
    let (header, body) = problem_answer(problem, request_id, extra)?;
    write(session, header, body).await
}

/// A problem's answer: its status, challenges, `extra` (`RateLimit` fields), content type,
/// length and `X-Request-Id`; and its body. The lean path writes the same answer.
pub fn problem_answer(
    problem: &Problem,
    request_id: &str,
    extra: &LimitFields,
) -> Result<(ResponseHeader, Bytes)> {
    let mut header = ResponseHeader::build(problem.status_code(), Some(7))?;
    // Appended: a problem may carry several challenges (`WWW-Authenticate: Bearer …` and
    // `ApiKey …`).
    for (name, value) in &problem.headers {
        header.append_header(*name, value.as_str())?;
    }
    for (name, value) in extra {
        header.insert_header(name, value)?;
    }
    let body = Bytes::from(problem.to_body());
    own_fields(&mut header, CONTENT_TYPE, &body, request_id)?;
    Ok((header, body))
}

/// Writes a 200 answer with a body made elsewhere (e.g. `/openapi.json`).
pub async fn ok(
    session: &mut Session,
    content_type: &str,
    body: Bytes,
    request_id: &str,
) -> Result<()> {
    let mut header = ResponseHeader::build(http::StatusCode::OK, Some(3))?;
    own_fields(&mut header, content_type, &body, request_id)?;
    write(session, header, body).await
}

fn own_fields(
    header: &mut ResponseHeader,
    content_type: &str,
    body: &Bytes,
    request_id: &str,
) -> Result<()> {
    header.insert_header(http::header::CONTENT_TYPE, content_type)?;
    header.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    header.insert_header("x-request-id", request_id)
}

/// The head, then the body unless the request is a HEAD or the body is empty.
async fn write(session: &mut Session, header: ResponseHeader, body: Bytes) -> Result<()> {
    let head_only = session.req_header().method == http::Method::HEAD || body.is_empty();
    session
        .write_response_header(Box::new(header), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// Writes an answer shaped by the buffered exchange (mapped body, mapped status).
pub async fn answer(
    session: &mut Session,
    answer: Answer,
    request_id: &str,
    extra: &LimitFields,
) -> Result<()> {
    let (header, body) = answer_parts(answer, request_id, extra)?;
    write(session, header, body).await
}

/// The head and body of an answer shaped by the buffered exchange: its fields, `extra`
/// (`RateLimit`), length and `X-Request-Id`. The lean path writes the same fields without a
/// `ResponseHeader` (`lean::head::write_answer_head`).
pub fn answer_parts(
    answer: Answer,
    request_id: &str,
    extra: &LimitFields,
) -> Result<(ResponseHeader, Bytes)> {
    // No map of the fields' original case: every name here is already an `http` name.
    let mut header = ResponseHeader::build_no_case(answer.status, Some(answer.headers.len() + 2))?;
    for (name, value) in answer.headers {
        header.append_header(name, value)?;
    }
    for (name, value) in extra {
        header.insert_header(name, value)?;
    }
    header.insert_header(http::header::CONTENT_LENGTH, answer.body.len().to_string())?;
    header.insert_header("x-request-id", request_id)?;
    Ok((header, answer.body))
}
