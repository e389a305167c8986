//! The simulator's objects, its resourceVersion counter, the recent history
//! that watches resume from, and the journal that persists every write.
//!
//! Persistence is an append-only journal of whole objects, one JSON line per
//! write. The lines of what was written under one hold of the store's lock
//! go out in a single `write` call, before watchers or the client hear of
//! them (`flush`): a process killed at any instant leaves at most a torn
//! last line, which loading ignores, so every object is found in its old or
//! its new version. A damaged line anywhere else is refused, never dropped:
//! loading stops with an error naming the line. The journal is compacted —
//! rewritten as one line per live object, into a new file renamed over the
//! old — on open, and whenever it holds more than twice as many lines as
//! there are live objects.
//!
//! Objects are shared (`Arc`): the map, the watch history and every writer
//! hold the same value, so a write copies an object only where it changes it.
//! An event's JSON is serialised once, for the journal and every watcher;
//! the history keeps that, not the objects' old versions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::resources::{Registry, from_crd};
use crate::selectors::selectable;

/// How many events watches can resume from.
const HISTORY: usize = 20_000;

/// Lines a journal may hold beyond twice the live objects before it is
/// compacted: small stores are not rewritten for a handful of writes.
const COMPACTION_SLACK: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Added,
    Modified,
    Deleted,
}

/// One change, as watches see it. It keeps the object as JSON and what
/// selectors read of it, not the object: a history of old versions as
/// values would hold ten times the memory, and the server would spend its
/// time in page faults growing it. A deletion keeps the removed object
/// (no longer stored anywhere else) and serialises it only when a watcher
/// reads it: a destroy nobody watches costs no serialisation.
#[derive(Debug, Clone)]
pub struct Event {
    pub revision: u64,
    pub action: Action,
    /// The resource type's key (`apps/deployments`).
    pub resource: String,
    pub id: ObjectId,
    /// `selectors::selectable` of the object.
    pub selectable: Value,
    /// The object, serialised once for the journal and every watcher.
    json: std::sync::OnceLock<Bytes>,
    /// A removed object, until a watcher asks for its JSON.
    removed: Option<Arc<Value>>,
    /// When it was stored.
    pub at: std::time::Instant,
}

impl Event {
    /// The object as JSON.
    pub fn json(&self) -> &Bytes {
        self.json.get_or_init(|| {
            Bytes::from(
                serde_json::to_vec(self.removed.as_deref().unwrap_or(&Value::Null))
                    .unwrap_or_default(),
            )
        })
    }
}

/// The fields of a journal line before its object.
#[derive(serde::Serialize)]
struct Record<'a> {
    rv: u64,
    op: &'a str,
    resource: &'a str,
    namespace: &'a str,
    name: &'a str,
}

impl Record<'_> {
    /// `{"rv":…,"op":…,"resource":…,"namespace":…,"name":…,"object":…}` and
    /// a newline, around an object already serialised.
    fn write_line(&self, object: &[u8], line: &mut Vec<u8>) {
        line.reserve(object.len() + 160);
        let _ = serde_json::to_writer(&mut *line, self);
        line.pop(); // the closing brace
        line.extend_from_slice(b",\"object\":");
        line.extend_from_slice(object);
        line.extend_from_slice(b"}\n");
    }
}

pub type ObjectId = (String, String);

pub struct Store {
    pub registry: Registry,
    objects: HashMap<String, BTreeMap<ObjectId, Arc<Value>>>,
    /// `(resource, namespace, name)` of the objects whose ownerReferences
    /// name a uid, by that uid: controllers find a workload's pods here.
    dependents: HashMap<String, BTreeSet<(String, ObjectId)>>,
    /// The uids of the objects stored: an owner is gone when its uid is not.
    uids: HashSet<String>,
    /// Uids of the objects removed since the garbage collector last looked.
    removed: Vec<String>,
    /// Objects being deleted that wait for a `foregroundDeletion` or
    /// `orphan` finalizer to be processed.
    finalizing: BTreeSet<(String, ObjectId)>,
    /// The objects carrying each label, by `(resource, key, value)`: a LIST
    /// with an equality selector reads these, not the whole namespace.
    labelled: HashMap<(String, String, String), BTreeSet<ObjectId>>,
    pub revision: u64,
    history: VecDeque<Arc<Event>>,
    journal: Option<Journal>,
    /// Objects written to the journal file (its `put` lines; a deletion's
    /// line holds no object and is not counted), and those waiting in
    /// `unflushed`.
    journal_lines: usize,
    /// The most objects stored at once since the journal was last compacted.
    peak_live: usize,
    unflushed_lines: usize,
    pub events: broadcast::Sender<Arc<Event>>,
    /// Journal lines and events of the writes not yet flushed.
    unflushed: Vec<u8>,
    unpublished: Vec<Arc<Event>>,
    /// The object stored last and its JSON: a write's response is that.
    last: Option<(Arc<Value>, Bytes)>,
}

impl Store {
    /// An empty store, or the state persisted in `dir`.
    pub fn open(dir: Option<&Path>) -> std::io::Result<Self> {
        let (events, _) = broadcast::channel(8192);
        let mut store = Self {
            registry: Registry::default(),
            objects: HashMap::new(),
            dependents: HashMap::new(),
            uids: HashSet::new(),
            removed: Vec::new(),
            finalizing: BTreeSet::new(),
            labelled: HashMap::new(),
            revision: 1,
            history: VecDeque::new(),
            journal: None,
            journal_lines: 0,
            peak_live: 0,
            unflushed_lines: 0,
            events,
            unflushed: Vec::new(),
            unpublished: Vec::new(),
            last: None,
        };
        if let Some(dir) = dir {
            fs_err::create_dir_all(dir)?;
            let path = dir.join("journal");
            let (mut lines, torn) = store.replay(&path)?;
            // Rewritten only when it holds much more than the live state, or
            // ends in a torn line (which a new line must not follow).
            if torn || lines > 2 * store.live_objects() + COMPACTION_SLACK {
                store.compact(&path)?;
                lines = store.live_objects();
            }
            store.index_dependents();
            store.journal = Some(Journal::open(&path)?);
            store.journal_lines = lines;
            store.peak_live = store.live_objects();
        }
        store.register_crds();
        Ok(store)
    }

    /// Load the journal: the lines it holds, and whether its last is torn.
    fn replay(&mut self, path: &Path) -> std::io::Result<(usize, bool)> {
        if !path.exists() {
            return Ok((0, false));
        }
        let text = fs_err::read(path)?;
        let lines: Vec<&[u8]> = text.split(|byte| *byte == b'\n').collect();
        let last = lines.len().saturating_sub(1);
        let (mut count, mut torn) = (0, false);
        for (number, line) in lines.into_iter().enumerate() {
            if line.is_empty() {
                continue;
            }
            count += 1;
            // A torn last line (the process was killed mid-write) does not
            // parse; it is the only line allowed not to.
            let mut record = match serde_json::from_slice::<Value>(line) {
                Ok(record) => record,
                Err(_) if number == last => {
                    torn = true;
                    continue;
                }
                Err(error) => return Err(damaged(path, number + 1, &error.to_string())),
            };
            let (Some(revision), Some(resource)) =
                (record["rv"].as_u64(), record["resource"].as_str())
            else {
                return Err(damaged(path, number + 1, "no `rv` or `resource`"));
            };
            let id = (
                record["namespace"].as_str().unwrap_or_default().to_string(),
                record["name"].as_str().unwrap_or_default().to_string(),
            );
            let objects = self.objects.entry(resource.to_string()).or_default();
            if record["op"] == "delete" {
                objects.remove(&id);
            } else {
                objects.insert(id, Arc::new(record["object"].take()));
            }
            self.revision = self.revision.max(revision);
        }
        Ok((count, torn))
    }

    /// Objects stored, of every type.
    fn live_objects(&self) -> usize {
        self.objects.values().map(BTreeMap::len).sum()
    }

    /// Rewrite the journal as one line per live object (atomically).
    fn compact(&self, path: &Path) -> std::io::Result<()> {
        let temporary = path.with_extension("compacting");
        let mut buffer = Vec::new();
        for (resource, objects) in &self.objects {
            for ((namespace, name), object) in objects {
                let record = Record {
                    rv: self.revision,
                    op: "put",
                    resource,
                    namespace,
                    name,
                };
                record.write_line(&serde_json::to_vec(&**object)?, &mut buffer);
            }
        }
        fs_err::write(&temporary, &buffer)?;
        fs_err::rename(&temporary, path)
    }

    /// Index every object (after loading).
    fn index_dependents(&mut self) {
        let objects = std::mem::take(&mut self.objects);
        for (resource, stored) in &objects {
            for (id, object) in stored {
                self.reindex(resource, id, None, Some(object));
            }
        }
        self.objects = objects;
    }

    /// Keep the indexes right when `old` becomes `new` (either absent): the
    /// owners' dependents, the uids stored, the objects finalizing.
    fn reindex(&mut self, resource: &str, id: &ObjectId, old: Option<&Value>, new: Option<&Value>) {
        let key = || (resource.to_string(), id.clone());
        for uid in old.into_iter().flat_map(owner_uids) {
            if let Some(set) = self.dependents.get_mut(uid) {
                set.remove(&key());
                if set.is_empty() {
                    self.dependents.remove(uid);
                }
            }
        }
        for uid in new.into_iter().flat_map(owner_uids) {
            self.dependents
                .entry(uid.to_string())
                .or_default()
                .insert(key());
        }
        let new_uid = new.and_then(|n| n["metadata"]["uid"].as_str());
        if let Some(uid) = old.and_then(|o| o["metadata"]["uid"].as_str())
            && new_uid != Some(uid)
        {
            self.uids.remove(uid);
            self.removed.push(uid.to_string());
        }
        if let Some(uid) = new_uid
            && !self.uids.contains(uid)
        {
            self.uids.insert(uid.to_string());
        }
        let labels = |object: Option<&Value>| -> Vec<(String, String)> {
            object
                .and_then(|o| o["metadata"]["labels"].as_object())
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        };
        let (before, after) = (labels(old), labels(new));
        for (label, value) in before.iter().filter(|l| !after.contains(l)) {
            let index = (resource.to_string(), label.clone(), value.clone());
            if let Some(set) = self.labelled.get_mut(&index) {
                set.remove(id);
                if set.is_empty() {
                    self.labelled.remove(&index);
                }
            }
        }
        for (label, value) in after.into_iter().filter(|l| !before.contains(l)) {
            self.labelled
                .entry((resource.to_string(), label, value))
                .or_default()
                .insert(id.clone());
        }
        if new.is_some_and(is_finalizing) {
            self.finalizing.insert(key());
        } else if old.is_some_and(is_finalizing) {
            self.finalizing.remove(&key());
        }
    }

    /// Whether an object with this uid is stored.
    pub fn exists(&self, uid: &str) -> bool {
        self.uids.contains(uid)
    }

    /// The uids of the objects removed since the last call.
    pub fn take_removed(&mut self) -> Vec<String> {
        std::mem::take(&mut self.removed)
    }

    /// Every object whose ownerReferences name `owner_uid`: `(type, id)`.
    pub fn dependents_of(&self, owner_uid: &str) -> Vec<(String, ObjectId)> {
        self.dependents
            .get(owner_uid)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The objects waiting for a `foregroundDeletion` or `orphan` finalizer.
    pub fn finalizing(&self) -> Vec<(String, ObjectId)> {
        self.finalizing.iter().cloned().collect()
    }

    /// Objects of a type in a namespace whose ownerReferences name
    /// `owner_uid`, in name order.
    pub fn dependents<'a>(
        &'a self,
        resource: &'a str,
        namespace: &'a str,
        owner_uid: &str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.dependents
            .get(owner_uid)
            .into_iter()
            .flatten()
            .filter(move |(key, (ns, _))| key == resource && ns == namespace)
            .filter_map(|(key, (ns, name))| self.get(key, ns, name))
    }

    /// Serve the kinds of every established CRD.
    pub fn register_crds(&mut self) {
        let crds: Vec<Value> = self
            .list("apiextensions.k8s.io/customresourcedefinitions", None)
            .cloned()
            .collect();
        for crd in crds {
            let established = crd["status"]["conditions"]
                .as_array()
                .is_some_and(|conditions| {
                    conditions
                        .iter()
                        .any(|c| c["type"] == "Established" && c["status"] == "True")
                });
            if established {
                let name = crd["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                self.registry.set_custom(&name, from_crd(&crd));
            }
        }
    }

    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<&Value> {
        self.get_shared(resource, namespace, name).map(Arc::as_ref)
    }

    /// The stored object itself, to keep without copying it.
    pub fn get_shared(&self, resource: &str, namespace: &str, name: &str) -> Option<&Arc<Value>> {
        self.objects
            .get(resource)?
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// Objects of a type, in namespace then name order (all namespaces if `None`).
    pub fn list<'a>(
        &'a self,
        resource: &str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        // Ids sort by namespace first: one namespace is one range of the map.
        let start = (namespace.unwrap_or_default().to_string(), String::new());
        self.objects
            .get(resource)
            .into_iter()
            .flat_map(move |objects| objects.range(start.clone()..))
            .take_while(move |((ns, _), _)| namespace.is_none_or(|wanted| ns == wanted))
            .map(|(_, object)| object.as_ref())
    }

    /// The objects of a type (in one namespace, or all) that carry the label
    /// `key=value`, in the order of [`Store::list`].
    pub fn list_labelled<'a>(
        &'a self,
        resource: &str,
        namespace: Option<&'a str>,
        key: &str,
        value: &str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        let start = (namespace.unwrap_or_default().to_string(), String::new());
        let objects = self.objects.get(resource);
        self.labelled
            .get(&(resource.to_string(), key.to_string(), value.to_string()))
            .into_iter()
            .flat_map(move |ids| ids.range(start.clone()..))
            .take_while(move |(ns, _)| namespace.is_none_or(|wanted| ns == wanted))
            .filter_map(move |id| objects?.get(id).map(AsRef::as_ref))
    }

    /// Number of objects of a type.
    pub fn count(&self, resource: &str) -> usize {
        self.objects.get(resource).map_or(0, BTreeMap::len)
    }

    /// Store an object at a new resourceVersion and tell watchers.
    pub fn put(&mut self, resource: &str, mut object: Value, action: Action) -> Arc<Value> {
        self.revision += 1;
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert(
                "resourceVersion".into(),
                Value::String(self.revision.to_string()),
            );
        }
        let id = object_id(&object);
        let object = Arc::new(object);
        let old = self
            .objects
            .entry(resource.to_string())
            .or_default()
            .insert(id.clone(), Arc::clone(&object));
        self.reindex(resource, &id, old.as_deref(), Some(&object));
        let json = Bytes::from(serde_json::to_vec(&*object).unwrap_or_default());
        self.persist("put", resource, &id, &json);
        self.last = Some((Arc::clone(&object), json.clone()));
        let event = self.event(action, resource, id, &object, Some(json));
        self.publish(event);
        object
    }

    /// An object as JSON: the stored copy's, when it is the one stored last.
    pub fn json_of(&self, object: &Arc<Value>) -> Bytes {
        match &self.last {
            Some((last, json)) if Arc::ptr_eq(last, object) => json.clone(),
            _ => Bytes::from(serde_json::to_vec(&**object).unwrap_or_default()),
        }
    }

    /// Remove an object; watchers get its last state at a new resourceVersion.
    pub fn remove(&mut self, resource: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let id = (namespace.to_string(), name.to_string());
        let mut object = self.objects.get_mut(resource)?.remove(&id)?;
        self.revision += 1;
        if let Some(metadata) = Arc::make_mut(&mut object)
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
        {
            metadata.insert(
                "resourceVersion".into(),
                Value::String(self.revision.to_string()),
            );
        }
        self.reindex(resource, &id, Some(&object), None);
        self.persist("delete", resource, &id, b"null");
        let event = self.event(Action::Deleted, resource, id, &object, None);
        self.publish(event);
        Some(object)
    }

    /// A change for watchers: a write's `json` as the journal has it, or a
    /// removed object to serialise when a watcher reads it.
    fn event(
        &self,
        action: Action,
        resource: &str,
        id: ObjectId,
        object: &Arc<Value>,
        json: Option<Bytes>,
    ) -> Arc<Event> {
        let removed = json.is_none().then(|| Arc::clone(object));
        Arc::new(Event {
            revision: self.revision,
            action,
            resource: resource.to_string(),
            id,
            selectable: selectable(object),
            json: json.map(std::sync::OnceLock::from).unwrap_or_default(),
            removed,
            at: std::time::Instant::now(),
        })
    }

    /// Keep an event for watches to resume from; watchers hear of it at
    /// the next `flush`, after the journal has it.
    fn publish(&mut self, event: Arc<Event>) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(Arc::clone(&event));
        self.unpublished.push(event);
    }

    fn persist(&mut self, op: &str, resource: &str, id: &ObjectId, object: &[u8]) {
        if self.journal.is_some() {
            let record = Record {
                rv: self.revision,
                op,
                resource,
                namespace: &id.0,
                name: &id.1,
            };
            record.write_line(object, &mut self.unflushed);
            self.unflushed_lines += usize::from(op == "put");
        }
    }

    /// Write the journal lines of the writes since the last flush in one
    /// call, then tell watchers of them.
    pub fn flush(&mut self) {
        if let Some(journal) = &mut self.journal
            && !self.unflushed.is_empty()
        {
            journal.append(&self.unflushed);
            self.journal_lines += self.unflushed_lines;
        }
        self.unflushed.clear();
        self.unflushed_lines = 0;
        // Twice the most objects stored since the last compaction: a store
        // being emptied (a destroy) is not rewritten as it shrinks, its
        // deletions hold no object; the next start compacts what it left.
        self.peak_live = self.peak_live.max(self.live_objects());
        if self.journal_lines > 2 * self.peak_live + COMPACTION_SLACK {
            self.compact_journal();
        }
        for event in self.unpublished.drain(..) {
            let _ = self.events.send(event);
        }
    }

    /// Rewrite the journal as it stands; on failure keep appending to the
    /// old one, which still holds everything.
    fn compact_journal(&mut self) {
        let Some(path) = self.journal.as_ref().map(|j| j.path.clone()) else {
            return;
        };
        let compacted = self.compact(&path).and_then(|()| Journal::open(&path));
        match compacted {
            Ok(journal) => {
                self.journal = Some(journal);
                self.journal_lines = self.live_objects();
                self.peak_live = self.journal_lines;
            }
            Err(error) => {
                eprintln!("simulator: cannot compact {}: {error}", path.display());
                // Try again only once the journal has doubled once more.
                self.journal_lines = self.live_objects();
            }
        }
    }

    /// Events after `revision`, if the history still reaches back that far.
    pub fn since(&self, revision: u64) -> Option<Vec<Arc<Event>>> {
        let oldest = self.history.front().map_or(self.revision, |e| e.revision);
        if revision + 1 < oldest && revision < self.revision {
            return None;
        }
        Some(
            self.history
                .iter()
                .filter(|e| e.revision > revision)
                .cloned()
                .collect(),
        )
    }
}

/// `(namespace, name)` of an object.
pub fn object_id(object: &Value) -> ObjectId {
    let metadata = &object["metadata"];
    (
        metadata["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        metadata["name"].as_str().unwrap_or_default().to_string(),
    )
}

/// The owner uids an object's ownerReferences name.
/// A journal line that does not parse before its last line: the file was
/// damaged, and loading on without the line would lose an object for good.
fn damaged(path: &Path, line: usize, reason: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "{}:{line}: a damaged journal line ({reason}); the simulated cluster was not loaded, \
             so nothing of it is lost — repair or remove that line, or move the journal aside to start empty",
            path.display()
        ),
    )
}

/// Deleted, and waiting for the garbage collector's finalizers.
fn is_finalizing(object: &Value) -> bool {
    !object["metadata"]["deletionTimestamp"].is_null()
        && object["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "foregroundDeletion" || f == "orphan"))
}

/// The uids an object's ownerReferences name.
pub fn owner_uids(object: &Value) -> impl Iterator<Item = &str> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|reference| reference["uid"].as_str())
}

struct Journal {
    file: std::fs::File,
    path: PathBuf,
}

impl Journal {
    fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Whole lines, one `write` call.
    fn append(&mut self, line: &[u8]) {
        if let Err(error) = self.file.write_all(line) {
            eprintln!("simulator: cannot write {}: {error}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config_map(name: &str, version: usize) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "a"}, "data": {"v": version.to_string()}})
    }

    fn lines(dir: &Path) -> usize {
        std::fs::read(dir.join("journal"))
            .expect("read the journal")
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count()
    }

    #[test]
    fn the_label_index_follows_every_write_and_removal() {
        let mut store = Store::open(None).expect("open");
        let labelled = |name: &str, namespace: &str, team: &str| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": namespace, "labels": {"team": team}}})
        };
        store.put("configmaps", labelled("one", "a", "red"), Action::Added);
        store.put("configmaps", labelled("two", "a", "red"), Action::Added);
        store.put("configmaps", labelled("three", "b", "red"), Action::Added);
        store.put("configmaps", labelled("two", "a", "blue"), Action::Modified);
        store.remove("configmaps", "a", "one");
        let names = |namespace: Option<&str>, team: &str| -> Vec<String> {
            store
                .list_labelled("configmaps", namespace, "team", team)
                .map(|o| object_id(o).1)
                .collect()
        };
        assert_eq!(names(None, "red"), ["three"]);
        assert_eq!(names(Some("a"), "red"), Vec::<String>::new());
        assert_eq!(names(Some("a"), "blue"), ["two"]);
        assert_eq!(names(None, "green"), Vec::<String>::new());
    }

    #[test]
    fn a_deletion_event_carries_the_removed_object_at_the_deletions_resource_version() {
        let mut store = Store::open(None).expect("open");
        let mut watcher = store.events.subscribe();
        store.put("configmaps", config_map("gone", 1), Action::Added);
        let before = store.revision;
        let removed = store.remove("configmaps", "a", "gone").expect("removed");
        store.flush();
        let decode = |event: &Event| -> Value {
            serde_json::from_slice(event.json()).expect("the event's JSON")
        };
        let added = watcher.try_recv().expect("the creation");
        assert_eq!(added.action, Action::Added);
        let deleted = watcher.try_recv().expect("the deletion");
        assert_eq!(deleted.action, Action::Deleted);
        let json = decode(&deleted);
        assert_eq!(json["metadata"]["name"], "gone");
        assert_eq!(json["data"]["v"], "1");
        assert_eq!(
            json["metadata"]["resourceVersion"],
            (before + 1).to_string()
        );
        assert_eq!(json, *removed);
        // A watch resuming from the history reads the same.
        let history = store.since(before).expect("in the history");
        assert_eq!(decode(&history[0]), json);
    }

    #[test]
    fn a_store_being_emptied_is_compacted_once_not_at_every_step() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut store = Store::open(Some(dir.path())).expect("open");
        let objects = 3 * COMPACTION_SLACK;
        for index in 0..objects {
            store.put(
                "configmaps",
                config_map(&format!("cm{index}"), 0),
                Action::Added,
            );
        }
        store.flush();
        let inode = || {
            std::fs::metadata(dir.path().join("journal"))
                .expect("journal")
                .ino()
        };
        let mut rewrites = 0;
        let mut last = inode();
        for index in 0..objects {
            store.remove("configmaps", "a", &format!("cm{index}"));
            store.flush();
            if inode() != last {
                rewrites += 1;
                last = inode();
            }
        }
        assert!(rewrites <= 1, "{rewrites} compactions while emptying");
        assert!(lines(dir.path()) <= 2 * objects, "{}", lines(dir.path()));
        drop(store);
        let reopened = Store::open(Some(dir.path())).expect("reopen");
        assert_eq!(reopened.live_objects(), 0);
    }

    #[test]
    fn the_journal_is_compacted_once_it_holds_twice_the_live_state() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut store = Store::open(Some(dir.path())).expect("open");
        let writes = 2 * COMPACTION_SLACK;
        for version in 0..writes {
            let name = format!("cm{}", version % 10);
            store.put("configmaps", config_map(&name, version), Action::Modified);
            store.flush();
        }
        // Ten live objects; without compaction the journal would hold every write.
        assert!(
            lines(dir.path()) < COMPACTION_SLACK,
            "{}",
            lines(dir.path())
        );
        drop(store);
        let reopened = Store::open(Some(dir.path())).expect("reopen");
        for index in 0..10 {
            let last = (0..writes)
                .rev()
                .find(|v| v % 10 == index)
                .expect("a write");
            let object = reopened
                .get("configmaps", "a", &format!("cm{index}"))
                .expect("kept");
            assert_eq!(object["data"]["v"], last.to_string());
        }
    }

    #[test]
    fn a_compaction_cut_short_loses_nothing() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut store = Store::open(Some(dir.path())).expect("open");
        store.put("configmaps", config_map("kept", 1), Action::Added);
        store.flush();
        drop(store);
        // A kill -9 in the middle of a compaction leaves a partial new file
        // beside the journal; the rename had not happened.
        std::fs::write(
            dir.path().join("journal.compacting"),
            b"{\"rv\":1,\"op\":\"pu",
        )
        .expect("write");
        let reopened = Store::open(Some(dir.path())).expect("reopen");
        assert!(reopened.get("configmaps", "a", "kept").is_some());
    }

    #[test]
    fn a_damaged_line_before_the_last_is_refused_not_dropped() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut store = Store::open(Some(dir.path())).expect("open");
        store.put("configmaps", config_map("one", 1), Action::Added);
        store.put("configmaps", config_map("two", 1), Action::Added);
        store.flush();
        drop(store);
        let path = dir.path().join("journal");
        let text = std::fs::read_to_string(&path).expect("read");
        let damaged = text.replacen("{\"rv\"", "{\"rv\"#", 1);
        std::fs::write(&path, &damaged).expect("write");
        let Err(error) = Store::open(Some(dir.path())) else {
            panic!("a damaged journal was loaded");
        };
        assert!(
            error
                .to_string()
                .contains("journal:1: a damaged journal line"),
            "{error}"
        );
        // The journal is left as it was, for the user to repair.
        assert_eq!(std::fs::read_to_string(&path).expect("read"), damaged);
    }

    #[test]
    fn a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut store = Store::open(Some(dir.path())).expect("open");
        store.put("configmaps", config_map("one", 1), Action::Added);
        store.flush();
        drop(store);
        let path = dir.path().join("journal");
        let mut text = std::fs::read(&path).expect("read");
        text.extend_from_slice(b"{\"rv\":9,\"op\":\"put\",\"reso");
        std::fs::write(&path, text).expect("write");
        let mut reopened = Store::open(Some(dir.path())).expect("reopen");
        assert!(reopened.get("configmaps", "a", "one").is_some());
        // What is written next does not follow the torn line.
        reopened.put("configmaps", config_map("two", 1), Action::Added);
        reopened.flush();
        drop(reopened);
        let again = Store::open(Some(dir.path())).expect("reopen after a write");
        assert!(again.get("configmaps", "a", "two").is_some());
    }
}
