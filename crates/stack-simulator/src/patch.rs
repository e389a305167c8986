//! PATCH bodies other than server-side apply: JSON patch (RFC 6902), merge
//! patch (RFC 7386) and strategic merge patch with its directives
//! (`$patch`, `$setElementOrder/…`, `$deleteFromPrimitiveList/…`,
//! `$retainKeys`).

use serde_json::{Map, Value};

use stack_kube::fields::{is_set, key_of, merge_keys};

pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let patch: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| e.to_string())?;
    json_patch::patch(target, &patch).map_err(|e| e.to_string())
}

pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Apply a strategic merge patch.
pub fn strategic(target: &mut Value, patch: &Value) {
    merge_value(target, patch, "");
}

fn merge_value(target: &mut Value, patch: &Value, field: &str) {
    match patch {
        Value::Object(patch_map) => {
            if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut replacement = patch_map.clone();
                replacement.remove("$patch");
                *target = Value::Object(strip_directives(replacement));
                return;
            }
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let Some(target_map) = target.as_object_mut() else {
                return;
            };
            if let Some(Value::Array(retain)) = patch_map.get("$retainKeys") {
                let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
                target_map
                    .retain(|key, _| keep.contains(&key.as_str()) || patch_map.contains_key(key));
            }
            for (key, value) in patch_map {
                if let Some(list) = key.strip_prefix("$deleteFromPrimitiveList/") {
                    if let (Some(Value::Array(items)), Value::Array(remove)) =
                        (target_map.get_mut(list), value)
                    {
                        items.retain(|item| !remove.contains(item));
                    }
                    continue;
                }
                if key.starts_with('$') {
                    continue;
                }
                if value.is_null() {
                    target_map.shift_remove(key);
                    continue;
                }
                match target_map.get_mut(key) {
                    Some(existing) => merge_value(existing, value, key),
                    None => {
                        let mut fresh = Value::Null;
                        merge_value(&mut fresh, value, key);
                        target_map.insert(key.clone(), fresh);
                    }
                }
            }
            for (key, value) in patch_map {
                if let Some(list) = key.strip_prefix("$setElementOrder/")
                    && let (Some(Value::Array(items)), Value::Array(order)) =
                        (target_map.get_mut(list), value)
                {
                    reorder(items, order, list);
                }
            }
        }
        Value::Array(patch_items) => merge_list(target, patch_items, field),
        other => *target = other.clone(),
    }
}

fn merge_list(target: &mut Value, patch_items: &[Value], field: &str) {
    if let Some(keys) = merge_keys(field, patch_items) {
        if !target.is_array() {
            *target = Value::Array(Vec::new());
        }
        let Some(items) = target.as_array_mut() else {
            return;
        };
        let original = std::mem::take(items);
        let keys_of_patch: Vec<String> = patch_items.iter().map(|p| key_of(p, keys)).collect();
        // The patch's items (merged with their originals), in patch order.
        let mut patched = Vec::new();
        for (patch_item, key) in patch_items.iter().zip(&keys_of_patch) {
            if patch_item.get("$patch").and_then(Value::as_str) == Some("delete") {
                continue;
            }
            let mut merged = original
                .iter()
                .find(|item| key_of(item, keys) == *key)
                .cloned()
                .unwrap_or(Value::Null);
            merge_value(&mut merged, patch_item, "");
            patched.push(merged);
        }
        let server_only: Vec<Value> = original
            .iter()
            .filter(|item| !keys_of_patch.contains(&key_of(item, keys)))
            .cloned()
            .collect();
        *items = interleave(server_only, patched, &original, keys);
    } else if is_set(field) {
        if !target.is_array() {
            *target = Value::Array(Vec::new());
        }
        if let Some(items) = target.as_array_mut() {
            for item in patch_items {
                if !items.contains(item) {
                    items.push(item.clone());
                }
            }
        }
    } else {
        *target = Value::Array(
            patch_items
                .iter()
                .cloned()
                .map(|item| match item {
                    Value::Object(map) => Value::Object(strip_directives(map)),
                    other => other,
                })
                .collect(),
        );
    }
}

/// The real server's order (`mergeSortedSlice`): the live object's items
/// the patch does not name are put back among the patch's items, each
/// before the first patch item that the live object had after it; items new
/// to the object come first.
fn interleave(
    left: Vec<Value>,
    right: Vec<Value>,
    original: &[Value],
    keys: &[&str],
) -> Vec<Value> {
    let position = |item: &Value| {
        let key = key_of(item, keys);
        original.iter().position(|o| key_of(o, keys) == key)
    };
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut left, mut right) = (left.into_iter().peekable(), right.into_iter().peekable());
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                matches!((position(l), position(r)), (Some(li), Some(ri)) if li < ri)
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

fn reorder(items: &mut [Value], order: &[Value], field: &str) {
    let Some(keys) = merge_keys(field, order) else {
        return;
    };
    let rank = |item: &Value| {
        let key = key_of(item, keys);
        order
            .iter()
            .position(|o| key_of(o, keys) == key)
            .unwrap_or(usize::MAX)
    };
    items.sort_by_key(rank);
}

fn strip_directives(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .filter(|(key, _)| !key.starts_with('$'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut target = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}});
        strategic(
            &mut target,
            &json!({"spec": {"containers": [{"name": "b", "image": "2"}, {"name": "a", "$patch": "delete"}]}}),
        );
        assert_eq!(
            target,
            json!({"spec": {"containers": [{"name": "b", "image": "2"}]}})
        );
    }

    #[test]
    fn strategic_puts_new_items_first_as_the_real_server_does() {
        let mut target = json!({"env": [{"name": "A"}, {"name": "B"}]});
        strategic(&mut target, &json!({"env": [{"name": "C"}]}));
        assert_eq!(
            target,
            json!({"env": [{"name": "C"}, {"name": "A"}, {"name": "B"}]})
        );
        strategic(
            &mut target,
            &json!({"env": [{"name": "B", "value": "2"}, {"name": "D"}]}),
        );
        assert_eq!(
            target,
            json!({"env": [{"name": "C"}, {"name": "A"}, {"name": "B", "value": "2"}, {"name": "D"}]})
        );
    }

    #[test]
    fn strategic_null_deletes_and_primitive_lists_replace() {
        let mut target = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "args": ["x"]});
        strategic(
            &mut target,
            &json!({"metadata": {"labels": {"a": null}}, "args": ["y"]}),
        );
        assert_eq!(
            target,
            json!({"metadata": {"labels": {"b": "2"}}, "args": ["y"]})
        );
    }
}
