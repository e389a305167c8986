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
use stack_kube::object::ObjectKey;
use stack_kube::revision::{HISTORY_LABEL, Revision};

/// How many requests are in flight at once.
const PARALLEL: usize = 16;

/// Revisions by release id, oldest first. Shared: a plan points at the
/// ones it needs instead of copying their objects.
pub type History = HashMap<String, Vec<Arc<Revision>>>;

/// What is in the cluster, for the kinds and namespaces a plan touches.
#[derive(Debug, Default, Clone)]
pub struct LiveState {
    pub objects: HashMap<ObjectKey, LiveObject>,
    /// `(apiVersion, kind)` the cluster does not serve (yet).
    pub unserved: BTreeSet<(String, String)>,
    pub namespaces: BTreeSet<String>,
    /// Revisions by release id, oldest first.
    pub revisions: History,
    /// API requests made to build this state.
    pub requests: usize,
}

/// A live object as the server sent it: its JSON text, parsed when a plan
/// reads it. Tens of thousands of objects held as `serde_json::Value` took
/// about three times the memory of their text, and a plan reads each once.
#[derive(Debug, Clone)]
pub struct LiveObject {
    json: Box<serde_json::value::RawValue>,
    /// The list's `apiVersion` and `kind`, which a real API server leaves
    /// out of the items of a list of built-in kinds.
    api_version: Arc<str>,
    kind: Arc<str>,
    /// Its `stack.dev/release` label.
    pub release: Option<String>,
    /// The helm release that owns it (`namespace/name`, from helm's
    /// `meta.helm.sh/release-*` annotations).
    pub helm: Option<String>,
}

impl LiveObject {
    /// The object as a plan compares it: with its `apiVersion` and `kind`,
    /// without what only its status subresource writes (see `comparable`).
    pub fn value(&self) -> Value {
        comparable(self.whole())
    }

    /// The whole object, status included (readiness reads it).
    pub fn whole(&self) -> Value {
        // Read as kube reads a list's items, so that metadata comes out in
        // one order (labels sorted) whatever order the server kept.
        let object = serde_json::from_str::<kube::api::DynamicObject>(self.json.get())
            .and_then(serde_json::to_value)
            .unwrap_or_default();
        with_type(object, &self.api_version, &self.kind)
    }

    /// A live object from a whole one.
    ///
    /// # Panics
    /// Never: a JSON value always serialises.
    pub fn new(object: &Value) -> Self {
        let text = |field: &Value| Arc::from(field.as_str().unwrap_or_default());
        Self {
            json: serde_json::value::to_raw_value(object).expect("a JSON value serialises"),
            api_version: text(&object["apiVersion"]),
            kind: text(&object["kind"]),
            release: object["metadata"]["labels"][stack_kube::object::RELEASE_LABEL]
                .as_str()
                .map(str::to_string),
            helm: <HelmOwner as serde::Deserialize>::deserialize(
                &object["metadata"]["annotations"],
            )
            .ok()
            .and_then(HelmOwner::release),
        }
    }

    /// The object's `apiVersion`.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }
}

/// What [`fetch`] reads of each item to index it: where it is, and its
/// release label; the rest stays text.
#[derive(serde::Deserialize)]
struct Identity {
    metadata: IdentityMetadata,
}

#[derive(serde::Deserialize)]
struct IdentityMetadata {
    #[serde(default)]
    name: String,
    namespace: Option<String>,
    #[serde(default)]
    labels: HashMap<String, String>,
    #[serde(default)]
    annotations: HelmOwner,
}

/// helm's ownership annotations (the others are not read).
#[derive(serde::Deserialize, Default)]
struct HelmOwner {
    #[serde(rename = "meta.helm.sh/release-name")]
    name: Option<String>,
    #[serde(rename = "meta.helm.sh/release-namespace")]
    namespace: Option<String>,
}

impl HelmOwner {
    fn release(self) -> Option<String> {
        Some(format!(
            "{}/{}",
            self.namespace.unwrap_or_default(),
            self.name?
        ))
    }
}

#[derive(serde::Deserialize)]
struct RawList {
    #[serde(default)]
    items: Vec<Box<serde_json::value::RawValue>>,
}

/// The key of a live object.
pub fn key_of(object: &Value) -> ObjectKey {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    ObjectKey {
        group: stack_kube::kinds::group_of(api_version).to_string(),
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
    let secrets = super::apis::all_secrets(client);
    let namespaces = super::apis::namespaces(client);
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
pub(crate) fn scope_of(object: &Value) -> Scope {
    (
        object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        object["kind"].as_str().unwrap_or_default().to_string(),
        object["metadata"]["namespace"].as_str().map(str::to_string),
    )
}

/// The objects of a fetch, its unserved kinds and the requests it made.
pub(crate) type Fetched<T> = (HashMap<ObjectKey, T>, BTreeSet<(String, String)>, usize);

/// An API to LIST, with the `apiVersion` and `kind` it serves.
type List = (Api<kube::api::DynamicObject>, String, String);

/// The APIs of the scopes the cluster serves, and the kinds it does not.
fn apis(
    client: &kube::Client,
    resources: &Resources,
    scopes: BTreeSet<Scope>,
) -> (Vec<List>, BTreeSet<(String, String)>) {
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
    (lists, unserved)
}

/// LIST each `(apiVersion, kind, namespace)` once (`None` namespace lists
/// cluster-scoped kinds, or all namespaces), keeping each object as text
/// with what indexes it.
pub async fn fetch(
    client: &kube::Client,
    resources: &Resources,
    scopes: BTreeSet<Scope>,
) -> Result<Fetched<LiveObject>, kube::Error> {
    let (lists, unserved) = apis(client, resources, scopes);
    let requests = lists.len();
    let results: Vec<Vec<(ObjectKey, LiveObject)>> = futures::stream::iter(lists)
        .map(|(api, api_version, kind)| async move {
            let list: RawList = retry(|| async {
                let request = kube::core::Request::new(api.resource_url())
                    .list(&ListParams::default())
                    .map_err(kube::Error::BuildRequest)?;
                client.request::<RawList>(request).await
            })
            .await?;
            let group = stack_kube::kinds::group_of(&api_version).to_string();
            let (api_version, kind): (Arc<str>, Arc<str>) = (api_version.into(), kind.into());
            Ok::<_, kube::Error>(
                list.items
                    .into_iter()
                    .filter_map(|json| {
                        let identity: Identity = serde_json::from_str(json.get()).ok()?;
                        let mut metadata = identity.metadata;
                        let key = ObjectKey {
                            group: group.clone(),
                            kind: kind.to_string(),
                            namespace: metadata.namespace,
                            name: metadata.name,
                        };
                        let release = metadata.labels.remove(stack_kube::object::RELEASE_LABEL);
                        let object = LiveObject {
                            json,
                            api_version: Arc::clone(&api_version),
                            kind: Arc::clone(&kind),
                            release,
                            helm: metadata.annotations.release(),
                        };
                        Some((key, object))
                    })
                    .collect(),
            )
        })
        .buffer_unordered(PARALLEL)
        .try_collect()
        .await?;
    let objects = results.into_iter().flatten().collect();
    Ok((objects, unserved, requests))
}

/// Whole objects (readiness reads their status) of each scope, limited to
/// what a label selector picks.
pub async fn fetch_selected(
    client: &kube::Client,
    resources: &Resources,
    scopes: BTreeSet<Scope>,
    selector: Option<&str>,
) -> Result<Fetched<Value>, kube::Error> {
    let (lists, unserved) = apis(client, resources, scopes);
    let requests = lists.len();
    let results: Vec<Vec<Value>> = futures::stream::iter(lists)
        .map(|(api, api_version, kind)| async move {
            let params = match selector {
                Some(selector) => ListParams::default().labels(selector),
                None => ListParams::default(),
            };
            let list = retry(|| api.list(&params)).await?;
            Ok::<_, kube::Error>(
                list.items
                    .into_iter()
                    .map(|item| {
                        with_type(
                            serde_json::to_value(item).unwrap_or_default(),
                            &api_version,
                            &kind,
                        )
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
