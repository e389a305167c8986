//! A comparison as the unified YAML diff users read in review, with `+`/`-`
//! colour on a terminal and secret values masked: `Secret` data shows as
//! `(sensitive value)`, or `(sensitive value changed: <digest>)` on each side
//! when it changed. Digests are keyed per run, so they tell old from new
//! without letting anyone guess a short password from its hash.

use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};
use similar::{ChangeTag, TextDiff};

use crate::mask::{MASK, Masker};

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
    /// Lines of context around each change.
    pub context: usize,
}

fn run_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(rand::random)
}

fn digest(value: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(run_key());
    hasher.update(value.to_string().as_bytes());
    stack_kube::hex::lower(&hasher.finalize()[..4])
}

/// Replace Secret values on both sides, marking those that changed.
fn mask_secrets(before: &mut Option<Value>, after: &mut Option<Value>, masker: &Masker) {
    let is_secret = |side: &Option<Value>| side.as_ref().is_some_and(|v| v["kind"] == "Secret");
    if !masker.enabled() || !(is_secret(before) || is_secret(after)) {
        return;
    }
    for field in ["data", "stringData"] {
        let old = before.as_ref().map_or(Value::Null, |v| v[field].clone());
        let new = after.as_ref().map_or(Value::Null, |v| v[field].clone());
        mask_side(before.as_mut(), &new, field);
        mask_side(after.as_mut(), &old, field);
    }
}

fn mask_side(side: Option<&mut Value>, other: &Value, field: &str) {
    let Some(entries) = side
        .and_then(|v| v.get_mut(field))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (key, value) in entries.iter_mut() {
        *value = if other.get(key) == Some(value) {
            Value::String(MASK.into())
        } else {
            Value::String(format!("(sensitive value changed: {})", digest(value)))
        };
    }
}

/// The unified diff of two views of an object.
pub fn unified(
    before: Option<&Value>,
    after: Option<&Value>,
    masker: &Masker,
    style: Style,
) -> String {
    let mut before = before.cloned();
    let mut after = after.cloned();
    mask_secrets(&mut before, &mut after, masker);
    let old = before
        .as_ref()
        .map(crate::yaml::to_string)
        .unwrap_or_default();
    let new = after
        .as_ref()
        .map(crate::yaml::to_string)
        .unwrap_or_default();
    let (old, new) = (masker.mask_text(&old), masker.mask_text(&new));
    lines(&old, &new, style)
}

/// The unified diff of two texts, hunks only.
pub fn lines(old: &str, new: &str, style: Style) -> String {
    let diff = TextDiff::from_lines(old, new);
    let mut out = String::new();
    for group in diff.grouped_ops(style.context) {
        let (first, last) = (&group[0], &group[group.len() - 1]);
        let old_range = first.old_range().start..last.old_range().end;
        let new_range = first.new_range().start..last.new_range().end;
        out.push_str(&paint(
            &format!(
                "@@ -{},{} +{},{} @@\n",
                old_range.start + 1,
                old_range.len(),
                new_range.start + 1,
                new_range.len()
            ),
            "36",
            style.color,
        ));
        for op in &group {
            for change in diff.iter_changes(op) {
                let (sign, color) = match change.tag() {
                    ChangeTag::Delete => ("-", Some("31")),
                    ChangeTag::Insert => ("+", Some("32")),
                    ChangeTag::Equal => (" ", None),
                };
                let mut line = format!("{sign}{}", change.value());
                if !line.ends_with('\n') {
                    line.push('\n');
                }
                match color {
                    Some(code) => out.push_str(&paint(&line, code, style.color)),
                    None => out.push_str(&line),
                }
            }
        }
    }
    out
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        let body = text.trim_end_matches('\n');
        format!("\u{1b}[{code}m{body}\u{1b}[0m\n")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PLAIN: Style = Style {
        color: false,
        context: 3,
    };

    #[test]
    fn unified_diff_of_yaml() {
        let before = json!({"kind": "ConfigMap", "data": {"a": "1", "b": "2"}});
        let after = json!({"kind": "ConfigMap", "data": {"a": "1", "b": "3"}});
        let text = unified(Some(&before), Some(&after), &Masker::new(false), PLAIN);
        assert_eq!(
            text,
            "@@ -1,4 +1,4 @@\n kind: ConfigMap\n data:\n   a: \"1\"\n-  b: \"2\"\n+  b: \"3\"\n"
        );
    }

    #[test]
    fn secret_values_never_show() {
        let before = json!({"kind": "Secret", "data": {"same": "c2FtZQ==", "pw": "b2xk"}});
        let after = json!({"kind": "Secret", "data": {"same": "c2FtZQ==", "pw": "bmV3"}});
        let text = unified(Some(&before), Some(&after), &Masker::new(false), PLAIN);
        assert!(
            !text.contains("b2xk") && !text.contains("bmV3") && !text.contains("c2FtZQ=="),
            "{text}"
        );
        assert!(
            text.contains("-  pw: \"(sensitive value changed: "),
            "{text}"
        );
        assert!(text.contains("   same: (sensitive value)"), "{text}");
    }
}
