//! Simulated controllers, so that waits behave as on a real cluster
//! (kube-api-subset.md §16): Deployment → ReplicaSet → Pods, StatefulSet,
//! DaemonSet, Job, PVC binding, CRD establishment, namespace termination,
//! LoadBalancer addresses and garbage collection. Status is written through
//! the status subresource, so resourceVersions move and watches see it.
//!
//! Rollouts take `sim.stack.dev/rollout-seconds` simulated seconds (default
//! from the config); `sim.stack.dev/fail` makes them fail on request.

mod objects;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Inner;
use crate::resources::ResourceType;
use crate::status::ApiError;
use tokio::sync::broadcast;

use crate::request::Request;
use crate::store::{Action, Event, Store};
use crate::write::{self, DeleteOptions};
use objects::{
    Progress, Replicas, condition, deployment_status, owner_reference, replica_set,
    replica_set_status, revision_of,
};
use stack_kube::clock::now;

const MANAGER: &str = "kube-controller-manager";
pub const FAIL: &str = "sim.stack.dev/fail";
pub const ROLLOUT_SECONDS: &str = "sim.stack.dev/rollout-seconds";
const NODES: usize = 3;

/// Create the namespaces and nodes every cluster has.
pub fn bootstrap(inner: &Inner) {
    let mut store = inner.store();
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        if store.get("/namespaces", "", name).is_none() {
            create(
                &mut store,
                "/namespaces",
                json!({"metadata": {"name": name}}),
            );
        }
    }
    for index in 1..=NODES {
        let name = format!("sim-node-{index}");
        if store.get("/nodes", "", &name).is_none() {
            create(
                &mut store,
                "/nodes",
                json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}}),
            );
            set_status(
                &mut store,
                "/nodes",
                "",
                &name,
                json!({
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastTransitionTime": now()}],
                    "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
                    "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
                    "addresses": [{"type": "InternalIP", "address": format!("172.18.0.{}", index + 1)}],
                }),
            );
        }
    }
}

pub fn spawn(inner: Arc<Inner>) {
    if let Some(interval) = inner.config.conflict_writer {
        tokio::spawn(conflict_writer(Arc::clone(&inner), interval));
    }
    let mut events = inner.store().events.subscribe();
    tokio::spawn(async move {
        let mut controllers = Controllers {
            resync: true,
            ..Controllers::default()
        };
        loop {
            // Take in everything that happened since the last pass.
            loop {
                match events.try_recv() {
                    Ok(event) => controllers.observe(&event, &inner),
                    Err(broadcast::error::TryRecvError::Lagged(_)) => controllers.resync = true,
                    Err(_) => break,
                }
            }
            let next = controllers.reconcile(&inner);
            if !controllers.dirty.is_empty() {
                // Left for the next pass: let watchers hear this one first.
                tokio::task::yield_now().await;
                continue;
            }
            let wait = next.map_or(Duration::from_secs(3600), |deadline| {
                let seconds =
                    ((deadline - inner.now()) * inner.config.second.as_secs_f64()).max(0.0);
                Duration::from_secs_f64(seconds)
            });
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => {
                        controllers.observe(&event, &inner);
                        // Let a burst of writes settle into one pass.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => controllers.resync = true,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                // A rollout is due: no burst to wait for.
                () = tokio::time::sleep(wait) => {}
            }
        }
    });
}

/// The workload kinds that roll out.
const WORKLOADS: [&str; 5] = [
    "apps/deployments",
    "apps/statefulsets",
    "apps/daemonsets",
    "batch/jobs",
    // Pods no controller owns (a Helm test hook's Pod); owned pods are
    // written by the controllers themselves, which do not wake them.
    "/pods",
];

#[derive(Debug, Clone)]
struct Rollout {
    generation: u64,
    ready_at: f64,
}

/// What the controllers know between passes: rollout timers, and what
/// changed since the last pass (only that is looked at again).
#[derive(Default)]
struct Controllers {
    rollouts: HashMap<String, Rollout>,
    /// When each workload was last changed by someone else (simulated
    /// seconds): a rollout's time counts from the write that started it,
    /// not from when a busy pass got to it.
    changed: HashMap<(String, String, String), f64>,
    /// `(due, resource, namespace, name)` of rollouts in progress.
    timers: Vec<(f64, String, String, String)>,
    dirty: BTreeSet<(String, String, String)>,
    /// The resourceVersion each workload had when its last pass ended:
    /// events up to it are the pass's own writes, already accounted for.
    seen: HashMap<(String, String, String), u64>,
    /// Look at everything (first pass, or events were missed).
    resync: bool,
    claims: bool,
    crds: bool,
    /// Services written since the last pass (a deleted one needs nothing).
    services: BTreeSet<(String, String)>,
    namespaces: bool,
}

fn resource(store: &Store, key: &str) -> Option<ResourceType> {
    store.registry.by_key(key).cloned()
}

/// A write by the controller manager.
fn as_controller<'a>(
    resource: &'a ResourceType,
    namespace: &'a str,
    name: &'a str,
    subresource: Option<&'a str>,
) -> Request<'a> {
    Request {
        resource,
        namespace,
        name,
        manager: MANAGER,
        subresource,
        dry_run: false,
    }
}

fn create(store: &mut Store, key: &str, object: Value) -> Option<Arc<Value>> {
    create_by(store, key, object, write::create)
}

/// Create an object with its status in the same write.
fn create_with_status(store: &mut Store, key: &str, object: Value) -> Option<Arc<Value>> {
    create_by(store, key, object, write::create_with_status)
}

type Create = fn(&mut Store, &Request, Value) -> Result<(u16, Arc<Value>), ApiError>;

fn create_by(store: &mut Store, key: &str, mut object: Value, write: Create) -> Option<Arc<Value>> {
    let resource = resource(store, key)?;
    object["apiVersion"] = json!(resource.api_version());
    object["kind"] = json!(resource.kind);
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let request = as_controller(&resource, &namespace, &name, None);
    write(store, &request, object)
        .ok()
        .map(|(_, object)| object)
}

/// Write `.status` if it differs from what is stored.
fn set_status(store: &mut Store, key: &str, namespace: &str, name: &str, status: Value) {
    let Some(resource) = resource(store, key) else {
        return;
    };
    let Some(live) = store.get(key, namespace, name) else {
        return;
    };
    if live.get("status") == Some(&status) {
        return;
    }
    // Through the status subresource only `.status` counts: no need to copy the rest.
    let body = if resource.status {
        let mut body = json!({"apiVersion": live["apiVersion"], "kind": live["kind"],
            "metadata": {"name": name, "namespace": live["metadata"]["namespace"]}});
        body["status"] = status;
        body
    } else {
        let mut body = live.clone();
        body["status"] = status;
        body
    };
    let subresource = resource.status.then_some("status");
    let request = as_controller(&resource, namespace, name, subresource);
    let _ = write::update(store, &request, body);
}

/// Change the main resource (not status) as the controller manager.
fn update(
    store: &mut Store,
    key: &str,
    namespace: &str,
    name: &str,
    change: impl FnOnce(&mut Value),
) {
    let Some(resource) = resource(store, key) else {
        return;
    };
    let Some(live) = store.get(key, namespace, name) else {
        return;
    };
    let mut body = live.clone();
    change(&mut body);
    if &body == live {
        return;
    }
    let request = as_controller(&resource, namespace, name, None);
    let _ = write::update(store, &request, body);
}

fn delete(store: &mut Store, key: &str, namespace: &str, name: &str) {
    let Some(resource) = resource(store, key) else {
        return;
    };
    let request = as_controller(&resource, namespace, name, None);
    let _ = write::delete(store, &request, &DeleteOptions::default());
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][key]
        .as_str()
        .or_else(|| object["spec"]["template"]["metadata"]["annotations"][key].as_str())
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

fn short_hash(value: &Value) -> String {
    let digest = Sha256::digest(serde_json::to_vec(value).unwrap_or_default());
    stack_kube::hex::lower(&digest[..5])
}

fn owned_by<'a>(
    store: &'a Store,
    key: &'a str,
    namespace: &'a str,
    owner_uid: &str,
) -> Vec<&'a Value> {
    store.dependents(key, namespace, owner_uid).collect()
}

/// How a workload's pods end up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodFate {
    Ready,
    CrashLoop,
    ImagePull,
    Succeeded,
    Failed,
}

/// A pod's status as of `now` (its start time).
fn pod_status(fate: PodFate, container: &str, image: &str, node_index: usize, now: &str) -> Value {
    let (phase, ready, state, restarts) = match fate {
        PodFate::Ready => ("Running", true, json!({"running": {"startedAt": now}}), 0),
        PodFate::CrashLoop => (
            "Running",
            false,
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 40s restarting failed container={container}")}}),
            4,
        ),
        PodFate::ImagePull => (
            "Pending",
            false,
            json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\"")}}),
            0,
        ),
        PodFate::Succeeded => (
            "Succeeded",
            false,
            json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}),
            0,
        ),
        PodFate::Failed => (
            "Failed",
            false,
            json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}}),
            0,
        ),
    };
    let ready_text = if ready { "True" } else { "False" };
    json!({
        "phase": phase,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": ready_text, "lastTransitionTime": now},
            {"type": "Ready", "status": ready_text, "lastTransitionTime": now},
        ],
        "hostIP": format!("172.18.0.{}", node_index % NODES + 2),
        "podIP": format!("10.244.{}.{}", node_index % NODES, 10 + node_index % 200),
        "startTime": now,
        "qosClass": "BestEffort",
        "containerStatuses": [{"name": container, "image": image, "imageID": "", "ready": ready,
            "started": ready, "restartCount": restarts, "state": state, "lastState": {}}],
    })
}

/// Create (or update) the pods a workload has, named `names`, and delete
/// its other pods.
fn sync_pods(
    store: &mut Store,
    owner: &Value,
    template: &Value,
    names: &[String],
    fate: PodFate,
    extra_labels: &Value,
) {
    let namespace = text(&owner["metadata"]["namespace"]);
    let uid = text(&owner["metadata"]["uid"]);
    let existing: Vec<String> = owned_by(store, "/pods", &namespace, &uid)
        .iter()
        .map(|pod| text(&pod["metadata"]["name"]))
        .collect();
    for stale in existing.iter().filter(|name| !names.contains(name)) {
        delete(store, "/pods", &namespace, stale);
    }
    let container = text(&template["spec"]["containers"][0]["name"]);
    let image = text(&template["spec"]["containers"][0]["image"]);
    for (index, name) in names.iter().enumerate() {
        if store.get("/pods", &namespace, name).is_none() {
            let mut labels = template["metadata"]["labels"].clone();
            if let (Some(labels), Some(extra)) = (labels.as_object_mut(), extra_labels.as_object())
            {
                labels.extend(extra.clone());
            }
            // Large parts are moved into their places: `json!` would copy them once more.
            let mut pod = json!({"metadata": {"name": name, "namespace": namespace, "labels": null,
                    "annotations": null, "ownerReferences": owner_reference(owner)},
                "spec": null});
            pod["metadata"]["labels"] = labels;
            pod["metadata"]["annotations"] = template["metadata"]["annotations"].clone();
            pod["spec"] = template["spec"].clone();
            pod["spec"]["nodeName"] = json!(format!("sim-node-{}", index % NODES + 1));
            // Scheduled and started at once: one write, not a create and a status write.
            pod["status"] = pod_status(fate, &container, &image, index, &now());
            create_with_status(store, "/pods", pod);
            continue;
        }
        // A pod already in this state keeps its times: it is not rewritten.
        let started = store
            .get("/pods", &namespace, name)
            .and_then(|pod| pod["status"]["startTime"].as_str())
            .map(str::to_string);
        let unchanged = started.as_deref().is_some_and(|started| {
            store
                .get("/pods", &namespace, name)
                .map(|pod| &pod["status"])
                == Some(&pod_status(fate, &container, &image, index, started))
        });
        if !unchanged {
            let status = pod_status(fate, &container, &image, index, &now());
            set_status(store, "/pods", &namespace, name, status);
        }
    }
}

fn failure_event(store: &mut Store, pod_namespace: &str, pod: &str, fate: PodFate) {
    let (reason, message) = match fate {
        PodFate::CrashLoop => ("BackOff", "Back-off restarting failed container"),
        PodFate::ImagePull => ("Failed", "Error: ImagePullBackOff"),
        _ => return,
    };
    let name = format!("{pod}.{}", reason.to_lowercase());
    if store.get("/events", pod_namespace, &name).is_some() {
        return;
    }
    create(
        store,
        "/events",
        json!({
            "metadata": {"name": name, "namespace": pod_namespace},
            "involvedObject": {"kind": "Pod", "namespace": pod_namespace, "name": pod, "apiVersion": "v1"},
            "reason": reason, "message": message, "type": "Warning", "count": 1,
            "firstTimestamp": now(), "lastTimestamp": now(), "source": {"component": "kubelet"},
        }),
    );
}

fn fate_of(object: &Value) -> PodFate {
    match annotation(object, FAIL) {
        Some("crash-loop") => PodFate::CrashLoop,
        Some("image-pull") => PodFate::ImagePull,
        _ => PodFate::Ready,
    }
}

impl Controllers {
    /// Note what an event changed.
    fn observe(&mut self, event: &Event, inner: &Inner) {
        let (namespace, name) = event.id.clone();
        let key = event.resource.as_str();
        if WORKLOADS.contains(&key) {
            let id = (key.to_string(), namespace, name);
            let own = self
                .seen
                .get(&id)
                .is_some_and(|&seen| seen >= event.revision);
            if event.action == Action::Deleted {
                self.seen.remove(&id);
                self.changed.remove(&id);
            } else if !own {
                self.changed.insert(id.clone(), inner.simulated(event.at));
            }
            if !own {
                self.dirty.insert(id);
            }
        }
        match key {
            "/persistentvolumeclaims" => self.claims = true,
            "apiextensions.k8s.io/customresourcedefinitions" => self.crds = true,
            "/services" if event.action != Action::Deleted => {
                self.services.insert(event.id.clone());
            }
            "/namespaces" => self.namespaces = true,
            _ => {}
        }
        if event.action == Action::Deleted {
            self.namespaces = true;
        }
    }

    /// One pass over what changed and what is due; returns the next
    /// simulated time something is due.
    fn reconcile(&mut self, inner: &Inner) -> Option<f64> {
        let now = inner.now();
        let mut store = inner.store();
        if std::mem::take(&mut self.resync) {
            self.everything(&store);
        }
        let work = self.work(now);
        let default_seconds = inner.config.rollout_seconds;
        for id in work {
            let (key, namespace, name) = &id;
            let Some(object) = store.get_shared(key, namespace, name).cloned() else {
                continue;
            };
            if !object["metadata"]["deletionTimestamp"].is_null() {
                continue;
            }
            let start = self.changed.get(&id).map_or(now, |&at| at.min(now));
            let rollout = self.rollout(&object, now, start, default_seconds);
            let ready = now >= rollout.ready_at;
            if !ready {
                self.timers.push((
                    rollout.ready_at,
                    key.clone(),
                    namespace.clone(),
                    name.clone(),
                ));
            }
            match key.as_str() {
                "apps/deployments" => deployment(&mut store, &object, ready),
                "apps/statefulsets" => stateful_set(&mut store, &object, ready),
                "apps/daemonsets" => daemon_set(&mut store, &object, ready),
                "/pods" => bare_pod(&mut store, &object, ready),
                _ => {
                    if let Some(due) = job(&mut store, &object, ready, now, inner.config.second) {
                        self.timers
                            .push((due, key.clone(), namespace.clone(), name.clone()));
                    }
                }
            }
            if let Some(revision) = store
                .get(key, namespace, name)
                .and_then(|o| o["metadata"]["resourceVersion"].as_str()?.parse().ok())
            {
                self.seen.insert(id, revision);
            }
        }
        if std::mem::take(&mut self.claims) {
            bind_claims(&mut store);
        }
        if std::mem::take(&mut self.crds) {
            establish_crds(&mut store);
        }
        let services = std::mem::take(&mut self.services);
        if !services.is_empty() {
            load_balancers(&mut store, services);
        }
        if std::mem::take(&mut self.namespaces) {
            terminate_namespaces(&mut store);
        }
        // Every pass: the collector reads only what was removed since the
        // last and what is finalizing (a foreground or orphan deletion is a
        // modification, not a removal).
        // The rollouts of removed workloads go with them (by uid: no scan
        // of every rollout per pass).
        for uid in collect_garbage(&mut store) {
            self.rollouts.remove(&uid);
        }
        self.timers.iter().map(|(at, ..)| *at).reduce(f64::min)
    }

    /// After a restart: every workload, Service, claim, CRD and namespace
    /// is looked at again.
    fn everything(&mut self, store: &Store) {
        for key in WORKLOADS {
            let ids: Vec<_> = store.list(key, None).map(crate::store::object_id).collect();
            self.dirty.extend(
                ids.into_iter()
                    .map(|(ns, name)| (key.to_string(), ns, name)),
            );
        }
        self.services = store
            .list("/services", None)
            .map(crate::store::object_id)
            .collect();
        (self.claims, self.crds, self.namespaces) = (true, true, true);
    }

    /// The workloads this pass looks at. Rollouts that are due get a pass
    /// of their own, before what changed meanwhile: whoever waits on them
    /// hears sooner, and a new change's rollout counts from its write, not
    /// from its pass.
    fn work(&mut self, now: f64) -> BTreeSet<(String, String, String)> {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.timers)
            .into_iter()
            .partition(|(at, ..)| *at <= now);
        self.timers = later;
        if due.is_empty() {
            return std::mem::take(&mut self.dirty);
        }
        let due: BTreeSet<_> = due
            .into_iter()
            .map(|(_, key, ns, name)| (key, ns, name))
            .collect();
        self.dirty.retain(|id| !due.contains(id));
        due
    }

    /// The rollout of a workload's generation, started at `start` (the
    /// write that asked for it) unless already under way.
    fn rollout(&mut self, object: &Value, now: f64, start: f64, default_seconds: f64) -> Rollout {
        let uid = text(&object["metadata"]["uid"]);
        let generation = object["metadata"]["generation"].as_u64().unwrap_or(1);
        let seconds = annotation(object, ROLLOUT_SECONDS)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(default_seconds);
        // Seen for the first time (a restarted simulator) with its rollout
        // already observed: it stays where it is, it does not roll out again.
        let observed = object["status"]["observedGeneration"].as_u64() == Some(generation)
            || object["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Complete" || c["type"] == "Failed")
            });
        let first = if observed { now } else { start + seconds };
        let entry = self.rollouts.entry(uid).or_insert(Rollout {
            generation,
            ready_at: first,
        });
        if entry.generation != generation {
            *entry = Rollout {
                generation,
                ready_at: start + seconds,
            };
        }
        entry.clone()
    }
}

/// A pod no controller owns, once due: one that restarts runs (or shows
/// the fault its annotation asks for); one that does not restart runs to
/// completion, or fails with `sim.stack.dev/fail: job-failed`.
fn bare_pod(store: &mut Store, pod: &Value, ready: bool) {
    let owned = pod["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|owners| !owners.is_empty());
    if owned || !ready || !pod["status"]["phase"].is_null() {
        return;
    }
    let restarts = pod["spec"]["restartPolicy"].as_str().unwrap_or("Always") == "Always";
    let fate = match annotation(pod, FAIL) {
        _ if restarts => fate_of(pod),
        Some("job-failed") => PodFate::Failed,
        _ => PodFate::Succeeded,
    };
    let container = &pod["spec"]["containers"][0];
    let status = pod_status(
        fate,
        container["name"].as_str().unwrap_or_default(),
        container["image"].as_str().unwrap_or_default(),
        0,
        &now(),
    );
    let namespace = text(&pod["metadata"]["namespace"]);
    let name = text(&pod["metadata"]["name"]);
    set_status(store, "/pods", &namespace, &name, status);
}

/// The Deployment controller: the template's ReplicaSet, its pods when due, old sets scaled down.
fn deployment(store: &mut Store, deployment: &Value, ready: bool) {
    let namespace = text(&deployment["metadata"]["namespace"]);
    let name = text(&deployment["metadata"]["name"]);
    let uid = text(&deployment["metadata"]["uid"]);
    let replicas = deployment["spec"]["replicas"].as_u64().unwrap_or(1);
    let hash = short_hash(&deployment["spec"]["template"]);
    let rs_name = format!("{name}-{hash}");
    let fate = fate_of(deployment);
    let deadline_exceeded = annotation(deployment, FAIL) == Some("progress-deadline");
    // The sets of earlier templates (this pass leaves them as they are until it scales them down).
    let old_sets: Vec<Value> = owned_by(store, "apps/replicasets", &namespace, &uid)
        .into_iter()
        .filter(|rs| rs["metadata"]["name"] != rs_name)
        .cloned()
        .collect();
    let revision = store
        .get("apps/replicasets", &namespace, &rs_name)
        .and_then(revision_of)
        .unwrap_or_else(|| old_sets.iter().filter_map(revision_of).max().unwrap_or(0) + 1);
    if store
        .get("apps/replicasets", &namespace, &rs_name)
        .is_none()
    {
        let replica_set = replica_set(deployment, &namespace, &rs_name, &hash, revision, replicas);
        create(store, "apps/replicasets", replica_set);
    }
    scale(store, &namespace, &rs_name, replicas);
    record_revision(store, deployment, revision);
    let old_ready: u64 = old_sets
        .iter()
        .filter_map(|rs| rs["status"]["readyReplicas"].as_u64())
        .sum();
    let rs = store
        .get_shared("apps/replicasets", &namespace, &rs_name)
        .cloned()
        .unwrap_or_default();
    let progress = Progress::of(ready, fate != PodFate::Ready, deadline_exceeded);
    if progress.has_pods() {
        let pods: Vec<String> = (0..replicas)
            .map(|i| format!("{rs_name}-{}", &short_hash(&json!([rs_name, i]))[..5]))
            .collect();
        sync_pods(store, &rs, &rs["spec"]["template"], &pods, fate, &json!({}));
        if progress == Progress::Failing
            && let Some(first) = pods.first()
        {
            failure_event(store, &namespace, first, fate);
        }
    }
    if progress == Progress::Complete {
        scale_down(store, &namespace, &old_sets);
    }
    let counts = Replicas::after(progress, replicas, old_ready);
    // A new set's status is first written with its pods.
    if progress.has_pods() || rs.get("status").is_some() {
        let status = replica_set_status(&rs, &counts);
        set_status(store, "apps/replicasets", &namespace, &rs_name, status);
    }
    let status = deployment_status(deployment, &rs_name, progress, &counts);
    set_status(store, "apps/deployments", &namespace, &name, status);
}

/// Give a ReplicaSet `replicas`, unless it has them.
fn scale(store: &mut Store, namespace: &str, rs_name: &str, replicas: u64) {
    // Looked at before `update` copies the object to change it.
    if store
        .get("apps/replicasets", namespace, rs_name)
        .is_some_and(|rs| rs["spec"]["replicas"] != replicas)
    {
        update(store, "apps/replicasets", namespace, rs_name, |rs| {
            rs["spec"]["replicas"] = json!(replicas);
        });
    }
}

/// Record the revision of the current ReplicaSet on its Deployment.
fn record_revision(store: &mut Store, deployment: &Value, revision: u64) {
    let revision_text = revision.to_string();
    if deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        != revision_text.as_str()
    {
        let namespace = text(&deployment["metadata"]["namespace"]);
        let name = text(&deployment["metadata"]["name"]);
        update(store, "apps/deployments", &namespace, &name, |d| {
            d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
                json!(revision_text);
        });
    }
}

/// Scale the ReplicaSets of earlier templates to zero, and remove their pods.
fn scale_down(store: &mut Store, namespace: &str, old_sets: &[Value]) {
    for old in old_sets {
        let old_name = text(&old["metadata"]["name"]);
        update(store, "apps/replicasets", namespace, &old_name, |rs| {
            rs["spec"]["replicas"] = json!(0);
        });
        sync_pods(
            store,
            old,
            &old["spec"]["template"],
            &[],
            PodFate::Ready,
            &json!({}),
        );
        set_status(
            store,
            "apps/replicasets",
            namespace,
            &old_name,
            json!({"replicas": 0, "observedGeneration": old["metadata"]["generation"]}),
        );
    }
}

fn stateful_set(store: &mut Store, set: &Value, ready: bool) {
    let namespace = text(&set["metadata"]["namespace"]);
    let name = text(&set["metadata"]["name"]);
    let generation = set["metadata"]["generation"].as_u64().unwrap_or(1);
    let replicas = set["spec"]["replicas"].as_u64().unwrap_or(1);
    let revision = format!("{name}-{}", short_hash(&set["spec"]["template"]));
    let fate = fate_of(set);
    let fault = annotation(set, FAIL).unwrap_or_default();
    let complete = ready && fate == PodFate::Ready && fault != "progress-deadline";
    let failing = ready && fate != PodFate::Ready;
    if complete || failing {
        let pods: Vec<String> = (0..replicas).map(|i| format!("{name}-{i}")).collect();
        for template in set["spec"]["volumeClaimTemplates"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            for pod in &pods {
                let claim = format!("{}-{pod}", text(&template["metadata"]["name"]));
                if store
                    .get("/persistentvolumeclaims", &namespace, &claim)
                    .is_none()
                {
                    create(
                        store,
                        "/persistentvolumeclaims",
                        json!({
                            "metadata": {"name": claim, "namespace": namespace, "labels": set["spec"]["selector"]["matchLabels"]},
                            "spec": template["spec"],
                        }),
                    );
                }
            }
        }
        sync_pods(
            store,
            set,
            &set["spec"]["template"],
            &pods,
            fate,
            &json!({"controller-revision-hash": revision, "apps.kubernetes.io/pod-index": "0"}),
        );
        if failing && let Some(first) = pods.first() {
            failure_event(store, &namespace, first, fate);
        }
    }
    let current = if complete { replicas } else { 0 };
    let previous_revision = set["status"]["currentRevision"]
        .as_str()
        .unwrap_or(&revision)
        .to_string();
    let mut status = json!({
        "observedGeneration": generation, "replicas": if complete || failing { replicas } else { 0 },
        "currentReplicas": current, "updatedReplicas": current, "readyReplicas": current, "availableReplicas": current,
        "currentRevision": if complete { revision.clone() } else { previous_revision }, "updateRevision": revision,
        "collisionCount": 0,
    });
    if current == 0 {
        let map = status.as_object_mut().expect("status is a map");
        map.remove("readyReplicas");
        map.remove("currentReplicas");
        map.remove("updatedReplicas");
    }
    set_status(store, "apps/statefulsets", &namespace, &name, status);
}

fn daemon_set(store: &mut Store, set: &Value, ready: bool) {
    let namespace = text(&set["metadata"]["namespace"]);
    let name = text(&set["metadata"]["name"]);
    let generation = set["metadata"]["generation"].as_u64().unwrap_or(1);
    let nodes = u64::try_from(store.count("/nodes")).unwrap_or(0);
    let fate = fate_of(set);
    let complete = ready && fate == PodFate::Ready;
    if ready {
        let pods: Vec<String> = (0..nodes)
            .map(|i| format!("{name}-{}", &short_hash(&json!([name, i]))[..5]))
            .collect();
        sync_pods(
            store,
            set,
            &set["spec"]["template"],
            &pods,
            fate,
            &json!({}),
        );
    }
    let done = if complete { nodes } else { 0 };
    set_status(
        store,
        "apps/daemonsets",
        &namespace,
        &name,
        json!({
            "observedGeneration": generation, "desiredNumberScheduled": nodes,
            "currentNumberScheduled": if ready { nodes } else { 0 }, "numberMisscheduled": 0,
            "numberReady": done, "updatedNumberScheduled": if ready { nodes } else { 0 },
            "numberAvailable": done, "numberUnavailable": nodes - done,
        }),
    );
}

/// Returns when the job's TTL runs out, if it has one and finished.
fn job(
    store: &mut Store,
    job: &Value,
    ready: bool,
    now_seconds: f64,
    _second: Duration,
) -> Option<f64> {
    let namespace = text(&job["metadata"]["namespace"]);
    let name = text(&job["metadata"]["name"]);
    if job["spec"]["suspend"] == true {
        return None;
    }
    let finished = job["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
    });
    if finished {
        return expire(store, job, now_seconds);
    }
    let pod = format!(
        "{name}-{}",
        &short_hash(&json!([name, job["metadata"]["uid"]]))[..5]
    );
    let failed = annotation(job, FAIL) == Some("job-failed");
    let started = job["status"]["startTime"].clone();
    let start_time = if started.is_null() {
        json!(now())
    } else {
        started
    };
    if !ready {
        let labels = json!({"batch.kubernetes.io/job-name": name});
        sync_pods(
            store,
            job,
            &job["spec"]["template"],
            std::slice::from_ref(&pod),
            PodFate::Ready,
            &labels,
        );
        set_status(
            store,
            "batch/jobs",
            &namespace,
            &name,
            json!({"startTime": start_time, "active": 1, "ready": 1, "terminating": 0, "uncountedTerminatedPods": {}}),
        );
        return None;
    }
    let fate = if failed {
        PodFate::Failed
    } else {
        PodFate::Succeeded
    };
    sync_pods(
        store,
        job,
        &job["spec"]["template"],
        std::slice::from_ref(&pod),
        fate,
        &json!({"batch.kubernetes.io/job-name": name}),
    );
    let status = finished_status(&job["status"], &start_time, failed);
    update(store, "batch/jobs", &namespace, &name, |j| {
        j["metadata"]["annotations"]["sim.stack.dev/finished-at"] =
            json!(format!("{now_seconds:.3}"));
    });
    set_status(store, "batch/jobs", &namespace, &name, status);
    job["spec"]["ttlSecondsAfterFinished"]
        .as_f64()
        .map(|ttl| now_seconds + ttl)
}

/// A finished Job with a TTL: removed with its pods once the TTL passed;
/// else when it will be.
fn expire(store: &mut Store, job: &Value, now_seconds: f64) -> Option<f64> {
    let namespace = text(&job["metadata"]["namespace"]);
    let name = text(&job["metadata"]["name"]);
    let ttl = job["spec"]["ttlSecondsAfterFinished"].as_f64()?;
    let finished_at: f64 = job["metadata"]["annotations"]["sim.stack.dev/finished-at"]
        .as_str()?
        .parse()
        .ok()?;
    if now_seconds < finished_at + ttl {
        return Some(finished_at + ttl);
    }
    let uid = text(&job["metadata"]["uid"]);
    let pods: Vec<String> = owned_by(store, "/pods", &namespace, &uid)
        .iter()
        .map(|p| text(&p["metadata"]["name"]))
        .collect();
    for pod in pods {
        delete(store, "/pods", &namespace, &pod);
    }
    delete(store, "batch/jobs", &namespace, &name);
    None
}

/// The status of a Job whose pod ended, as the job controller writes it.
fn finished_status(previous: &Value, start_time: &Value, failed: bool) -> Value {
    if failed {
        json!({"startTime": start_time, "failed": 1, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {},
        "conditions": [
            condition(previous, "FailureTarget", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
            condition(previous, "Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        ]})
    } else {
        json!({"startTime": start_time, "completionTime": now(), "succeeded": 1, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {},
        "conditions": [
            condition(previous, "SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of succeeded pods"),
            condition(previous, "Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods"),
        ]})
    }
}

fn bind_claims(store: &mut Store) {
    let pending: Vec<Value> = store
        .list("/persistentvolumeclaims", None)
        .filter(|c| c["status"]["phase"] != "Bound" && c["metadata"]["deletionTimestamp"].is_null())
        .cloned()
        .collect();
    for claim in pending {
        let namespace = text(&claim["metadata"]["namespace"]);
        let name = text(&claim["metadata"]["name"]);
        let volume = format!("pvc-{}", text(&claim["metadata"]["uid"]));
        update(store, "/persistentvolumeclaims", &namespace, &name, |c| {
            c["spec"]["volumeName"] = json!(volume);
            c["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] = json!("yes");
            c["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] = json!("yes");
        });
        let storage = claim["spec"]["resources"]["requests"]["storage"].clone();
        set_status(
            store,
            "/persistentvolumeclaims",
            &namespace,
            &name,
            json!({
                "phase": "Bound", "accessModes": claim["spec"]["accessModes"], "capacity": {"storage": storage},
            }),
        );
    }
}

fn establish_crds(store: &mut Store) {
    let pending: Vec<Value> = store
        .list("apiextensions.k8s.io/customresourcedefinitions", None)
        .filter(|crd| {
            let established = crd["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            });
            let stored = crd["status"]["acceptedNames"]["plural"] == crd["spec"]["names"]["plural"];
            (!established || !stored) && crd["metadata"]["deletionTimestamp"].is_null()
        })
        .cloned()
        .collect();
    for crd in pending {
        let name = text(&crd["metadata"]["name"]);
        let names = &crd["spec"]["names"];
        let versions: Vec<Value> = crd["spec"]["versions"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter(|v| v["storage"] == true)
                    .map(|v| v["name"].clone())
                    .collect()
            })
            .unwrap_or_default();
        let previous = &crd["status"];
        let mut accepted = json!({"kind": names["kind"], "listKind": names["listKind"].as_str().map_or_else(|| format!("{}List", text(&names["kind"])), str::to_string),
            "plural": names["plural"], "singular": names["singular"]});
        for optional in ["shortNames", "categories"] {
            if names.get(optional).is_some_and(|v| !v.is_null()) {
                accepted[optional] = names[optional].clone();
            }
        }
        set_status(
            store,
            "apiextensions.k8s.io/customresourcedefinitions",
            "",
            &name,
            json!({
                "acceptedNames": accepted,
                "storedVersions": versions,
                "conditions": [
                    condition(previous, "NamesAccepted", "True", "NoConflicts", "no conflicts found"),
                    condition(previous, "Established", "True", "InitialNamesAccepted", "the initial names have been accepted"),
                ],
            }),
        );
        store.register_crds();
    }
}

/// Give each written LoadBalancer Service without an address one.
fn load_balancers(store: &mut Store, written: BTreeSet<(String, String)>) {
    let pending: Vec<(String, String)> = written
        .into_iter()
        .filter(|(namespace, name)| {
            store.get("/services", namespace, name).is_some_and(|s| {
                s["spec"]["type"] == "LoadBalancer"
                    && s["status"]["loadBalancer"]["ingress"].is_null()
            })
        })
        .collect();
    for (index, (namespace, name)) in pending.iter().enumerate() {
        let address = format!("172.18.0.{}", 240 + index % 15);
        set_status(
            store,
            "/services",
            namespace,
            name,
            json!({"loadBalancer": {"ingress": [{"ip": address, "ipMode": "VIP"}]}}),
        );
    }
}

/// Namespaces being deleted: delete their content, then finalize them.
fn terminate_namespaces(store: &mut Store) {
    let terminating: Vec<String> = store
        .list("/namespaces", None)
        .filter(|n| !n["metadata"]["deletionTimestamp"].is_null())
        .map(|n| text(&n["metadata"]["name"]))
        .collect();
    for namespace in terminating {
        let namespaced: Vec<String> = store
            .registry
            .types()
            .iter()
            .filter(|t| t.namespaced)
            .map(ResourceType::key)
            .collect();
        let mut remaining = 0;
        for key in namespaced {
            let names: Vec<(String, bool)> = store
                .list(&key, Some(&namespace))
                .map(|o| {
                    (
                        text(&o["metadata"]["name"]),
                        o["metadata"]["deletionTimestamp"].is_null(),
                    )
                })
                .collect();
            remaining += names.len();
            for (name, fresh) in names {
                if fresh {
                    delete(store, &key, &namespace, &name);
                }
            }
        }
        if remaining == 0 {
            store.remove("/namespaces", "", &namespace);
        }
    }
}

/// Background deletion of dependents whose owners are gone; foreground and
/// orphan finalizers. Driven by what was removed and what is finalizing,
/// found through the store's indexes: a pass never reads every object.
fn collect_garbage(store: &mut Store) -> Vec<String> {
    let mut removed = Vec::new();
    let mut gone = store.take_removed();
    while !gone.is_empty() {
        for uid in gone {
            for (key, (namespace, name)) in store.dependents_of(&uid) {
                let orphaned = store.get(&key, &namespace, &name).is_some_and(|dependent| {
                    crate::store::owner_uids(dependent).all(|o| !store.exists(o))
                });
                if orphaned {
                    delete(store, &key, &namespace, &name);
                }
            }
            removed.push(uid);
        }
        // What those deletions removed has dependents of its own.
        gone = store.take_removed();
    }
    for (key, (namespace, name)) in store.finalizing() {
        let Some(owner) = store.get(&key, &namespace, &name) else {
            continue;
        };
        let uid = text(&owner["metadata"]["uid"]);
        let orphan = owner["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "orphan"));
        let mut left = 0;
        for (dependent_key, (dependent_namespace, dependent_name)) in store.dependents_of(&uid) {
            if orphan {
                update(
                    store,
                    &dependent_key,
                    &dependent_namespace,
                    &dependent_name,
                    |d| {
                        if let Some(refs) = d["metadata"]["ownerReferences"].as_array_mut() {
                            refs.retain(|r| r["uid"] != uid.as_str());
                        }
                    },
                );
            } else {
                delete(store, &dependent_key, &dependent_namespace, &dependent_name);
                left += usize::from(
                    store
                        .get(&dependent_key, &dependent_namespace, &dependent_name)
                        .is_some(),
                );
            }
        }
        if left == 0 {
            update(store, &key, &namespace, &name, |o| {
                if let Some(f) = o["metadata"]["finalizers"].as_array_mut() {
                    f.retain(|f| f != "foregroundDeletion" && f != "orphan");
                }
            });
        }
    }
    removed
}

/// Another manager that keeps touching stack's objects (fault injection for
/// optimistic concurrency): an annotation changes, the resourceVersion moves.
async fn conflict_writer(inner: Arc<Inner>, interval: Duration) {
    let mut count = 0_u64;
    loop {
        tokio::time::sleep(interval).await;
        count += 1;
        let mut store = inner.store();
        let candidates: Vec<(String, String, String)> =
            ["/configmaps", "apps/deployments", "/services"]
                .iter()
                .flat_map(|key| {
                    store
                        .list(key, None)
                        .filter(|o| {
                            o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "stack"
                        })
                        .map(|o| {
                            (
                                (*key).to_string(),
                                text(&o["metadata"]["namespace"]),
                                text(&o["metadata"]["name"]),
                            )
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
        if candidates.is_empty() {
            continue;
        }
        let index = usize::try_from(count).unwrap_or(0) % candidates.len();
        let (key, namespace, name) = &candidates[index];
        let Some(resource) = store.registry.by_key(key).cloned() else {
            continue;
        };
        let request = Request {
            resource: &resource,
            namespace,
            name,
            manager: "sim-conflict-writer",
            subresource: None,
            dry_run: false,
        };
        let patch =
            json!({"metadata": {"annotations": {"sim.stack.dev/touched": count.to_string()}}});
        let _ = write::patch(&mut store, &request, "application/merge-patch+json", &patch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollout_counts_from_the_write_that_started_it() {
        let mut controllers = Controllers::default();
        let deployment = json!({"metadata": {"uid": "u", "generation": 1}});
        // Written at 3.0 and first looked at by a pass at 3.5: ready at 4.0.
        assert!((controllers.rollout(&deployment, 3.5, 3.0, 1.0).ready_at - 4.0).abs() < 1e-9);
        assert!((controllers.rollout(&deployment, 3.8, 3.8, 1.0).ready_at - 4.0).abs() < 1e-9);
        // A new generation, written at 5.0, rolls out from then.
        let changed = json!({"metadata": {"uid": "u", "generation": 2}});
        assert!((controllers.rollout(&changed, 5.2, 5.0, 1.0).ready_at - 6.0).abs() < 1e-9);
        // One whose rollout a restarted simulator finds observed stays ready.
        let observed = json!({"metadata": {"uid": "v", "generation": 1},
            "status": {"observedGeneration": 1}});
        assert!((controllers.rollout(&observed, 7.0, 2.0, 1.0).ready_at - 7.0).abs() < 1e-9);
    }
}
