//! Path parameters captured by the router, already percent-decoded.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// Captured `(name, value)` pairs in template order. A Vec beats a map
/// here: routes have a handful of params at most.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PathParams(Vec<(String, String)>);

impl PathParams {
    /// The decoded value of `name`, if the route captured it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// All `(name, value)` pairs in template order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Builds from matchit's raw captures, decoding each value.
    pub(crate) fn from_raw(raw: &matchit::Params<'_, '_>) -> PathParams {
        let mut pairs = Vec::with_capacity(raw.len());
        for (name, value) in raw.iter() {
            pairs.push((name.to_owned(), decode(value)));
        }
        PathParams(pairs)
    }
}

/// Lets callers (and the template renderer's users) build params from any
/// source, e.g. values that did not come from the router.
impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for PathParams {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        PathParams(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// Percent-decodes; invalid UTF-8 keeps the raw text so nothing is lost
/// and the upstream sees exactly what the client sent.
fn decode(raw: &str) -> String {
    match percent_decode_str(raw).decode_utf8() {
        Ok(Cow::Borrowed(s)) => s.to_owned(),
        Ok(Cow::Owned(s)) => s,
        Err(_) => raw.to_owned(),
    }
}
