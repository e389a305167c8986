//! Waiting for objects (product.md §6), judged by the rules of `readiness`:
//! each object is followed through the run's shared watches (`feeds`, no
//! polling) until it is ready, fails, or the timeout passes; a workload's
//! pods are watched for failures waiting will not fix.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use kube::api::{Api, DynamicObject, WatchEvent, WatchParams};
use serde_json::Value;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;

use super::error::NotReady;
use super::feeds::{Change, Feed};
use super::readiness::{Readiness, generation_observed};
use crate::cluster::apply::Applied;

/// A Job that its TTL controller removes once it finished: gone counts as done.
pub(crate) fn may_vanish(object: &Value) -> bool {
    object["kind"] == "Job" && !object["spec"]["ttlSecondsAfterFinished"].is_null()
}

/// What [`until_ready`] waits for: an object in a feed, newer than what was
/// applied.
pub(crate) struct Watched {
    pub feed: Arc<Feed>,
    pub name: String,
    /// Set when this run applied the object: an older state does not count.
    pub applied: Option<Applied>,
    /// When the wait began: absent from a state listed after it means gone.
    pub since: Instant,
    /// A Job its TTL controller removes once it finished: gone counts as done.
    pub vanishes: bool,
}

/// What [`until_ready`] watches besides the object: the pods of a workload
/// (those whose labels include `labels`), and the ReplicaSets that tell a
/// Deployment's current pods from old ones.
///
/// Pods are looked at once the workload has waited `after`: a rollout that
/// is done by then never reads its namespace's pods (a watch of every pod in
/// a busy namespace), and a pod takes longer than that to show a failure
/// waiting will not fix (kubelet backs off 10 s before the first restart of
/// a crashing container).
pub(crate) struct Pods<'a> {
    /// Opens the namespace's pod feed (taken when it is opened).
    pub opener: Option<Box<dyn FnOnce() -> Arc<Feed> + Send + Sync + 'a>>,
    pub after: Duration,
    pub labels: serde_json::Map<String, Value>,
    pub replica_sets: Api<DynamicObject>,
}

/// What a wait knows of a workload's pods: once their feed is open, its
/// changes from then on, and the pods failing.
#[derive(Default)]
struct PodWatch {
    changes: Option<broadcast::Receiver<Change>>,
    feed: Option<Arc<Feed>>,
    failing: BTreeMap<String, Arc<Value>>,
}

/// How long a workload waits before its pods are looked at.
pub(crate) const PODS_AFTER: Duration = Duration::from_secs(2);

impl Pods<'_> {
    /// Open the pod feed, unless it is open already.
    fn open(&mut self) -> Option<PodWatch> {
        let feed = self.opener.take()?();
        let (subscription, failing) = feed.subscribe(|state| self.all_failing(state));
        Some(PodWatch {
            changes: Some(subscription.changes),
            feed: Some(feed),
            failing,
        })
    }

    fn selects(&self, pod: &Value) -> bool {
        let labels = &pod["metadata"]["labels"];
        self.labels.iter().all(|(key, value)| &labels[key] == value)
    }

    /// Whether `pod` fails in a way waiting will not fix.
    fn failing(&self, pod: &Value, deleted: bool) -> bool {
        !deleted
            && self.selects(pod)
            && pod["metadata"]["deletionTimestamp"].is_null()
            && super::diagnose::pod_failure(pod).is_some()
    }

    fn all_failing(&self, pods: &HashMap<String, Arc<Value>>) -> BTreeMap<String, Arc<Value>> {
        pods.iter()
            .filter(|(_, pod)| self.failing(pod, false))
            .map(|(name, pod)| (name.clone(), Arc::clone(pod)))
            .collect()
    }
}

/// What the next change told a waiter.
/// What a wait has learnt of its object so far.
#[derive(Default)]
struct Learnt {
    /// The object was there (so its absence now means it went).
    seen: bool,
    /// The progress last reported.
    last: String,
    /// Its newest state.
    latest: Option<Arc<Value>>,
}

impl Watched {
    /// Judge the object's newest state (`current`, if a change brought
    /// one): `Some` ends the wait.
    fn judge(
        &self,
        current: Option<(Arc<Value>, bool)>,
        listed: Option<Instant>,
        rule: fn(&Value) -> Option<Readiness>,
        learnt: &mut Learnt,
        progress: &impl Fn(&str),
    ) -> Option<Result<(), NotReady>> {
        match current {
            Some((object, deleted)) if self.applied.as_ref().is_none_or(|a| a.admits(&object)) => {
                learnt.seen = true;
                match (rule(&object), deleted) {
                    (None | Some(Readiness::Ready), _) => return Some(Ok(())),
                    (Some(Readiness::Failed(reason)), _) => {
                        return Some(Err(NotReady::Failed(reason)));
                    }
                    (Some(Readiness::Waiting(_)), true) if may_vanish(&object) => {
                        return Some(Ok(()));
                    }
                    (Some(Readiness::Waiting(_)), true) => return Some(Err(NotReady::Deleted)),
                    (Some(Readiness::Waiting(text)), false) => {
                        if text != learnt.last {
                            progress(&text);
                            learnt.last = text;
                        }
                    }
                }
                learnt.latest = Some(object);
                None
            }
            // Not there, or an older object of that name: gone if it was
            // seen, or if the feed listed after the wait began without it.
            _ if learnt.seen || listed.is_some_and(|listed| listed >= self.since) => {
                if self.feed.read(|state| state.contains_key(&self.name)) {
                    // A newer state is on its way.
                    None
                } else if self.vanishes {
                    Some(Ok(()))
                } else {
                    Some(Err(NotReady::Deleted))
                }
            }
            _ => None,
        }
    }
}

impl PodWatch {
    /// Follow a change of the pods: `Next::Pods` when the failing ones changed.
    fn take(&mut self, change: Result<Change, RecvError>, pods: &Pods<'_>) -> Next {
        match change {
            Ok(Change::Object {
                name: pod,
                object,
                deleted,
            }) => {
                let was = self.failing.contains_key(&pod);
                if pods.failing(&object, deleted) {
                    self.failing.insert(pod, object);
                    Next::Pods
                } else if was {
                    self.failing.remove(&pod);
                    Next::Pods
                } else {
                    Next::Nothing
                }
            }
            Ok(Change::Resync) | Err(RecvError::Lagged(_)) => {
                self.failing = self
                    .feed
                    .as_ref()
                    .map(|feed| feed.read(|state| pods.all_failing(state)))
                    .unwrap_or_default();
                Next::Pods
            }
            Err(RecvError::Closed) => Next::Nothing,
        }
    }
}

enum Next {
    /// The object's state changed (`None`: read it from the feed again).
    Object(Option<(Arc<Value>, bool)>),
    /// The failing pods changed.
    Pods,
    /// Nothing that concerns this waiter.
    Nothing,
}

/// Wait for one object until it is ready (Ok) or fails (Err with the reason),
/// judged by `rule`; with `pods`, a pod of the current rollout that fails
/// in a way waiting will not fix (a crash loop, an image that cannot be
/// pulled) fails it at once. Reports progress through `progress`.
pub(crate) async fn until_ready(
    watched: Watched,
    rule: fn(&Value) -> Option<Readiness>,
    mut pods: Option<Pods<'_>>,
    progress: impl Fn(&str) + Send,
) -> Result<(), NotReady> {
    let name = watched.name.clone();
    let (mut objects, mut current) = watched
        .feed
        .subscribe(|state| state.get(&name).map(|o| (Arc::clone(o), false)));
    let grace = tokio::time::sleep(pods.as_ref().map_or(Duration::ZERO, |p| p.after));
    futures::pin_mut!(grace);
    let mut watch = pods
        .as_mut()
        .filter(|p| p.after.is_zero())
        .and_then(Pods::open)
        .unwrap_or_default();
    let (mut learnt, mut judge) = (Learnt::default(), true);
    loop {
        if judge
            && let Some(end) =
                watched.judge(current.take(), objects.listed, rule, &mut learnt, &progress)
        {
            return end;
        }
        let latest = &learnt.latest;
        if let (Some(object), Some(pods)) = (latest, &pods)
            && judge
            && generation_observed(object)
        {
            for (pod_name, pod) in &watch.failing {
                if of_current_rollout(object, pod, &pods.replica_sets).await {
                    return Err(NotReady::Pod {
                        pod: pod_name.clone(),
                        failure: super::diagnose::pod_failure(pod).unwrap_or_default(),
                    });
                }
            }
        }
        let next = tokio::select! {
            change = objects.changes.recv() => match change {
                Ok(Change::Object { name: changed, object, deleted }) if changed == name => {
                    Next::Object(Some((object, deleted)))
                }
                Ok(Change::Object { .. }) => Next::Nothing,
                Ok(Change::Resync) | Err(RecvError::Lagged(_)) => Next::Object(None),
                Err(RecvError::Closed) => return Err(NotReady::WatchEnded),
            },
            () = &mut grace, if pods.as_ref().is_some_and(|p| p.opener.is_some()) => match pods.as_mut().and_then(Pods::open) {
                Some(opened) => {
                    watch = opened;
                    Next::Pods
                }
                None => Next::Nothing,
            },
            change = next_pod(&mut watch.changes) => match &pods {
                Some(pods) => watch.take(change, pods),
                None => Next::Nothing,
            },
        };
        judge = true;
        match next {
            Next::Object(Some(change)) => current = Some(change),
            Next::Object(None) => {
                objects.listed = watched.feed.listed();
                current = watched
                    .feed
                    .read(|state| state.get(&name).map(|o| (Arc::clone(o), false)));
            }
            Next::Pods => current = learnt.latest.clone().map(|o| (o, false)),
            Next::Nothing => judge = false,
        }
    }
}

/// Changes of the pods feed, or never when there is none.
async fn next_pod(changes: &mut Option<broadcast::Receiver<Change>>) -> Result<Change, RecvError> {
    match changes {
        Some(changes) => changes.recv().await,
        None => std::future::pending().await,
    }
}

/// Whether a pod belongs to a workload's current rollout rather than to one
/// that is being replaced.
async fn of_current_rollout(
    object: &Value,
    pod: &Value,
    replica_sets: &Api<DynamicObject>,
) -> bool {
    const REVISION: &str = "deployment.kubernetes.io/revision";
    match object["kind"].as_str() {
        Some("Deployment") => {
            let Some(current) = object["metadata"]["annotations"][REVISION].as_str() else {
                return true;
            };
            let Some(owner) = pod["metadata"]["ownerReferences"][0]["name"].as_str() else {
                return true;
            };
            let owner = super::super::cluster::retry::retry(|| replica_sets.get_opt(owner)).await;
            let deployment = object["metadata"]["name"].as_str();
            match owner {
                Ok(Some(rs)) => {
                    let ours = rs.metadata.owner_references.as_ref().is_some_and(|refs| {
                        refs.iter()
                            .any(|r| r.kind == "Deployment" && Some(r.name.as_str()) == deployment)
                    });
                    let revision = rs
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(REVISION));
                    ours && revision.is_none_or(|revision| revision == current)
                }
                _ => false,
            }
        }
        Some("StatefulSet") => {
            let update = object["status"]["updateRevision"].as_str();
            let of_pod = pod["metadata"]["labels"]["controller-revision-hash"].as_str();
            update.is_none() || update == of_pod
        }
        _ => true,
    }
}

/// Watch one object until it is gone.
pub async fn until_gone(api: Api<DynamicObject>, name: String) {
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(290);
    loop {
        let Ok(Some(object)) = super::super::cluster::retry::retry(|| api.get_opt(&name)).await
        else {
            return;
        };
        let version = object.metadata.resource_version.unwrap_or_default();
        let Ok(stream) = super::super::cluster::retry::retry(|| api.watch(&params, &version)).await
        else {
            return;
        };
        let mut stream = stream.boxed();
        while let Ok(Some(event)) = stream.try_next().await {
            if matches!(event, WatchEvent::Deleted(_)) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::readiness::readiness;
    use serde_json::json;
    use std::sync::atomic::{AtomicBool, Ordering};

    use std::task::Poll;

    fn deployment(uid: &str, generation: i64, observed: i64, available: u64) -> Value {
        json!({"kind": "Deployment", "metadata": {"name": "web", "uid": uid, "generation": generation},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"observedGeneration": observed, "replicas": 2, "updatedReplicas": 2,
                "availableReplicas": available}})
    }

    fn watched(feed: &Arc<Feed>, applied: Option<Applied>, vanishes: bool) -> Watched {
        Watched {
            feed: Arc::clone(feed),
            name: "web".into(),
            applied,
            since: Instant::now(),
            vanishes,
        }
    }

    /// A wait for `web` in `feed` by the readiness rules, without pods.
    fn waiting_for(
        feed: &Arc<Feed>,
        applied: Option<Applied>,
        vanishes: bool,
    ) -> impl Future<Output = Result<(), NotReady>> {
        until_ready(watched(feed, applied, vanishes), readiness, None, |_| {})
    }

    fn applied(uid: &str, generation: i64) -> Option<Applied> {
        Some(Applied {
            uid: Some(uid.into()),
            generation: Some(generation),
        })
    }

    #[tokio::test]
    async fn an_older_state_in_the_feed_is_not_taken_for_the_applied_one() {
        let feed = Feed::detached();
        // The feed still holds generation 1, ready: the apply made generation 2.
        feed.change(deployment("u1", 1, 1, 2), false);
        let waiting = waiting_for(&feed, applied("u1", 2), false);
        futures::pin_mut!(waiting);
        assert!(futures::poll!(&mut waiting).is_pending());
        // The same name with another uid is another object.
        feed.change(deployment("u0", 2, 2, 2), false);
        assert!(futures::poll!(&mut waiting).is_pending());
        feed.change(deployment("u1", 2, 2, 1), false);
        assert!(futures::poll!(&mut waiting).is_pending());
        feed.change(deployment("u1", 2, 2, 2), false);
        assert_eq!(futures::poll!(&mut waiting), Poll::Ready(Ok(())));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_without_pods_sleeps_past_the_pod_grace() {
        let feed = Feed::detached();
        feed.change(deployment("u1", 1, 1, 0), false);
        let waiting = waiting_for(&feed, applied("u1", 1), false);
        futures::pin_mut!(waiting);
        assert!(futures::poll!(&mut waiting).is_pending());
        // A spent grace timer must not wake the waiter again and again: this
        // poll would never return.
        tokio::time::advance(PODS_AFTER * 2).await;
        assert!(futures::poll!(&mut waiting).is_pending());
        assert!(futures::poll!(&mut waiting).is_pending());
        feed.change(deployment("u1", 1, 1, 2), false);
        assert_eq!(futures::poll!(&mut waiting), Poll::Ready(Ok(())));
    }

    #[tokio::test]
    async fn an_object_deleted_while_waited_for_fails_unless_it_may_vanish() {
        let feed = Feed::detached();
        feed.change(deployment("u1", 1, 1, 0), false);
        let waiting = waiting_for(&feed, applied("u1", 1), false);
        futures::pin_mut!(waiting);
        assert!(futures::poll!(&mut waiting).is_pending());
        feed.change(deployment("u1", 1, 1, 0), true);
        assert_eq!(
            futures::poll!(&mut waiting),
            Poll::Ready(Err(NotReady::Deleted))
        );

        // A TTL Job listed after the wait began and not there: it finished and went.
        let feed = Feed::detached();
        let job = waiting_for(&feed, applied("j1", 1), true);
        futures::pin_mut!(job);
        assert!(futures::poll!(&mut job).is_pending());
        feed.replace(HashMap::new(), Instant::now());
        assert_eq!(futures::poll!(&mut job), Poll::Ready(Ok(())));
    }

    /// A StatefulSet waiting for its one pod of revision `web-2`.
    fn waiting_set() -> Arc<Feed> {
        let feed = Feed::detached();
        let set = json!({"kind": "StatefulSet", "metadata": {"name": "web", "uid": "s1", "generation": 1},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"observedGeneration": 1, "readyReplicas": 0, "updateRevision": "web-2"}});
        feed.change(set, false);
        feed
    }

    /// The StatefulSet of [`waiting_set`], as applied.
    fn web(feed: &Arc<Feed>) -> Watched {
        watched(feed, applied("s1", 1), false)
    }

    fn crash(name: &str, revision: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {"app": "web", "controller-revision-hash": revision}},
            "status": {"containerStatuses": [{"name": "app", "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}})
    }

    /// The pods of `app=web` in `pods`, looked at after `after`; `opened`
    /// is set when they are.
    fn web_pods(pods: &Arc<Feed>, after: Duration, opened: &Arc<AtomicBool>) -> Pods<'static> {
        let client = kube::Client::try_from(kube::Config::new(
            "http://127.0.0.1:9".parse().expect("url"),
        ))
        .expect("client");
        let (pods, opened) = (Arc::clone(pods), Arc::clone(opened));
        Pods {
            opener: Some(Box::new(move || {
                opened.store(true, Ordering::SeqCst);
                pods
            })),
            after,
            labels: json!({"app": "web"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            replica_sets: Api::namespaced_with(
                client,
                "default",
                &kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::ReplicaSet>(&()),
            ),
        }
    }

    #[tokio::test]
    async fn a_crash_looping_pod_of_the_current_rollout_fails_the_wait() {
        let feed = waiting_set();
        let pods = Feed::detached();
        let watch_pods = web_pods(&pods, Duration::ZERO, &Arc::default());
        let waiting = until_ready(web(&feed), readiness, Some(watch_pods), |_| {});
        futures::pin_mut!(waiting);
        assert!(futures::poll!(&mut waiting).is_pending());
        // A pod of the rollout being replaced, and one of another workload: not ours to judge.
        pods.change(crash("web-0", "web-1"), false);
        let mut other = crash("api-0", "web-2");
        other["metadata"]["labels"]["app"] = json!("api");
        pods.change(other, false);
        assert!(futures::poll!(&mut waiting).is_pending());
        pods.change(crash("web-0", "web-2"), false);
        let Poll::Ready(Err(reason)) = futures::poll!(&mut waiting) else {
            panic!("the crash loop did not fail the wait");
        };
        assert!(
            reason
                .to_string()
                .starts_with("pod web-0: container app: CrashLoopBackOff"),
            "{reason}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pods_are_looked_at_once_the_workload_has_waited_a_while() {
        let feed = waiting_set();
        let pods = Feed::detached();
        pods.change(crash("web-0", "web-2"), false);
        let opened = Arc::new(AtomicBool::new(false));
        let watch_pods = web_pods(&pods, Duration::from_secs(2), &opened);
        let waiting = until_ready(web(&feed), readiness, Some(watch_pods), |_| {});
        futures::pin_mut!(waiting);
        assert!(futures::poll!(&mut waiting).is_pending());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(futures::poll!(&mut waiting).is_pending());
        assert!(!opened.load(Ordering::SeqCst), "pods looked at too early");
        tokio::time::advance(Duration::from_secs(1)).await;
        let Poll::Ready(Err(reason)) = futures::poll!(&mut waiting) else {
            panic!("the crash loop did not fail the wait once pods were looked at");
        };
        assert!(opened.load(Ordering::SeqCst));
        assert!(
            matches!(&reason, NotReady::Pod { pod, .. } if pod == "web-0"),
            "{reason}"
        );
    }
}
