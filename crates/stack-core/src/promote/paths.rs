//! Promotion paths (`images`, `charts.*.version`) matched against an
//! environment's merged values: which concrete value paths travel, and how
//! two environments differ at them, leaf by leaf.

use serde_json::Value;

/// A concrete value path, as keys.
pub(crate) type KeyPath = Vec<String>;

/// Dotted form, for people: `images.backend.tag`.
pub fn display(path: &[String]) -> String {
    path.join(".")
}

/// Every concrete path of `values` that `pattern` names; `*` matches one key
/// of a map. In the order the keys are written.
pub(crate) fn expand(pattern: &str, values: &Value) -> Vec<KeyPath> {
    let keys: Vec<&str> = pattern.split('.').collect();
    let mut found = Vec::new();
    walk(&keys, values, &mut Vec::new(), &mut found);
    found
}

fn walk(keys: &[&str], value: &Value, prefix: &mut KeyPath, found: &mut Vec<KeyPath>) {
    let Some((first, rest)) = keys.split_first() else {
        found.push(prefix.clone());
        return;
    };
    let Value::Object(map) = value else {
        return;
    };
    for (key, child) in map {
        if *first == "*" || first == key {
            prefix.push(key.clone());
            walk(rest, child, prefix, found);
            prefix.pop();
        }
    }
}

/// Drop paths that another path of the list already contains.
pub(crate) fn outermost(mut paths: Vec<KeyPath>) -> Vec<KeyPath> {
    let all = paths.clone();
    paths.retain(|path| {
        !all.iter()
            .any(|other| other.len() < path.len() && path.starts_with(other))
    });
    let mut seen = Vec::new();
    paths.retain(|path| {
        let fresh = !seen.contains(path);
        seen.push(path.clone());
        fresh
    });
    paths
}

/// The value at a path.
pub fn get<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |current, key| current.get(key))
}

/// Set the value at a path, making maps on the way.
pub fn set(value: &mut Value, path: &[String], new: Value) {
    let Some((first, rest)) = path.split_first() else {
        *value = new;
        return;
    };
    if !value.is_object() {
        *value = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(map) = value {
        set(map.entry(first.clone()).or_insert(Value::Null), rest, new);
    }
}

/// One leaf that differs: the target's value (if any) and the source's.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub path: KeyPath,
    pub before: Option<Value>,
    pub after: Value,
}

/// How `target` must change at `path` to hold `source`: maps are compared
/// key by key, anything else replaced whole.
pub fn changes(path: &[String], source: &Value, target: Option<&Value>, out: &mut Vec<Change>) {
    match (source, target) {
        (Value::Object(source), Some(Value::Object(target))) => {
            for (key, value) in source {
                let mut child = path.to_vec();
                child.push(key.clone());
                changes(&child, value, target.get(key), out);
            }
        }
        (source, target) if target == Some(source) => {}
        (source, target) => out.push(Change {
            path: path.to_vec(),
            before: target.cloned(),
            after: source.clone(),
        }),
    }
}

/// Keys under `path` that `target` has and `source` has not (promotion
/// keeps them).
pub fn extra(path: &[String], source: &Value, target: Option<&Value>, out: &mut Vec<KeyPath>) {
    let (Value::Object(source), Some(Value::Object(target))) = (source, target) else {
        return;
    };
    for (key, value) in target {
        let mut child = path.to_vec();
        child.push(key.clone());
        match source.get(key) {
            Some(inner) => extra(&child, inner, Some(value), out),
            None => out.push(child),
        }
    }
}

/// Every leaf under `path` with its value (a map is not a leaf; an empty
/// map, a list or a scalar is).
pub fn leaves(path: &[String], value: &Value, out: &mut Vec<(KeyPath, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let mut child_path = path.to_vec();
                child_path.push(key.clone());
                leaves(&child_path, child, out);
            }
        }
        other => out.push((path.to_vec(), other.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(text: &str) -> KeyPath {
        text.split('.').map(str::to_string).collect()
    }

    #[test]
    fn a_star_matches_one_key() {
        let values = json!({"charts": {"a": {"version": 1}, "b": {"version": 2}, "c": {}}});
        assert_eq!(
            expand("charts.*.version", &values),
            vec![keys("charts.a.version"), keys("charts.b.version")]
        );
        assert!(expand("charts.*.missing", &values).is_empty());
        assert_eq!(expand("charts", &values), vec![keys("charts")]);
    }

    #[test]
    fn keys_only_the_target_has_are_found() {
        let source = json!({"backend": {"tag": "2"}});
        let target = json!({"backend": {"tag": "1", "pull": "always"}, "worker": {"tag": "1"}});
        let mut found = Vec::new();
        extra(&keys("images"), &source, Some(&target), &mut found);
        assert_eq!(
            found,
            vec![keys("images.backend.pull"), keys("images.worker")]
        );
    }

    #[test]
    fn set_makes_the_maps_it_needs() {
        let mut value = json!({"images": {"a": 1}, "scale": 2});
        set(&mut value, &keys("images.b.tag"), json!("1"));
        set(&mut value, &keys("scale.web"), json!(3));
        assert_eq!(
            value,
            json!({"images": {"a": 1, "b": {"tag": "1"}}, "scale": {"web": 3}})
        );
    }

    #[test]
    fn nested_paths_are_covered_by_their_parents() {
        let paths = vec![keys("images.backend"), keys("images"), keys("images")];
        assert_eq!(outermost(paths), vec![keys("images")]);
    }

    #[test]
    fn changes_are_per_leaf() {
        let source = json!({"backend": {"repository": "r", "tag": "2"}, "new": {"tag": "1"}});
        let target = json!({"backend": {"repository": "r", "tag": "1"}, "old": 1});
        let mut found = Vec::new();
        changes(&keys("images"), &source, Some(&target), &mut found);
        assert_eq!(
            found,
            vec![
                Change {
                    path: keys("images.backend.tag"),
                    before: Some(json!("1")),
                    after: json!("2")
                },
                Change {
                    path: keys("images.new"),
                    before: None,
                    after: json!({"tag": "1"})
                },
            ]
        );
    }
}
