#![allow(clippy::unwrap_used)]

use super::*;

fn params(pairs: &[(&str, &str)]) -> PathParams {
    pairs.iter().map(|(k, v)| (*k, *v)).collect()
}

#[test]
fn renders_literals_and_params() {
    let t = PathTemplate::parse("/crm/customers/{id}/detail").unwrap();
    assert_eq!(
        t.render(&params(&[("id", "42")])),
        "/crm/customers/42/detail"
    );
    assert_eq!(t.param_names().collect::<Vec<_>>(), vec!["id"]);
}

#[test]
fn render_encodes_reserved_and_non_ascii() {
    let t = PathTemplate::parse("/files/{name}").unwrap();
    let got = t.render(&params(&[("name", "a/b?c#d%e f€")]));
    assert_eq!(got, "/files/a%2Fb%3Fc%23d%25e%20f%E2%82%AC");
    // Sub-delims, ':' and '@' are legal in a segment and stay readable.
    let got = t.render(&params(&[("name", "a:b@c,d;e=f~g")]));
    assert_eq!(got, "/files/a:b@c,d;e=f~g");
}

#[test]
fn render_missing_param_is_empty_and_repeats_render_twice() {
    let t = PathTemplate::parse("/{a}/{b}/{a}.json").unwrap();
    assert_eq!(t.render(&params(&[("a", "x")])), "/x//x.json");
    assert_eq!(t.param_names().collect::<Vec<_>>(), vec!["a", "b", "a"]);
}

#[test]
fn parse_errors_name_the_problem() {
    assert_eq!(
        PathTemplate::parse("crm/{id}").unwrap_err(),
        TemplateError::MissingLeadingSlash {
            template: "crm/{id}".into()
        }
    );
    assert_eq!(
        PathTemplate::parse("/crm/{id").unwrap_err(),
        TemplateError::UnclosedBrace {
            template: "/crm/{id".into(),
            position: 5
        }
    );
    assert_eq!(
        PathTemplate::parse("/crm/id}").unwrap_err(),
        TemplateError::UnopenedBrace {
            template: "/crm/id}".into(),
            position: 7
        }
    );
    assert_eq!(
        PathTemplate::parse("/crm/{}").unwrap_err(),
        TemplateError::EmptyParamName {
            template: "/crm/{}".into(),
            position: 5
        }
    );
    assert_eq!(
        PathTemplate::parse("/crm/{a b}").unwrap_err(),
        TemplateError::InvalidParamName {
            template: "/crm/{a b}".into(),
            name: "a b".into()
        }
    );
    let nested = PathTemplate::parse("/crm/{a{b}}").unwrap_err();
    assert!(matches!(nested, TemplateError::InvalidParamName { ref name, .. } if name == "a{b"));
}

#[test]
fn error_messages_say_what_to_change() {
    let msg = PathTemplate::parse("/x/{}").unwrap_err().to_string();
    assert_eq!(
        msg,
        "path template `/x/{}`: empty parameter `{}` at byte 3; give it a name such as `{id}`"
    );
}
