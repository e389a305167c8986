//! Shared watches for what a run waits on: one LIST and one WATCH per kind
//! and namespace for the whole run, not a watch per object. Each feed keeps
//! the latest state of its objects, which waiters read, and tells them what
//! changed, so a thousand Deployments waited for in ten namespaces cost ten
//! watches (and ten more for their pods), each event decoded once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::TryStreamExt as _;
use kube::api::{ListParams, WatchEvent, WatchParams};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::time::Instant;

/// How many changes a waiter may fall behind before it rereads the state.
const BACKLOG: usize = 4096;
/// How long a WATCH request stays open before it is renewed.
const WATCH_SECONDS: u32 = 290;

/// One change in a feed.
#[derive(Debug, Clone)]
pub enum Change {
    /// An object as it is now, or as it was when it was deleted.
    Object {
        name: String,
        object: Arc<Value>,
        deleted: bool,
    },
    /// The feed listed its objects again: read the whole state.
    Resync,
}

#[derive(Default)]
struct State {
    objects: HashMap<String, Arc<Value>>,
    /// When the LIST the state was built from was sent; `None` before it answered.
    listed: Option<Instant>,
}

/// The objects of one kind in one namespace (or cluster-wide), kept current.
pub struct Feed {
    state: Mutex<State>,
    changes: broadcast::Sender<Change>,
}

/// A waiter's view of a feed: what it holds now and what changes after.
pub(crate) struct Subscription {
    pub changes: broadcast::Receiver<Change>,
    /// The LIST behind the state was sent at this instant (`None`: not yet answered).
    pub listed: Option<Instant>,
}

impl Feed {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Subscribe, then read through `read` the state the changes start from:
    /// under one lock, so no change falls between the two.
    pub(crate) fn subscribe<T>(
        &self,
        read: impl FnOnce(&HashMap<String, Arc<Value>>) -> T,
    ) -> (Subscription, T) {
        let state = self.state();
        let changes = self.changes.subscribe();
        let value = read(&state.objects);
        (
            Subscription {
                changes,
                listed: state.listed,
            },
            value,
        )
    }

    /// Read the current state.
    pub fn read<T>(&self, read: impl FnOnce(&HashMap<String, Arc<Value>>) -> T) -> T {
        read(&self.state().objects)
    }

    /// When the LIST behind the current state was sent.
    pub fn listed(&self) -> Option<Instant> {
        self.state().listed
    }

    /// A feed no watch keeps current: changes come from `replace` and `change`.
    pub(super) fn detached() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            changes: broadcast::channel(BACKLOG).0,
        })
    }

    pub(super) fn replace(&self, objects: HashMap<String, Arc<Value>>, listed: Instant) {
        let mut state = self.state();
        state.objects = objects;
        state.listed = Some(listed);
        let _ = self.changes.send(Change::Resync);
    }

    pub(super) fn change(&self, object: Value, deleted: bool) {
        let name = name_of(&object);
        let object = Arc::new(object);
        let mut state = self.state();
        if deleted {
            state.objects.remove(&name);
        } else {
            state.objects.insert(name.clone(), Arc::clone(&object));
        }
        let _ = self.changes.send(Change::Object {
            name,
            object,
            deleted,
        });
    }
}

fn name_of(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// What a feed watches: a collection's URL (`/apis/apps/v1/namespaces/web/deployments`),
/// its kind, and a label selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    pub url: String,
    pub api_version: String,
    pub kind: String,
    pub labels: Option<String>,
}

/// The feeds of a run, started on first use and stopped with it.
#[derive(Default)]
pub struct Feeds {
    feeds: Mutex<HashMap<Source, Arc<Feed>>>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Feeds {
    /// The feed of `source`, started now unless it runs already.
    pub fn of(&self, client: &kube::Client, source: Source) -> Arc<Feed> {
        let mut feeds = self.feeds.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(feed) = feeds.get(&source) {
            return Arc::clone(feed);
        }
        let feed = Feed::detached();
        let task = tokio::spawn(follow(client.clone(), source.clone(), Arc::clone(&feed)));
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task.abort_handle());
        feeds.insert(source, Arc::clone(&feed));
        feed
    }
}

impl Drop for Feeds {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().unwrap_or_else(PoisonError::into_inner) {
            task.abort();
        }
    }
}

/// A LIST's answer, decoded no further than a feed needs.
#[derive(serde::Deserialize)]
struct List {
    metadata: ListMeta,
    items: Vec<Slim>,
}

/// The fields of `spec` the readiness rules (`wait`) read; feeds keep no
/// others.
pub(crate) const SPEC_FIELDS: [&str; 4] = [
    "replicas",
    "updateStrategy",
    "type",
    "ttlSecondsAfterFinished",
];

/// An object as a feed keeps it: what readiness reads. `metadata` without
/// `managedFields` (often half of an object's bytes), `status`, and of
/// `spec` only the fields the rules look at ([`SPEC_FIELDS`]): a pod's
/// containers or a Deployment's pod template are skipped while decoding,
/// not built and dropped.
#[derive(Debug, Clone)]
struct Slim(Value);

impl<'de> serde::Deserialize<'de> for Slim {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(Fields::Object).map(Slim)
    }
}

/// Which part of an object a map is, and so which of its entries are kept.
#[derive(Clone, Copy)]
enum Fields {
    Object,
    Metadata,
    Spec,
}

impl Fields {
    fn keeps(self, key: &str) -> bool {
        match self {
            Self::Object => true,
            Self::Metadata => key != "managedFields",
            Self::Spec => SPEC_FIELDS.contains(&key),
        }
    }
}

impl<'de> serde::de::Visitor<'de> for Fields {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a Kubernetes object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if !self.keeps(&key) {
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            }
            let part = match (self, key.as_str()) {
                (Self::Object, "metadata") => Some(Self::Metadata),
                (Self::Object, "spec") => Some(Self::Spec),
                _ => None,
            };
            let value = match part {
                Some(part) => map.next_value_seed(part)?,
                None => map.next_value()?,
            };
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Fields {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListMeta {
    resource_version: String,
}

/// Keep `feed` current: LIST, then WATCH from the list's resourceVersion,
/// renewing the watch where it ended and listing again when the server no
/// longer has that version (410). Errors back off and retry; the task ends
/// when the run aborts it.
async fn follow(client: kube::Client, source: Source, feed: Arc<Feed>) {
    let request = kube::core::Request::new(&source.url);
    let mut version: Option<String> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        let current = match version.take() {
            Some(version) => version,
            None => match list(&client, &request, &source).await {
                Ok((objects, version, listed)) => {
                    feed.replace(objects, listed);
                    version
                }
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            },
        };
        match watch(&client, &request, &source, &feed, current).await {
            Ok(next) => {
                backoff = Duration::from_millis(50);
                version = next;
            }
            Err(next) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                version = next;
            }
        }
    }
}

type Listed = (HashMap<String, Arc<Value>>, String, Instant);

async fn list(
    client: &kube::Client,
    request: &kube::core::Request,
    source: &Source,
) -> Result<Listed, kube::Error> {
    let mut params = ListParams::default();
    if let Some(labels) = &source.labels {
        params = params.labels(labels);
    }
    let sent = Instant::now();
    let http = request.list(&params).map_err(kube::Error::BuildRequest)?;
    let answer: List = client.request(http).await?;
    let objects = answer
        .items
        .into_iter()
        .map(|Slim(mut object)| {
            // LIST items carry no kind; readiness rules are chosen by it.
            object["kind"] = Value::String(source.kind.clone());
            object["apiVersion"] = Value::String(source.api_version.clone());
            (name_of(&object), Arc::new(object))
        })
        .collect();
    Ok((objects, answer.metadata.resource_version, sent))
}

/// One WATCH request until it ends: `Ok` with the version to resume from
/// (`None`: list again), `Err` with the same after a failure.
async fn watch(
    client: &kube::Client,
    request: &kube::core::Request,
    source: &Source,
    feed: &Feed,
    mut version: String,
) -> Result<Option<String>, Option<String>> {
    let mut params = WatchParams::default().timeout(WATCH_SECONDS);
    if let Some(labels) = &source.labels {
        params = params.labels(labels);
    }
    let http = request
        .watch(&params, &version)
        .map_err(|_| Some(version.clone()))?;
    let events = match client.request_events::<Slim>(http).await {
        Ok(events) => events,
        Err(kube::Error::Api(status)) if status.code == 410 => return Ok(None),
        Err(_) => return Err(Some(version)),
    };
    futures::pin_mut!(events);
    loop {
        match events.try_next().await {
            Ok(Some(WatchEvent::Added(Slim(object)) | WatchEvent::Modified(Slim(object)))) => {
                version = resource_version(&object).unwrap_or(version);
                feed.change(object, false);
            }
            Ok(Some(WatchEvent::Deleted(Slim(object)))) => {
                version = resource_version(&object).unwrap_or(version);
                feed.change(object, true);
            }
            Ok(Some(WatchEvent::Bookmark(bookmark))) => {
                version = bookmark.metadata.resource_version;
            }
            Ok(Some(WatchEvent::Error(status))) if status.code == 410 => return Ok(None),
            Ok(Some(WatchEvent::Error(_))) | Err(_) => return Err(Some(version)),
            Ok(None) => return Ok(Some(version)),
        }
    }
}

fn resource_version(object: &Value) -> Option<String> {
    object["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_are_kept_with_what_readiness_reads() {
        let text = r#"{"kind": "Deployment", "metadata": {"name": "web", "uid": "u",
            "managedFields": [{"manager": "kube-controller-manager", "fieldsV1": {"f:status": {}}}],
            "labels": {"app": "web"}}, "spec": {"replicas": 2, "strategy": {"type": "Recreate"},
            "template": {"spec": {"containers": [{"name": "app"}]}}}, "status": {"replicas": 2}}"#;
        let Slim(object) = serde_json::from_str(text).expect("decodes");
        assert_eq!(
            object,
            json!({"kind": "Deployment", "metadata": {"name": "web", "uid": "u", "labels": {"app": "web"}},
                "spec": {"replicas": 2}, "status": {"replicas": 2}})
        );
    }
}
