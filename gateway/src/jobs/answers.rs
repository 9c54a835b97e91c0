//! A job's answer kept in the store and served again: written from the outcome of a
//! delivery (a live call or a replay), read back at `/jobs/{id}/result` or for a repeated
//! `Idempotency-Key`.

use super::store::StoredAnswer;
use crate::exchange::{Answer, Outcome};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};

/// What is stored of an outcome: a problem is kept as its `application/problem+json` body.
pub fn to_stored(outcome: &Outcome) -> StoredAnswer {
    match outcome {
        Outcome::Answer(a) => StoredAnswer {
            status: a.status,
            headers: a
                .headers
                .iter()
                .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect(),
            body: a.body.to_vec(),
        },
        Outcome::Problem(p) => StoredAnswer {
            status: p.status,
            headers: vec![(
                "content-type".into(),
                propylon_policies::problem::CONTENT_TYPE.into(),
            )],
            body: p.to_body(),
        },
    }
}

/// A stored answer to write to a client again.
pub fn from_stored(answer: &StoredAnswer) -> Answer {
    let headers = answer
        .headers
        .iter()
        .filter_map(|(n, v)| {
            Some((
                HeaderName::from_bytes(n.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            ))
        })
        .collect();
    Answer {
        status: answer.status,
        headers,
        body: Bytes::from(answer.body.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use propylon_policies::{Problem, ProblemKind};

    #[test]
    fn answers_and_problems_round_trip() {
        let answer = Answer {
            status: 201,
            headers: vec![(
                http::header::LOCATION,
                HeaderValue::from_static("/orders/7"),
            )],
            body: Bytes::from_static(b"{\"id\":7}"),
        };
        let back = from_stored(&to_stored(&Outcome::Answer(answer)));
        assert_eq!(back.status, 201);
        assert_eq!(
            back.headers,
            vec![(
                http::header::LOCATION,
                HeaderValue::from_static("/orders/7")
            )]
        );
        assert_eq!(&back.body[..], b"{\"id\":7}");
        let problem = Problem::new(ProblemKind::BackendError, "backend `erp` answered 404");
        let stored = to_stored(&Outcome::Problem(problem));
        assert_eq!(
            stored.headers,
            vec![(
                "content-type".to_string(),
                "application/problem+json".to_string()
            )]
        );
        assert!(String::from_utf8_lossy(&stored.body).contains("backend-error"));
    }
}
