//! Comparing what `stack` would apply with what is live, the way
//! server-side apply sees it (product.md §6): only the fields the rendered
//! object sets, plus the fields `stack` owned before (whose absence from the
//! render means removal), are compared; server-owned fields and defaults the
//! user never set are out of view; quantities compare by value. Pure:
//! objects in, a verdict and a unified diff out.

use serde_json::{Map, Value};

use stack_kube::fields::{self, FieldSet};
use stack_kube::object::MANAGED_BY_VALUE;

pub mod text;

/// What applying one object changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    Unchanged,
    Create { after: Value },
    Update { before: Value, after: Value },
    Delete { before: Value },
}

/// The field manager `stack` applies with.
pub(crate) const FIELD_MANAGER: &str = MANAGED_BY_VALUE;

/// Fields of `live` that `manager` owns through server-side apply.
pub(crate) fn owned_by(live: &Value, manager: &str) -> FieldSet {
    let mut set = FieldSet::default();
    for entry in live["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if entry["manager"] == manager
            && entry["operation"] == "Apply"
            && entry["subresource"].is_null()
        {
            set.union(&FieldSet::from_fields_v1(&entry["fieldsV1"]));
        }
    }
    set
}

/// The comparable view of an object: identity plus the fields of `set`,
/// quantities canonical.
pub fn view(object: &Value, set: &FieldSet) -> Value {
    let mut projected = fields::project(object, set);
    stack_kube::quantity::canonicalize(&mut projected);
    let Some(map) = projected.as_object_mut() else {
        return projected;
    };
    let mut ordered = Map::new();
    ordered.insert("apiVersion".into(), object["apiVersion"].clone());
    ordered.insert("kind".into(), object["kind"].clone());
    let mut metadata = Map::new();
    metadata.insert("name".into(), object["metadata"]["name"].clone());
    if let Some(namespace) = object["metadata"].get("namespace") {
        metadata.insert("namespace".into(), namespace.clone());
    }
    if let Some(Value::Object(rest)) = map.remove("metadata") {
        metadata.extend(rest);
    }
    ordered.insert("metadata".into(), Value::Object(metadata));
    ordered.extend(std::mem::take(map));
    Value::Object(ordered)
}

/// A rendered object as the server stores it, where that changes its shape:
/// a Secret's `stringData` is written into `data`, base64-encoded.
fn as_stored(desired: &Value) -> std::borrow::Cow<'_, Value> {
    use base64::Engine as _;
    let Some(string_data) = desired.get("stringData").and_then(Value::as_object) else {
        return std::borrow::Cow::Borrowed(desired);
    };
    if desired["kind"] != "Secret" {
        return std::borrow::Cow::Borrowed(desired);
    }
    let mut stored = desired.clone();
    let mut data = stored["data"].as_object().cloned().unwrap_or_default();
    for (key, value) in string_data {
        let text = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
        data.insert(
            key.clone(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
        );
    }
    if let Some(map) = stored.as_object_mut() {
        map.shift_remove("stringData");
        map.insert("data".into(), Value::Object(data));
    }
    std::borrow::Cow::Owned(stored)
}

/// Compare a rendered object with its live counterpart.
pub fn compare(desired: Option<&Value>, live: Option<&Value>) -> Comparison {
    let stored = desired.map(as_stored);
    let desired = stored.as_deref();
    match (desired, live) {
        (None, None) => Comparison::Unchanged,
        (Some(desired), None) => Comparison::Create {
            after: view(desired, &FieldSet::of_object(desired, false)),
        },
        (None, Some(live)) => Comparison::Delete {
            before: view(live, &FieldSet::of_object(live, false)),
        },
        (Some(desired), Some(live)) => {
            let mut set = FieldSet::of_object(desired, false);
            set.union(&owned_by(live, FIELD_MANAGER));
            let before = view(live, &set);
            let after = view(desired, &set);
            if before == after {
                Comparison::Unchanged
            } else {
                Comparison::Update { before, after }
            }
        }
    }
}

/// Compare a server-side dry-run result with the live object: the server's
/// own answer to what the apply would change.
pub(crate) fn compare_dry_run(desired: &Value, dry_run: &Value, live: &Value) -> Comparison {
    let mut set = FieldSet::of_object(&as_stored(desired), false);
    set.union(&owned_by(live, FIELD_MANAGER));
    set.union(&owned_by(dry_run, FIELD_MANAGER));
    let before = view(live, &set);
    let after = view(dry_run, &set);
    if before == after {
        Comparison::Unchanged
    } else {
        Comparison::Update { before, after }
    }
}

/// Paths where `live` differs from `desired` that another manager owns:
/// `(path as kubectl prints it, manager)`.
pub fn drift(desired: &Value, live: &Value) -> Vec<(String, String)> {
    let stored = as_stored(desired);
    let desired = stored.as_ref();
    let mut found = Vec::new();
    let entries = live["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for path in FieldSet::of_object(desired, false).paths() {
        let (mut wanted, mut actual) = (
            fields::get(desired, &path).cloned(),
            fields::get(live, &path).cloned(),
        );
        if let (Some(w), Some(a)) = (&mut wanted, &mut actual) {
            stack_kube::quantity::canonicalize(w);
            stack_kube::quantity::canonicalize(a);
        }
        if wanted == actual
            || wanted
                .as_ref()
                .is_some_and(|w| w.is_object() || w.is_array() && actual.is_none())
        {
            continue;
        }
        for entry in &entries {
            let manager = entry["manager"].as_str().unwrap_or_default();
            if manager != FIELD_MANAGER && FieldSet::from_fields_v1(&entry["fieldsV1"]).owns(&path)
            {
                found.push((fields::display(&path), manager.to_string()));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live(replicas: u64, managers: &Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "a", "uid": "u", "resourceVersion": "9", "generation": 2, "managedFields": managers},
            "spec": {"replicas": replicas, "revisionHistoryLimit": 10, "template": {"spec": {"containers": [{"name": "web", "image": "1", "resources": {"requests": {"cpu": "1"}}}]}}},
            "status": {"readyReplicas": 1}})
    }

    fn desired(replicas: u64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "a"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "web", "image": "1", "resources": {"requests": {"cpu": "1000m"}}}]}}}})
    }

    #[test]
    fn server_fields_defaults_and_quantity_spelling_are_not_changes() {
        assert_eq!(
            compare(Some(&desired(1)), Some(&live(1, &json!([])))),
            Comparison::Unchanged
        );
    }

    #[test]
    fn a_changed_field_is_an_update_and_drift_names_the_manager() {
        let managers = json!([{"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
        let live = live(5, &managers);
        assert!(matches!(
            compare(Some(&desired(1)), Some(&live)),
            Comparison::Update { .. }
        ));
        assert_eq!(
            drift(&desired(1), &live),
            [(".spec.replicas".to_string(), "kubectl-edit".to_string())]
        );
    }

    #[test]
    fn secret_string_data_compares_as_the_stored_data() {
        let desired = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"pw": "hunter2"}});
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque", "data": {"pw": "aHVudGVyMg=="}});
        assert_eq!(compare(Some(&desired), Some(&live)), Comparison::Unchanged);
    }

    #[test]
    fn fields_stack_owned_and_no_longer_renders_are_removals() {
        let managers = json!([{"manager": "stack", "operation": "Apply", "apiVersion": "apps/v1",
            "fieldsV1": {"f:spec": {"f:revisionHistoryLimit": {}}}}]);
        let Comparison::Update { before, after } =
            compare(Some(&desired(1)), Some(&live(1, &managers)))
        else {
            panic!("expected an update")
        };
        assert_eq!(before["spec"]["revisionHistoryLimit"], 10);
        assert!(after["spec"]["revisionHistoryLimit"].is_null());
    }
}
