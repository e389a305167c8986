//! What the controllers write, built from what they read without touching
//! the store: conditions, owner references, and a Deployment's ReplicaSet
//! and statuses. `controllers.rs` does the writing; this needs nothing
//! from it.

use serde_json::{Value, json};
use stack_kube::clock::now;

/// A condition, keeping its transition time when its status did not change.
pub(super) fn condition(
    previous: &Value,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> Value {
    let old = previous["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == kind));
    let time = match old {
        Some(old) if old["status"] == status => old["lastTransitionTime"].clone(),
        _ => json!(now()),
    };
    let update_time = match old {
        Some(old) if old["status"] == status && old["reason"] == reason => {
            old["lastUpdateTime"].clone()
        }
        _ => json!(now()),
    };
    json!({"type": kind, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": time, "lastUpdateTime": update_time})
}

/// The `ownerReferences` that make `owner` an object's controller.
pub(super) fn owner_reference(owner: &Value) -> Value {
    json!([{"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}])
}

/// How far a Deployment's rollout is as of a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Progress {
    /// Not due yet: the new ReplicaSet has no pods.
    Waiting,
    /// Due: the new ReplicaSet has all its pods, ready; the old ones none.
    Complete,
    /// Due, with pods that fail on request (`sim.stack.dev/fail`).
    Failing,
    /// Due, and past its progress deadline on request.
    DeadlineExceeded,
}

impl Progress {
    /// The progress of a rollout due (`ready`) or not, failing or not, past its deadline or not.
    pub(super) fn of(ready: bool, failing: bool, deadline_exceeded: bool) -> Self {
        if !ready {
            Self::Waiting
        } else if failing {
            Self::Failing
        } else if deadline_exceeded {
            Self::DeadlineExceeded
        } else {
            Self::Complete
        }
    }

    /// Whether the new ReplicaSet has its pods (ready or not).
    pub(super) fn has_pods(self) -> bool {
        matches!(self, Self::Complete | Self::Failing)
    }
}

/// A Deployment's pod counts once a pass is done.
pub(super) struct Replicas {
    /// What the spec asks for.
    desired: u64,
    /// Pods of the current template.
    updated: u64,
    /// Ready pods of the current template.
    new_ready: u64,
    /// Ready pods of every template.
    available: u64,
    /// Pods of every template.
    total: u64,
}

impl Replicas {
    /// The counts at `progress`, when `old_ready` pods of earlier templates were ready.
    pub(super) fn after(progress: Progress, desired: u64, old_ready: u64) -> Self {
        let complete = progress == Progress::Complete;
        let new_ready = if complete { desired } else { 0 };
        let updated = if progress.has_pods() { desired } else { 0 };
        let old_available = if complete { 0 } else { old_ready };
        let total = if complete {
            desired
        } else {
            updated + old_ready
        };
        Self {
            desired,
            updated,
            new_ready,
            available: new_ready + old_available,
            total,
        }
    }
}

/// The revision a ReplicaSet's annotation records.
pub(super) fn revision_of(replica_set: &Value) -> Option<u64> {
    replica_set["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()?
        .parse()
        .ok()
}

/// The ReplicaSet `rs_name` of a Deployment's current template, whose hash is `hash`.
pub(super) fn replica_set(
    deployment: &Value,
    namespace: &str,
    rs_name: &str,
    hash: &str,
    revision: u64,
    replicas: u64,
) -> Value {
    let template = &deployment["spec"]["template"];
    let mut labels = template["metadata"]["labels"].clone();
    labels["pod-template-hash"] = json!(hash);
    let mut selector = deployment["spec"]["selector"].clone();
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let mut rs_template = template.clone();
    rs_template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut replica_set = json!({
        "metadata": {"name": rs_name, "namespace": namespace, "labels": labels,
            "annotations": {"deployment.kubernetes.io/revision": revision.to_string(),
                "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                "deployment.kubernetes.io/max-replicas": (replicas + 1).to_string()},
            "ownerReferences": owner_reference(deployment)},
        "spec": {"replicas": replicas, "selector": selector, "template": null},
    });
    // Moved into its place: `json!` would copy it once more.
    replica_set["spec"]["template"] = rs_template;
    replica_set
}

/// The status of the current ReplicaSet, for `counts`.
pub(super) fn replica_set_status(replica_set: &Value, counts: &Replicas) -> Value {
    json!({
        "replicas": counts.updated, "fullyLabeledReplicas": counts.updated,
        "readyReplicas": counts.new_ready, "availableReplicas": counts.new_ready,
        "observedGeneration": replica_set["metadata"]["generation"],
    })
}

/// A Deployment's status for `counts` at `progress`, its current ReplicaSet being `rs_name`.
pub(super) fn deployment_status(
    deployment: &Value,
    rs_name: &str,
    progress: Progress,
    counts: &Replicas,
) -> Value {
    let (replicas, available, total) = (counts.desired, counts.available, counts.total);
    let generation = deployment["metadata"]["generation"].as_u64().unwrap_or(1);
    let previous = &deployment["status"];
    let minimum_available = available
        >= replicas.saturating_sub(max_unavailable(deployment, replicas))
        && available > 0
        || replicas == 0;
    let mut status = json!({
        "observedGeneration": generation, "replicas": total, "updatedReplicas": counts.updated,
        "readyReplicas": available, "availableReplicas": available,
        "conditions": [
            available_condition(previous, minimum_available),
            progressing_condition(previous, progress, rs_name),
        ],
    });
    if total > available {
        status["unavailableReplicas"] = json!(total - available);
    }
    if available == 0 {
        let map = status.as_object_mut().expect("status is a map");
        map.remove("readyReplicas");
        map.remove("availableReplicas");
    }
    status
}

/// A Deployment's `Available` condition.
fn available_condition(previous: &Value, minimum_available: bool) -> Value {
    let (status, reason, message) = if minimum_available {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    condition(previous, "Available", status, reason, message)
}

/// A Deployment's `Progressing` condition, about its ReplicaSet `rs_name`.
fn progressing_condition(previous: &Value, progress: Progress, rs_name: &str) -> Value {
    let (status, reason, message) = match progress {
        Progress::DeadlineExceeded => (
            "False",
            "ProgressDeadlineExceeded",
            "has timed out progressing",
        ),
        Progress::Complete => (
            "True",
            "NewReplicaSetAvailable",
            "has successfully progressed",
        ),
        Progress::Waiting | Progress::Failing => ("True", "ReplicaSetUpdated", "is progressing"),
    };
    let message = format!("ReplicaSet \"{rs_name}\" {message}.");
    condition(previous, "Progressing", status, reason, &message)
}

/// How many pods a rolling update may leave unavailable: a count, or a percentage of `replicas`.
fn max_unavailable(deployment: &Value, replicas: u64) -> u64 {
    match &deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] {
        Value::Number(n) => n.as_u64().unwrap_or(0),
        Value::String(percent) => percent
            .trim_end_matches('%')
            .parse::<u64>()
            .map_or(0, |p| replicas * p / 100),
        _ => 0,
    }
}
