//! Live state for a plan, fetched in bulk: one LIST per kind and namespace
//! (never one GET per object), concurrently and bounded; plus every revision
//! Secret of the cluster in one LIST, and the namespaces in another.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::{StreamExt as _, TryStreamExt as _};
use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::cluster::resources::Resources;
use crate::cluster::retry::retry;
use crate::object::ObjectKey;
use crate::revision::{HISTORY_LABEL, Revision};

/// How many requests are in flight at once.
const PARALLEL: usize = 16;

/// Revisions by release id, oldest first. Shared: a plan points at the
/// ones it needs instead of copying their objects.
pub type History = HashMap<String, Vec<Arc<Revision>>>;

/// What is in the cluster, for the kinds and namespaces a plan touches.
#[derive(Debug, Default, Clone)]
pub struct LiveState {
    pub objects: HashMap<ObjectKey, Value>,
    /// `(apiVersion, kind)` the cluster does not serve (yet).
    pub unserved: BTreeSet<(String, String)>,
    pub namespaces: BTreeSet<String>,
    /// Revisions by release id, oldest first.
    pub revisions: History,
    /// API requests made to build this state.
    pub requests: usize,
}

/// The key of a live object.
pub fn key_of(object: &Value) -> ObjectKey {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    ObjectKey {
        group: crate::kinds::group_of(api_version).to_string(),
        kind: object["kind"].as_str().unwrap_or_default().to_string(),
        namespace: object["metadata"]["namespace"].as_str().map(str::to_string),
        name: object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

/// An object of a list, with the list's `apiVersion` and `kind` where the
/// server left them out.
fn with_type(mut object: Value, api_version: &str, kind: &str) -> Value {
    if let Some(map) = object.as_object_mut() {
        for (field, value) in [("apiVersion", api_version), ("kind", kind)] {
            if !map.get(field).is_some_and(Value::is_string) {
                map.insert(field.into(), Value::String(value.into()));
            }
        }
    }
    object
}

/// An object without what only its status subresource writes: `status`
/// and the managedFields entries of status writes (the object's own
/// fields, and every manager's claim on them, stay for diff and drift).
fn comparable(mut object: Value) -> Value {
    let Some(map) = object.as_object_mut() else {
        return object;
    };
    let entries = map
        .get_mut("metadata")
        .and_then(|m| m.get_mut("managedFields"))
        .and_then(Value::as_array_mut);
    let Some(entries) = entries else {
        return object;
    };
    let before = entries.len();
    entries.retain(|entry| entry["subresource"] != "status");
    if entries.len() < before {
        map.shift_remove("status");
    }
    object
}

/// Every release revision in the cluster, and the namespaces.
pub async fn history(client: &kube::Client) -> Result<(History, BTreeSet<String>), kube::Error> {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::all(client.clone());
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let params = ListParams::default().labels(HISTORY_LABEL);
    let all = ListParams::default();
    let (secrets, namespaces) = futures::try_join!(
        retry(|| secrets.list(&params)),
        retry(|| namespaces.list(&all))
    )?;
    let mut revisions: History = HashMap::new();
    for secret in secrets.items {
        let value = serde_json::to_value(&secret).unwrap_or_default();
        if let Some(revision) = Revision::from_secret(&value) {
            revisions
                .entry(revision.release.clone())
                .or_default()
                .push(Arc::new(revision));
        }
    }
    for list in revisions.values_mut() {
        list.sort_by_key(|r| r.number);
    }
    let namespaces = namespaces
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    Ok((revisions, namespaces))
}

/// A LIST scope: `(apiVersion, kind, namespace)`.
pub type Scope = (String, String, Option<String>);

/// The LIST scope an object is found in.
pub fn scope_of(object: &Value) -> Scope {
    (
        object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        object["kind"].as_str().unwrap_or_default().to_string(),
        object["metadata"]["namespace"].as_str().map(str::to_string),
    )
}

/// What a fetch keeps of each object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The whole object (readiness reads its status).
    Everything,
    /// What a plan compares: no status written through the status
    /// subresource, nor the managedFields entries of those writes — about
    /// a third of a workload's size, read by nothing that plans.
    Comparable,
}

/// The objects of a fetch, its unserved kinds and the requests it made.
pub type Fetched = (HashMap<ObjectKey, Value>, BTreeSet<(String, String)>, usize);

/// LIST each `(apiVersion, kind, namespace)` once; `None` namespace lists
/// cluster-scoped kinds (or all namespaces).
pub async fn fetch(
    client: &kube::Client,
    resources: &Resources,
    scopes: BTreeSet<Scope>,
    keep: Keep,
) -> Result<Fetched, kube::Error> {
    fetch_selected(client, resources, scopes, None, keep).await
}

/// [`fetch`], limited to the objects a label selector picks.
pub async fn fetch_selected(
    client: &kube::Client,
    resources: &Resources,
    scopes: BTreeSet<Scope>,
    selector: Option<&str>,
    keep: Keep,
) -> Result<Fetched, kube::Error> {
    let mut unserved = BTreeSet::new();
    let mut lists = Vec::new();
    for (api_version, kind, namespace) in scopes {
        match resources.api(client, &api_version, &kind, namespace.as_deref()) {
            Some((api, _)) => lists.push((api, api_version, kind)),
            None => {
                unserved.insert((api_version, kind));
            }
        }
    }
    let requests = lists.len();
    let results: Vec<Vec<Value>> = futures::stream::iter(lists)
        .map(|(api, api_version, kind)| async move {
            let params = match selector {
                Some(selector) => ListParams::default().labels(selector),
                None => ListParams::default(),
            };
            let list = retry(|| api.list(&params)).await?;
            // A real API server leaves `apiVersion` and `kind` out of the
            // items of a list of built-in kinds: they are the list's.
            Ok::<_, kube::Error>(
                list.items
                    .into_iter()
                    .map(|item| {
                        let object = with_type(
                            serde_json::to_value(item).unwrap_or_default(),
                            &api_version,
                            &kind,
                        );
                        match keep {
                            Keep::Everything => object,
                            Keep::Comparable => comparable(object),
                        }
                    })
                    .collect(),
            )
        })
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await?;
    let objects = results
        .into_iter()
        .flatten()
        .map(|object| (key_of(&object), object))
        .collect();
    Ok((objects, unserved, requests))
}
