//! WATCH: newline-delimited events from a resourceVersion, with the
//! streaming-list mode (`sendInitialEvents=true`) that kubectl 1.37 uses for
//! `rollout status`, `wait` and `delete`: initial ADDED events, then a
//! BOOKMARK annotated `k8s.io/initial-events-end`, then changes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc::UnboundedSender;

use crate::request::{Query, Route};
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{Action, Event, ObjectId, Store, object_id};
use crate::{Inner, ResponseBody};

struct Filter {
    resource: String,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    /// A watch's filter: `resource` in `namespace` (all if `None`), with the query's selectors.
    fn new(
        resource: &ResourceType,
        namespace: Option<String>,
        query: &Query,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            resource: resource.key(),
            namespace,
            labels: LabelSelector::parse(query.get("labelSelector").unwrap_or_default())?,
            fields: FieldSelector::parse(
                query.get("fieldSelector").unwrap_or_default(),
                &resource.kind,
            )?,
        })
    }

    fn in_scope(&self, event: &Event) -> bool {
        event.resource == self.resource
            && self.namespace.as_ref().is_none_or(|ns| event.id.0 == *ns)
    }

    fn matches(&self, object: &Value) -> bool {
        self.labels
            .matches(object["metadata"]["labels"].as_object())
            && self.fields.matches(object)
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    line_of(kind, &serde_json::to_vec(object).unwrap_or_default())
}

/// `{"type":…,"object":…}` and a newline, around an object already
/// serialised (a store event's JSON is shared by all watchers).
fn line_of(kind: &str, object: &[u8]) -> Bytes {
    let mut bytes = Vec::with_capacity(object.len() + kind.len() + 22);
    bytes.extend_from_slice(b"{\"type\":\"");
    bytes.extend_from_slice(kind.as_bytes());
    bytes.extend_from_slice(b"\",\"object\":");
    bytes.extend_from_slice(object);
    bytes.extend_from_slice(b"}\n");
    Bytes::from(bytes)
}

fn bookmark(resource: &ResourceType, revision: u64, initial_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({"kind": resource.kind, "apiVersion": resource.api_version(), "metadata": metadata}),
    )
}

fn expired(revision: u64, current: u64) -> Bytes {
    let status =
        ApiError::expired(format!("too old resource version: {revision} ({current})")).status();
    line("ERROR", &status)
}

/// Start a WATCH of a collection: the first lines now, the changes from a spawned task.
pub fn start(inner: &Arc<Inner>, route: &Route, query: &Query) -> Result<ResponseBody, ApiError> {
    let Route::Collection {
        resource,
        namespace,
    } = route
    else {
        return Err(ApiError::method_not_allowed());
    };
    let send_initial = sends_initial_events(query)?;
    let filter = Filter::new(resource, namespace.clone(), query)?;
    let timeout = Duration::from_secs(
        query
            .get("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .unwrap_or(1800),
    );
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let mut watch = Watch {
        filter,
        matched: HashSet::new(),
        sender,
    };
    let (events, start) = {
        let store = inner.store();
        let subscription = store.events.subscribe();
        let requested: Option<u64> = query
            .get("resourceVersion")
            .and_then(|rv| rv.parse().ok())
            .filter(|rv| *rv > 0);
        if !watch.catch_up(&store, resource, send_initial, requested) {
            drop(watch);
            return Ok(body(receiver));
        }
        (subscription, store.revision)
    };
    tokio::spawn(watch.forward(events, start, timeout));
    Ok(body(receiver))
}

/// Whether a watch starts with initial events; they need `NotOlderThan` and bookmarks.
fn sends_initial_events(query: &Query) -> Result<bool, ApiError> {
    let send_initial = query.flag("sendInitialEvents");
    let bookmarks = query.flag("allowWatchBookmarks");
    if send_initial && (query.get("resourceVersionMatch") != Some("NotOlderThan") || !bookmarks) {
        return Err(ApiError::invalid(
            "ListOptions",
            "meta.k8s.io",
            "",
            "sendInitialEvents",
            "FieldValueForbidden",
            "Forbidden: sendInitialEvents requires resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true",
        ));
    }
    Ok(send_initial)
}

/// One watch: what it selects, which of those objects it reported, and where its lines go.
struct Watch {
    filter: Filter,
    matched: HashSet<ObjectId>,
    sender: UnboundedSender<Bytes>,
}

impl Watch {
    /// Send the first lines: changes since `requested`, or the objects; false if too old.
    fn catch_up(
        &mut self,
        store: &Store,
        resource: &ResourceType,
        send_initial: bool,
        requested: Option<u64>,
    ) -> bool {
        let filter = &self.filter;
        match (send_initial, requested) {
            (false, Some(revision)) => match store.since(revision) {
                Some(history) => {
                    // Objects that match now: changes to them are MODIFIED.
                    for object in store.list(&filter.resource, filter.namespace.as_deref()) {
                        if filter.matches(object) {
                            self.matched.insert(object_id(object));
                        }
                    }
                    for event in history.iter().filter(|e| filter.in_scope(e)) {
                        if let Some(bytes) = translate(filter, event, &mut self.matched) {
                            let _ = self.sender.send(bytes);
                        }
                    }
                }
                None => {
                    let _ = self.sender.send(expired(revision, store.revision));
                    return false;
                }
            },
            _ => {
                for object in store.list(&filter.resource, filter.namespace.as_deref()) {
                    if filter.matches(object) {
                        self.matched.insert(object_id(object));
                        let _ = self.sender.send(line("ADDED", object));
                    }
                }
                if send_initial {
                    let _ = self.sender.send(bookmark(resource, store.revision, true));
                }
            }
        }
        true
    }

    /// Send the changes after `start` until the timeout, the watcher leaving, or missed events.
    async fn forward(
        mut self,
        mut events: broadcast::Receiver<Arc<Event>>,
        start: u64,
        timeout: Duration,
    ) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // A watcher that went away stops costing anything at once.
            let received = tokio::select! {
                received = tokio::time::timeout_at(deadline, events.recv()) => received,
                () = self.sender.closed() => break,
            };
            let event = match received {
                Ok(Ok(event)) => event,
                Ok(Err(RecvError::Lagged(_))) => {
                    let _ = self.sender.send(expired(start, start));
                    break;
                }
                Err(_) | Ok(Err(RecvError::Closed)) => break,
            };
            if event.revision <= start || !self.filter.in_scope(&event) {
                continue;
            }
            if let Some(bytes) = translate(&self.filter, &event, &mut self.matched)
                && self.sender.send(bytes).is_err()
            {
                break;
            }
        }
    }
}

/// An event as this watch reports it: objects entering or leaving the
/// selection are ADDED or DELETED.
fn translate(filter: &Filter, event: &Event, matched: &mut HashSet<ObjectId>) -> Option<Bytes> {
    let id = event.id.clone();
    let was = matched.contains(&id);
    let is = event.action != Action::Deleted && filter.matches(&event.selectable);
    let kind = match (event.action, was, is) {
        (Action::Added, _, true) | (Action::Modified, false, true) => "ADDED",
        (Action::Deleted, _, _) if was || filter.matches(&event.selectable) => "DELETED",
        (Action::Modified, true, true) => "MODIFIED",
        (Action::Modified, true, false) => "DELETED",
        _ => return None,
    };
    if is {
        matched.insert(id);
    } else {
        matched.remove(&id);
    }
    Some(line_of(kind, event.json()))
}

/// How much of a burst of waiting lines goes out in one frame.
const FRAME_BYTES: usize = 256 * 1024;

/// The lines as a streamed body. Lines already waiting when one is sent
/// go in the same frame: a controller pass that changes a hundred objects
/// costs each watcher one socket write, not a hundred.
fn body(mut receiver: tokio::sync::mpsc::UnboundedReceiver<Bytes>) -> ResponseBody {
    let frames = futures::stream::poll_fn(move |context| {
        receiver.poll_recv(context).map(|first| {
            let first = first?;
            let mut frame: Option<BytesMut> = None;
            while frame.as_ref().map_or(first.len(), BytesMut::len) < FRAME_BYTES {
                let Ok(next) = receiver.try_recv() else {
                    break;
                };
                let frame = frame.get_or_insert_with(|| BytesMut::from(&first[..]));
                frame.extend_from_slice(&next);
            }
            Some(frame.map_or(first, BytesMut::freeze))
        })
    })
    .map(|bytes| Ok(Frame::data(bytes)));
    BodyExt::boxed(StreamBody::new(frames))
}
