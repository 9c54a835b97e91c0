#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::{json, Value};

/// What serde_json makes of `text`: the same value or the same error.
fn same(text: &str) {
    let arena = Bump::new();
    let theirs: Result<Value, _> = serde_json::from_str(text);
    match (parse(text, &arena, &Everything), theirs) {
        (Ok(ours), Ok(theirs)) => {
            assert_eq!(Value::from(&ours), theirs, "{text}");
            assert_eq!(
                serde_json::to_string(&ours).unwrap(),
                serde_json::to_string(&theirs).unwrap(),
                "{text}"
            );
        }
        (Err(ours), Err(theirs)) => assert_eq!(ours.to_string(), theirs.to_string()),
        (ours, theirs) => panic!("{text}: {ours:?} but {theirs:?}"),
    }
}

#[test]
fn reads_what_serde_json_reads() {
    for text in [
        r#"{"a":1,"b":[true,null,-0,1.5e3,18446744073709551615,-9223372036854775808],"c":{}}"#,
        r#"{"s":"x\"y\u00e9","e":[],"n":{"m":{"k":[[1],[2,[3]]]}}}"#,
        r#"{"\u00e9t\u00e9":1,"plain":{"k\"":"v"}}"#,
        r#"  [1, "two", {"three": 3}, [], {}]  "#,
        "\"just text\"",
        "12",
        "-0.0",
        "1e400",
        r#"{"a":1,}"#,
        r#"{"a":1} x"#,
        r#"{"a":"\ud800"}"#,
        r#"[1,2"#,
        "",
        "{\"a\":\"\u{1}\"}",
    ] {
        same(text);
    }
    let deep = "[".repeat(200) + &"]".repeat(200);
    same(&deep);
    let arena = Bump::new();
    let error = parse(&deep, &arena, &Everything).unwrap_err();
    assert!(error.to_string().contains("recursion limit"), "{error}");
    let nested_ok = "[".repeat(127) + &"]".repeat(127);
    same(&nested_ok);
}

#[test]
fn a_repeated_name_reads_as_its_last_value() {
    let arena = Bump::new();
    let tree = parse(r#"{"a":1,"b":2,"a":3}"#, &arena, &Everything).unwrap();
    assert_eq!(tree.member("a"), Some(&Tree::Number(Number::PosInt(3))));
    assert_eq!(tree.as_object().map(<[_]>::len), Some(3));
    assert_eq!(Value::from(&tree), json!({"a": 3, "b": 2}));
    assert!(tree.member("c").is_none());
    assert!(Tree::Null.member("a").is_none());
}

#[test]
fn escaped_names_and_strings_are_unescaped() {
    let arena = Bump::new();
    let tree = parse(r#"{"\u00e9":{"\"q\"":"a\nb"},"b":2}"#, &arena, &Everything).unwrap();
    let names: Vec<&str> = tree.as_object().unwrap().iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["é", "b"]);
    let inner = tree.member("é").and_then(|v| v.member("\"q\"")).unwrap();
    assert_eq!(inner.as_str(), Some("a\nb"));
}

/// Keeps `a` (whole) and, of `list`'s elements, `k`.
enum Kept {
    Root,
    All,
    List,
    Item,
}
impl Keep for Kept {
    fn member(&self, name: &str) -> Option<&Kept> {
        match (self, name) {
            (Kept::All, _) => Some(&Kept::All),
            (Kept::Root, "a") => Some(&Kept::All),
            (Kept::Root, "list") => Some(&Kept::List),
            (Kept::Item, "k") => Some(&Kept::All),
            _ => None,
        }
    }
    fn items(&self) -> Option<&Kept> {
        match self {
            Kept::All => Some(&Kept::All),
            Kept::List => Some(&Kept::Item),
            _ => None,
        }
    }
}

#[test]
fn only_what_is_kept_is_built_and_the_rest_is_still_checked() {
    let arena = Bump::new();
    let text =
        r#"{"a":{"x":[1,2]},"b":{"deep":[1,{"z":2}]},"list":[{"k":1,"j":2},{"j":3}],"c":[9]}"#;
    let tree = parse(text, &arena, &Kept::Root).unwrap();
    assert_eq!(
        Value::from(&tree),
        json!({"a": {"x": [1, 2]}, "list": [{"k": 1}, {}]})
    );
    let bad = r#"{"a":1,"b":[1,}"#;
    assert_eq!(
        parse(bad, &arena, &Kept::Root).unwrap_err().to_string(),
        serde_json::from_str::<Value>(bad).unwrap_err().to_string()
    );
}

#[test]
fn a_value_borrowed_into_a_tree_reads_and_writes_the_same() {
    let value = json!({"s": "x", "n": [1, -2, 2.5, null, true], "o": {"k": {}}});
    let arena = Bump::new();
    let tree = Tree::from_value(&value, &arena);
    assert_eq!(Value::from(&tree), value);
    assert_eq!(
        serde_json::to_string(&tree).unwrap(),
        serde_json::to_string(&value).unwrap()
    );
    let object = Tree::object(&arena, [("a", Tree::Str("b")), ("n", Tree::Null)]);
    assert_eq!(Value::from(&object), json!({"a": "b", "n": null}));
}

#[test]
fn numbers_keep_serde_json_readings() {
    assert_eq!(Number::from(-3_i64), Number::NegInt(-3));
    assert_eq!(Number::from(3_i64), Number::PosInt(3));
    assert_eq!(Number::PosInt(u64::MAX).as_i64(), None);
    assert_eq!(Number::NegInt(-1).as_u64(), None);
    assert_eq!(Number::Float(2.0).as_f64(), Some(2.0));
    assert!(!Number::Float(2.0).is_integer() && Number::NegInt(-2).is_integer());
    assert_eq!(Number::Float(-0.0).to_string(), "-0.0");
    assert_eq!(
        Number::from(&serde_json::Number::from(7_u64)),
        Number::PosInt(7)
    );
}

#[test]
fn names_are_equal_only_when_every_byte_is() {
    let name: Vec<u8> = (b'a'..=b'z').chain(b'A'..=b'Z').collect();
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).unwrap();
    for len in 0..=40 {
        let a = text(&name[..len]);
        assert!(same_name(&a, &a));
        assert!(!same_name(&a, &text(&name[..len + 1])));
        for at in 0..len {
            let mut other = name[..len].to_vec();
            other[at] = b'_';
            assert!(!same_name(&a, &text(&other)), "{a} at {at}");
        }
    }
    assert!(same_name("étés", "étés") && !same_name("étés", "ètés"));
}

#[test]
fn escapes_are_found_wherever_they_are() {
    let naive = |text: &str| text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
    let plain = "abcdefghijklmnopqrstuvwxyzé€😀";
    for len in 0..plain.len() {
        let Some(base) = plain.get(..len) else {
            continue;
        };
        assert!(!needs_escape(base), "{base:?}");
        for special in ['"', '\\', '\n', '\u{0}', '\u{1f}'] {
            for at in (0..=base.len()).filter(|&at| base.is_char_boundary(at)) {
                let mut text = base.to_owned();
                text.insert(at, special);
                assert_eq!(needs_escape(&text), naive(&text), "{text:?}");
                assert!(needs_escape(&text), "{text:?}");
            }
        }
    }
    assert!(!needs_escape("\u{7f} ~ \u{80}"));
}

#[test]
fn trees_are_written_as_serde_json_writes_them() {
    let arena = Bump::new();
    let text = r#"{"a":[1,-2,0.1,-0.0,1e300,18446744073709551615,-9223372036854775808,2.5e-7],
        "s":"tab\t quote\" é \u0001 😀","a":{"":null,"t":true,"f":false,"e":[],"o":{}}}"#;
    let tree = parse(text, &arena, &Everything).unwrap();
    let mut ours = Vec::new();
    tree.write_json(&mut ours);
    assert_eq!(
        String::from_utf8(ours).unwrap(),
        serde_json::to_string(&tree).unwrap()
    );
    // Not from a parse, but written as serde_json writes such a float.
    for n in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut ours = Vec::new();
        Tree::Number(Number::Float(n)).write_json(&mut ours);
        assert_eq!(ours, serde_json::to_vec(&n).unwrap());
        assert_eq!(ours, b"null");
    }
}
