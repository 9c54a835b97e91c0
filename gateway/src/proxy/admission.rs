//! Who is calling and may they: authentication and scopes from the spec's `security`, then
//! the consumer's rate limit and quota. The answer is a decision: admit, or refuse with a
//! problem (401 / 403 / 429).

use crate::exchange::BackendClient;
use crate::snapshot::{FacadeRoute, Snapshot};
use crate::state::GatewayState;
use http::HeaderMap;
use propylon_policies::auth::{
    bearer_token, AuthFailure, AuthOutcome, Authenticator, Credentials, KeySet, LastToken,
    TokenError,
};
use propylon_policies::limits::{LimitDecision, LimitFields};
use propylon_policies::Problem;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The request fields admission reads: Pingora's parsed map, or the lean path's
/// head (`lean::head`).
pub trait RequestHeaders {
    /// The first value of `name` (lower case), if it is text.
    fn header(&self, name: &str) -> Option<&str>;
}

impl RequestHeaders for HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

pub enum Admission {
    Admit(Admitted),
    Refuse(Problem),
}

/// An admitted caller: the mapping context's `$.consumer` and `$.claims`, and the
/// `RateLimit` headers its answer carries.
pub struct Admitted {
    pub consumer: String,
    pub claims: Option<Arc<Value>>,
    pub limit_headers: LimitFields,
}

/// `last_token` is the client connection's, where the caller keeps one (the lean path).
pub async fn admit(
    state: &GatewayState,
    client: &BackendClient,
    snapshot: &Snapshot,
    route: &FacadeRoute,
    req: &(impl RequestHeaders + Sync + ?Sized),
    client_ip: Option<&str>,
    last_token: Option<&LastToken>,
) -> Admission {
    let now = unix_now();
    let asking = Asking {
        snapshot,
        route,
        last_token,
        now,
    };
    let (consumer, claims) = match authenticate(state, client, &asking, req)
        .await
        .unknown_key_denied()
    {
        AuthOutcome::Allowed(identity) => (identity.consumer, identity.claims),
        // Anonymous callers share limits by address.
        AuthOutcome::Public => (
            joined("anonymous", ':', client_ip.unwrap_or("unknown")),
            None,
        ),
        // Challenges name every scheme the operation accepts (Bearer, ApiKey).
        AuthOutcome::Denied(failure) => {
            return Admission::Refuse(failure.to_problem_for(&route.security))
        }
        // `unknown_key_denied` turned this into `Denied`; the arm keeps the match total.
        AuthOutcome::UnknownKey(kid) => {
            let failure = AuthFailure::InvalidToken(TokenError::UnknownKey(kid));
            return Admission::Refuse(failure.to_problem_for(&route.security));
        }
    };
    match limit(state, snapshot, route, &consumer, now) {
        LimitDecision::Allow { headers } => Admission::Admit(Admitted {
            consumer,
            claims,
            limit_headers: headers,
        }),
        LimitDecision::Deny { problem } => Admission::Refuse(problem),
    }
}

/// What one request's authentication asks about, besides its headers and keys.
struct Asking<'a> {
    snapshot: &'a Snapshot,
    route: &'a FacadeRoute,
    last_token: Option<&'a LastToken>,
    now: u64,
}

async fn authenticate(
    state: &GatewayState,
    client: &BackendClient,
    asking: &Asking<'_>,
    req: &(impl RequestHeaders + Sync + ?Sized),
) -> AuthOutcome {
    let auth = &asking.snapshot.auth;
    let Some(source) = &auth.jwks_url else {
        return try_authenticate(asking, req, &auth.static_keys);
    };
    match try_authenticate(asking, req, &state.jwks.keys()) {
        // A kid we do not know: the IdP may have rotated its keys. Ask once more after a fetch.
        // Boxed: the fetch's future is large and rare, and every request's admission future
        // would otherwise carry (and move) its size.
        AuthOutcome::UnknownKey(_) => {
            Box::pin(state.jwks.refresh(client, source, auth.jwks_cooldown)).await;
            try_authenticate(asking, req, &state.jwks.keys())
        }
        outcome => outcome,
    }
}

/// One authentication attempt with `keys`; synchronous, so no borrow of the request lives
/// across the JWKS fetch.
fn try_authenticate(
    asking: &Asking<'_>,
    req: &(impl RequestHeaders + Sync + ?Sized),
    keys: &KeySet,
) -> AuthOutcome {
    let auth = &asking.snapshot.auth;
    let bearer = req.header("authorization").and_then(bearer_token);
    let lookup = |name: &str| req.header(name);
    let creds = Credentials {
        bearer,
        header: &lookup,
    };
    let authenticator = Authenticator {
        verifier: auth.verifier.as_ref(),
        keys,
        cache: &auth.token_cache,
        last_token: asking.last_token,
        api_keys: &auth.api_keys,
        consumer_claim: &auth.consumer_claim,
    };
    authenticator.authenticate(&asking.route.security, &creds, asking.now)
}

/// The operation's own limit (keyed by consumer and operation), else the consumer's tier,
/// else the default; no limit configured admits with no headers.
fn limit(
    state: &GatewayState,
    snapshot: &Snapshot,
    route: &FacadeRoute,
    consumer: &str,
    now: u64,
) -> LimitDecision {
    let plan = &snapshot.limits;
    let (limit, key) = match &route.limit {
        Some(limit) => (
            limit,
            Cow::Owned(joined(consumer, '|', &route.operation_id)),
        ),
        None => match plan.consumers.get(consumer).or(plan.default.as_ref()) {
            Some(limit) => (limit, Cow::Borrowed(consumer)),
            None => {
                return LimitDecision::Allow {
                    headers: LimitFields::none(),
                }
            }
        },
    };
    limit.check(&key, state.quota_counters.as_ref(), now)
}

/// `a`, `separator`, `b` as one string: a key made per request, without `format!`'s
/// machinery.
fn joined(a: &str, separator: char, b: &str) -> String {
    let mut key = String::with_capacity(a.len() + 1 + b.len());
    key.push_str(a);
    key.push(separator);
    key.push_str(b);
    key
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
