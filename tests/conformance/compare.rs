//! What of two answers is compared, and how they differ.
//!
//! Normalisation (the only values rewritten before comparing, because two
//! API servers can never agree on them): every string under a key named
//! `uid`, `creationTimestamp`, `deletionTimestamp`, `resourceVersion`,
//! `continue`, `clusterIP` or
//! `[batch.kubernetes.io/]controller-uid` (a Job's selector) becomes `<set>`,
//! and every item of `clusterIPs` too; a `metadata.name` generated from
//! `metadata.generateName` keeps the prefix and loses the random suffix.
//! Presence is still compared: `<set>` on one side and nothing on the other
//! is a difference. `managedFields` entries lose their `time` and are
//! sorted by manager, operation and subresource (the real server keeps the
//! latest writer's entry where it was; clients never read the order).

use serde_json::{Map, Value};

/// Keys whose values are the server's own (ids, clocks, allocations).
const SERVER_SET: &[&str] = &[
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "resourceVersion",
    "continue",
    "clusterIP",
    "clusterIPs",
    "controller-uid",
    "batch.kubernetes.io/controller-uid",
];

/// Error answers are compared on these unless the step says otherwise.
pub const ERROR_FIELDS: &[&str] = &[
    "/kind",
    "/status",
    "/code",
    "/reason",
    "/message",
    "/details/name",
    "/details/group",
    "/details/kind",
    "/details/causes/*/field",
    "/details/causes/*/reason",
];

/// Rewrite what legitimately differs (see the module documentation).
pub fn normalise(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(metadata)) = map.get_mut("metadata")
                && let (Some(Value::String(prefix)), Some(Value::String(name))) =
                    (metadata.get("generateName"), metadata.get("name"))
                && name.starts_with(prefix.as_str())
            {
                let generated = format!("{prefix}<generated>");
                metadata.insert("name".into(), Value::String(generated));
            }
            if let Some(Value::Array(entries)) = map.get_mut("managedFields") {
                for entry in entries.iter_mut() {
                    if let Some(entry) = entry.as_object_mut() {
                        entry.remove("time");
                    }
                }
                let key = |entry: &Value| {
                    ["manager", "operation", "subresource"].map(|field| entry[field].to_string())
                };
                entries.sort_by_key(key);
            }
            for (key, item) in map.iter_mut() {
                if SERVER_SET.contains(&key.as_str()) {
                    set_aside(item);
                } else {
                    normalise(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise),
        _ => {}
    }
}

fn set_aside(value: &mut Value) {
    match value {
        Value::String(text) if !text.is_empty() => *text = "<set>".into(),
        Value::Array(items) => items.iter_mut().for_each(set_aside),
        _ => {}
    }
}

/// The parts of `value` named by `pointers` (`/a/b`, `/list/*/field`,
/// `/list/name=B/value`, `/list/metadata.name=B`; a final `?` asks only whether it is there),
/// keyed by pointer; the whole value without any.
pub fn project(value: &Value, pointers: Option<&[String]>) -> Value {
    let Some(pointers) = pointers else {
        return value.clone();
    };
    let mut projection = Map::new();
    for pointer in pointers {
        let found = match pointer.strip_suffix('?') {
            Some(pointer) => Value::Bool(resolve(value, &segments(pointer)).is_some()),
            None => resolve(value, &segments(pointer)).unwrap_or(Value::Null),
        };
        projection.insert(pointer.clone(), found);
    }
    Value::Object(projection)
}

/// Remove the fields named by `pointers` (no wildcards) from `value`.
pub fn remove(value: &mut Value, pointers: &[String]) {
    for pointer in pointers {
        let Some((parent, last)) = pointer.rsplit_once('/') else {
            continue;
        };
        let last = last.replace("~1", "/").replace("~0", "~");
        if let Some(Value::Object(map)) = value.pointer_mut(parent) {
            map.remove(&last);
        }
    }
}

fn segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn resolve(value: &Value, segments: &[String]) -> Option<Value> {
    let Some((segment, rest)) = segments.split_first() else {
        return Some(value.clone());
    };
    match value {
        Value::Array(items) if segment == "*" => Some(Value::Array(
            items
                .iter()
                .map(|item| resolve(item, rest).unwrap_or(Value::Null))
                .collect(),
        )),
        Value::Array(items) => {
            let item = match segment.split_once('=') {
                Some((key, wanted)) => items.iter().find(|item| {
                    let found = key.split('.').try_fold(*item, |value, key| value.get(key));
                    found.and_then(Value::as_str) == Some(wanted)
                }),
                None => segment.parse().ok().and_then(|i: usize| items.get(i)),
            };
            resolve(item?, rest)
        }
        Value::Object(map) => resolve(map.get(segment.as_str())?, rest),
        _ => None,
    }
}

/// Where two values differ, as `path: real … / simulator …` lines.
pub fn differences(real: &Value, simulator: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk("", real, simulator, &mut found);
    found
}

fn walk(path: &str, real: &Value, simulator: &Value, found: &mut Vec<String>) {
    match (real, simulator) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                let child = format!("{path}/{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => walk(&child, x, y, found),
                    (x, y) => found.push(line(&child, x, y)),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                walk(&format!("{path}/{index}"), x, y, found);
            }
        }
        (a, b) if a != b => found.push(line(path, Some(a), Some(b))),
        _ => {}
    }
}

fn line(path: &str, real: Option<&Value>, simulator: Option<&Value>) -> String {
    let show = |value: Option<&Value>| {
        let text = value.map_or_else(|| "(absent)".to_string(), Value::to_string);
        if text.chars().count() > 90 {
            format!("{}…", text.chars().take(90).collect::<String>())
        } else {
            text
        }
    };
    let path = if path.is_empty() { "/" } else { path };
    format!(
        "{path}: real {} / simulator {}",
        show(real),
        show(simulator)
    )
}
