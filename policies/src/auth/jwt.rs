//! JWT verification against a [`KeySet`], with the clock passed in.
//!
//! jsonwebtoken checks the signature only; its time, issuer and audience checks are turned
//! off and done here against `now`, so results do not depend on the system clock.

use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, Validation};
use serde_json::Value;

use super::keys::{Key, KeyError, KeySet};

#[cfg(test)]
mod tests;

/// Longer tokens are refused before any parsing: a cheap guard against oversized input.
const MAX_TOKEN_LEN: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct JwtSettings {
    pub issuer: Option<String>,
    /// Any one of these must be in the token's `aud`; empty: `aud` is not checked.
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    pub leeway_secs: u64,
}

/// Why a token was refused. The messages are safe to show to clients (they become the
/// `error_description` of the `WWW-Authenticate` challenge).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token algorithm {0} is not accepted")]
    AlgorithmNotAllowed(String),
    #[error("the token is signed with an unknown key")]
    UnknownKey(Option<String>),
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token issuer is not accepted")]
    WrongIssuer,
    #[error("the token audience is not accepted")]
    WrongAudience,
    #[error("the token has no expiry (exp)")]
    MissingExp,
    /// The claim that names the consumer (e.g. `sub`) is missing or not a string.
    #[error("the token has no {0} claim")]
    MissingClaim(String),
}

/// A token whose signature and claims were checked.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    pub claims: Arc<Value>,
    /// The token's `exp`, unix seconds (without leeway).
    pub expires_at: u64,
}

#[derive(Debug, Clone)]
pub struct JwtVerifier {
    settings: JwtSettings,
}

impl JwtVerifier {
    /// Refuses an empty algorithm list and algorithms no key type here can verify (EdDSA).
    /// `none` cannot even be named: jsonwebtoken's `Algorithm` has no such variant.
    pub fn new(settings: JwtSettings) -> Result<JwtVerifier, KeyError> {
        if settings.algorithms.is_empty() {
            return Err(KeyError::NoAlgorithms);
        }
        if let Some(alg) = settings
            .algorithms
            .iter()
            .find(|alg| alg.family() == AlgorithmFamily::Ed)
        {
            return Err(KeyError::UnsupportedAlgorithm(format!("{alg:?}")));
        }
        Ok(JwtVerifier { settings })
    }

    pub fn settings(&self) -> &JwtSettings {
        &self.settings
    }

    /// Verifies signature (alg in the allow-list AND among the key's own algorithms), `exp`
    /// (required), `nbf`, `iss` and `aud` when configured, with leeway. `now` in unix seconds.
    pub fn verify(
        &self,
        token: &str,
        keys: &KeySet,
        now: u64,
    ) -> Result<VerifiedToken, TokenError> {
        let header = header(token)?;
        let alg = header.alg;
        if !self.settings.algorithms.contains(&alg) {
            return Err(TokenError::AlgorithmNotAllowed(format!("{alg:?}")));
        }
        let key = select_key(keys, header.kid.as_deref(), alg)?;
        // Exactly this algorithm; the library then also checks it against the key's family.
        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Value>(token, &key.decoding, &validation)
            .map_err(|e| map_error(e.kind(), alg))?;
        let claims = data.claims;
        if !claims.is_object() {
            return Err(TokenError::Malformed);
        }
        let expires_at = self.check_claims(&claims, now)?;
        Ok(VerifiedToken {
            claims: Arc::new(claims),
            expires_at,
        })
    }

    /// Time, issuer and audience; returns `exp`.
    fn check_claims(&self, claims: &Value, now: u64) -> Result<u64, TokenError> {
        let leeway = self.settings.leeway_secs;
        let exp = numeric_date(claims.get("exp"))?.ok_or(TokenError::MissingExp)?;
        // RFC 7519 §4.1.4: not accepted "on or after" exp.
        if now >= exp.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        if let Some(nbf) = numeric_date(claims.get("nbf"))? {
            if now.saturating_add(leeway) < nbf {
                return Err(TokenError::NotYetValid);
            }
        }
        if let Some(issuer) = &self.settings.issuer {
            if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
                return Err(TokenError::WrongIssuer);
            }
        }
        if !self.settings.audiences.is_empty() {
            let accepted = |aud: &str| self.settings.audiences.iter().any(|a| a == aud);
            let ok = match claims.get("aud") {
                Some(Value::String(aud)) => accepted(aud),
                Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(accepted),
                _ => false,
            };
            if !ok {
                return Err(TokenError::WrongAudience);
            }
        }
        Ok(exp)
    }
}

/// The `kid` of a token's header, without verifying anything (to decide on a JWKS refresh).
pub fn token_kid(token: &str) -> Result<Option<String>, TokenError> {
    Ok(header(token)?.kid)
}

fn header(token: &str) -> Result<jsonwebtoken::Header, TokenError> {
    if token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
        return Err(TokenError::Malformed);
    }
    // An `alg` outside jsonwebtoken's enum, `none` included, fails to parse here.
    jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)
}

/// The key for this token: by `kid`; without one, the only key that may verify `alg`.
fn select_key<'k>(
    keys: &'k KeySet,
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<&'k Key, TokenError> {
    let fits = |key: &&Key| key.algorithms.contains(&alg);
    match kid {
        Some(kid) => {
            let mut named = keys
                .keys()
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .peekable();
            if named.peek().is_none() {
                return Err(TokenError::UnknownKey(Some(kid.to_owned())));
            }
            // A known key of another family (the key-confusion attack) lands here.
            named
                .find(fits)
                .ok_or_else(|| TokenError::AlgorithmNotAllowed(format!("{alg:?}")))
        }
        None => {
            let mut candidates = keys.keys().iter().filter(fits);
            match (candidates.next(), candidates.next()) {
                (Some(key), None) => Ok(key),
                // None, or several and nothing to choose by.
                _ => Err(TokenError::UnknownKey(None)),
            }
        }
    }
}

/// A NumericDate claim: absent, or a non-negative number (fractions truncated).
fn numeric_date(value: Option<&Value>) -> Result<Option<u64>, TokenError> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(secs) = n.as_u64() {
                Ok(Some(secs))
            } else {
                match n.as_f64() {
                    // `as` saturates; a negative date is long past.
                    Some(f) if f.is_finite() => Ok(Some(f.max(0.0) as u64)),
                    _ => Err(TokenError::Malformed),
                }
            }
        }
        Some(_) => Err(TokenError::Malformed),
    }
}

fn map_error(kind: &ErrorKind, alg: Algorithm) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            TokenError::AlgorithmNotAllowed(format!("{alg:?}"))
        }
        _ => TokenError::Malformed,
    }
}
