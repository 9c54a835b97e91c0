//! `auth:` → the JWT verifier, its static keys (JWKS file, HMAC secrets), the JWKS URL to
//! refresh from, and the API key digests.

use super::compile::Ctx;
use super::raw::RawAuth;
use crate::snapshot::AuthSettings;
use propylon_policies::auth::{ApiKeys, JwtSettings, JwtVerifier, KeySet, TokenCache};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(10);
/// Verified tokens kept, so a client reusing its token skips the signature check.
const TOKEN_CACHE_SIZE: usize = 10_000;
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn compile(
    ctx: &mut Ctx<'_>,
    raw: Option<&RawAuth>,
    watched: &mut Vec<PathBuf>,
) -> AuthSettings {
    let mut settings = AuthSettings::default();
    let Some(raw) = raw else { return settings };
    let entries: Vec<(String, String)> = raw
        .api_keys
        .iter()
        .map(|k| (k.consumer.clone(), k.key_sha256.to_ascii_lowercase()))
        .collect();
    for (i, key) in raw.api_keys.iter().enumerate() {
        let digest = &key.key_sha256;
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            ctx.error(
                &format!("auth.api_keys.{i}.key_sha256"),
                "`key_sha256` must be 64 hex digits (a SHA-256 digest, never the key)",
                "compute it with `printf %s \"$KEY\" | sha256sum`",
            );
        }
    }
    match ApiKeys::new(&entries) {
        Ok(keys) => settings.api_keys = keys,
        Err(e) => ctx.error(
            "auth.api_keys",
            format!("bad API keys: {e}"),
            "each entry is `{ consumer: name, key_sha256: <64 hex> }`",
        ),
    }
    let Some(jwt) = &raw.jwt else { return settings };
    let mut algorithms = Vec::new();
    for alg in &jwt.algorithms {
        match jsonwebtoken::Algorithm::from_str(alg) {
            Ok(a) => algorithms.push(a),
            Err(_) => ctx.error("auth.jwt.algorithms", format!("JWT algorithm `{alg}` is not supported"), "use some of: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, HS256, HS384, HS512 (never `none`)"),
        }
    }
    let leeway = ctx
        .duration("auth.jwt.leeway", jwt.leeway.as_deref())
        .unwrap_or(DEFAULT_LEEWAY);
    settings.jwks_cooldown = ctx
        .duration("auth.jwt.jwks_cooldown", jwt.jwks_cooldown.as_deref())
        .unwrap_or(DEFAULT_COOLDOWN);
    let verifier = JwtVerifier::new(JwtSettings {
        issuer: jwt.issuer.clone(),
        audiences: jwt.audiences.clone(),
        algorithms,
        leeway_secs: leeway.as_secs(),
    });
    match verifier {
        Ok(v) => settings.verifier = Some(v),
        Err(e) => ctx.error(
            "auth.jwt.algorithms",
            format!("cannot verify tokens: {e}"),
            "list the algorithms your identity provider signs with, e.g. `[RS256]`",
        ),
    }
    let mut keys = KeySet::default();
    match (&jwt.jwks_file, &jwt.jwks_url) {
        (Some(_), Some(_)) => ctx.error(
            "auth.jwt.jwks_url",
            "set either `jwks_file` or `jwks_url`, not both",
            "keep the one your identity provider publishes",
        ),
        (Some(file), None) => {
            let path = ctx.resolve(file);
            watched.push(path.clone());
            match std::fs::read(&path).map_err(|e| e.to_string()).and_then(|bytes| KeySet::from_jwks(&bytes).map_err(|e| e.to_string())) {
                Ok(k) => keys = k,
                Err(e) => ctx.error("auth.jwt.jwks_file", format!("cannot load the JWKS {}: {e}", path.display()), "give a JSON Web Key Set file (`{\"keys\": [...]}`); relative paths start at the config's folder"),
            }
        }
        (None, Some(url)) => {
            settings.jwks_url =
                super::target::http_target(ctx, "auth.jwt.jwks_url", url, JWKS_TIMEOUT)
        }
        (None, None) if jwt.hmac_secrets.is_empty() => ctx.error(
            "auth.jwt",
            "no keys to verify tokens with",
            "set `jwks_file`, `jwks_url` or `hmac_secrets`",
        ),
        (None, None) => {}
    }
    for (i, secret) in jwt.hmac_secrets.iter().enumerate() {
        if secret.secret.len() < 32 {
            ctx.error(
                &format!("auth.jwt.hmac_secrets.{i}.secret"),
                "an HMAC secret must be at least 32 bytes",
                "use a long random value from the environment: `${JWT_HMAC_SECRET}`",
            );
        }
        keys = keys.with_hmac_secret(secret.kid.as_deref(), secret.secret.as_bytes());
    }
    settings.static_keys = keys;
    settings.consumer_claim = jwt.consumer_claim.clone().unwrap_or_else(|| "sub".into());
    settings.token_cache = TokenCache::new(TOKEN_CACHE_SIZE);
    settings
}
