//! Scopes granted by a token, in the two shapes IdPs use: `scope` as a space-separated
//! string (RFC 8693, OAuth) and `scp` as an array (Azure AD, Okta) or a string.

use serde_json::Value;

#[cfg(test)]
mod tests;

/// The required scopes the token does not grant, in the order required.
pub fn missing_scopes(claims: &Value, required: &[String]) -> Vec<String> {
    let granted = granted(claims);
    required
        .iter()
        .filter(|scope| !granted.contains(&scope.as_str()))
        .cloned()
        .collect()
}

fn granted(claims: &Value) -> Vec<&str> {
    let mut scopes = Vec::new();
    for claim in ["scope", "scp"] {
        match claims.get(claim) {
            Some(Value::String(list)) => scopes.extend(list.split_whitespace()),
            Some(Value::Array(items)) => scopes.extend(items.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    scopes
}
