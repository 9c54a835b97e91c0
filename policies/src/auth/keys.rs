//! Verification keys: public keys from a JWKS and HMAC secrets from the config.
//!
//! Every key carries the algorithms it may verify, fixed by its own type (and its JWK `alg`
//! when given), never by the token. That is what defeats key confusion: a token saying
//! `HS256` can never be checked against an RSA public key used as an HMAC secret.

use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

#[cfg(test)]
mod tests;

/// Why a key set, a verifier or an API key list could not be built (config or JWKS errors).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeyError {
    #[error("the JWKS is not valid JSON: {0}")]
    Json(String),
    #[error("the JWKS must be a JSON object with a `keys` array")]
    NotAJwks,
    #[error("JWKS key {index}{}: {message}", kid_suffix(.kid))]
    InvalidKey {
        index: usize,
        kid: Option<String>,
        message: String,
    },
    #[error("the JWKS holds no usable signing key; supported: RSA, and EC on P-256 or P-384 (`use` other than \"enc\")")]
    NoUsableKeys,
    #[error("`algorithms` is empty: list the JWT algorithms to accept, e.g. [RS256]")]
    NoAlgorithms,
    #[error("algorithm {0} is not supported; use RS256/384/512, PS256/384/512, ES256, ES384 or HS256/384/512")]
    UnsupportedAlgorithm(String),
    #[error("API key of consumer `{consumer}`: {message}")]
    InvalidApiKey { consumer: String, message: String },
}

fn kid_suffix(kid: &Option<String>) -> String {
    kid.as_ref()
        .map(|kid| format!(" (kid `{kid}`)"))
        .unwrap_or_default()
}

const RSA_ALGS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
const HMAC_ALGS: &[Algorithm] = &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

/// One key and the only algorithms it may verify.
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) kid: Option<String>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) decoding: DecodingKey,
}

/// Verification keys. Cheap to build, meant to be swapped whole on a JWKS refresh.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

impl std::fmt::Debug for KeySet {
    // Kids only: secrets stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| (&k.kid, &k.algorithms)))
            .finish()
    }
}

impl KeySet {
    /// Signing keys of a JWKS document (RFC 7517). Keys of other types (OKP, oct), other
    /// curves and encryption keys are skipped so that one exotic key from an IdP does not
    /// take the others down; a supported key with bad fields is an error.
    pub fn from_jwks(json: &[u8]) -> Result<KeySet, KeyError> {
        let doc: Value = serde_json::from_slice(json).map_err(|e| KeyError::Json(e.to_string()))?;
        let entries = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(KeyError::NotAJwks)?;
        let mut keys = Vec::with_capacity(entries.len());
        for (index, jwk) in entries.iter().enumerate() {
            if let Some(key) = parse_jwk(index, jwk)? {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Err(KeyError::NoUsableKeys);
        }
        Ok(KeySet { keys })
    }

    /// Adds an HMAC secret (HS256/384/512 only). An empty secret is ignored: anyone could
    /// sign with it.
    pub fn with_hmac_secret(mut self, kid: Option<&str>, secret: &[u8]) -> KeySet {
        if !secret.is_empty() {
            self.keys.push(Key {
                kid: kid.map(str::to_owned),
                algorithms: HMAC_ALGS.to_vec(),
                decoding: DecodingKey::from_secret(secret),
            });
        }
        self
    }

    pub fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn keys(&self) -> &[Key] {
        &self.keys
    }
}

fn parse_jwk(index: usize, jwk: &Value) -> Result<Option<Key>, KeyError> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    let kid = field("kid").map(str::to_owned);
    let fail = |message: String| KeyError::InvalidKey {
        index,
        kid: kid.clone(),
        message,
    };
    if field("use") == Some("enc") {
        return Ok(None);
    }
    let (family_algs, decoding): (Vec<Algorithm>, _) = match field("kty") {
        Some("RSA") => {
            let (Some(n), Some(e)) = (field("n"), field("e")) else {
                return Err(fail("an RSA key needs `n` and `e`".into()));
            };
            let key = DecodingKey::from_rsa_components(n, e)
                .map_err(|e| fail(format!("bad RSA components: {e}")))?;
            (RSA_ALGS.to_vec(), key)
        }
        Some("EC") => {
            // A curve verifies exactly one ES algorithm.
            let alg = match field("crv") {
                Some("P-256") => Algorithm::ES256,
                Some("P-384") => Algorithm::ES384,
                _ => return Ok(None),
            };
            let (Some(x), Some(y)) = (field("x"), field("y")) else {
                return Err(fail("an EC key needs `x` and `y`".into()));
            };
            let key = DecodingKey::from_ec_components(x, y)
                .map_err(|e| fail(format!("bad EC components: {e}")))?;
            (vec![alg], key)
        }
        _ => return Ok(None),
    };
    let algorithms = match field("alg") {
        None => family_algs,
        Some(alg) => match alg.parse::<Algorithm>() {
            Ok(parsed) if family_algs.contains(&parsed) => vec![parsed],
            Ok(_) => return Err(fail(format!("`alg` {alg} does not fit the key type"))),
            // e.g. RSA-OAEP on a key without `use`: an encryption key, not ours.
            Err(_) => return Ok(None),
        },
    };
    Ok(Some(Key {
        kid,
        algorithms,
        decoding,
    }))
}
