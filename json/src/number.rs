//! A JSON number as serde_json reads it: an unsigned or a negative integer, or a finite float.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    PosInt(u64),
    /// Always below zero.
    NegInt(i64),
    /// Always finite.
    Float(f64),
}

impl Number {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Number::PosInt(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Number::PosInt(n) => i64::try_from(n).ok(),
            Number::NegInt(n) => Some(n),
            Number::Float(_) => None,
        }
    }

    #[allow(clippy::cast_precision_loss)]
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Number::PosInt(n) => Some(n as f64),
            Number::NegInt(n) => Some(n as f64),
            Number::Float(n) => Some(n),
        }
    }

    /// An integer in the text (`2`, not `2.0`).
    pub fn is_integer(&self) -> bool {
        !matches!(self, Number::Float(_))
    }

    /// As serde_json's `Number` (a non-finite float, which a parse never gives, as `0`).
    pub fn to_serde(self) -> serde_json::Number {
        match self {
            Number::PosInt(n) => n.into(),
            Number::NegInt(n) => n.into(),
            Number::Float(n) => serde_json::Number::from_f64(n).unwrap_or_else(|| 0.into()),
        }
    }
}

impl From<u64> for Number {
    fn from(n: u64) -> Number {
        Number::PosInt(n)
    }
}

impl From<i64> for Number {
    fn from(n: i64) -> Number {
        match u64::try_from(n) {
            Ok(n) => Number::PosInt(n),
            Err(_) => Number::NegInt(n),
        }
    }
}

impl From<&serde_json::Number> for Number {
    fn from(n: &serde_json::Number) -> Number {
        if let Some(n) = n.as_u64() {
            Number::PosInt(n)
        } else if let Some(n) = n.as_i64() {
            Number::NegInt(n)
        } else {
            Number::Float(n.as_f64().unwrap_or(0.0))
        }
    }
}

/// As serde_json writes it.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_serde(), f)
    }
}
