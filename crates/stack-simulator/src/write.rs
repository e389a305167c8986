//! Every write goes through here: create, update, the four PATCH types,
//! server-side apply, delete. One pipeline (`commit`) does what the real
//! server does on every write — identity checks, namespace checks, status
//! subresource rules, defaulting, generation, managedFields, no-op detection,
//! dry runs — so that a dry run returns exactly what the write would.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::managed_fields::{self, Entry, entries_of, prune_entries, set_entries, update_entries};
use crate::patch;
use crate::request::Request;
use crate::resources::ResourceType;
use crate::status::ApiError;
use crate::store::{Action, Store};
use crate::validation;
use stack_kube::clock::now;
use stack_kube::fields::{self, FieldSet, Path};

fn new_uid() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex = stack_kube::hex::lower(&bytes);
    format!(
        "{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        ["8", "9", "a", "b"][usize::from(bytes[8] % 4)],
        &hex[17..20],
        &hex[20..32]
    )
}

/// How the new managedFields are found.
enum Ownership<'a> {
    /// A non-apply write: the fields that changed go to this manager.
    Update,
    /// A controller creating an object together with its first status, as
    /// a create followed by a status write would leave it: the status
    /// fields are the writer's through the status subresource.
    CreateWithStatus,
    /// Server-side apply computed them.
    Applied(Vec<Entry<'a>>),
}

fn metadata(object: &Value) -> &Value {
    &object["metadata"]
}

/// Check a body's apiVersion, kind, name and namespace against the URL.
fn check_identity(request: &Request, body: &mut Value) -> Result<(), ApiError> {
    let resource = request.resource;
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request is not a JSON or YAML object",
        ));
    }
    let api_version = body["apiVersion"].as_str().unwrap_or_default();
    if !api_version.is_empty() && api_version != resource.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            resource.api_version()
        )));
    }
    let kind = body["kind"].as_str().unwrap_or_default();
    if !kind.is_empty() && kind != resource.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            resource.kind
        )));
    }
    body["apiVersion"] = json!(resource.api_version());
    body["kind"] = json!(resource.kind);
    if !body["metadata"].is_object() {
        body["metadata"] = json!({});
    }
    let name = metadata(body)["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !name.is_empty() && name != request.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({})",
            request.name
        )));
    }
    body["metadata"]["name"] = json!(request.name);
    if resource.namespaced {
        let namespace = metadata(body)["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !namespace.is_empty() && namespace != request.namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        body["metadata"]["namespace"] = json!(request.namespace);
    } else if let Some(map) = body["metadata"].as_object_mut() {
        map.remove("namespace");
    }
    string_maps(resource, body)?;
    validation::decode(resource, body)
}

/// Labels and annotations are `map[string]string`: a number or a boolean
/// there is refused as the API server's decoder refuses it.
fn string_maps(resource: &ResourceType, body: &Value) -> Result<(), ApiError> {
    let metadatas = [&body["metadata"], &body["spec"]["template"]["metadata"]];
    for (metadata, field) in metadatas
        .iter()
        .flat_map(|m| [(m, "labels"), (m, "annotations")])
    {
        let Some(map) = metadata[field].as_object() else {
            continue;
        };
        if let Some(value) = map.values().find(|v| !v.is_string() && !v.is_null()) {
            let found = match value {
                Value::Number(_) => "number",
                Value::Bool(_) => "bool",
                Value::Array(_) => "array",
                _ => "object",
            };
            return Err(ApiError::bad_request(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: json: cannot unmarshal {found} into Go struct field ObjectMeta.metadata.{field} of type string",
                kind = resource.kind,
                version = resource.version,
            )));
        }
    }
    Ok(())
}

/// Kinds whose objects carry `metadata.generation`: those with a spec
/// and a status written apart, except the core kinds the real server
/// gives none (Services, Namespaces, volumes, claims, nodes); and custom
/// resources.
fn has_generation(resource: &ResourceType) -> bool {
    let core_without = [
        "Service",
        "Namespace",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "Node",
    ];
    if resource.group.is_empty() && core_without.contains(&resource.kind.as_str()) {
        return false;
    }
    resource.status || resource.group.contains('.') && !resource.group.ends_with("k8s.io")
}

fn check_namespace(store: &Store, request: &Request) -> Result<(), ApiError> {
    if !request.resource.namespaced {
        return Ok(());
    }
    match store.get("/namespaces", "", request.namespace) {
        None => Err(ApiError::namespace_not_found(request.namespace)),
        Some(namespace) if !namespace["metadata"]["deletionTimestamp"].is_null() => Err(
            ApiError::namespace_terminating(request.resource, request.name, request.namespace),
        ),
        Some(_) => Ok(()),
    }
}

/// Go's `omitempty`: empty label/annotation maps and nulls in metadata vanish.
fn normalise(object: &mut Value) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.retain(|key, value| {
            !(value.is_null()
                || (matches!(
                    key.as_str(),
                    "labels" | "annotations" | "finalizers" | "ownerReferences"
                ) && is_empty(value)))
        });
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// The write pipeline. `old` is the live object (`None` to create).
fn commit<'a>(
    store: &mut Store,
    request: &Request,
    live: Option<&'a Arc<Value>>,
    mut new: Value,
    ownership: Ownership<'a>,
) -> Result<(u16, Arc<Value>), ApiError> {
    let old = live.map(Arc::as_ref);
    // `managedFields: [{}]` in a body resets them (as on a real server);
    // otherwise they are recomputed below from the live object's entries.
    let reset = new["metadata"]["managedFields"] == json!([{}]);
    managed_fields::clear(&mut new);
    let resource = request.resource;
    let status_write = request.subresource == Some("status");
    let keep_status = matches!(ownership, Ownership::CreateWithStatus);
    let now = now();
    match old {
        None => prepare_create(store, request, &mut new, keep_status, &now)?,
        Some(old) => prepare_update(request, old, &mut new)?,
    }
    if status_write && old.is_some() {
        crate::defaults::apply_to_status(&resource.kind, &mut new);
    } else {
        crate::defaults::apply(&resource.kind, &mut new);
    }
    validate(resource, &new, old.filter(|_| !status_write), request.name)?;
    normalise(&mut new);
    let entries = managed_entries(request, ownership, old, &new, &now);
    let entries = if reset { Vec::new() } else { entries };
    set_entries(&mut new, entries);
    if let Some(live) = live {
        if same_but_volatile(live, &new) {
            return Ok((200, Arc::clone(live)));
        }
        if has_generation(resource) && !same_spec(resource, live, &new) && !status_write {
            let generation = live["metadata"]["generation"].as_u64().unwrap_or(1) + 1;
            new["metadata"]["generation"] = json!(generation);
        }
    }
    if request.dry_run {
        return Ok(dry_run_answer(old, new));
    }
    Ok(store_written(store, request, old.is_none(), new))
}

/// Give a new object its uid, creation time and generation; drop a status it may not carry.
fn prepare_create(
    store: &Store,
    request: &Request,
    new: &mut Value,
    keep_status: bool,
    now: &str,
) -> Result<(), ApiError> {
    let resource = request.resource;
    check_namespace(store, request)?;
    let metadata = new["metadata"]
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
    metadata.insert("uid".into(), json!(new_uid()));
    metadata.insert("creationTimestamp".into(), json!(now));
    metadata.remove("resourceVersion");
    metadata.remove("deletionTimestamp");
    if has_generation(resource) {
        metadata.insert("generation".into(), json!(1));
    } else {
        metadata.remove("generation");
    }
    if resource.status
        && request.subresource != Some("status")
        && !keep_status
        && let Some(map) = new.as_object_mut()
    {
        map.remove("status");
    }
    Ok(())
}

/// Check an update against the live object `old`, and keep from it what the write may not change.
fn prepare_update(request: &Request, old: &Value, new: &mut Value) -> Result<(), ApiError> {
    check_preconditions(request, old, new)?;
    keep_live_status(request, old, new);
    keep_identity(old, new);
    check_new_finalizers(request, old, new)
}

/// A resourceVersion or uid in the body must be the live object's.
fn check_preconditions(request: &Request, old: &Value, new: &Value) -> Result<(), ApiError> {
    let requested = new["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default();
    if !requested.is_empty()
        && requested
            != old["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
    {
        return Err(ApiError::conflict(request.resource, request.name));
    }
    let requested_uid = new["metadata"]["uid"].as_str().unwrap_or_default();
    let live_uid = old["metadata"]["uid"].as_str().unwrap_or_default();
    if !requested_uid.is_empty() && requested_uid != live_uid {
        return Err(ApiError::conflict(request.resource, request.name));
    }
    Ok(())
}

/// Keep the live `.status` on a main-resource write, and all but `.status` on a status write.
fn keep_live_status(request: &Request, old: &Value, new: &mut Value) {
    if request.subresource == Some("status") {
        let status = new.as_object_mut().and_then(|map| map.remove("status"));
        *new = copy_for_status_write(old);
        match status {
            Some(status) => new["status"] = status,
            None => {
                if let Some(map) = new.as_object_mut() {
                    map.remove("status");
                }
            }
        }
    } else if request.resource.status {
        match old.get("status") {
            Some(status) => new["status"] = status.clone(),
            None => {
                if let Some(map) = new.as_object_mut() {
                    map.remove("status");
                }
            }
        }
    }
}

/// The metadata only the server sets stays the live object's.
fn keep_identity(old: &Value, new: &mut Value) {
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old["metadata"].get(field) {
            Some(value) => new["metadata"][field] = value.clone(),
            None => {
                if let Some(map) = new["metadata"].as_object_mut() {
                    map.remove(field);
                }
            }
        }
    }
}

/// An object being deleted takes no new finalizers.
fn check_new_finalizers(request: &Request, old: &Value, new: &Value) -> Result<(), ApiError> {
    if old["metadata"]["deletionTimestamp"].is_null() {
        return Ok(());
    }
    let added = new["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|new_list| {
            let old_list = old["metadata"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            new_list.iter().any(|f| !old_list.contains(f))
        });
    if added {
        let resource = request.resource;
        return Err(ApiError::invalid(
            &resource.kind,
            &resource.group,
            request.name,
            "metadata.finalizers",
            "FieldValueForbidden",
            "Forbidden: no new finalizers can be added if the object is being deleted",
        ));
    }
    Ok(())
}

/// The managedFields entries of the written object, found as `ownership` says.
fn managed_entries<'a>(
    request: &Request,
    ownership: Ownership<'a>,
    old: Option<&'a Value>,
    new: &Value,
    now: &str,
) -> Vec<Entry<'a>> {
    match (ownership, old) {
        // A creator's fields are read from the object itself: all are in it.
        (Ownership::Update, None) => update_entries(request, None, new, now),
        (Ownership::CreateWithStatus, _) => {
            let mut entries = update_entries(request, None, new, now);
            let status = FieldSet::of_status(new);
            if !status.is_empty() {
                let writer = Request {
                    subresource: Some("status"),
                    ..request.clone()
                };
                entries.push(Entry::new(&writer, "Update", now.to_string(), status));
            }
            entries
        }
        (Ownership::Update, Some(_)) => {
            prune_entries(update_entries(request, old, new, now), old, new)
        }
        (Ownership::Applied(entries), _) => prune_entries(entries, old, new),
    }
}

/// A dry run's answer: the object as it would be stored, at the live resourceVersion (none if new).
fn dry_run_answer(old: Option<&Value>, mut new: Value) -> (u16, Arc<Value>) {
    if let Some(old) = old {
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
    }
    if old.is_none()
        && let Some(map) = new["metadata"].as_object_mut()
    {
        map.remove("resourceVersion");
    }
    (if old.is_none() { 201 } else { 200 }, Arc::new(new))
}

/// Store a written object, and answer with what was stored.
fn store_written(
    store: &mut Store,
    request: &Request,
    created: bool,
    new: Value,
) -> (u16, Arc<Value>) {
    let resource = request.resource;
    // Removing the last finalizer of an object being deleted deletes it.
    let finalized = !new["metadata"]["deletionTimestamp"].is_null()
        && new["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
    if finalized {
        let key = resource.key();
        store.put(&key, new.clone(), Action::Modified);
        let removed = store
            .remove(&key, request.namespace, request.name)
            .unwrap_or_else(|| Arc::new(new));
        return (200, removed);
    }
    let action = if created {
        Action::Added
    } else {
        Action::Modified
    };
    let stored = store.put(&resource.key(), new, action);
    (if created { 201 } else { 200 }, stored)
}

/// A copy of the live object for a status write to change: its status
/// (replaced next) and managedFields (recomputed) are left as placeholders
/// in their places rather than copied.
fn copy_for_status_write(old: &Value) -> Value {
    copy_map(old, |key, value| match key {
        "status" => Value::Null,
        "metadata" => copy_map(value, |key, value| {
            if key == "managedFields" {
                Value::Array(Vec::new())
            } else {
                value.clone()
            }
        }),
        _ => value.clone(),
    })
}

/// A map with each entry's value made by `copy` (keys and order kept);
/// anything but a map is cloned.
fn copy_map(value: &Value, copy: impl Fn(&str, &Value) -> Value) -> Value {
    let Some(map) = value.as_object() else {
        return value.clone();
    };
    Value::Object(
        map.iter()
            .map(|(key, value)| (key.clone(), copy(key, value)))
            .collect(),
    )
}

/// Whether two objects are equal but for what changes on every write
/// (`resourceVersion`, managedFields times): the no-op test, without copies.
fn same_but_volatile(old: &Value, new: &Value) -> bool {
    same_except(old, new, |key| key == "metadata")
        && same_except(&old["metadata"], &new["metadata"], |key| {
            key == "resourceVersion" || key == "managedFields"
        })
        && match (
            old["metadata"].get("managedFields"),
            new["metadata"].get("managedFields"),
        ) {
            (Some(Value::Array(old)), Some(Value::Array(new))) => {
                old.len() == new.len()
                    && old
                        .iter()
                        .zip(new)
                        .all(|(old, new)| same_except(old, new, |key| key == "time"))
            }
            (old, new) => old == new,
        }
}

/// Whether everything but metadata (and status, when it is a subresource) is equal.
/// Whether a write leaves what generation counts alone: everything but
/// metadata and status, and for a Deployment its annotations too (the
/// real server bumps a Deployment's generation when they change), but for
/// the revision its controller records (through the status subresource on
/// a real server, through the main resource here).
fn same_spec(resource: &ResourceType, old: &Value, new: &Value) -> bool {
    let annotations = |object: &Value| {
        let mut annotations = object["metadata"]["annotations"].clone();
        if let Some(map) = annotations.as_object_mut() {
            map.shift_remove("deployment.kubernetes.io/revision");
            if map.is_empty() {
                return Value::Null;
            }
        }
        annotations
    };
    let deployment = resource.kind == "Deployment" && resource.group == "apps";
    same_except(old, new, |key| {
        key == "metadata" || (resource.status && key == "status")
    }) && (!deployment || annotations(old) == annotations(new))
}

/// Map equality over the keys `skip` does not name (plain equality for non-maps).
fn same_except(old: &Value, new: &Value, skip: impl Fn(&str) -> bool) -> bool {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return old == new;
    };
    let kept = |map: &Map<String, Value>| map.keys().filter(|key| !skip(key)).count();
    kept(old) == kept(new)
        && old
            .iter()
            .filter(|(key, _)| !skip(key))
            .all(|(key, value)| new.get(key) == Some(value))
}

fn validate(
    resource: &ResourceType,
    object: &Value,
    old: Option<&Value>,
    name: &str,
) -> Result<(), ApiError> {
    let causes = validation::causes(resource, object, old);
    if causes.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid_causes(
        &resource.kind,
        &resource.group,
        name,
        &causes,
    ))
}

pub fn create(
    store: &mut Store,
    request: &Request,
    body: Value,
) -> Result<(u16, Arc<Value>), ApiError> {
    create_as(store, request, body, Ownership::Update)
}

/// Create an object with the status it has from its first moment (the
/// simulator's kubelet starts a pod as it is created), in one write.
pub fn create_with_status(
    store: &mut Store,
    request: &Request,
    body: Value,
) -> Result<(u16, Arc<Value>), ApiError> {
    create_as(store, request, body, Ownership::CreateWithStatus)
}

fn create_as(
    store: &mut Store,
    request: &Request,
    mut body: Value,
    ownership: Ownership,
) -> Result<(u16, Arc<Value>), ApiError> {
    if !body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
    {
        return Err(ApiError::server_error(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    check_identity(request, &mut body)?;
    if store
        .get(&request.resource.key(), request.namespace, request.name)
        .is_some()
    {
        return Err(ApiError::already_exists(request.resource, request.name));
    }
    if let Some(map) = body["metadata"].as_object_mut() {
        map.remove("managedFields");
    }
    commit(store, request, None, body, ownership)
}

pub fn update(
    store: &mut Store,
    request: &Request,
    mut body: Value,
) -> Result<(u16, Arc<Value>), ApiError> {
    check_identity(request, &mut body)?;
    let old = live(store, request)?;
    // (A status write keeps everything but `.status` from the live object anyway.)
    if request.subresource != Some("status")
        && body["metadata"].get("managedFields").is_none()
        && let Some(entries) = old["metadata"].get("managedFields")
    {
        body["metadata"]["managedFields"] = entries.clone();
    }
    commit(store, request, Some(&old), body, Ownership::Update)
}

fn live(store: &Store, request: &Request) -> Result<Arc<Value>, ApiError> {
    store
        .get_shared(&request.resource.key(), request.namespace, request.name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(request.resource, request.name))
}

/// JSON, merge and strategic-merge patches.
pub fn patch(
    store: &mut Store,
    request: &Request,
    content_type: &str,
    body: &Value,
) -> Result<(u16, Arc<Value>), ApiError> {
    let old = live(store, request)?;
    let mut new = Value::clone(&old);
    match content_type {
        "application/json-patch+json" => {
            patch::json_patch(&mut new, body).map_err(|_| ApiError::json_patch_failed())?;
        }
        "application/merge-patch+json" => patch::merge_patch(&mut new, body),
        "application/strategic-merge-patch+json" => {
            if request.resource.group.contains('.') && !request.resource.group.ends_with("k8s.io") {
                return Err(ApiError::unsupported_media_type(
                    content_type,
                    ApiError::PATCH_TYPES,
                ));
            }
            patch::strategic(&mut new, body);
        }
        _ => return Err(ApiError::unsupported_patch_type()),
    }
    if let Some(requested) = body["metadata"]["resourceVersion"].as_str()
        && requested
            != old["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
    {
        return Err(ApiError::conflict(request.resource, request.name));
    }
    if let Some(map) = new["metadata"].as_object_mut() {
        map.remove("resourceVersion");
    }
    check_identity(request, &mut new)?;
    commit(store, request, Some(&old), new, Ownership::Update)
}

/// Server-side apply (kube-api-subset.md §9.1).
pub fn apply(
    store: &mut Store,
    request: &Request,
    mut config: Value,
    force: bool,
) -> Result<(u16, Arc<Value>), ApiError> {
    check_apply_config(request, &config)?;
    check_identity(request, &mut config)?;
    let live = store
        .get_shared(&request.resource.key(), request.namespace, request.name)
        .cloned();
    if let (Some(live), Some(requested)) = (&live, config["metadata"]["resourceVersion"].as_str())
        && requested
            != live["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
    {
        return Err(ApiError::conflict(request.resource, request.name));
    }
    if let Some(map) = config["metadata"].as_object_mut() {
        map.remove("resourceVersion");
    }
    let subresource = request.subresource.unwrap_or_default();
    let status_only = subresource == "status";
    let applied = if status_only {
        FieldSet::of_status(&config)
    } else {
        FieldSet::of_object(&config, !request.resource.status)
    };
    let mut entries = live.as_deref().map(entries_of).unwrap_or_default();
    let mut merged = live.as_deref().cloned().unwrap_or_else(|| {
        json!({"apiVersion": config["apiVersion"], "kind": config["kind"], "metadata": {"name": request.name}})
    });
    if let Some(live) = &live {
        take_conflicts(
            &mut entries,
            &applied,
            live,
            &config,
            request.manager,
            force,
        )?;
        remove_dropped(
            &mut merged,
            &entries,
            &applied,
            request.manager,
            subresource,
        );
    }
    if status_only {
        let status = json!({"status": config.get("status").cloned().unwrap_or(json!({}))});
        fields::merge_applied(&mut merged, &status, "");
    } else {
        fields::merge_applied(&mut merged, &config, "");
    }
    record_applied(request, &mut entries, applied);
    commit(
        store,
        request,
        live.as_ref(),
        merged,
        Ownership::Applied(entries),
    )
}

/// Refuse an apply without a field manager, apiVersion or kind, or with managedFields.
fn check_apply_config(request: &Request, config: &Value) -> Result<(), ApiError> {
    if request.manager.is_empty() {
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            "fieldManager",
            "FieldValueRequired",
            "Required value: is required for apply patch",
        ));
    }
    let (api_version, kind) = (
        config["apiVersion"].as_str().unwrap_or_default(),
        config["kind"].as_str().unwrap_or_default(),
    );
    if api_version.is_empty() || kind.is_empty() {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        return Err(ApiError::bad_request(format!(
            "invalid object type: {group}/{version}, Kind={kind}"
        )));
    }
    if config["metadata"].get("managedFields").is_some() {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    Ok(())
}

/// Refuse changes to fields other managers own unless forced; forced, take the fields from them.
fn take_conflicts(
    entries: &mut [Entry],
    applied: &FieldSet,
    live: &Value,
    config: &Value,
    manager: &str,
    force: bool,
) -> Result<(), ApiError> {
    let conflicts = conflicts(entries, applied, live, config, manager);
    if !conflicts.is_empty() && !force {
        let described: Vec<(String, String)> = conflicts
            .iter()
            .map(|(index, path)| (entries[*index].describe(), fields::display(path)))
            .collect();
        return Err(ApiError::apply_conflicts(&described));
    }
    for (index, path) in &conflicts {
        entries[*index].fields.remove(path);
    }
    Ok(())
}

/// Make the applier's entry own `applied`, keeping its time if it owned exactly that already.
fn record_applied(request: &Request, entries: &mut Vec<Entry>, applied: FieldSet) {
    let subresource = request.subresource.unwrap_or_default();
    let own = entries
        .iter()
        .position(|e| e.same_owner(request.manager, "Apply", subresource));
    let time = match own {
        Some(index) if *entries[index].fields.set() == applied => entries[index].time.clone(),
        _ => now(),
    };
    let entry = Entry::new(request, "Apply", time, applied);
    match own {
        Some(index) => entries[index] = entry,
        None => entries.push(entry),
    }
}

/// `(entry index, path)` of every field the config sets to a new value that
/// another manager owns.
fn conflicts(
    entries: &[Entry],
    applied: &FieldSet,
    live: &Value,
    config: &Value,
    manager: &str,
) -> Vec<(usize, Path)> {
    let mut found = Vec::new();
    for path in applied.paths() {
        let wanted = fields::get(config, &path);
        if wanted.is_none_or(|v| v.is_object() && !v.as_object().is_some_and(Map::is_empty)) {
            continue;
        }
        if fields::get(live, &path) == wanted {
            continue;
        }
        for (index, entry) in entries.iter().enumerate() {
            let mine = entry.manager == manager && entry.operation == "Apply";
            if !mine && entry.fields.owns(&path) {
                found.push((index, path.clone()));
            }
        }
    }
    found
}

/// Fields this manager applied before and omits now are removed, unless
/// another manager owns them.
fn remove_dropped(
    object: &mut Value,
    entries: &[Entry],
    applied: &FieldSet,
    manager: &str,
    subresource: &str,
) {
    let Some(previous) = entries
        .iter()
        .find(|e| e.same_owner(manager, "Apply", subresource))
    else {
        return;
    };
    let dropped: Vec<Path> = previous
        .fields
        .paths()
        .into_iter()
        .filter(|path| !applied.touches(path))
        .collect();
    let shared = |path: &[String]| {
        entries
            .iter()
            .any(|e| !e.same_owner(manager, "Apply", subresource) && e.fields.touches(path))
    };
    for path in fields::remove_all(object, &dropped, shared) {
        prune_empty_parents(object, &path, entries);
    }
}

/// After a removal, parents left as empty maps or lists that nobody owns
/// go too (a list whose last item was dropped is removed, as on a real
/// server).
fn prune_empty_parents(object: &mut Value, path: &[String], entries: &[Entry]) {
    let mut parent = path.to_vec();
    while parent.len() > 1 {
        parent.pop();
        let empty = fields::get(object, &parent).is_some_and(|value| match value {
            Value::Object(map) => map.is_empty(),
            Value::Array(items) => items.is_empty(),
            _ => false,
        });
        let owned = entries.iter().any(|e| e.fields.owns(&parent));
        if !empty || owned {
            break;
        }
        fields::remove(object, &parent);
    }
}

/// Options of a DELETE.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

pub fn delete(
    store: &mut Store,
    request: &Request,
    options: &DeleteOptions,
) -> Result<(u16, Arc<Value>), ApiError> {
    let resource = request.resource;
    let live = live(store, request)?;
    let metadata = &live["metadata"];
    if options
        .uid
        .as_deref()
        .is_some_and(|uid| Some(uid) != metadata["uid"].as_str())
    {
        return Err(ApiError::uid_precondition(
            resource,
            request.name,
            options.uid.as_deref().unwrap_or_default(),
            metadata["uid"].as_str().unwrap_or_default(),
        ));
    }
    if options
        .resource_version
        .as_deref()
        .is_some_and(|rv| Some(rv) != metadata["resourceVersion"].as_str())
    {
        return Err(ApiError::conflict(resource, request.name));
    }
    if !metadata["deletionTimestamp"].is_null() {
        return Ok((200, live));
    }
    if resource.kind == "Namespace"
        && matches!(request.name, "default" | "kube-system" | "kube-public")
    {
        return Err(ApiError::forbidden(format!(
            "namespaces \"{}\" is forbidden: this namespace may not be deleted",
            request.name
        )));
    }
    let mut finalizers: Vec<Value> = metadata["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match options.propagation.as_deref() {
        Some("Foreground") => finalizers.push(json!("foregroundDeletion")),
        Some("Orphan") => finalizers.push(json!("orphan")),
        _ => {}
    }
    let deferred = !finalizers.is_empty() || resource.kind == "Namespace";
    if deferred {
        let marked = marked_for_deletion(resource, &live, finalizers);
        if request.dry_run {
            return Ok((200, Arc::new(marked)));
        }
        let stored = store.put(&resource.key(), marked, Action::Modified);
        return Ok((200, stored));
    }
    if request.dry_run {
        return Ok((
            200,
            Arc::new(success(resource, request.name, metadata["uid"].as_str())),
        ));
    }
    let answer = if matches!(resource.kind.as_str(), "Pod" | "Service") {
        None
    } else {
        Some(success(resource, request.name, metadata["uid"].as_str()))
    };
    // The store marks the removed object with the deletion's
    // resourceVersion: held only by the store, it is not copied for that.
    drop(live);
    let removed = store.remove(&resource.key(), request.namespace, request.name);
    match (answer, removed) {
        (Some(status), _) => Ok((200, Arc::new(status))),
        (None, Some(removed)) => Ok((200, removed)),
        (None, None) => Err(ApiError::not_found(resource, request.name)),
    }
}

/// An object whose deletion waits (finalizers, a namespace emptying):
/// marked with its deletion timestamp, its finalizers, a new generation
/// and, for a namespace, `Terminating`.
fn marked_for_deletion(resource: &ResourceType, live: &Value, finalizers: Vec<Value>) -> Value {
    let mut marked = Value::clone(live);
    marked["metadata"]["deletionTimestamp"] = json!(now());
    marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    if !finalizers.is_empty() {
        marked["metadata"]["finalizers"] = Value::Array(finalizers);
    }
    if has_generation(resource) {
        marked["metadata"]["generation"] =
            json!(live["metadata"]["generation"].as_u64().unwrap_or(1) + 1);
    }
    if resource.kind == "Namespace" {
        marked["status"]["phase"] = json!("Terminating");
    }
    marked
}

fn success(resource: &ResourceType, name: &str, uid: Option<&str>) -> Value {
    let mut details = json!({"name": name, "kind": resource.plural, "uid": uid});
    if !resource.group.is_empty() {
        details["group"] = json!(resource.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}
