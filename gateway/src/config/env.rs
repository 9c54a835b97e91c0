//! `${VAR}` and `${VAR:-default}` substitution from the environment, done on the text before
//! YAML parsing so that line numbers stay those of the file. Comments are left alone, so a
//! comment may mention `${VAR}` without the variable being set.

/// A `${VAR}` that could not be substituted.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvError {
    pub line: usize,
    pub message: String,
    pub help: String,
}

/// Substitutes every `${...}` outside comments using `lookup`; collects every fault.
pub fn substitute(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<EnvError>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let (content, comment) = line.split_at(comment_start(line));
        let mut rest = content;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                errors.push(EnvError {
                    line: i + 1,
                    message: "unclosed `${` in variable reference".into(),
                    help: "write `${NAME}` or `${NAME:-default}`".into(),
                });
                rest = "";
                break;
            };
            let expr = &after[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if !is_var_name(name) {
                errors.push(EnvError {
                    line: i + 1,
                    message: format!("`${{{expr}}}` is not a valid variable reference"),
                    help: "variable names are letters, digits and `_`, not starting with a digit"
                        .into(),
                });
            } else {
                match (lookup(name), default) {
                    (Some(v), _) => out.push_str(&v),
                    (None, Some(d)) => out.push_str(d),
                    (None, None) => errors.push(EnvError {
                        line: i + 1,
                        message: format!("environment variable `{name}` is not set"),
                        help: format!("set `{name}`, or give a default: `${{{name}:-value}}`"),
                    }),
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out.push_str(comment);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Byte offset where a YAML comment starts on this line (a `#` at the start or after
/// whitespace, outside quotes), or the line's length.
fn comment_start(line: &str) -> usize {
    let (mut single, mut double) = (false, false);
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_space => return i,
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line.len()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cret".to_string())
    }

    #[test]
    fn substitutes_set_variables_and_defaults() {
        let out = substitute("a: ${TOKEN}\nb: ${PORT:-8080}\n", env).unwrap();
        assert_eq!(out, "a: s3cret\nb: 8080\n");
    }

    #[test]
    fn leaves_comments_and_jsonpaths_alone() {
        let text = "x: \"$.path.id\" # ${UNSET} is fine here\n# ${ALSO_UNSET}\n";
        assert_eq!(substitute(text, env).unwrap(), text);
    }

    #[test]
    fn reports_every_unset_variable_with_its_line() {
        let errs = substitute("a: ${ONE}\nb: ok\nc: ${TWO} ${TOKEN}\n", env).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].line, 1);
        assert!(errs[0].message.contains("`ONE`"));
        assert_eq!(errs[1].line, 3);
        assert!(errs[1].help.contains("${TWO:-value}"));
    }

    #[test]
    fn rejects_malformed_references() {
        assert_eq!(substitute("a: ${1X}\n", env).unwrap_err().len(), 1);
        assert_eq!(substitute("a: ${OPEN\n", env).unwrap_err().len(), 1);
    }
}
