//! A body parsed as a borrowed tree (`propylon_json`: strings point into the body, arrays and
//! objects are slices in an arena) as a JSON representation for jsonschema, so the gateway
//! validates and maps one parse without building serde_json's `Value`.

use jsonschema::json::{Array, Json, JsonNumber, Node, NodeIdentity, Object};
use jsonschema::JsonType;
use propylon_json::{Number, Tree as Borrowed};
use std::borrow::Cow;

/// jsonschema's name for the representation (`Validator<BorrowedJson>`).
pub struct BorrowedJson;

impl Json for BorrowedJson {
    type Node<'a> = &'a Borrowed<'a>;
    type PreparedKey = Box<str>;
    type StringBuffer = ();

    // Objects are vectors: a short scan per lookup.
    const KEYS_PER_LOOKUP: usize = 2;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> Box<str> {
        key.into()
    }

    fn with_string_node<T>((): &mut (), string: &str, f: impl FnOnce(Self::Node<'_>) -> T) -> T {
        f(&Borrowed::Str(string))
    }
}

impl<'a> Node<'a, BorrowedJson> for &'a Borrowed<'a> {
    type Object = &'a [(&'a str, Borrowed<'a>)];
    type Array = &'a [Borrowed<'a>];
    type Number = BorrowedNumber;

    fn as_object(&self) -> Option<&'a [(&'a str, Borrowed<'a>)]> {
        Borrowed::as_object(self)
    }

    fn as_array(&self) -> Option<&'a [Borrowed<'a>]> {
        Borrowed::as_array(self)
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        match self {
            Borrowed::Str(text) => Some(Cow::Borrowed(text)),
            _ => None,
        }
    }

    fn as_number(&self) -> Option<BorrowedNumber> {
        match self {
            Borrowed::Number(n) => Some(BorrowedNumber(*n)),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        Borrowed::as_bool(self)
    }

    fn is_null(&self) -> bool {
        Borrowed::is_null(self)
    }

    fn json_type(&self) -> JsonType {
        match self {
            Borrowed::Null => JsonType::Null,
            Borrowed::Bool(_) => JsonType::Boolean,
            Borrowed::Number(_) => JsonType::Number,
            Borrowed::Str(_) => JsonType::String,
            Borrowed::Array(_) => JsonType::Array,
            Borrowed::Object(_) => JsonType::Object,
        }
    }

    fn to_value(&self) -> Cow<'a, serde_json::Value> {
        Cow::Owned(serde_json::Value::from(*self))
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::new(
            std::ptr::from_ref::<Borrowed>(self) as usize
        ))
    }
}

/// An object's members as `(name, value)`.
pub struct Members<'a>(std::slice::Iter<'a, (&'a str, Borrowed<'a>)>);

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, &'a Borrowed<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(name, value)| (*name, value))
    }
}

impl<'a> Object<'a, BorrowedJson> for &'a [(&'a str, Borrowed<'a>)] {
    type Node = &'a Borrowed<'a>;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        <[(&str, Borrowed)]>::len(self)
    }

    /// With a repeated name, the last member, as serde_json keeps it (and as the templates
    /// read it: `propylon_json::same_name`, cheaper than a `memcmp` call per member).
    fn get(&self, key: &Box<str>) -> Option<&'a Borrowed<'a>> {
        self.iter()
            .rev()
            .find(|(name, _)| propylon_json::same_name(name, key))
            .map(|(_, value)| value)
    }

    fn members(&self) -> Members<'a> {
        Members(self.iter())
    }
}

impl<'a> Array<'a, BorrowedJson> for &'a [Borrowed<'a>] {
    type Node = &'a Borrowed<'a>;
    type ElementsIter = std::slice::Iter<'a, Borrowed<'a>>;

    fn len(&self) -> usize {
        <[Borrowed]>::len(self)
    }

    fn elements(&self) -> std::slice::Iter<'a, Borrowed<'a>> {
        self.iter()
    }
}

/// A number of a borrowed document (an integer or a finite float, as serde_json keeps it).
#[derive(Clone, Copy)]
pub struct BorrowedNumber(Number);

impl JsonNumber for BorrowedNumber {
    fn as_u64(&self) -> Option<u64> {
        self.0.as_u64()
    }

    fn as_i64(&self) -> Option<i64> {
        self.0.as_i64()
    }

    fn as_f64(&self) -> Option<f64> {
        self.0.as_f64()
    }

    fn as_str(&self) -> Cow<'_, str> {
        Cow::Owned(self.0.to_string())
    }

    fn to_number(&self) -> Cow<'_, serde_json::Number> {
        Cow::Owned(self.0.to_serde())
    }

    fn is_written_as_integer(&self) -> bool {
        self.0.is_integer()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_borrowed_document_validates_as_its_value_does() {
        let schema = json!({
            "type": "object",
            "required": ["sku", "qty"],
            "properties": {
                "sku": {"type": "string", "minLength": 3, "pattern": "^SKU-"},
                "qty": {"type": "integer", "minimum": 1},
                "price": {"type": "number", "exclusiveMaximum": 100},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": true},
                "when": {"type": "string", "format": "date"}
            },
            "propertyNames": {"maxLength": 5},
            "additionalProperties": false
        });
        let serde = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        let borrowed = jsonschema::options_for::<BorrowedJson>()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        let bodies = [
            r#"{"sku":"SKU-1","qty":2,"price":9.5,"tags":["a","b"],"when":"2024-06-01"}"#,
            r#"{"sku":"SKU-1","qty":2.0}"#,
            r#"{"sku":"SKU-1","qty":2.5}"#,
            r#"{"sku":"X","qty":2}"#,
            r#"{"sku":"SKU-1"}"#,
            r#"{"sku":"SKU-1","qty":0}"#,
            r#"{"sku":"SKU-1","qty":1,"price":100}"#,
            r#"{"sku":"SKU-1","qty":1,"tags":["a","a"]}"#,
            r#"{"sku":"SKU-1","qty":1,"tags":["c"]}"#,
            r#"{"sku":"SKU-1","qty":1,"when":"2024-13-01"}"#,
            r#"{"sku":"SKU-1","qty":1,"other":1}"#,
            r#"{"sku":"SKU-1","qty":1,"toolong":1}"#,
            r#"{"sku":"SKU-1","qty":1,"qty":-3}"#,
            r#"[1]"#,
        ];
        let arena = propylon_json::Bump::new();
        let parse = |body: &'static str| {
            propylon_json::parse(body, &arena, &propylon_json::Everything).unwrap()
        };
        for body in bodies {
            let value: serde_json::Value = serde_json::from_str(body).unwrap();
            let doc = parse(body);
            assert_eq!(borrowed.is_valid(&doc), serde.is_valid(&value), "{body}");
        }
        // A repeated name: serde_json keeps the last value; a pass over the members sees
        // every one, so the document may be refused where the `Value` passes. `BodyRules`
        // trusts only a pass and re-checks a refusal as a `Value`.
        let repeated = r#"{"sku":"SKU-1","qty":-1,"qty":3}"#;
        let doc = parse(repeated);
        assert!(!borrowed.is_valid(&doc));
        assert!(serde.is_valid(&serde_json::from_str(repeated).unwrap()));
    }
}
