//! Secrets never leave the process: `/admin/config` shows the config with these replaced.

use serde_json::Value;

pub const REDACTED: &str = "***redacted***";

pub fn redact(mut config: Value) -> Value {
    if let Some(token) = config.pointer_mut("/server/admin_token") {
        *token = Value::String(REDACTED.into());
    }
    if let Some(Value::Array(secrets)) = config.pointer_mut("/auth/jwt/hmac_secrets") {
        for entry in secrets {
            if let Some(secret) = entry.get_mut("secret") {
                *secret = Value::String(REDACTED.into());
            }
        }
    }
    if let Some(Value::Array(keys)) = config.pointer_mut("/auth/api_keys") {
        for key in keys {
            if let Some(digest) = key.get_mut("key_sha256") {
                *digest = Value::String(REDACTED.into());
            }
        }
    }
    if let Some(Value::Object(backends)) = config.get_mut("backends") {
        for backend in backends.values_mut() {
            redact_url(backend.get_mut("url"));
        }
    }
    redact_url(config.pointer_mut("/store/url"));
    redact_url(config.pointer_mut("/alerts/webhook"));
    config
}

/// Hides a password in `scheme://user:password@host`.
fn redact_url(value: Option<&mut Value>) {
    let Some(Value::String(text)) = value else {
        return;
    };
    if let Ok(mut url) = url::Url::parse(text) {
        if url.password().is_some() && url.set_password(Some(REDACTED)).is_ok() {
            *text = url.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hides_token_key_digests_and_url_passwords() {
        let out = redact(json!({
            "server": {"admin_token": "s3cret"},
            "auth": {"api_keys": [{"consumer": "c", "key_sha256": "abc"}]},
            "backends": {"crm": {"url": "http://u:pw@127.0.0.1:1/"}},
            "store": {"url": "redis://:pw@127.0.0.1:6379"}
        }));
        let text = out.to_string();
        assert!(!text.contains("s3cret"));
        assert!(!text.contains("abc"));
        assert!(!text.contains(":pw@"));
        assert_eq!(out["auth"]["api_keys"][0]["consumer"], "c");
    }
}
