//! Per-request parameter checks: gather the raw strings, coerce them by the
//! schema's type, then run the schema compiled at load time.
//!
//! A scalar query parameter given twice is an error rather than "first
//! wins": the backend might read the other one, and the gateway must not
//! validate a value the backend never sees.

use std::borrow::Cow;

use http::HeaderMap;
use percent_encoding::percent_decode_str;
use serde_json::{Number, Value};

use super::params::{Kind, Location, ParamCheck, Shape, Split};
use super::reason::reason;
use super::FieldError;
use crate::router::PathParams;

/// A query string split into decoded `(name, value)` pairs, parsed once per
/// request and shared by all query parameters.
pub(super) struct Query<'q>(Vec<(Cow<'q, str>, Cow<'q, str>)>);

impl<'q> Query<'q> {
    pub fn parse(raw: Option<&'q str>) -> Query<'q> {
        let pairs = raw
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(name), decode(value))
            })
            .collect();
        Query(pairs)
    }

    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_ref())
    }
}

/// Form decoding: `+` is a space, then percent-decoding; invalid UTF-8 is
/// replaced rather than rejected (the schema decides what is acceptable).
fn decode(raw: &str) -> Cow<'_, str> {
    if !raw.contains(['+', '%']) {
        return Cow::Borrowed(raw);
    }
    let spaced = raw.replace('+', " ");
    Cow::Owned(percent_decode_str(&spaced).decode_utf8_lossy().into_owned())
}

impl ParamCheck {
    /// Appends this parameter's errors (if any) to `errors`.
    pub fn check(
        &self,
        path: &PathParams,
        query: &Query<'_>,
        headers: &HeaderMap,
        errors: &mut Vec<FieldError>,
    ) {
        let mut raw: Vec<&str> = Vec::new();
        match self.location {
            Location::Path => raw.extend(path.get(&self.name)),
            Location::Query => raw.extend(query.values(&self.name)),
            Location::Header => {
                for value in self.header.iter().flat_map(|name| headers.get_all(name)) {
                    match value.to_str() {
                        Ok(text) => raw.push(text),
                        Err(_) => {
                            return self.fail(errors, "must be visible ASCII text");
                        }
                    }
                }
            }
        }
        if raw.is_empty() {
            if self.required {
                self.fail(errors, self.missing());
            }
            return;
        }
        let value = match self.shape {
            Shape::Presence => return,
            Shape::Scalar(_) if raw.len() > 1 && self.location == Location::Query => {
                let reason = format!("must be given once, not {} times", raw.len());
                return self.fail(errors, &reason);
            }
            Shape::Scalar(kind) => match coerce(raw[0], kind) {
                Ok(value) => value,
                Err(reason) => return self.fail(errors, reason),
            },
            Shape::Array(kind, split) => match self.coerce_items(&raw, kind, split, errors) {
                Some(value) => value,
                None => return,
            },
        };
        let Some(schema) = &self.schema else { return };
        if schema.is_valid(&value) {
            return;
        }
        for error in schema.iter_errors(&value) {
            errors.push(FieldError {
                pointer: format!("{}{}", self.pointer, error.instance_path().as_str()),
                reason: reason(&error),
            });
        }
    }

    /// Items of an array parameter; `None` once any item failed coercion.
    fn coerce_items(
        &self,
        raw: &[&str],
        kind: Kind,
        split: Split,
        errors: &mut Vec<FieldError>,
    ) -> Option<Value> {
        let items: Vec<&str> = match split {
            Split::Repeat => raw.to_vec(),
            Split::Delimited(delimiter) => raw
                .iter()
                .filter(|part| !part.is_empty())
                .flat_map(|part| part.split(delimiter))
                .map(|item| if delimiter == ',' { item.trim() } else { item })
                .collect(),
        };
        let before = errors.len();
        let mut values = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match coerce(item, kind) {
                Ok(value) => values.push(value),
                Err(reason) => errors.push(FieldError {
                    pointer: format!("{}/{i}", self.pointer),
                    reason: reason.to_owned(),
                }),
            }
        }
        (errors.len() == before).then_some(Value::Array(values))
    }

    fn missing(&self) -> &'static str {
        match self.location {
            Location::Path => "required path parameter is missing",
            Location::Query => "required query parameter is missing",
            Location::Header => "required header is missing",
        }
    }

    fn fail(&self, errors: &mut Vec<FieldError>, reason: &str) {
        errors.push(FieldError {
            pointer: self.pointer.clone(),
            reason: reason.to_owned(),
        });
    }
}

/// A string as the JSON value the schema's type expects.
fn coerce(raw: &str, kind: Kind) -> Result<Value, &'static str> {
    match kind {
        Kind::String => Ok(Value::from(raw)),
        Kind::Integer => raw
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| raw.parse::<u64>().map(Value::from))
            .map_err(|_| "must be an integer"),
        Kind::Number => {
            if let Ok(int) = raw.parse::<i64>() {
                return Ok(Value::from(int));
            }
            raw.parse::<f64>()
                .ok()
                .and_then(Number::from_f64) // rejects NaN and infinities
                .map(Value::Number)
                .ok_or("must be a number")
        }
        Kind::Boolean => match raw {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err("must be a boolean (true or false)"),
        },
    }
}
