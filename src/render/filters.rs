//! The template environment: strict about undefined values, with the filters
//! a helm user reaches for (product.md §3).

use base64::Engine as _;
use minijinja::value::{Kwargs, Value as JinjaValue};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior};
use sha2::{Digest, Sha256};

/// A fresh environment with our filters and strict undefined handling:
/// printing or iterating an undefined value is an error, testing it in `if`
/// is not.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Errors name the undefined expression in release builds too (minijinja
    // turns this on only for debug builds); its state dump is never printed.
    env.set_debug(true);
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    // Manifests are YAML written by hand: no escaping by file extension.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.add_filter("toyaml", toyaml);
    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);
    env.add_filter("indent", indent);
    env.add_filter("nindent", nindent);
    env.add_filter("quote", quote);
    env.add_filter("squote", squote);
    env.add_filter("required", required);
    env.add_filter("sha256", sha256);
    env.add_function("required", required);
    env
}

fn to_json(value: &JinjaValue) -> Result<serde_json::Value, Error> {
    serde_json::to_value(value).map_err(|error| {
        Error::new(ErrorKind::BadSerialization, "value cannot be serialised").with_source(error)
    })
}

/// `{{ values.resources | toyaml }}`: block YAML without a trailing newline.
fn toyaml(value: &JinjaValue) -> Result<String, Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "toyaml of an undefined value",
        ));
    }
    let yaml = crate::yaml::to_string(&to_json(value)?);
    Ok(yaml.trim_end_matches('\n').to_string())
}

fn text_of(value: &JinjaValue, filter: &str) -> Result<String, Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            format!("{filter} of an undefined value"),
        ));
    }
    Ok(value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string))
}

fn b64encode(value: &JinjaValue) -> Result<String, Error> {
    Ok(base64::engine::general_purpose::STANDARD.encode(text_of(value, "b64encode")?))
}

fn b64decode(value: &JinjaValue) -> Result<String, Error> {
    let text = text_of(value, "b64decode")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|error| {
            Error::new(ErrorKind::InvalidOperation, "b64decode: not valid base64")
                .with_source(error)
        })?;
    String::from_utf8(bytes)
        .map_err(|_| Error::new(ErrorKind::InvalidOperation, "b64decode: not UTF-8 text"))
}

/// helm's `indent`: every line, the first included, gets `width` spaces.
fn indent(value: &JinjaValue, width: usize) -> Result<String, Error> {
    let text = text_of(value, "indent")?;
    let pad = " ".repeat(width);
    Ok(text
        .split('\n')
        .map(|line| {
            if line.is_empty() {
                String::new()
            } else {
                format!("{pad}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

/// helm's `nindent`: a newline, then `indent`.
fn nindent(value: &JinjaValue, width: usize) -> Result<String, Error> {
    Ok(format!("\n{}", indent(value, width)?))
}

/// A double-quoted string, escaped so that it is valid YAML and JSON.
fn quote(value: &JinjaValue) -> Result<String, Error> {
    let text = text_of(value, "quote")?;
    Ok(serde_json::Value::String(text).to_string())
}

fn squote(value: &JinjaValue) -> Result<String, Error> {
    let text = text_of(value, "squote")?;
    Ok(format!("'{}'", text.replace('\'', "''")))
}

/// `{{ values.db.password | required("set db.password") }}`: fails the render
/// when the value is undefined, none or an empty string.
fn required(
    _state: &State,
    value: &JinjaValue,
    message: Option<&str>,
    _kwargs: Kwargs,
) -> Result<JinjaValue, Error> {
    let missing =
        value.is_undefined() || value.is_none() || value.as_str().is_some_and(str::is_empty);
    if missing {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            message.unwrap_or("a required value is missing").to_string(),
        ));
    }
    Ok(value.clone())
}

fn sha256(value: &JinjaValue) -> Result<String, Error> {
    let digest = Sha256::digest(text_of(value, "sha256")?.as_bytes());
    Ok(crate::hex::lower(&digest))
}

#[cfg(test)]
mod tests {
    use super::environment;
    use minijinja::context;

    fn render(template: &str) -> Result<String, minijinja::Error> {
        environment().render_str(
            template,
            context! { values => context! { name => "web", lines => "a\nb", count => 3 } },
        )
    }

    #[test]
    fn helm_filters() {
        assert_eq!(render("{{ values.name | b64encode }}").unwrap(), "d2Vi");
        assert_eq!(render("{{ 'd2Vi' | b64decode }}").unwrap(), "web");
        assert_eq!(
            render("{{ values.lines | indent(2) }}").unwrap(),
            "  a\n  b"
        );
        assert_eq!(
            render("x:{{ values.lines | nindent(2) }}").unwrap(),
            "x:\n  a\n  b"
        );
        assert_eq!(render("{{ values.name | quote }}").unwrap(), "\"web\"");
        assert_eq!(
            render("{{ values | toyaml }}").unwrap(),
            "name: web\nlines: |-\n  a\n  b\ncount: 3"
        );
        assert_eq!(render("{{ values.count | tojson }}").unwrap(), "3");
        assert_eq!(render("{{ values.missing | default('d') }}").unwrap(), "d");
        assert_eq!(
            render("{{ 'abc' | sha256 }}").unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn undefined_is_an_error_when_printed_but_not_when_tested() {
        assert!(render("{{ values.nmae }}").is_err());
        assert_eq!(
            render("{% if values.flag %}y{% else %}n{% endif %}").unwrap(),
            "n"
        );
        let error = render("{{ values.missing | required('set missing') }}").unwrap_err();
        assert!(error.to_string().contains("set missing"));
    }
}
