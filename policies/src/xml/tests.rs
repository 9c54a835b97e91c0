#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};

use super::*;

const DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

fn shape(root: &str) -> XmlShape {
    XmlShape::new(root, None, Envelope::None).unwrap()
}

fn to_xml(value: &Value, shape: &XmlShape) -> String {
    String::from_utf8(json_to_xml(value, shape).unwrap()).unwrap()
}

fn read(xml: &str) -> Value {
    xml_to_json(xml.as_bytes(), false).unwrap()
}

fn read_keep(xml: &str) -> Value {
    xml_to_json(xml.as_bytes(), true).unwrap()
}

fn round_trip(value: &Value, shape: &XmlShape) -> Value {
    xml_to_json(&json_to_xml(value, shape).unwrap(), false).unwrap()
}

// Inputs below list object keys alphabetically so expected XML holds whether or not
// serde_json's `preserve_order` is enabled.

#[test]
fn writes_nested_objects_and_arrays() {
    let v = json!({"a": {"b": "1", "c": ["x", "y"]}, "d": [{"e": "1"}, {"e": "2"}]});
    assert_eq!(
        to_xml(&v, &shape("r")),
        format!("{DECL}<r><a><b>1</b><c>x</c><c>y</c></a><d><e>1</e></d><d><e>2</e></d></r>")
    );
}

#[test]
fn round_trips_nested_objects_and_arrays() {
    let v = json!({
        "order": {
            "id": "A-1",
            "items": [{"sku": "x", "qty": "2"}, {"sku": "y", "qty": "1", "tags": ["a", "b"]}],
            "note": null,
            "customer": {"name": "Ana", "address": {"city": "Lyon"}}
        }
    });
    assert_eq!(round_trip(&v, &shape("r")), v);
}

#[test]
fn writes_attributes_and_text() {
    let v = json!({"@gone": null, "@id": 7, "@on": true, "#text": "hi"});
    assert_eq!(
        to_xml(&v, &shape("r")),
        format!("{DECL}<r id=\"7\" on=\"true\">hi</r>")
    );
    let v = json!({"p": {"@lang": "en"}});
    assert_eq!(
        to_xml(&v, &shape("r")),
        format!("{DECL}<r><p lang=\"en\"/></r>")
    );
}

#[test]
fn reads_attributes_and_text() {
    let v = read(r#"<r id="7"><p lang="en">hi</p><q a="1"/></r>"#);
    assert_eq!(
        v,
        json!({"@id": "7", "p": {"@lang": "en", "#text": "hi"}, "q": {"@a": "1"}})
    );
    assert_eq!(round_trip(&v, &shape("r")), v);
}

#[test]
fn mixed_content_text_goes_in_hash_text() {
    assert_eq!(
        read("<r>\n  hello <b>x</b> world\n</r>"),
        json!({"b": "x", "#text": "hello  world"})
    );
    // Indentation between elements is not text.
    assert_eq!(
        read("<r>\n  <b>x</b>\n  <c>y</c>\n</r>"),
        json!({"b": "x", "c": "y"})
    );
    // Text of a text-only element is kept as is.
    assert_eq!(read("<r><b> x </b></r>"), json!({"b": " x "}));
}

#[test]
fn escapes_text_and_attributes_when_writing() {
    let v = json!({"@a": "\"q\" 'a' <&>\tx\ny", "t": "a<b & \"c\" 'd' > e\r\n"});
    let xml = to_xml(&v, &shape("r"));
    assert_eq!(
        xml,
        format!(
            "{DECL}<r a=\"&quot;q&quot; 'a' &lt;&amp;&gt;&#9;x&#10;y\">\
             <t>a&lt;b &amp; \"c\" 'd' &gt; e&#13;\n</t></r>"
        )
    );
    assert_eq!(xml_to_json(xml.as_bytes(), false).unwrap(), v);
}

#[test]
fn decodes_entities_when_reading() {
    let v =
        read(r#"<r a="&quot;x&quot; &amp; &lt;&apos;">&lt;&amp;&gt;&quot;&apos;&#65;&#x42;</r>"#);
    assert_eq!(v, json!({"@a": "\"x\" & <'", "#text": "<&>\"'AB"}));
}

#[test]
fn numbers_and_bools_are_text_and_read_back_as_strings() {
    let v = json!({"f": 1.5, "n": 42, "t": true});
    let xml = to_xml(&v, &shape("r"));
    assert_eq!(xml, format!("{DECL}<r><f>1.5</f><n>42</n><t>true</t></r>"));
    assert_eq!(read(&xml), json!({"f": "1.5", "n": "42", "t": "true"}));
}

#[test]
fn null_is_an_empty_element_both_ways() {
    assert_eq!(
        to_xml(&json!({"e": null}), &shape("r")),
        format!("{DECL}<r><e/></r>")
    );
    assert_eq!(to_xml(&Value::Null, &shape("r")), format!("{DECL}<r/>"));
    assert_eq!(to_xml(&json!({}), &shape("r")), format!("{DECL}<r/>"));
    assert_eq!(read("<r><e/><f></f></r>"), json!({"e": null, "f": null}));
    assert_eq!(read("<r/>"), Value::Null);
    assert_eq!(read_keep("<r/>"), json!({"r": null}));
}

#[test]
fn xsi_nil_is_null() {
    let xml = r#"<r xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><a xsi:nil="true"/><b xsi:type="s">x</b></r>"#;
    assert_eq!(
        read(xml),
        json!({"a": null, "b": {"@type": "s", "#text": "x"}})
    );
}

#[test]
fn scalar_root_is_text() {
    let xml = to_xml(&json!("a&b"), &shape("r"));
    assert_eq!(xml, format!("{DECL}<r>a&amp;b</r>"));
    assert_eq!(read(&xml), json!("a&b"));
    assert_eq!(read_keep(&xml), json!({"r": "a&b"}));
}

#[test]
fn writes_namespace_on_root() {
    let s = XmlShape::new("r", Some("urn:x"), Envelope::None).unwrap();
    assert_eq!(
        to_xml(&json!({"a": "1"}), &s),
        format!("{DECL}<r xmlns=\"urn:x\"><a>1</a></r>")
    );
    let s = XmlShape::new("m:GetPrice", Some("urn:x"), Envelope::None).unwrap();
    assert_eq!(
        to_xml(&json!({"m:Item": "1"}), &s),
        format!("{DECL}<m:GetPrice xmlns:m=\"urn:x\"><m:Item>1</m:Item></m:GetPrice>")
    );
    // An explicit attribute clashing with the configured namespace is refused.
    let err = json_to_xml(&json!({"@xmlns:m": "urn:y"}), &s).unwrap_err();
    assert!(matches!(err, XmlError::Unrepresentable { .. }), "{err}");
}

#[test]
fn strips_namespace_prefixes_when_reading() {
    let xml = r#"<a:r xmlns:a="urn:a" xmlns="urn:d"><a:x b:y="1" xmlns:b="urn:b">t</a:x><z/><a:z/></a:r>"#;
    let expected = json!({"x": {"@y": "1", "#text": "t"}, "z": [null, null]});
    assert_eq!(read(xml), expected);
    assert_eq!(read_keep(xml), json!({"r": expected}));
}

#[test]
fn writes_soap_11_envelope() {
    let s = XmlShape::new("m:GetPrice", Some("urn:shop"), Envelope::Soap11).unwrap();
    assert_eq!(s.content_type(), "text/xml; charset=utf-8");
    assert_eq!(
        to_xml(&json!({"m:Item": "Apple"}), &s),
        format!(
            "{DECL}<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">\
             <soap:Body><m:GetPrice xmlns:m=\"urn:shop\"><m:Item>Apple</m:Item></m:GetPrice>\
             </soap:Body></soap:Envelope>"
        )
    );
    // A root prefixed `soap` does not collide with the envelope's prefix.
    let s = XmlShape::new("soap:Op", Some("urn:op"), Envelope::Soap11).unwrap();
    let xml = to_xml(&json!({"a": "1"}), &s);
    assert!(xml.contains("<soapenv:Envelope xmlns:soapenv="), "{xml}");
    assert_eq!(read_keep(&xml), json!({"Op": {"a": "1"}}));
}

#[test]
fn writes_soap_12_envelope_and_reads_it_back() {
    let s = XmlShape::new("GetPrice", Some("urn:shop"), Envelope::Soap12).unwrap();
    assert_eq!(s.content_type(), "application/soap+xml; charset=utf-8");
    let v = json!({"Item": "Apple", "Qty": "2"});
    let xml = to_xml(&v, &s);
    assert!(xml.starts_with(&format!(
        "{DECL}<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\"><soap:Body><GetPrice xmlns=\"urn:shop\">"
    )));
    assert!(xml.ends_with("</GetPrice></soap:Body></soap:Envelope>"));
    assert_eq!(read(&xml), v);
    assert_eq!(read_keep(&xml), json!({"GetPrice": v}));
    assert_eq!(shape("r").content_type(), "application/xml; charset=utf-8");
}

#[test]
fn reads_soap_11_body_skipping_header() {
    let xml = r#"<?xml version="1.0"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Header><t:Trans xmlns:t="urn:t">5</t:Trans></SOAP-ENV:Header>
  <SOAP-ENV:Body>
    <m:GetPriceResponse xmlns:m="urn:shop"><m:Price>1.90</m:Price></m:GetPriceResponse>
    <m:Ignored xmlns:m="urn:shop"/>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>"#;
    assert_eq!(read(xml), json!({"Price": "1.90"}));
    assert_eq!(
        read_keep(xml),
        json!({"GetPriceResponse": {"Price": "1.90"}})
    );
    let empty =
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>"#;
    assert_eq!(read(empty), Value::Null);
}

#[test]
fn envelope_outside_soap_namespace_is_plain_xml() {
    assert_eq!(
        read("<Envelope><Body><x>1</x></Body></Envelope>"),
        json!({"Body": {"x": "1"}})
    );
}

#[test]
fn reads_soap_11_fault() {
    let xml = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<soap:Fault><faultcode>soap:Client</faultcode><faultstring>Bad &amp; wrong</faultstring><detail><e:Err xmlns:e="urn:e">42</e:Err></detail></soap:Fault>
</soap:Body></soap:Envelope>"#;
    let expected = json!({"Fault": {
        "faultcode": "soap:Client",
        "faultstring": "Bad & wrong",
        "detail": {"Err": "42"}
    }});
    assert_eq!(read(xml), expected);
    assert_eq!(read_keep(xml), expected);
}

#[test]
fn reads_soap_12_fault() {
    let xml = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><env:Fault>
<env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>m:Bad</env:Value></env:Subcode></env:Code>
<env:Reason><env:Text xml:lang="en">Invalid input</env:Text></env:Reason>
</env:Fault></env:Body></env:Envelope>"#;
    assert_eq!(
        read(xml),
        json!({"Fault": {
            "Code": {"Value": "env:Sender", "Subcode": {"Value": "m:Bad"}},
            "Reason": {"Text": {"@lang": "en", "#text": "Invalid input"}}
        }})
    );
}

#[test]
fn fault_outside_soap_namespace_is_not_a_fault() {
    let xml = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><Fault><x>1</x></Fault></s:Body></s:Envelope>"#;
    assert_eq!(read(xml), json!({"x": "1"}));
}

#[test]
fn repeated_elements_become_arrays_single_stays_object() {
    let v = read("<r><i>1</i><o><k>v</k></o><i>2</i><i><j>3</j></i></r>");
    assert_eq!(v, json!({"i": ["1", "2", {"j": "3"}], "o": {"k": "v"}}));
}

#[test]
fn cdata_is_text() {
    let xml = "<r><c><![CDATA[<not> & markup]]></c><d>a<![CDATA[<b>]]>c</d></r>";
    assert_eq!(read(xml), json!({"c": "<not> & markup", "d": "a<b>c"}));
}

#[test]
fn doctype_is_rejected() {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"#;
    let err = xml_to_json(laughs.as_bytes(), false).unwrap_err();
    assert!(
        matches!(err, XmlError::DoctypeForbidden { position: 22 }),
        "{err:?}"
    );
    let xxe = r#"<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
    let err = xml_to_json(xxe.as_bytes(), false).unwrap_err();
    assert!(
        matches!(err, XmlError::DoctypeForbidden { position: 0 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("DOCTYPE"));
}

#[test]
fn undefined_entity_is_rejected() {
    let err = xml_to_json(b"<r>a&nbsp;b</r>", false).unwrap_err();
    assert!(
        matches!(&err, XmlError::UndefinedEntity { name, position: 4 } if name == "nbsp"),
        "{err:?}"
    );
}

fn nested(depth: usize) -> String {
    let mut s = String::new();
    for _ in 0..depth {
        s.push_str("<a>");
    }
    for _ in 0..depth {
        s.push_str("</a>");
    }
    s
}

#[test]
fn depth_is_capped_at_64() {
    assert!(xml_to_json(nested(64).as_bytes(), false).is_ok());
    let err = xml_to_json(nested(65).as_bytes(), false).unwrap_err();
    assert!(
        matches!(
            err,
            XmlError::TooDeep {
                limit: 64,
                position: 192
            }
        ),
        "{err:?}"
    );
    // Very deep input fails fast instead of overflowing anything.
    assert!(xml_to_json(nested(100_000).as_bytes(), false).is_err());

    let mut v = Value::Null;
    for _ in 0..63 {
        v = json!({ "a": v });
    }
    assert!(json_to_xml(&v, &shape("r")).is_ok());
    let err = json_to_xml(&json!({ "a": v }), &shape("r")).unwrap_err();
    assert!(matches!(err, XmlError::Unrepresentable { .. }), "{err}");
}

#[test]
fn invalid_names_are_rejected() {
    for key in ["1abc", "a b", "", "a:b:c", ":a", "a:", "#foo", "<x>", "a&b"] {
        let err = json_to_xml(&json!({ key: "v" }), &shape("r")).unwrap_err();
        assert!(matches!(err, XmlError::InvalidName { .. }), "{key}: {err}");
    }
    for key in ["@", "@1x", "@a b"] {
        let err = json_to_xml(&json!({ key: "v" }), &shape("r")).unwrap_err();
        assert!(matches!(err, XmlError::InvalidName { .. }), "{key}: {err}");
    }
    let err = json_to_xml(&json!({"ok": {"bad key": 1}}), &shape("r")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`bad key` is not a valid XML name (key at /r/ok)"
    );
    for root in ["1r", "", "a b", "x:y:z"] {
        assert!(XmlShape::new(root, None, Envelope::None).is_err(), "{root}");
    }
    for good in ["r", "m:GetPrice", "_x.y-z", "été", "a1"] {
        assert!(XmlShape::new(good, None, Envelope::None).is_ok(), "{good}");
        assert!(
            json_to_xml(&json!({ good: 1 }), &shape("r")).is_ok(),
            "{good}"
        );
    }
}

#[test]
fn unrepresentable_values_are_rejected() {
    let cases = [
        json!([1, 2]),
        json!({"a": [[1], [2]]}),
        json!({"@a": {"b": 1}}),
        json!({"@a": [1]}),
        json!({"#text": {"b": 1}}),
        json!({"a": "bell\u{7}"}),
        json!({"a": "\u{FFFF}"}),
        json!({"@a": "nul\u{0}"}),
    ];
    for v in cases {
        let err = json_to_xml(&v, &shape("r")).unwrap_err();
        assert!(
            matches!(err, XmlError::Unrepresentable { .. }),
            "{v}: {err}"
        );
    }
    // An empty array writes nothing.
    assert_eq!(
        to_xml(&json!({"a": []}), &shape("r")),
        format!("{DECL}<r/>")
    );
}

#[test]
fn malformed_xml_is_an_error_with_position() {
    let cases: [&[u8]; 9] = [
        b"<r><a></b></r>",
        b"<r><a>",
        b"<r/><s/>",
        b"<r/>trailing",
        b"",
        b"just text",
        b"<r a=1/>",
        b"<r a=\"1\" a=\"2\"/>",
        b"<r>\xFF</r>",
    ];
    for xml in cases {
        let err = xml_to_json(xml, false).unwrap_err();
        let shown = String::from_utf8_lossy(xml);
        assert!(
            matches!(
                err,
                XmlError::Malformed { .. } | XmlError::InvalidEncoding { .. }
            ),
            "{shown}: {err:?}"
        );
        assert!(err.to_string().contains("byte"), "{shown}: {err}");
    }
    let err = xml_to_json(b"<r><a></b></r>", false).unwrap_err();
    assert!(
        matches!(err, XmlError::Malformed { position: 6, .. }),
        "{err:?}: {err}"
    );
}

#[test]
fn encodings() {
    assert_eq!(
        xml_to_json(b"\xEF\xBB\xBF<r>\xC3\xA9</r>", true).unwrap(),
        json!({"r": "é"})
    );
    assert_eq!(
        xml_to_json(
            b"<?xml version='1.0' encoding='ISO-8859-1'?><r>\xE9</r>",
            true
        )
        .unwrap(),
        json!({"r": "é"})
    );
    let err = xml_to_json(b"\xFF\xFE<\0r\0/\0>\0", false).unwrap_err();
    assert!(matches!(err, XmlError::UnsupportedEncoding(_)), "{err}");
    let err =
        xml_to_json(b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><r/>", false).unwrap_err();
    assert!(matches!(err, XmlError::UnsupportedEncoding(_)), "{err}");
    let err = xml_to_json(b"\xEF\xBB\xBF<r>\xFF</r>", false).unwrap_err();
    assert!(
        matches!(err, XmlError::InvalidEncoding { position: 6, .. }),
        "{err:?}"
    );
}

#[test]
fn comments_and_processing_instructions_are_skipped() {
    assert_eq!(
        read("<?xml version=\"1.0\"?><!-- c --><r><!-- c --><a>1<!-- c -->2</a><?pi x?></r>"),
        json!({"a": "12"})
    );
}

/// Throwaway timing: `cargo test -p propylon-policies --release xml::tests::timing -- --ignored --nocapture`.
#[test]
#[ignore]
fn timing() {
    let mut items = Vec::new();
    for i in 0..12 {
        items.push(
            json!({"@id": i.to_string(), "sku": format!("SKU-{i}"), "qty": "3", "note": "a & b"}),
        );
    }
    let v = json!({"customer": {"name": "Ana", "city": "Lyon"}, "item": items});
    let s = XmlShape::new("m:Order", Some("urn:shop"), Envelope::Soap11).unwrap();
    let xml = json_to_xml(&v, &s).unwrap();
    let n = 20_000u32;
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(json_to_xml(std::hint::black_box(&v), &s).unwrap());
    }
    let write = t.elapsed() / n;
    let t = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(xml_to_json(std::hint::black_box(&xml), false).unwrap());
    }
    let read = t.elapsed() / n;
    println!(
        "{} bytes: json_to_xml {write:?}, xml_to_json {read:?}",
        xml.len()
    );
}
