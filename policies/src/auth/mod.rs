//! Authentication and scopes: who is calling, and may they call this operation.
//!
//! The gateway extracts credentials and passes the operation's [`Security`] (from the spec);
//! [`Authenticator::authenticate`] decides. Keys, the token cache and the clock are
//! parameters, so every decision here is pure and testable.

mod api_key;
mod cache;
mod jwt;
mod keys;
mod scopes;

#[cfg(test)]
pub(crate) mod test_keys;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use propylon_openapi::security::{Requirement, SchemeKind, Security};
use serde_json::Value;

use crate::problem::{Problem, ProblemKind};

pub use api_key::ApiKeys;
pub use cache::{LastToken, TokenCache};
pub use jwt::{token_kid, JwtSettings, JwtVerifier, TokenError, VerifiedToken};
pub use keys::{KeyError, KeySet};
pub use scopes::missing_scopes;

/// The realm of every challenge.
const REALM: &str = "propylon";

/// What the client presented.
pub struct Credentials<'a> {
    /// The token after "Bearer " in `Authorization`, if any (see [`bearer_token`]).
    pub bearer: Option<&'a str>,
    /// Header lookup for API keys, by lower-case name. `Sync` so that the gateway's
    /// future stays `Send` while it holds the credentials across a JWKS refresh.
    pub header: &'a (dyn Fn(&str) -> Option<&'a str> + Sync),
}

/// Everything a decision needs, borrowed from the current config.
pub struct Authenticator<'a> {
    /// None when the config has no `auth.jwt`: JWT requirements then cannot hold.
    pub verifier: Option<&'a JwtVerifier>,
    pub keys: &'a KeySet,
    pub cache: &'a TokenCache,
    /// The client connection's last token, asked before the cache (`None`: the cache only).
    pub last_token: Option<&'a LastToken>,
    pub api_keys: &'a ApiKeys,
    /// The claim naming the consumer, usually "sub".
    pub consumer_claim: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub consumer: String,
    /// Verified claims, for mapping (`$.claims`); None when no token was part of the match.
    pub claims: Option<Arc<Value>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AuthOutcome {
    Allowed(Identity),
    /// The operation needs no credentials.
    Public,
    Denied(AuthFailure),
    /// The token's kid is unknown and nothing else let the request in: the gateway may
    /// refresh the JWKS and ask again; if the kid is still unknown, deny with
    /// [`AuthOutcome::unknown_key_denied`].
    UnknownKey(Option<String>),
}

impl AuthOutcome {
    /// Turns `UnknownKey` into the 401 to send once a refresh did not help.
    pub fn unknown_key_denied(self) -> AuthOutcome {
        match self {
            AuthOutcome::UnknownKey(kid) => {
                AuthOutcome::Denied(AuthFailure::InvalidToken(TokenError::UnknownKey(kid)))
            }
            other => other,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AuthFailure {
    MissingCredentials,
    InvalidToken(TokenError),
    InvalidApiKey,
    /// A valid credential without these scopes (the missing ones).
    InsufficientScope {
        required: Vec<String>,
    },
}

impl AuthFailure {
    /// How telling a failure is: the most specific one is reported when no alternative held.
    fn rank(&self) -> u8 {
        match self {
            AuthFailure::MissingCredentials => 0,
            AuthFailure::InvalidToken(_) | AuthFailure::InvalidApiKey => 1,
            AuthFailure::InsufficientScope { .. } => 2,
        }
    }

    /// The problem with a Bearer challenge (RFC 6750 §3); an invalid API key gets an
    /// `ApiKey` challenge. Use [`AuthFailure::to_problem_for`] to offer the schemes the
    /// operation actually accepts.
    pub fn to_problem(&self) -> Problem {
        let (problem, challenge) = self.problem_and_challenge();
        problem.with_header("www-authenticate", challenge)
    }

    /// As [`AuthFailure::to_problem`], with one challenge per kind of scheme the operation
    /// accepts (a Bearer one first when JWT is among them).
    pub fn to_problem_for(&self, security: &Security) -> Problem {
        let (jwt, api_key) = scheme_kinds(security);
        let (problem, challenge) = self.problem_and_challenge();
        let mut challenges = Vec::with_capacity(2);
        match self {
            AuthFailure::InvalidApiKey => {
                if jwt {
                    challenges.push(bearer_challenge(None));
                }
                challenges.push(challenge);
            }
            AuthFailure::MissingCredentials => {
                if jwt || !api_key {
                    challenges.push(challenge);
                }
                if api_key {
                    challenges.push(api_key_challenge());
                }
            }
            AuthFailure::InvalidToken(_) | AuthFailure::InsufficientScope { .. } => {
                challenges.push(challenge);
                if api_key {
                    challenges.push(api_key_challenge());
                }
            }
        }
        challenges
            .into_iter()
            .fold(problem, |p, c| p.with_header("www-authenticate", c))
    }

    fn problem_and_challenge(&self) -> (Problem, String) {
        match self {
            AuthFailure::MissingCredentials => (
                Problem::new(
                    ProblemKind::InvalidToken,
                    "this operation requires credentials",
                ),
                // RFC 6750 §3.1: no error code when the request had no credentials.
                bearer_challenge(None),
            ),
            AuthFailure::InvalidToken(error) => {
                let description = error.to_string();
                (
                    Problem::new(
                        ProblemKind::InvalidToken,
                        format!("the bearer token was rejected: {description}"),
                    ),
                    bearer_challenge(Some(format!(
                        r#"error="invalid_token", error_description="{}""#,
                        quotable(&description)
                    ))),
                )
            }
            AuthFailure::InvalidApiKey => (
                Problem::new(ProblemKind::InvalidToken, "the API key is not valid"),
                api_key_challenge(),
            ),
            AuthFailure::InsufficientScope { required } => {
                let scopes = required.join(" ");
                (
                    Problem::new(
                        ProblemKind::InsufficientScope,
                        format!("the credentials lack the scopes: {scopes}"),
                    ),
                    bearer_challenge(Some(format!(
                        r#"error="insufficient_scope", scope="{}""#,
                        quotable(&scopes)
                    ))),
                )
            }
        }
    }
}

fn bearer_challenge(params: Option<String>) -> String {
    match params {
        None => format!(r#"Bearer realm="{REALM}""#),
        Some(params) => format!(r#"Bearer realm="{REALM}", {params}"#),
    }
}

fn api_key_challenge() -> String {
    format!(r#"ApiKey realm="{REALM}""#)
}

/// RFC 6750 §3: these attribute values exclude `"` and `\` and control characters.
fn quotable(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(c, ' '..='~') && *c != '"' && *c != '\\')
        .collect()
}

/// Whether the operation accepts JWTs, API keys.
fn scheme_kinds(security: &Security) -> (bool, bool) {
    let Security::AnyOf(alternatives) = security else {
        return (false, false);
    };
    let kinds = || alternatives.iter().flatten().map(|r| &r.kind);
    (
        kinds().any(|k| *k == SchemeKind::Jwt),
        kinds().any(|k| matches!(k, SchemeKind::ApiKeyHeader(_))),
    )
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive). Read
/// from its first bytes: the hundreds of bytes of a token are not searched for the space.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, rest) = authorization.trim_ascii().split_at_checked(6)?;
    let token = rest.strip_prefix(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_ascii())
}

/// The bearer token checked once per request, however many alternatives mention it.
enum TokenState {
    Valid(Arc<Value>),
    Failed(AuthFailure),
    UnknownKey(Option<String>),
}

/// One requirement that held: a consumer and, for a token, its claims.
struct Held {
    consumer: String,
    claims: Option<Arc<Value>>,
    from_api_key: bool,
}

impl Authenticator<'_> {
    /// Public operations pass; otherwise the first alternative whose requirements all hold
    /// lets the request in. When none does, the most specific failure is reported.
    pub fn authenticate(
        &self,
        security: &Security,
        creds: &Credentials<'_>,
        now: u64,
    ) -> AuthOutcome {
        let Security::AnyOf(alternatives) = security else {
            return AuthOutcome::Public;
        };
        let mut token: Option<TokenState> = None;
        let mut worst: Option<AuthFailure> = None;
        for alternative in alternatives {
            match self.check_alternative(alternative, creds, now, &mut token) {
                Ok(identity) => return AuthOutcome::Allowed(identity),
                Err(failure) => {
                    if worst.as_ref().is_none_or(|w| failure.rank() > w.rank()) {
                        worst = Some(failure);
                    }
                }
            }
        }
        // A refreshed JWKS might still let the token in: let the gateway try that first.
        if let Some(TokenState::UnknownKey(kid)) = token {
            return AuthOutcome::UnknownKey(kid);
        }
        AuthOutcome::Denied(worst.unwrap_or(AuthFailure::MissingCredentials))
    }

    /// All requirements of one alternative. The consumer is the API key's when there is
    /// one (it names the calling application), else the token's; claims come from the token.
    fn check_alternative(
        &self,
        alternative: &[Requirement],
        creds: &Credentials<'_>,
        now: u64,
        token: &mut Option<TokenState>,
    ) -> Result<Identity, AuthFailure> {
        let mut worst: Option<AuthFailure> = None;
        let mut identity: Option<Identity> = None;
        for requirement in alternative {
            match self.check_requirement(requirement, creds, now, token) {
                // The first requirement's consumer is moved in, not copied (one allocation
                // fewer per request).
                Ok(held) => match identity.as_mut() {
                    None => {
                        identity = Some(Identity {
                            consumer: held.consumer,
                            claims: held.claims,
                        });
                    }
                    Some(current) => {
                        if held.from_api_key {
                            current.consumer = held.consumer;
                        }
                        if held.claims.is_some() {
                            current.claims = held.claims;
                        }
                    }
                },
                Err(failure) => {
                    if worst.as_ref().is_none_or(|w| failure.rank() > w.rank()) {
                        worst = Some(failure);
                    }
                }
            }
        }
        match (worst, identity) {
            (Some(failure), _) => Err(failure),
            (None, Some(identity)) => Ok(identity),
            // An empty alternative is public; `operation_security` never yields one.
            (None, None) => Err(AuthFailure::MissingCredentials),
        }
    }

    fn check_requirement(
        &self,
        requirement: &Requirement,
        creds: &Credentials<'_>,
        now: u64,
        token: &mut Option<TokenState>,
    ) -> Result<Held, AuthFailure> {
        match &requirement.kind {
            SchemeKind::Jwt => {
                let state = token.get_or_insert_with(|| self.check_token(creds.bearer, now));
                let claims = match state {
                    TokenState::Valid(claims) => claims.clone(),
                    TokenState::Failed(failure) => return Err(failure.clone()),
                    TokenState::UnknownKey(kid) => {
                        return Err(AuthFailure::InvalidToken(TokenError::UnknownKey(
                            kid.clone(),
                        )))
                    }
                };
                let missing = missing_scopes(&claims, &requirement.scopes);
                if !missing.is_empty() {
                    return Err(AuthFailure::InsufficientScope { required: missing });
                }
                let consumer = match propylon_json::value_member(&claims, self.consumer_claim) {
                    Some(Value::String(consumer)) if !consumer.is_empty() => consumer.clone(),
                    _ => {
                        return Err(AuthFailure::InvalidToken(TokenError::MissingClaim(
                            self.consumer_claim.to_owned(),
                        )))
                    }
                };
                Ok(Held {
                    consumer,
                    claims: Some(claims),
                    from_api_key: false,
                })
            }
            SchemeKind::ApiKeyHeader(name) => {
                let presented = (creds.header)(name).ok_or(AuthFailure::MissingCredentials)?;
                let consumer = self
                    .api_keys
                    .identify(presented.trim())
                    .ok_or(AuthFailure::InvalidApiKey)?;
                // API keys carry no scopes: a requirement naming some cannot hold.
                if !requirement.scopes.is_empty() {
                    return Err(AuthFailure::InsufficientScope {
                        required: requirement.scopes.clone(),
                    });
                }
                Ok(Held {
                    consumer: consumer.to_owned(),
                    claims: None,
                    from_api_key: true,
                })
            }
        }
    }

    /// The token's claims: from the cache, else verified (and then cached).
    fn check_token(&self, bearer: Option<&str>, now: u64) -> TokenState {
        let Some(token) = bearer else {
            return TokenState::Failed(AuthFailure::MissingCredentials);
        };
        if let Some(claims) = self.cache.get_on(self.last_token, token, now) {
            return TokenState::Valid(claims);
        }
        let Some(verifier) = self.verifier else {
            // No `auth.jwt` configured: no token can be checked (a config error `check`
            // should catch before this).
            return TokenState::Failed(AuthFailure::InvalidToken(TokenError::UnknownKey(None)));
        };
        match verifier.verify(token, self.keys, now) {
            Ok(verified) => {
                self.cache.insert_on(self.last_token, token, &verified);
                TokenState::Valid(verified.claims)
            }
            Err(TokenError::UnknownKey(kid)) => TokenState::UnknownKey(kid),
            Err(error) => TokenState::Failed(AuthFailure::InvalidToken(error)),
        }
    }
}
