//! Readiness per kind (product.md §6): Deployment, StatefulSet and DaemonSet
//! rollouts complete for the observed generation, Job complete, PVC bound,
//! CRD established, LoadBalancer Service with an address. Each object is
//! watched (no polling) until it is ready, fails, or the timeout passes.

use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use kube::api::{Api, DynamicObject, WatchEvent, WatchParams};
use serde_json::Value;

/// Where an object stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Still converging; the text says how far (`1/3 ready`).
    Waiting(String),
    /// It will not become ready by itself.
    Failed(String),
}

fn number(value: &Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn generation_observed(object: &Value) -> bool {
    let generation = object["metadata"]["generation"].as_u64();
    let observed = object["status"]["observedGeneration"].as_u64();
    match (generation, observed) {
        (Some(generation), Some(observed)) => observed >= generation,
        (None, _) => true,
        (Some(_), None) => false,
    }
}

/// The readiness of an object, or `None` for kinds that are ready once applied.
pub fn readiness(object: &Value) -> Option<Readiness> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let status = &object["status"];
    let waiting = |text: String| Some(Readiness::Waiting(text));
    match kind {
        "Deployment" => {
            if !generation_observed(object) {
                return waiting("waiting for the rollout to start".into());
            }
            if let Some(progressing) = condition(object, "Progressing")
                && progressing["reason"] == "ProgressDeadlineExceeded"
            {
                let message = progressing["message"]
                    .as_str()
                    .unwrap_or("progress deadline exceeded");
                return Some(Readiness::Failed(format!(
                    "ProgressDeadlineExceeded: {message}"
                )));
            }
            let replicas = object["spec"]["replicas"].as_u64().unwrap_or(1);
            let (updated, total, available) = (
                number(&status["updatedReplicas"]),
                number(&status["replicas"]),
                number(&status["availableReplicas"]),
            );
            if updated < replicas || total > updated || available < updated {
                return waiting(format!("{available}/{replicas} ready"));
            }
            Some(Readiness::Ready)
        }
        "StatefulSet" => {
            let replicas = object["spec"]["replicas"].as_u64().unwrap_or(1);
            if !generation_observed(object) {
                return waiting("waiting for the rollout to start".into());
            }
            let ready = number(&status["readyReplicas"]);
            // OnDelete updates no pod by itself, and a partition only the
            // pods at or above it (kubectl rollout status judges the same).
            let strategy = &object["spec"]["updateStrategy"];
            if strategy["type"] == "OnDelete" {
                return if ready < replicas {
                    waiting(format!("{ready}/{replicas} ready"))
                } else {
                    Some(Readiness::Ready)
                };
            }
            let partition = strategy["rollingUpdate"]["partition"].as_u64().unwrap_or(0);
            let updated = number(&status["updatedReplicas"]);
            let revision_done =
                partition > 0 || status["currentRevision"] == status["updateRevision"];
            if ready < replicas || updated < replicas.saturating_sub(partition) || !revision_done {
                return waiting(format!("{ready}/{replicas} ready"));
            }
            Some(Readiness::Ready)
        }
        "DaemonSet" => {
            if !generation_observed(object) || status["desiredNumberScheduled"].is_null() {
                return waiting("waiting for the rollout to start".into());
            }
            let desired = number(&status["desiredNumberScheduled"]);
            let (updated, available) = (
                number(&status["updatedNumberScheduled"]),
                number(&status["numberAvailable"]),
            );
            if updated < desired || available < desired {
                return waiting(format!("{available}/{desired} ready"));
            }
            Some(Readiness::Ready)
        }
        "Job" => {
            if condition(object, "Failed").is_some_and(|c| c["status"] == "True") {
                let failed = condition(object, "Failed").unwrap_or(&Value::Null);
                return Some(Readiness::Failed(format!(
                    "{}: {}",
                    failed["reason"].as_str().unwrap_or("Failed"),
                    failed["message"].as_str().unwrap_or("the job failed")
                )));
            }
            if condition(object, "Complete").is_some_and(|c| c["status"] == "True") {
                return Some(Readiness::Ready);
            }
            waiting("running".into())
        }
        "PersistentVolumeClaim" => {
            if status["phase"] == "Bound" {
                Some(Readiness::Ready)
            } else {
                waiting(status["phase"].as_str().unwrap_or("Pending").to_string())
            }
        }
        "CustomResourceDefinition" => {
            if condition(object, "Established").is_some_and(|c| c["status"] == "True") {
                Some(Readiness::Ready)
            } else {
                waiting("not established".into())
            }
        }
        "Service" if object["spec"]["type"] == "LoadBalancer" => {
            if status["loadBalancer"]["ingress"]
                .as_array()
                .is_some_and(|i| !i.is_empty())
            {
                Some(Readiness::Ready)
            } else {
                waiting("no load balancer address".into())
            }
        }
        _ => None,
    }
}

/// The rule for test objects: a Job completes, a Pod succeeds.
pub fn test_readiness(object: &Value) -> Option<Readiness> {
    if object["kind"] != "Pod" {
        return readiness(object);
    }
    match object["status"]["phase"].as_str() {
        Some("Succeeded") => Some(Readiness::Ready),
        Some("Failed") => Some(Readiness::Failed("the pod failed".into())),
        phase => Some(Readiness::Waiting(phase.unwrap_or("Pending").to_string())),
    }
}

/// A Job that its TTL controller removes once it finished: gone counts as done.
pub fn may_vanish(object: &Value) -> bool {
    object["kind"] == "Job" && !object["spec"]["ttlSecondsAfterFinished"].is_null()
}

/// An object's changes as `(object, deleted)`, watched again whenever the
/// watch ends or breaks (each new watch starts with the current state).
fn changes(
    api: Api<DynamicObject>,
    params: WatchParams,
) -> futures::stream::BoxStream<'static, (Value, bool)> {
    futures::stream::unfold(
        (api, params, None::<futures::stream::BoxStream<'static, _>>),
        |(api, params, mut current)| async move {
            loop {
                if let Some(stream) = current.as_mut() {
                    match stream.try_next().await {
                        Ok(Some(WatchEvent::Added(object) | WatchEvent::Modified(object))) => {
                            let value = serde_json::to_value(&object).unwrap_or_default();
                            return Some(((value, false), (api, params, current)));
                        }
                        Ok(Some(WatchEvent::Deleted(object))) => {
                            let value = serde_json::to_value(&object).unwrap_or_default();
                            return Some(((value, true), (api, params, current)));
                        }
                        Ok(Some(_)) => continue,
                        Ok(None) => current = None,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            current = None;
                        }
                    }
                }
                match super::super::cluster::retry::retry(|| api.watch(&params, "0")).await {
                    Ok(stream) => current = Some(stream.boxed()),
                    Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
        },
    )
    .boxed()
}

/// What [`until_ready`] watches besides the object: the pods of a workload,
/// and the ReplicaSets that tell a Deployment's current pods from old ones.
pub struct Pods {
    pub pods: Api<DynamicObject>,
    pub replica_sets: Api<DynamicObject>,
    pub selector: String,
}

/// Watch one object until it is ready (Ok) or fails (Err with the reason),
/// judged by `rule`; with `pods`, a pod of the current rollout that fails
/// in a way waiting will not fix (a crash loop, an image that cannot be
/// pulled) fails it at once. Reports progress through `progress`.
pub async fn until_ready(
    api: Api<DynamicObject>,
    name: String,
    rule: fn(&Value) -> Option<Readiness>,
    pods: Option<Pods>,
    progress: impl Fn(&str) + Send,
) -> Result<(), String> {
    let fields = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(290);
    let objects = changes(api, fields).map(|change| (change, false));
    let pod_changes = match &pods {
        Some(pods) => {
            let params = WatchParams::default().labels(&pods.selector).timeout(290);
            changes(pods.pods.clone(), params)
                .map(|change| (change, true))
                .boxed()
        }
        None => futures::stream::pending().boxed(),
    };
    let mut merged = futures::stream::select(objects, pod_changes);
    let (mut latest, mut failing) = (None::<Value>, std::collections::BTreeMap::new());
    let mut last = String::new();
    while let Some(((value, deleted), is_pod)) = merged.next().await {
        if is_pod {
            let pod = value["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match super::diagnose::pod_failure(&value) {
                Some(_) if !deleted && value["metadata"]["deletionTimestamp"].is_null() => {
                    failing.insert(pod, value);
                }
                _ => {
                    failing.remove(&pod);
                }
            }
        } else {
            match rule(&value) {
                None | Some(Readiness::Ready) => return Ok(()),
                Some(Readiness::Failed(reason)) => return Err(reason),
                Some(Readiness::Waiting(_)) if deleted && may_vanish(&value) => {
                    return Ok(());
                }
                Some(Readiness::Waiting(_)) if deleted => {
                    return Err("it was deleted while waiting".into());
                }
                Some(Readiness::Waiting(text)) => {
                    if text != last {
                        progress(&text);
                        last = text;
                    }
                }
            }
            latest = Some(value);
        }
        if let (Some(object), Some(pods)) = (&latest, &pods)
            && generation_observed(object)
        {
            for (name, pod) in &failing {
                if of_current_rollout(object, pod, &pods.replica_sets).await {
                    let failure = super::diagnose::pod_failure(pod).unwrap_or_default();
                    return Err(format!("pod {name}: {failure}"));
                }
            }
        }
    }
    Err("the watch ended".into())
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
    use serde_json::json;

    #[test]
    fn deployment_rules() {
        let mut deployment = json!({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert_eq!(
            readiness(&deployment),
            Some(Readiness::Waiting(
                "waiting for the rollout to start".into()
            ))
        );
        deployment["status"]["observedGeneration"] = json!(2);
        assert_eq!(readiness(&deployment), Some(Readiness::Ready));
        deployment["status"]["availableReplicas"] = json!(1);
        assert_eq!(
            readiness(&deployment),
            Some(Readiness::Waiting("1/2 ready".into()))
        );
        deployment["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"web-1\" has timed out progressing."}]);
        assert!(matches!(readiness(&deployment), Some(Readiness::Failed(_))));
    }

    #[test]
    fn jobs_claims_and_plain_kinds() {
        let done = json!({"kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(readiness(&done), Some(Readiness::Ready));
        let failed = json!({"kind": "Job", "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}});
        assert_eq!(
            readiness(&failed),
            Some(Readiness::Failed(
                "BackoffLimitExceeded: Job has reached the specified backoff limit".into()
            ))
        );
        assert_eq!(
            readiness(&json!({"kind": "PersistentVolumeClaim", "status": {"phase": "Bound"}})),
            Some(Readiness::Ready)
        );
        assert_eq!(readiness(&json!({"kind": "ConfigMap"})), None);
    }
}
