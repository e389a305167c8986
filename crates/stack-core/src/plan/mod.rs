//! The plan: what applying the selection would change, release by release.
//! Pure data between planning and execution — printable (`stack diff`),
//! serialisable (`-o json`), and what the engine executes.

pub mod diff;
pub mod file;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};

use self::diff::Comparison;
use crate::cluster::live::LiveObject;
use crate::load::release::Release;
use crate::load::render::RenderedRelease;
use stack_kube::object::ObjectKey;
use stack_kube::revision::{Revision, State};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Change {
    pub action: Action,
    pub key: ObjectKey,
    pub api_version: String,
    pub comparison: Comparison,
    /// Fields someone else changed: `(path, manager)`.
    pub drift: Vec<(String, String)>,
    /// Its kind is not served yet; a need (or this release) creates it.
    pub awaits_kind: bool,
    /// It exists without our labels: applying adopts it.
    pub adopts: bool,
    /// The helm release (`namespace/name`) that owns what it adopts.
    pub helm: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Render and apply.
    Apply,
    /// `installed: false`, or gone from the stack: delete what is live.
    Remove,
}

#[derive(Debug, Clone)]
pub struct ReleasePlan {
    /// Index into the project's releases; `None` for a release only the
    /// cluster knows (removed from the stack files).
    pub index: Option<usize>,
    pub id: String,
    pub intent: Intent,
    pub changes: Vec<Change>,
    pub unchanged: usize,
    /// The latest revision in the cluster.
    pub previous: Option<Arc<Revision>>,
    /// The latest deployed revision: what a rollback restores.
    pub deployed: Option<Arc<Revision>>,
    /// The numbers of the revisions kept in the cluster.
    pub kept: Vec<u32>,
    /// `Kind/namespace/name` of every object the release's revisions adopted.
    pub adopted: BTreeSet<String>,
    /// Nothing to write at all: no change and the latest revision is
    /// deployed from these exact values.
    pub up_to_date: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub releases: Vec<ReleasePlan>,
}

impl ReleasePlan {
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |action| self.changes.iter().filter(|c| c.action == action).count();
        (
            count(Action::Create),
            count(Action::Update),
            count(Action::Delete),
        )
    }
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.releases.iter().any(|r| !r.changes.is_empty())
    }

    /// The `stack diff -o json` shape (product.md §5).
    pub fn to_json(&self) -> Value {
        let releases: Vec<Value> = self
            .releases
            .iter()
            .filter(|r| !r.changes.is_empty())
            .map(|release| {
                let changes: Vec<Value> = release
                    .changes
                    .iter()
                    .map(|change| {
                        json!({
                            "action": change.action.as_str(),
                            "apiVersion": change.api_version,
                            "kind": change.key.kind,
                            "namespace": change.key.namespace,
                            "name": change.key.name,
                            "drift": change.drift.iter().map(|(path, manager)| json!({"path": path, "manager": manager})).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                json!({"id": release.id, "changes": changes})
            })
            .collect();
        json!({"releases": releases})
    }
}

/// The live objects of a run, indexed once by the release that owns them
/// (their `stack.dev/release` label), so that planning a release touches
/// only its own objects, never the whole run's.
#[derive(Debug, Default)]
pub struct Owned<'a> {
    by_release: HashMap<&'a str, Vec<(&'a ObjectKey, &'a LiveObject)>>,
}

impl<'a> Owned<'a> {
    pub fn index(live: &'a HashMap<ObjectKey, LiveObject>) -> Self {
        let mut by_release: HashMap<&str, Vec<_>> = HashMap::new();
        for (key, object) in live {
            if let Some(label) = object.release.as_deref() {
                by_release.entry(label).or_default().push((key, object));
            }
        }
        Self { by_release }
    }

    /// The objects labelled with `release_label` (`namespace.name`).
    pub fn of(&self, release_label: &str) -> &[(&'a ObjectKey, &'a LiveObject)] {
        self.by_release
            .get(release_label)
            .map_or(&[], Vec::as_slice)
    }
}

/// Compare one release's render with what is live.
pub(crate) fn plan_release(
    index: usize,
    release: &Release,
    rendered: &RenderedRelease,
    live: &HashMap<ObjectKey, LiveObject>,
    owned: &Owned<'_>,
    unserved: &BTreeSet<(String, String)>,
    history: Option<&Vec<Arc<Revision>>>,
) -> ReleasePlan {
    let label = format!("{}.{}", release.namespace, release.name);
    let mut changes = Vec::new();
    let mut unchanged = 0;
    let mut wanted = BTreeSet::new();
    for object in &rendered.objects {
        let key = object.key();
        wanted.insert(key.clone());
        let awaits_kind = unserved.contains(&(object.api_version.clone(), object.kind.clone()));
        let found = live.get(&key);
        let current = found.map(LiveObject::value);
        let current = current.as_ref();
        let comparison = diff::compare(Some(&object.body), current);
        if comparison == Comparison::Unchanged {
            unchanged += 1;
            continue;
        }
        let adopts = found.is_some_and(|c| c.release.as_deref() != Some(label.as_str()));
        let helm = found.filter(|_| adopts).and_then(|c| c.helm.clone());
        changes.push(Change {
            action: if current.is_some() {
                Action::Update
            } else {
                Action::Create
            },
            key,
            api_version: object.api_version.clone(),
            drift: current
                .map(|c| diff::drift(&object.body, c))
                .unwrap_or_default(),
            comparison,
            awaits_kind,
            adopts,
            helm,
        });
    }
    let mut deletions: Vec<Change> = owned
        .of(&label)
        .iter()
        .filter(|(key, _)| !wanted.contains(*key))
        .map(|(key, object)| deletion(key, object))
        .collect();
    deletions.sort_by(|a, b| a.key.cmp(&b.key));
    changes.extend(deletions);
    let previous = history.and_then(|h| h.last()).cloned();
    let deployed = history.and_then(|h| last_deployed(h)).cloned();
    let up_to_date = changes.is_empty()
        && previous
            .as_ref()
            .is_some_and(|p| p.state == State::Deployed && renders_unchanged(p, rendered));
    ReleasePlan {
        index: Some(index),
        id: release.id.clone(),
        intent: Intent::Apply,
        changes,
        unchanged,
        previous,
        deployed,
        kept: kept(history),
        adopted: history
            .map(|h| stack_kube::revision::adopted_in(h))
            .unwrap_or_default(),
        up_to_date,
    }
}

fn kept(history: Option<&Vec<Arc<Revision>>>) -> Vec<u32> {
    history
        .map(|h| h.iter().map(|r| r.number).collect())
        .unwrap_or_default()
}

/// The newest revision in state `deployed`.
pub fn last_deployed(history: &[Arc<Revision>]) -> Option<&Arc<Revision>> {
    history.iter().rev().find(|r| r.state == State::Deployed)
}

/// Whether `revision` holds exactly the objects and tests rendered now. A
/// release whose render did not change needs no new revision, whatever
/// values moved elsewhere in the environment (environment values reach
/// every release, most of them unused by most releases).
pub(crate) fn renders_unchanged(revision: &Revision, rendered: &RenderedRelease) -> bool {
    objects_unchanged(&revision.objects.parse(), &rendered.objects)
        && objects_unchanged(&revision.tests.parse(), &rendered.tests)
}

/// Whether stored bodies are these objects', in order.
pub(crate) fn objects_unchanged(stored: &[Value], now: &[stack_kube::object::Object]) -> bool {
    stored.len() == now.len() && stored.iter().zip(now).all(|(s, o)| *s == o.body)
}

fn deletion(key: &ObjectKey, object: &LiveObject) -> Change {
    Change {
        action: Action::Delete,
        key: key.clone(),
        api_version: object.api_version().to_string(),
        comparison: diff::compare(None, Some(&object.value())),
        drift: Vec::new(),
        awaits_kind: false,
        adopts: false,
        helm: None,
    }
}

/// A release to remove: every live object it owns goes.
pub fn plan_removal(
    index: Option<usize>,
    id: &str,
    owned: &Owned<'_>,
    history: Option<&Vec<Arc<Revision>>>,
) -> ReleasePlan {
    let label = id.replacen('/', ".", 1);
    let mut changes: Vec<Change> = owned
        .of(&label)
        .iter()
        .map(|(key, object)| deletion(key, object))
        .collect();
    changes.sort_by(|a, b| a.key.cmp(&b.key));
    ReleasePlan {
        index,
        id: id.to_string(),
        intent: Intent::Remove,
        up_to_date: changes.is_empty() && history.is_none_or(Vec::is_empty),
        changes,
        unchanged: 0,
        previous: history.and_then(|h| h.last()).cloned(),
        deployed: history.and_then(|h| last_deployed(h)).cloned(),
        kept: kept(history),
        adopted: history
            .map(|h| stack_kube::revision::adopted_in(h))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use stack_kube::object::RELEASE_LABEL;

    /// 2,000 releases of 10 objects each in 10 namespaces, every object
    /// labelled with its release, plus objects no release owns.
    fn live_state() -> HashMap<ObjectKey, LiveObject> {
        let mut live = HashMap::new();
        for release in 0..2000 {
            let namespace = format!("ns{}", release % 10);
            for object in 0..10 {
                let name = format!("r{release}-{object}");
                let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": namespace,
                        "labels": {RELEASE_LABEL: format!("{namespace}.r{release}")}}});
                live.insert(crate::cluster::live::key_of(&body), LiveObject::new(&body));
            }
        }
        let stray = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "stray", "namespace": "ns0"}});
        live.insert(
            crate::cluster::live::key_of(&stray),
            LiveObject::new(&stray),
        );
        live
    }

    #[test]
    fn every_release_of_two_thousand_sees_exactly_its_own_objects() {
        let live = live_state();
        let owned = Owned::index(&live);
        for release in 0..2000 {
            let namespace = format!("ns{}", release % 10);
            let id = format!("{namespace}/r{release}");
            let removal = plan_removal(None, &id, &owned, None);
            let mut names: Vec<String> =
                removal.changes.iter().map(|c| c.key.name.clone()).collect();
            names.sort();
            let mut expected: Vec<String> = (0..10).map(|o| format!("r{release}-{o}")).collect();
            expected.sort();
            assert_eq!(names, expected, "{id}");
            assert!(
                removal
                    .changes
                    .iter()
                    .all(|c| c.key.namespace.as_deref() == Some(&namespace))
            );
        }
        assert!(owned.of("ns0.nobody").is_empty());
    }
}
