//! The template environment: strict about undefined values, with the filters
//! a helm user reaches for (product.md §3).

use std::borrow::Cow;

use base64::Engine as _;
use minijinja::value::{Kwargs, Value as JinjaValue};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior};
use sha2::{Digest, Sha256};

use crate::mask::Masks;

/// Steps one render (a template, a stack-file string) may take: far above
/// what a chart of thousands of objects needs (a few hundred thousand), low
/// enough that a runaway loop stops within seconds.
pub(crate) const FUEL: u64 = 50_000_000;

/// A fresh environment with our filters and strict undefined handling:
/// printing or iterating an undefined value is an error, testing it in `if`
/// is not. What its filters make of a secret is registered in `masks`.
pub fn environment(masks: &Masks) -> Environment<'static> {
    let mut env = Environment::new();
    // Errors name the undefined expression in release builds too (minijinja
    // turns this on only for debug builds); its state dump is never printed.
    env.set_debug(true);
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    // Manifests are YAML written by hand: no escaping by file extension.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // A template or expression that never ends (nested loops over large
    // ranges) is stopped with an error naming it, instead of hanging the run.
    env.set_fuel(Some(FUEL));
    env.add_filter("toyaml", toyaml);
    let text_filters: [(&str, TextFilter); 5] = [
        ("b64encode", b64encode),
        ("b64decode", b64decode),
        ("quote", quote),
        ("squote", squote),
        ("sha256", sha256),
    ];
    for (name, filter) in text_filters {
        let masks = masks.clone();
        env.add_filter(name, move |value: &JinjaValue| filter(&masks, value));
    }
    let m = masks.clone();
    env.add_filter("indent", move |value: &JinjaValue, width: usize| {
        indent(&m, value, width)
    });
    let m = masks.clone();
    env.add_filter("nindent", move |value: &JinjaValue, width: usize| {
        nindent(&m, value, width)
    });
    env.add_filter("required", required);
    env.add_function("required", required);
    env.add_function("env", environment_variable);
    env.add_function("required_env", required_environment_variable);
    derive_secrets(&mut env, masks);
    env
}

/// A filter from text to text that may register what it makes of a secret.
type TextFilter = fn(&Masks, &JinjaValue) -> Result<String, Error>;

/// What a template makes from a secret stays a secret (product.md §6): the
/// string filters that transform text register their output when their
/// input carries a secret, and a piece of a secret (a slice) is registered
/// when it is printed or formatted (`quote`, `indent`, `tojson`: their
/// output holds their input in a form the masker knows). The masker then
/// finds them in output.
fn derive_secrets(env: &mut Environment<'static>, masks: &Masks) {
    use minijinja::filters;
    use minijinja::value::StringInput;
    fn derived(
        masks: &Masks,
        input: &str,
        output: JinjaValue,
        transform: fn(&str) -> String,
    ) -> JinjaValue {
        if let Some(text) = output.as_str() {
            masks.derive_each(input, text, transform);
        }
        output
    }
    register_pieces(env, masks);
    let m = masks.clone();
    env.add_filter("upper", move |v: StringInput| {
        let output = v.as_str().to_uppercase();
        derived(&m, v.as_str(), JinjaValue::from(output), str::to_uppercase)
    });
    let m = masks.clone();
    env.add_filter("lower", move |v: StringInput| {
        let output = v.as_str().to_lowercase();
        derived(&m, v.as_str(), JinjaValue::from(output), str::to_lowercase)
    });
    let m = masks.clone();
    env.add_filter("title", move |v: Cow<'_, str>| {
        let output = filters::title(v.clone());
        derived(&m, &v, JinjaValue::from(output), |text| {
            filters::title(text.into())
        })
    });
    let m = masks.clone();
    env.add_filter("capitalize", move |v: StringInput| {
        let input = v.as_str().to_string();
        // Inside a longer text a secret keeps its case, or is lower-cased.
        derived(&m, &input, filters::capitalize(v), str::to_lowercase)
    });
    let m = masks.clone();
    env.add_filter(
        "replace",
        move |v: Cow<'_, str>, from: Cow<'_, str>, to: Cow<'_, str>| {
            let output = v.replace(&*from, &to);
            m.derive_each(&v, &output, |secret| secret.replace(&*from, &to));
            output
        },
    );
    let m = masks.clone();
    env.add_filter("reverse", move |v: &JinjaValue| {
        let output = filters::reverse(v)?;
        Ok::<_, Error>(match v.as_str() {
            Some(input) => derived(&m, input, output, |text| text.chars().rev().collect()),
            None => output,
        })
    });
}

/// The filters and the formatter whose output holds their input as it is
/// (`trim`, `tojson`, printing): a piece of a secret among them is one.
fn register_pieces(env: &mut Environment<'static>, masks: &Masks) {
    use minijinja::filters;
    use minijinja::value::StringInput;
    let m = masks.clone();
    env.add_filter(
        "trim",
        move |v: StringInput, chars: Option<Cow<'_, str>>| {
            let output = filters::trim(v, chars);
            if let Some(text) = output.as_str() {
                m.piece(text);
            }
            output
        },
    );
    let m = masks.clone();
    env.add_filter(
        "tojson",
        move |v: &JinjaValue, indent: Option<JinjaValue>, kwargs: Kwargs| {
            if let Some(input) = v.as_str() {
                m.piece(input);
            }
            filters::tojson(v, indent, kwargs)
        },
    );
    let m = masks.clone();
    env.set_formatter(move |out, state, value| {
        if let Some(text) = value.as_str() {
            m.piece(text);
        }
        minijinja::escape_formatter(out, state, value)
    });
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

fn b64encode(masks: &Masks, value: &JinjaValue) -> Result<String, Error> {
    let text = text_of(value, "b64encode")?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&text);
    masks.derive(&text, &encoded);
    Ok(encoded)
}

fn b64decode(masks: &Masks, value: &JinjaValue) -> Result<String, Error> {
    let text = text_of(value, "b64decode")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|error| {
            Error::new(ErrorKind::InvalidOperation, "b64decode: not valid base64")
                .with_source(error)
        })?;
    let decoded = String::from_utf8(bytes)
        .map_err(|_| Error::new(ErrorKind::InvalidOperation, "b64decode: not UTF-8 text"))?;
    masks.derive(&text, &decoded);
    Ok(decoded)
}

/// helm's `indent`: every line, the first included, gets `width` spaces.
fn indent(masks: &Masks, value: &JinjaValue, width: usize) -> Result<String, Error> {
    let text = text_of(value, "indent")?;
    let pad = " ".repeat(width);
    let indented = text
        .split('\n')
        .map(|line| {
            if line.is_empty() {
                String::new()
            } else {
                format!("{pad}{line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    masks.piece(&text);
    Ok(indented)
}

/// helm's `nindent`: a newline, then `indent`.
fn nindent(masks: &Masks, value: &JinjaValue, width: usize) -> Result<String, Error> {
    Ok(format!("\n{}", indent(masks, value, width)?))
}

/// A double-quoted string, escaped so that it is valid YAML and JSON.
fn quote(masks: &Masks, value: &JinjaValue) -> Result<String, Error> {
    let text = text_of(value, "quote")?;
    masks.piece(&text);
    Ok(serde_json::Value::String(text).to_string())
}

fn squote(masks: &Masks, value: &JinjaValue) -> Result<String, Error> {
    let text = text_of(value, "squote")?;
    masks.piece(&text);
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

/// `{{ env("REGION") | default("eu") }}`: an environment variable of the
/// run, undefined when it is not set.
fn environment_variable(name: &str) -> JinjaValue {
    std::env::var(name).map_or(JinjaValue::UNDEFINED, JinjaValue::from)
}

/// `{{ required_env("TOKEN") }}`: an environment variable that must be set.
fn required_environment_variable(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("the environment variable {name} is not set"),
        )
    })
}

fn sha256(masks: &Masks, value: &JinjaValue) -> Result<String, Error> {
    let text = text_of(value, "sha256")?;
    let digest = stack_kube::hex::lower(&Sha256::digest(text.as_bytes()));
    masks.derive(&text, &digest);
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::environment;
    use crate::mask::Masks;
    use minijinja::context;

    fn render(template: &str) -> Result<String, minijinja::Error> {
        environment(&Masks::default()).render_str(
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

    #[test]
    fn what_a_filter_makes_from_a_secret_is_masked() {
        let secret = "Tr0ub4dor-filter-test-key";
        let masks = Masks::default();
        masks.register(secret);
        let rendered = environment(&masks)
            .render_str(
                "{{ s | upper }} {{ s | replace('-', '') }} {{ s[:13] }} {{ s | b64encode | b64decode | lower }} {{ s | sha256 }} {{ s | reverse }} {{ s | title }} {{ 'postgres' | upper }} {{ s[:4] }}",
                context! { s => secret },
            )
            .unwrap();
        let masked = masks.text(&rendered);
        let mask = crate::mask::MASK;
        assert_eq!(
            masked,
            format!("{mask} {mask} {mask} {mask} {mask} {mask} {mask} POSTGRES Tr0u"),
            "from {rendered}"
        );
    }
}
