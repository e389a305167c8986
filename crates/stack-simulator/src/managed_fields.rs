//! `metadata.managedFields` as the write pipeline reads, changes and writes
//! it: who owns which fields, and how a write moves ownership.
//!
//! Most writes touch a small part of an object (a controller's status
//! write touches `.status` only), so an entry keeps the `fieldsV1` JSON it
//! was stored with until a write reaches its fields. That JSON is exactly
//! what serialising its set would give: every stored entry was written by
//! [`set_entries`] from a pruned set, whose `FieldsV1` form reads back as
//! the same set.

use serde_json::{Map, Value};

use crate::request::Request;
use stack_kube::fields::{self, FieldSet, Path};

/// One `managedFields` entry, borrowing the stored JSON it came from.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub fields: Fields<'a>,
}

/// An entry's fields: its stored `fieldsV1` until a write needs the set.
#[derive(Debug, Clone)]
pub enum Fields<'a> {
    Stored(&'a Value),
    Parsed(FieldSet),
}

impl Entry<'_> {
    /// The entry of a writer, owning `fields`.
    pub fn new(request: &Request, operation: &str, time: String, fields: FieldSet) -> Self {
        Entry {
            manager: request.manager.to_string(),
            operation: operation.into(),
            api_version: request.resource.api_version(),
            time,
            subresource: request.subresource.unwrap_or_default().to_string(),
            fields: Fields::Parsed(fields),
        }
    }

    /// How conflict messages name the manager.
    pub fn describe(&self) -> String {
        let mut text = format!("\"{}\"", self.manager);
        if !self.subresource.is_empty() {
            text.push_str(&format!(" with subresource \"{}\"", self.subresource));
        }
        if self.operation == "Update" {
            text.push_str(&format!(" using {}", self.api_version));
        }
        text
    }

    /// The entry as stored. Built by hand: `json!` would copy `fieldsV1`
    /// once more through serde.
    fn into_json(self) -> Value {
        let mut map = Map::new();
        map.insert("manager".into(), Value::String(self.manager));
        map.insert("operation".into(), Value::String(self.operation));
        map.insert("apiVersion".into(), Value::String(self.api_version));
        map.insert("time".into(), Value::String(self.time));
        map.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        map.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            map.insert("subresource".into(), Value::String(self.subresource));
        }
        Value::Object(map)
    }

    pub fn same_owner(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }
}

impl Fields<'_> {
    /// The set, parsed from the stored JSON the first time it is needed.
    pub fn set(&mut self) -> &mut FieldSet {
        if let Fields::Stored(value) = self {
            *self = Fields::Parsed(FieldSet::from_fields_v1(value));
        }
        match self {
            Fields::Parsed(set) => set,
            Fields::Stored(_) => unreachable!("parsed just above"),
        }
    }

    /// Whether this exact path is owned.
    pub fn owns(&self, path: &[String]) -> bool {
        match self {
            // As `FieldSet::from_fields_v1` reads it: a node is owned when
            // it is an empty map or has the "." member.
            Fields::Stored(value) => stored_node(value, path)
                .and_then(Value::as_object)
                .is_some_and(|map| map.is_empty() || map.contains_key(".")),
            Fields::Parsed(set) => set.owns(path),
        }
    }

    /// Whether this path or anything below it is owned.
    pub fn touches(&self, path: &[String]) -> bool {
        match self {
            Fields::Stored(value) => stored_node(value, path).is_some(),
            Fields::Parsed(set) => set.touches(path),
        }
    }

    /// Every owned path.
    pub fn paths(&self) -> Vec<Path> {
        match self {
            Fields::Stored(value) => FieldSet::from_fields_v1(value).paths(),
            Fields::Parsed(set) => set.paths(),
        }
    }

    /// Give up ownership of a path; a set that does not touch it stays as stored.
    pub fn remove(&mut self, path: &[String]) {
        if matches!(self, Fields::Parsed(_)) || self.touches(path) {
            self.set().remove(path);
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            // `from_fields_v1` reads any map as a non-empty set, anything else as empty.
            Fields::Stored(value) => !value.is_object(),
            Fields::Parsed(set) => set.is_empty(),
        }
    }

    fn to_fields_v1(&self) -> Value {
        match self {
            Fields::Stored(value) => (*value).clone(),
            Fields::Parsed(set) => set.to_fields_v1(),
        }
    }
}

/// The node a path reaches in stored `fieldsV1` JSON.
fn stored_node<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter()
        .try_fold(value, |node, element| node.as_object()?.get(element))
}

/// The entries of a stored object.
pub fn entries_of(object: &Value) -> Vec<Entry<'_>> {
    object["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|entry| Entry {
                    manager: text(&entry["manager"]),
                    operation: text(&entry["operation"]),
                    api_version: text(&entry["apiVersion"]),
                    time: text(&entry["time"]),
                    subresource: text(&entry["subresource"]),
                    fields: Fields::Stored(&entry["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

/// Write the entries into the object (entries owning nothing are left out).
pub fn set_entries(object: &mut Value, entries: Vec<Entry>) {
    let list: Vec<Value> = entries
        .into_iter()
        .filter(|entry| !entry.fields.is_empty())
        .map(Entry::into_json)
        .collect();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            metadata.remove("managedFields");
        } else {
            metadata.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Fields a non-apply write changed become the writer's (operation Update).
pub fn update_entries<'a>(
    request: &Request,
    old: Option<&'a Value>,
    new: &Value,
    now: &str,
) -> Vec<Entry<'a>> {
    let mut entries = old.map(entries_of).unwrap_or_default();
    let subresource = request.subresource.unwrap_or_default();
    let status_only = subresource == "status";
    let fields_of = |object: &Value| {
        if status_only {
            FieldSet::of_status(object)
        } else {
            FieldSet::of_object(object, !request.resource.status)
        }
    };
    let changed: Vec<Path> = match old {
        // A new object: everything in it is the creator's.
        None => {
            let mut new_fields = fields_of(new);
            if new_fields.is_empty() {
                return entries;
            }
            new_fields.mark_new_maps(None, new, !request.resource.built_in());
            if request.resource.kind == "Namespace" && request.resource.group.is_empty() {
                // Set by the namespace strategy, after the field manager ran.
                new_fields.remove(&[
                    "f:spec".into(),
                    "f:finalizers".into(),
                    "v:\"kubernetes\"".into(),
                ]);
            }
            return vec![Entry::new(request, "Update", now.into(), new_fields)];
        }
        Some(old) if status_only => fields::changed_in_status(old, new),
        Some(old) => fields::changed_in_object(old, new, !request.resource.status),
    };
    if changed.is_empty() {
        return entries;
    }
    for entry in &mut entries {
        for path in &changed {
            entry.fields.remove(path);
        }
    }
    let index = match entries
        .iter()
        .position(|e| e.same_owner(request.manager, "Update", subresource))
    {
        Some(index) => index,
        None => {
            entries.push(Entry::new(
                request,
                "Update",
                now.into(),
                FieldSet::default(),
            ));
            entries.len() - 1
        }
    };
    let entry = &mut entries[index];
    entry.time = now.to_string();
    let set = entry.fields.set();
    for path in &changed {
        set.insert(path);
    }
    set.mark_new_maps(old, new, !request.resource.built_in());
    entries
}

/// Drop owned paths that no longer exist in the object, and empty entries.
/// `old` is the object the stored entries were pruned against: a stored
/// entry whose fields lie where `old` and `object` agree has nothing to drop.
pub fn prune_entries<'a>(
    entries: Vec<Entry<'a>>,
    old: Option<&Value>,
    object: &Value,
) -> Vec<Entry<'a>> {
    entries
        .into_iter()
        .map(|mut entry| {
            let unchanged = match (&entry.fields, old) {
                (Fields::Stored(stored), Some(old)) => !reaches_change(stored, old, object),
                _ => false,
            };
            if !unchanged {
                entry.fields.set().retain_present(object);
            }
            entry
        })
        .filter(|entry| !entry.fields.is_empty())
        .collect()
}

/// Whether stored `fieldsV1` owns anything under a top-level field (or a
/// metadata field) whose value differs between `old` and `new`.
fn reaches_change(stored: &Value, old: &Value, new: &Value) -> bool {
    let Some(map) = stored.as_object() else {
        return false;
    };
    let differs = |old: &Value, new: &Value, element: &str| {
        element
            .strip_prefix("f:")
            .is_none_or(|field| old.get(field) != new.get(field))
    };
    map.iter().any(|(element, child)| {
        if element == "f:metadata"
            && let Some(metadata) = child.as_object()
        {
            return metadata
                .keys()
                .any(|element| differs(&old["metadata"], &new["metadata"], element));
        }
        differs(old, new, element)
    })
}

/// Metadata without the managedFields contents, which the write pipeline
/// recomputes: an empty list keeps their place among the metadata fields.
pub fn clear(object: &mut Value) {
    if let Some(entries) = object
        .get_mut("metadata")
        .and_then(|metadata| metadata.get_mut("managedFields"))
    {
        *entries = Value::Array(Vec::new());
    }
}
