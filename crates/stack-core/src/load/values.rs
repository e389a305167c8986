//! Values layering, in the precedence of product.md §3, lowest first:
//! chart `values.yaml` < environment `values` < environment `secrets` <
//! release `values` < release `secrets` < `--set`.
//!
//! Maps merge key by key; everything else (lists included) is replaced. A
//! `null` in a higher layer removes the key, as in helm.

use serde_json::{Map, Value};

/// Merge `overlay` into `base`.
pub fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                if value.is_null() {
                    base.remove(&key);
                    continue;
                }
                match base.get_mut(&key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value);
                    }
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// One `--set key.path=value` (or `--set-string`).
#[derive(Debug, Clone, PartialEq)]
pub struct SetValue {
    pub path: Vec<String>,
    pub value: Value,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid --set `{text}`: {reason}")]
pub struct SetError {
    pub text: String,
    pub reason: &'static str,
}

impl SetValue {
    /// `a.b.c=value`; the value is typed (number, boolean, null, string) unless
    /// `string` is set. A literal dot in a key is written `\.`.
    pub fn parse(text: &str, string: bool) -> Result<Self, SetError> {
        let error = |reason| SetError {
            text: text.to_string(),
            reason,
        };
        let (path, raw) = text
            .split_once('=')
            .ok_or_else(|| error("expected key.path=value"))?;
        let path = split_path(path);
        if path.iter().any(String::is_empty) {
            return Err(error("a key in the path is empty"));
        }
        let value = if string {
            Value::String(raw.to_string())
        } else {
            typed_scalar(raw)
        };
        Ok(Self { path, value })
    }

    /// The path as `--set` writes it: keys joined by `.`, a dot in a key
    /// as `\.`.
    pub fn path_text(&self) -> String {
        self.path
            .iter()
            .map(|key| key.replace('.', "\\."))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// A value at a path written as `--set` writes it.
    pub fn at(path: &str, value: Value) -> Result<Self, SetError> {
        let parsed = Self::parse(&format!("{path}=_"), true)?;
        Ok(Self {
            path: parsed.path,
            value,
        })
    }

    /// This assignment as a map to merge over the other layers.
    pub fn to_overlay(&self) -> Value {
        self.path
            .iter()
            .rev()
            .fold(self.value.clone(), |inner, key| {
                let mut map = Map::new();
                map.insert(key.clone(), inner);
                Value::Object(map)
            })
    }
}

fn split_path(path: &str) -> Vec<String> {
    let mut keys = vec![String::new()];
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                chars.next();
                if let Some(key) = keys.last_mut() {
                    key.push('.');
                }
            }
            '.' => keys.push(String::new()),
            c => {
                if let Some(key) = keys.last_mut() {
                    key.push(c);
                }
            }
        }
    }
    keys
}

/// `true`/`false`, `null`, integers and decimals become typed values;
/// anything else is a string.
fn typed_scalar(raw: &str) -> Value {
    match raw {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        "null" => return Value::Null,
        _ => {}
    }
    let looks_numeric = raw
        .trim_start_matches('-')
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit());
    // Leading zeros ("007") are identifiers, not numbers.
    let leading_zero = raw.trim_start_matches('-').len() > 1
        && raw.trim_start_matches('-').starts_with('0')
        && !raw.trim_start_matches('-').starts_with("0.");
    if looks_numeric && !leading_zero {
        if let Ok(integer) = raw.parse::<i64>() {
            return Value::from(integer);
        }
        if let Some(number) = raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            return Value::Number(number);
        }
    }
    Value::String(raw.to_string())
}

/// Follow a dotted path into a value.
pub fn lookup<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |current, key| current.get(*key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_merge_lists_replace_null_removes() {
        let mut base = json!({"a": {"b": 1, "c": [1, 2]}, "d": 1, "e": 2});
        merge(&mut base, json!({"a": {"c": [3], "x": true}, "d": null}));
        assert_eq!(base, json!({"a": {"b": 1, "c": [3], "x": true}, "e": 2}));
    }

    #[test]
    fn set_values_are_typed() {
        let parse = |text| SetValue::parse(text, false).unwrap().value;
        assert_eq!(parse("a=1"), json!(1));
        assert_eq!(parse("a=1.5"), json!(1.5));
        assert_eq!(parse("a=true"), json!(true));
        assert_eq!(parse("a=007"), json!("007"));
        assert_eq!(parse("a=v1.2.3"), json!("v1.2.3"));
        assert_eq!(parse("a=1.2.3"), json!("1.2.3"));
        assert_eq!(SetValue::parse("a=1", true).unwrap().value, json!("1"));
    }

    #[test]
    fn set_paths_nest_and_escape_dots() {
        let set = SetValue::parse(r"ingress.annotations.kubernetes\.io/tls=yes", false).unwrap();
        assert_eq!(
            set.to_overlay(),
            json!({"ingress": {"annotations": {"kubernetes.io/tls": "yes"}}})
        );
        assert!(SetValue::parse("novalue", false).is_err());
        assert!(SetValue::parse("a..b=1", false).is_err());
    }
}
