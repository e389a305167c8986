//! Field paths and ownership as server-side apply sees them (kube-api-subset.md
//! §9), shared by the simulator and the diff: sets of
//! field paths in `FieldsV1` form, computed from objects with a small table
//! of list semantics instead of the full OpenAPI schemas.
//!
//! Path elements are encoded as in `FieldsV1`: `f:<field>`, `k:<key json>`
//! for list-map items, `v:<json>` for set members, `i:<index>` is never
//! produced (atomic lists are owned whole).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

pub type Path = Vec<String>;

/// How a list merges (`x-kubernetes-list-type`).
enum ListType {
    /// Items merge by these key fields.
    Map(&'static [&'static str]),
    /// Scalar members merge by value.
    Set,
    /// Replaced and owned whole.
    Atomic,
}

/// List semantics of the built-in kinds, by field name (and item shape).
fn list_type(field: &str, items: &[Value]) -> ListType {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => ListType::Map(&["name"]),
        "volumeMounts" => ListType::Map(&["mountPath"]),
        "volumeDevices" => ListType::Map(&["devicePath"]),
        "conditions" => ListType::Map(&["type"]),
        "hostAliases" => ListType::Map(&["ip"]),
        "ownerReferences" => ListType::Map(&["uid"]),
        "finalizers" => ListType::Set,
        "ports" if items.iter().any(|item| item.get("containerPort").is_some()) => {
            ListType::Map(&["containerPort", "protocol"])
        }
        "ports" if items.iter().all(|item| item.get("port").is_some()) => {
            ListType::Map(&["port", "protocol"])
        }
        _ => ListType::Atomic,
    }
}

/// Maps owned whole (`x-kubernetes-map-type: atomic`): label selectors,
/// and a Service's selector (a map of strings).
fn atomic_map(field: &str, value: &Map<String, Value>) -> bool {
    field == "selector"
        && (value.contains_key("matchLabels")
            || value.contains_key("matchExpressions")
            || (!value.is_empty() && value.values().all(Value::is_string)))
}

/// The key element of a list-map item, with the server's defaults for key
/// fields (a port's protocol is TCP).
fn item_key(item: &Value, keys: &[&str]) -> String {
    let mut key = Vec::new();
    write_item_key(item, keys, &mut key);
    String::from_utf8(key).unwrap_or_default()
}

/// `item_key` into a buffer: `k:` and the key fields as compact JSON, in
/// key order (the tables list them sorted, as FieldsV1 sorts them).
fn write_item_key(item: &Value, keys: &[&str], out: &mut Vec<u8>) {
    debug_assert!(keys.is_sorted(), "list-map keys must be sorted");
    out.extend_from_slice(b"k:{");
    let mut first = true;
    for field in keys {
        let value = item.get(*field);
        if value.is_none() && *field != "protocol" {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        let _ = serde_json::to_writer(&mut *out, field);
        out.push(b':');
        match value {
            Some(value) => {
                let _ = serde_json::to_writer(&mut *out, value);
            }
            // The server's default protocol.
            None => out.extend_from_slice(b"\"TCP\""),
        }
    }
    out.push(b'}');
}

/// Whether a list-map item's key is `element`; `buffer` is reused between
/// items so that a search does not allocate per item.
fn has_key(item: &Value, keys: &[&str], element: &str, buffer: &mut Vec<u8>) -> bool {
    buffer.clear();
    write_item_key(item, keys, buffer);
    buffer.as_slice() == element.as_bytes()
}

/// A set of field paths.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    owned: bool,
    children: BTreeMap<String, FieldSet>,
}

/// Top-level fields nobody owns.
const IDENTITY: &[&str] = &["apiVersion", "kind"];
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

impl FieldSet {
    /// The fields an object (or an applied configuration) sets.
    pub fn of_object(object: &Value, with_status: bool) -> Self {
        let mut set = Self::default();
        let Some(map) = object.as_object() else {
            return set;
        };
        for (key, value) in map {
            if IDENTITY.contains(&key.as_str()) || (key == "status" && !with_status) {
                continue;
            }
            if key == "metadata" {
                if let Some(metadata) = value.as_object() {
                    let node = set.children.entry("f:metadata".into()).or_default();
                    for (field, value) in metadata {
                        if !SERVER_METADATA.contains(&field.as_str()) {
                            node.children
                                .entry(format!("f:{field}"))
                                .or_default()
                                .add(field, value);
                        }
                    }
                    if node.children.is_empty() {
                        set.children.remove("f:metadata");
                    }
                }
                continue;
            }
            set.children
                .entry(format!("f:{key}"))
                .or_default()
                .add(key, value);
        }
        set
    }

    /// Only the `.status` part of an object.
    pub fn of_status(object: &Value) -> Self {
        let mut set = Self::default();
        if let Some(status) = object.get("status") {
            set.children
                .entry("f:status".into())
                .or_default()
                .add("status", status);
        }
        set
    }

    fn add(&mut self, field: &str, value: &Value) {
        match value {
            Value::Object(map) if !map.is_empty() && !atomic_map(field, map) => {
                for (key, child) in map {
                    self.children
                        .entry(format!("f:{key}"))
                        .or_default()
                        .add(key, child);
                }
            }
            Value::Array(items) => match list_type(field, items) {
                ListType::Map(keys) => {
                    for item in items {
                        let node = self.children.entry(item_key(item, keys)).or_default();
                        node.owned = true;
                        if let Some(map) = item.as_object() {
                            for (key, child) in map {
                                node.children
                                    .entry(format!("f:{key}"))
                                    .or_default()
                                    .add(key, child);
                            }
                        }
                    }
                    if items.is_empty() {
                        self.owned = true;
                    }
                }
                ListType::Set => {
                    for item in items {
                        let encoded =
                            format!("v:{}", serde_json::to_string(item).unwrap_or_default());
                        self.children.entry(encoded).or_default().owned = true;
                    }
                    if items.is_empty() {
                        self.owned = true;
                    }
                }
                ListType::Atomic => self.owned = true,
            },
            _ => self.owned = true,
        }
    }

    /// An Update's set also owns the maps the update created, as the real
    /// server records them (`".": {}`): for built-in kinds, maps of strings
    /// (labels, annotations, data, selectors, limits; no schema is at hand,
    /// and the typed structs the real server leaves unmarked hold other
    /// values); for custom resources, every map.
    pub fn mark_new_maps(&mut self, old: Option<&Value>, new: &Value, custom: bool) {
        for (element, child) in &mut self.children {
            let Some(name) = element.strip_prefix("f:") else {
                continue;
            };
            let Some(value) = new.get(name) else {
                continue;
            };
            let before = old.and_then(|old| old.get(name));
            if let Value::Object(map) = value
                && name != "metadata"
                && before.is_none()
                && !map.is_empty()
                && !child.children.is_empty()
                && (custom || map.values().all(Value::is_string))
            {
                child.owned = true;
            }
            if value.is_object() {
                child.mark_new_maps(before, value, custom);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.owned && self.children.is_empty()
    }

    /// Every owned path (leaves and list-item members), deepest last.
    pub fn paths(&self) -> Vec<Path> {
        let mut paths = Vec::new();
        self.collect(&mut Vec::new(), &mut paths);
        paths
    }

    fn collect(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        if self.owned && !prefix.is_empty() {
            out.push(prefix.clone());
        }
        for (element, child) in &self.children {
            prefix.push(element.clone());
            child.collect(prefix, out);
            prefix.pop();
        }
    }

    fn node(&self, path: &[String]) -> Option<&Self> {
        path.iter()
            .try_fold(self, |node, element| node.children.get(element))
    }

    /// Whether this exact path is owned.
    pub fn owns(&self, path: &[String]) -> bool {
        self.node(path).is_some_and(|node| node.owned)
    }

    /// Whether this path or anything below it is owned.
    pub fn touches(&self, path: &[String]) -> bool {
        self.node(path).is_some()
    }

    pub fn insert(&mut self, path: &[String]) {
        let mut node = self;
        for element in path {
            node = node.children.entry(element.clone()).or_default();
        }
        node.owned = true;
    }

    /// Give up ownership of a path (and prune empty branches).
    pub fn remove(&mut self, path: &[String]) {
        fn remove_in(node: &mut FieldSet, path: &[String]) {
            let Some((first, rest)) = path.split_first() else {
                node.owned = false;
                return;
            };
            if let Some(child) = node.children.get_mut(first) {
                remove_in(child, rest);
                if child.is_empty() {
                    node.children.remove(first);
                }
            }
        }
        remove_in(self, path);
    }

    /// Give up every path `object` does not have, in one walk over both.
    pub fn retain_present(&mut self, object: &Value) {
        self.retain_in(object, "");
    }

    fn retain_in(&mut self, value: &Value, field: &str) {
        self.children.retain(|element, child| {
            let Some(next) = step(value, element, field) else {
                return false;
            };
            child.retain_in(next, element.strip_prefix("f:").unwrap_or(field));
            !child.is_empty()
        });
    }

    pub fn union(&mut self, other: &Self) {
        self.owned |= other.owned;
        for (element, child) in &other.children {
            self.children
                .entry(element.clone())
                .or_default()
                .union(child);
        }
    }

    /// `FieldsV1` JSON.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.owned && !self.children.is_empty() {
            map.insert(".".into(), json!({}));
        }
        for (element, child) in &self.children {
            map.insert(element.clone(), child.to_fields_v1());
        }
        Value::Object(map)
    }

    pub fn from_fields_v1(value: &Value) -> Self {
        let mut set = Self::default();
        if let Some(map) = value.as_object() {
            set.owned = map.is_empty() || map.contains_key(".");
            for (element, child) in map {
                if element != "." {
                    set.children
                        .insert(element.clone(), Self::from_fields_v1(child));
                }
            }
        }
        set
    }
}

/// The value at a path of an object.
pub fn get<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut current = object;
    let mut field = "";
    for element in path {
        current = step(current, element, field)?;
        if let Some(name) = element.strip_prefix("f:") {
            field = name;
        }
    }
    Some(current)
}

/// The paths that `FieldSet::of_object` of `new` or of `old` owns and
/// that `new` has with a value other than `old`'s: what a write changed,
/// sorted. One walk over both objects that stops wherever they are equal,
/// instead of building both sets.
pub fn changed_in_object(old: &Value, new: &Value, with_status: bool) -> Vec<Path> {
    let mut out = Vec::new();
    let mut prefix = Vec::new();
    for (key, value) in new.as_object().into_iter().flatten() {
        if IDENTITY.contains(&key.as_str()) || (key == "status" && !with_status) {
            continue;
        }
        prefix.push(format!("f:{key}"));
        if key == "metadata" {
            for (field, value) in value.as_object().into_iter().flatten() {
                if !SERVER_METADATA.contains(&field.as_str()) {
                    prefix.push(format!("f:{field}"));
                    changed_below(
                        old["metadata"].get(field),
                        value,
                        field,
                        &mut prefix,
                        &mut out,
                    );
                    prefix.pop();
                }
            }
        } else {
            changed_below(old.get(key), value, key, &mut prefix, &mut out);
        }
        prefix.pop();
    }
    out.sort();
    out
}

/// `changed_in_object` for `FieldSet::of_status`: `.status` only.
pub fn changed_in_status(old: &Value, new: &Value) -> Vec<Path> {
    let mut out = Vec::new();
    if let Some(status) = new.get("status") {
        let mut prefix = vec!["f:status".to_string()];
        changed_below(old.get("status"), status, "status", &mut prefix, &mut out);
    }
    out.sort();
    out
}

/// Whether a set made by `FieldSet::add` owns the node of this value itself
/// (rather than only nodes below it).
fn owns_itself(field: &str, value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty() || atomic_map(field, map),
        Value::Array(items) => {
            items.is_empty() || matches!(list_type(field, items), ListType::Atomic)
        }
        _ => true,
    }
}

fn changed_below(
    old: Option<&Value>,
    new: &Value,
    field: &str,
    prefix: &mut Path,
    out: &mut Vec<Path>,
) {
    if old == Some(new) {
        return;
    }
    let new_whole = owns_itself(field, new);
    let old_whole = old.is_some_and(|old| owns_itself(field, old));
    if new_whole || old_whole {
        out.push(prefix.clone());
    }
    match new {
        Value::Object(map) => {
            // The members either set has (a map owned whole has none).
            let members = match (new_whole, old_whole) {
                (false, _) => Some(map),
                (true, false) => old.and_then(Value::as_object),
                (true, true) => None,
            };
            for key in members.into_iter().flat_map(Map::keys) {
                let Some(child) = map.get(key) else {
                    continue;
                };
                prefix.push(format!("f:{key}"));
                changed_below(old.and_then(|old| old.get(key)), child, key, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => match list_type(field, items) {
            ListType::Map(keys) => {
                for item in items {
                    let key = item_key(item, keys);
                    let before = old.and_then(|old| step(old, &key, field));
                    if before == Some(item) {
                        continue;
                    }
                    prefix.push(key);
                    out.push(prefix.clone());
                    for (member, child) in item.as_object().into_iter().flatten() {
                        prefix.push(format!("f:{member}"));
                        let was = before.and_then(|before| before.get(member));
                        changed_below(was, child, member, prefix, out);
                        prefix.pop();
                    }
                    prefix.pop();
                }
            }
            ListType::Set => {
                let before = old.and_then(Value::as_array);
                for item in items {
                    if !before.is_some_and(|before| before.contains(item)) {
                        let encoded = serde_json::to_string(item).unwrap_or_default();
                        prefix.push(format!("v:{encoded}"));
                        out.push(prefix.clone());
                        prefix.pop();
                    }
                }
            }
            ListType::Atomic => {}
        },
        _ => {}
    }
}

fn step<'a>(value: &'a Value, element: &str, field: &str) -> Option<&'a Value> {
    if let Some(name) = element.strip_prefix("f:") {
        return value.get(name);
    }
    let items = value.as_array()?;
    if element.starts_with("k:") {
        let ListType::Map(keys) = list_type(field, items) else {
            return None;
        };
        let mut buffer = Vec::new();
        return items
            .iter()
            .find(|item| has_key(item, keys, element, &mut buffer));
    }
    if let Some(encoded) = element.strip_prefix("v:") {
        let member: Value = serde_json::from_str(encoded).ok()?;
        return items.iter().find(|item| **item == member);
    }
    None
}

/// Remove the value at a path; `true` if something was removed.
pub fn remove(object: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut field = "";
    let mut current = object;
    for element in parents {
        let next_field = element.strip_prefix("f:").unwrap_or(field);
        current = match step_mut(current, element, field) {
            Some(next) => next,
            None => return false,
        };
        field = next_field;
    }
    if let Some(name) = last.strip_prefix("f:") {
        return current
            .as_object_mut()
            .and_then(|map| map.shift_remove(name))
            .is_some();
    }
    let Some(items) = current.as_array_mut() else {
        return false;
    };
    let before = items.len();
    if last.starts_with("k:") {
        if let ListType::Map(keys) = list_type(field, items) {
            let mut buffer = Vec::new();
            items.retain(|item| !has_key(item, keys, last, &mut buffer));
        }
    } else if let Some(encoded) = last.strip_prefix("v:")
        && let Ok(member) = serde_json::from_str::<Value>(encoded)
    {
        items.retain(|item| *item != member);
    }
    items.len() != before
}

/// Remove the values at `paths` (fields a manager stopped applying), except
/// where `kept` says another manager still holds them. A list item goes
/// whole, before its members: removing its key field first would leave the
/// rest of the item behind, unreachable by key. A key field alone is never
/// removed (the item stays, so its key does). Returns the paths removed.
pub fn remove_all(
    object: &mut Value,
    paths: &[Path],
    kept: impl Fn(&[String]) -> bool,
) -> Vec<Path> {
    let mut ordered: Vec<&Path> = paths.iter().collect();
    ordered.sort_by_key(|path| path.len());
    let mut removed: Vec<Path> = Vec::new();
    for path in ordered {
        if removed.iter().any(|gone| path.starts_with(gone)) || kept(path) || is_key_field(path) {
            continue;
        }
        if remove(object, path) {
            removed.push(path.clone());
        }
    }
    removed
}

/// Whether a path names a key field of a list-map item (`k:{"name":"B"}/f:name`).
fn is_key_field(path: &[String]) -> bool {
    let [.., item, field] = path else {
        return false;
    };
    let (Some(key), Some(field)) = (item.strip_prefix("k:"), field.strip_prefix("f:")) else {
        return false;
    };
    serde_json::from_str::<Map<String, Value>>(key).is_ok_and(|key| key.contains_key(field))
}

fn step_mut<'a>(value: &'a mut Value, element: &str, field: &str) -> Option<&'a mut Value> {
    if let Some(name) = element.strip_prefix("f:") {
        return value.get_mut(name);
    }
    let items = value.as_array_mut()?;
    if element.starts_with("k:") {
        let ListType::Map(keys) = list_type(field, items) else {
            return None;
        };
        let mut buffer = Vec::new();
        return items
            .iter_mut()
            .find(|item| has_key(item, keys, element, &mut buffer));
    }
    None
}

/// Merge an applied configuration into an object: maps merge, list-maps
/// merge by key, everything else is replaced.
pub fn merge_applied(target: &mut Value, config: &Value, field: &str) {
    match (target, config) {
        (Value::Object(target), Value::Object(config)) if !atomic_map(field, config) => {
            for (key, value) in config {
                match target.get_mut(key) {
                    Some(existing) => merge_applied(existing, value, key),
                    None => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(target), Value::Array(config)) => match list_type(field, config) {
            ListType::Map(keys) => {
                for item in config {
                    let key = item_key(item, keys);
                    match target
                        .iter_mut()
                        .find(|existing| item_key(existing, keys) == key)
                    {
                        Some(existing) => merge_applied(existing, item, ""),
                        None => target.push(item.clone()),
                    }
                }
            }
            ListType::Set => {
                for item in config {
                    if !target.contains(item) {
                        target.push(item.clone());
                    }
                }
            }
            ListType::Atomic => target.clone_from(config),
        },
        (target, config) => *target = config.clone(),
    }
}

/// A path as kubectl prints it in conflicts:
/// `.spec.template.spec.containers[name="web"].image`.
pub fn display(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(name) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(name);
        } else if let Some(key) = element.strip_prefix("k:") {
            let fields: BTreeMap<String, Value> = serde_json::from_str(key).unwrap_or_default();
            let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(value) = element.strip_prefix("v:") {
            out.push_str(&format!("[={value}]"));
        }
    }
    out
}

/// The merge keys of a list (for strategic merge patch), if it merges by key.
pub fn merge_keys(field: &str, items: &[Value]) -> Option<&'static [&'static str]> {
    match list_type(field, items) {
        ListType::Map(keys) => Some(keys),
        _ => None,
    }
}

/// Whether a scalar list merges by value (`finalizers`).
pub fn is_set(field: &str) -> bool {
    matches!(list_type(field, &[]), ListType::Set)
}

/// The key of a list-map item, as `merge_keys` identifies it.
pub fn key_of(item: &Value, keys: &[&str]) -> String {
    item_key(item, keys)
}

/// The parts of `object` that the set's paths reach: owned leaves whole,
/// maps and list-map items only as far as the set goes.
pub fn project(object: &Value, set: &FieldSet) -> Value {
    project_node(object, set, "")
}

fn project_node(value: &Value, node: &FieldSet, field: &str) -> Value {
    if node.children.is_empty() {
        return value.clone();
    }
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, child_value) in map {
                if let Some(child) = node.children.get(&format!("f:{key}")) {
                    out.insert(key.clone(), project_node(child_value, child, key));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let keys = merge_keys(field, items);
            let projected = items
                .iter()
                .filter_map(|item| {
                    let element = match keys {
                        Some(keys) => item_key(item, keys),
                        None => format!("v:{}", serde_json::to_string(item).unwrap_or_default()),
                    };
                    node.children
                        .get(&element)
                        .map(|child| project_node(item, child, ""))
                })
                .collect();
            Value::Array(projected)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80}]}]}}}
        })
    }

    #[test]
    fn a_dropped_list_item_is_removed_whole() {
        let mut object = json!({"spec": {"containers": [{"name": "app", "env": [
            {"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]}});
        let before = FieldSet::of_object(&object, false);
        let now = FieldSet::of_object(
            &json!({"spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": "1"}]}]}}),
            false,
        );
        let dropped: Vec<Path> = before
            .paths()
            .into_iter()
            .filter(|path| !now.touches(path))
            .collect();
        remove_all(&mut object, &dropped, |_| false);
        assert_eq!(
            object,
            json!({"spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": "1"}]}]}})
        );
    }

    #[test]
    fn a_shared_list_item_keeps_its_key() {
        let mut object = json!({"env": [{"name": "B", "value": "2", "other": "x"}]});
        let dropped: Vec<Path> =
            FieldSet::of_object(&json!({"env": [{"name": "B", "value": "2"}]}), false)
                .paths()
                .into_iter()
                .filter(|path| path.len() == 3)
                .collect();
        remove_all(&mut object, &dropped, |_| false);
        assert_eq!(object, json!({"env": [{"name": "B", "other": "x"}]}));
    }

    #[test]
    fn fields_v1_matches_the_real_encoding() {
        let set = FieldSet::of_object(&deployment("nginx"), false);
        assert_eq!(
            set.to_fields_v1(),
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:selector": {},
                    "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}
            })
        );
        assert_eq!(FieldSet::from_fields_v1(&set.to_fields_v1()), set);
    }

    #[test]
    fn paths_navigate_list_maps() {
        let object = deployment("nginx:1");
        let path: Path = [
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            "k:{\"name\":\"web\"}",
            "f:image",
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        assert_eq!(get(&object, &path), Some(&json!("nginx:1")));
        assert_eq!(
            display(&path),
            ".spec.template.spec.containers[name=\"web\"].image"
        );
        let mut object = object;
        assert!(remove(&mut object, &path));
        assert_eq!(get(&object, &path), None);
    }

    #[test]
    fn item_keys_are_sorted_compact_json_with_the_default_protocol() {
        let port = json!({"containerPort": 80, "name": "http"});
        assert_eq!(
            item_key(&port, &["containerPort", "protocol"]),
            r#"k:{"containerPort":80,"protocol":"TCP"}"#
        );
        let udp = json!({"port": 53, "protocol": "UDP"});
        assert_eq!(
            item_key(&udp, &["port", "protocol"]),
            r#"k:{"port":53,"protocol":"UDP"}"#
        );
        assert_eq!(
            item_key(&json!({"name": "a\"b"}), &["name"]),
            r#"k:{"name":"a\"b"}"#
        );
        assert_eq!(item_key(&json!("x"), &["name"]), "k:{}");
    }

    /// What `changed_in_object` must find, by its definition: every path
    /// of either set that `new` has with another value.
    fn changed_by_lookup(old: &Value, new: &Value, with_status: bool) -> Vec<Path> {
        let mut all = FieldSet::of_object(new, with_status);
        all.union(&FieldSet::of_object(old, with_status));
        let mut paths: Vec<Path> = all
            .paths()
            .into_iter()
            .filter(|path| {
                let value = get(new, path);
                value.is_some() && get(old, path) != value
            })
            .collect();
        paths.sort();
        paths
    }

    #[test]
    fn changed_paths_are_those_whose_new_value_differs() {
        let old = deployment("nginx:1");
        let mut new = deployment("nginx:2");
        new["metadata"]["labels"] = json!({"tier": "front"});
        new["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"] = json!("http");
        let looked_up = changed_by_lookup(&old, &new, false);
        assert_eq!(looked_up.len(), 5);
        assert_eq!(changed_in_object(&old, &new, false), looked_up);
        assert!(changed_in_object(&old, &old, false).is_empty());
    }

    #[test]
    fn changed_paths_follow_lists_maps_and_changes_of_shape() {
        let old = json!({"metadata": {"name": "a", "finalizers": ["x"], "annotations": {"k": "1"}},
            "spec": {"selector": {"matchLabels": {"app": "a"}}, "replicas": 1, "empty": {},
                "shape": 5, "gone": {"a": 1}, "args": ["1", "2"],
                "containers": [{"name": "c", "image": "1", "env": [{"name": "A", "value": "1"}]},
                    {"name": "d", "image": "1"}]},
            "status": {"conditions": [{"type": "Ready", "status": "False"}], "replicas": 0}});
        let new = json!({"metadata": {"name": "b", "finalizers": ["x", "y"], "annotations": {"k": "2", "n": "1"}},
            "spec": {"selector": {"matchLabels": {"app": "b"}}, "replicas": 1, "empty": {"now": 1},
                "shape": {"a": 1}, "gone": {}, "args": ["1", "3"],
                "containers": [{"name": "c", "image": "2", "env": [{"name": "A", "value": "1"}, {"name": "B"}]},
                    {"name": "e", "image": "1"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "replicas": 2}});
        for with_status in [false, true] {
            let looked_up = changed_by_lookup(&old, &new, with_status);
            assert!(looked_up.len() > 10, "{looked_up:?}");
            assert_eq!(changed_in_object(&old, &new, with_status), looked_up);
            assert_eq!(
                changed_in_object(&new, &old, with_status),
                changed_by_lookup(&new, &old, with_status)
            );
        }
        let mut status = FieldSet::of_status(&new);
        status.union(&FieldSet::of_status(&old));
        let expected: Vec<Path> = status
            .paths()
            .into_iter()
            .filter(|path| get(&old, path) != get(&new, path))
            .collect();
        assert_eq!(changed_in_status(&old, &new), expected);
    }

    #[test]
    fn projection_keeps_only_the_paths_of_the_set() {
        let live = json!({"metadata": {"name": "web", "labels": {"app": "web", "other": "x"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "1", "imagePullPolicy": "Always"}]}}}});
        let set = FieldSet::of_object(
            &json!({"metadata": {"labels": {"app": "web"}},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "2"}]}}}}),
            false,
        );
        assert_eq!(
            project(&live, &set),
            json!({"metadata": {"labels": {"app": "web"}},
                "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "1"}]}}}})
        );
    }

    #[test]
    fn merge_keeps_other_items_and_replaces_atomic_lists() {
        let mut live =
            json!({"spec": {"containers": [{"name": "a", "args": ["1"]}, {"name": "b"}]}});
        merge_applied(
            &mut live,
            &json!({"spec": {"containers": [{"name": "a", "args": ["2"]}]}}),
            "",
        );
        assert_eq!(
            live,
            json!({"spec": {"containers": [{"name": "a", "args": ["2"]}, {"name": "b"}]}})
        );
    }
}
