//! Scopes granted by a token, in the two shapes IdPs use: `scope` as a space-separated
//! string (RFC 8693, OAuth) and `scp` as an array (Azure AD, Okta) or a string.

use serde_json::Value;

#[cfg(test)]
mod tests;

/// The required scopes the token does not grant, in the order required.
pub fn missing_scopes(claims: &Value, required: &[String]) -> Vec<String> {
    // Asked per request of a cached token: no list of the granted scopes is built (an
    // empty result does not allocate either).
    required
        .iter()
        .filter(|scope| !grants(claims, scope))
        .cloned()
        .collect()
}

fn grants(claims: &Value, scope: &str) -> bool {
    ["scope", "scp"]
        .into_iter()
        .any(|claim| match propylon_json::value_member(claims, claim) {
            // Scope tokens are ASCII, separated by spaces (RFC 6749 §3.3): no Unicode
            // whitespace tables per character.
            Some(Value::String(list)) => list.split_ascii_whitespace().any(|s| s == scope),
            Some(Value::Array(items)) => items.iter().any(|s| s.as_str() == Some(scope)),
            _ => false,
        })
}
