//! Why an object is not ready, in words a person at 2 a.m. can act on: the
//! object's failing conditions, the reason each of its failing pods gives,
//! and the most recent events about them — never just "timed out".
//! Gathered only when something failed: one GET of the object, one LIST of
//! its pods, one LIST of the namespace's events.

use kube::api::{Api, ListParams};
use serde_json::Value;

use crate::cluster::retry::retry;

/// Container states that will not clear up by waiting.
const FAILING_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// How many events are shown.
const EVENTS: usize = 5;

/// The `k=v,…` selector of a workload's pods (`spec.selector.matchLabels`),
/// or of a Job's pods.
pub(crate) fn pod_selector(object: &Value) -> Option<String> {
    if object["kind"] == "Job" {
        let name = object["metadata"]["name"].as_str()?;
        return Some(format!("batch.kubernetes.io/job-name={name}"));
    }
    let labels = object["spec"]["selector"]["matchLabels"].as_object()?;
    let terms: Vec<String> = labels
        .iter()
        .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or_default()))
        .collect();
    (!terms.is_empty()).then(|| terms.join(","))
}

/// A pod's failure that waiting will not fix: `container web: CrashLoopBackOff: …`.
pub(crate) fn pod_failure(pod: &Value) -> Option<String> {
    let statuses = pod["status"]["containerStatuses"].as_array()?;
    statuses.iter().find_map(|status| {
        let waiting = &status["state"]["waiting"];
        let reason = waiting["reason"].as_str()?;
        FAILING_REASONS.contains(&reason).then(|| {
            let mut text = format!(
                "container {}: {reason}",
                status["name"].as_str().unwrap_or("?")
            );
            if let Some(message) = waiting["message"].as_str() {
                text.push_str(&format!(": {message}"));
            }
            let restarts = status["restartCount"].as_u64().unwrap_or(0);
            if restarts > 0 {
                text.push_str(&format!(" ({restarts} restarts)"));
            }
            text
        })
    })
}

/// Conditions that are not `True` (or that report a failure), as
/// `Progressing=False ProgressDeadlineExceeded: …`.
fn conditions(object: &Value) -> Vec<String> {
    let Some(conditions) = object["status"]["conditions"].as_array() else {
        return Vec::new();
    };
    conditions
        .iter()
        .filter(|c| c["status"] != "True" || c["type"] == "Failed")
        .map(|c| {
            let mut text = format!(
                "{}={}",
                c["type"].as_str().unwrap_or("?"),
                c["status"].as_str().unwrap_or("?")
            );
            if let Some(reason) = c["reason"].as_str() {
                text.push_str(&format!(" {reason}"));
            }
            if let Some(message) = c["message"].as_str() {
                text.push_str(&format!(": {message}"));
            }
            text
        })
        .collect()
}

/// The lines that explain an object: its conditions, failing pods, events.
pub async fn explain(
    client: &kube::Client,
    api: &Api<kube::api::DynamicObject>,
    object: &Value,
) -> Vec<String> {
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = object["metadata"]["namespace"].as_str();
    let live = retry(|| api.get_opt(name))
        .await
        .ok()
        .flatten()
        .and_then(|o| serde_json::to_value(o).ok())
        .unwrap_or_else(|| object.clone());
    let mut lines: Vec<String> = conditions(&live)
        .into_iter()
        .map(|c| format!("condition {c}"))
        .collect();
    let Some(namespace) = namespace else {
        return lines;
    };
    let mut involved = vec![name.to_string()];
    for pod in pods_of(client, namespace, &live).await {
        let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
        involved.push(pod_name.to_string());
        if let Some(failure) = pod_failure(&pod) {
            lines.push(format!("pod {pod_name}: {failure}"));
        } else if pod["status"]["phase"] == "Failed" {
            lines.push(format!("pod {pod_name}: phase Failed"));
        }
    }
    lines.extend(events(client, namespace, &involved).await);
    lines
}

/// The pods of a workload or a Job (by its selector); none when it has no
/// selector or they cannot be read.
async fn pods_of(client: &kube::Client, namespace: &str, object: &Value) -> Vec<Value> {
    let Some(selector) = pod_selector(object) else {
        return Vec::new();
    };
    let pods = crate::cluster::apis::pods(client, namespace);
    let params = ListParams::default().labels(&selector);
    match retry(|| pods.list(&params)).await {
        Ok(list) => list
            .items
            .iter()
            .filter_map(|p| serde_json::to_value(p).ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The latest events about the named objects of a namespace.
async fn events(client: &kube::Client, namespace: &str, involved: &[String]) -> Vec<String> {
    let api = crate::cluster::apis::events(client, namespace);
    let params = ListParams::default();
    let Ok(list) = retry(|| api.list(&params)).await else {
        return Vec::new();
    };
    let mut events: Vec<Value> = list
        .items
        .iter()
        .filter_map(|e| serde_json::to_value(e).ok())
        .filter(|e| {
            e["involvedObject"]["name"]
                .as_str()
                .is_some_and(|n| involved.iter().any(|i| i == n))
        })
        .collect();
    events.sort_by(|a, b| {
        a["lastTimestamp"]
            .as_str()
            .unwrap_or_default()
            .cmp(b["lastTimestamp"].as_str().unwrap_or_default())
    });
    let skip = events.len().saturating_sub(EVENTS);
    events
        .iter()
        .skip(skip)
        .map(|e| {
            format!(
                "event {} {} {}/{}: {}",
                e["type"].as_str().unwrap_or("Normal"),
                e["reason"].as_str().unwrap_or("?"),
                e["involvedObject"]["kind"].as_str().unwrap_or("?"),
                e["involvedObject"]["name"].as_str().unwrap_or("?"),
                e["message"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// The last lines of the logs of a Job's (or a Pod's) pods, where the
/// cluster has them.
pub(crate) async fn log_tail(
    client: &kube::Client,
    object: &Value,
    lines: i64,
) -> Vec<(String, String)> {
    let Some(namespace) = object["metadata"]["namespace"].as_str() else {
        return Vec::new();
    };
    let pods = crate::cluster::apis::pods(client, namespace);
    let names: Vec<String> = if object["kind"] == "Pod" {
        vec![
            object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ]
    } else {
        let pods = pods_of(client, namespace, object).await;
        pods.iter()
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    };
    let params = kube::api::LogParams {
        tail_lines: Some(lines),
        ..Default::default()
    };
    let mut logs = Vec::new();
    for name in names {
        if let Ok(text) = retry(|| pods.logs(&name, &params)).await {
            logs.push((name, text));
        }
    }
    logs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crash_looping_and_image_pull_pods_fail() {
        let pod = json!({"status": {"containerStatuses": [{"name": "web", "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}}]}});
        assert_eq!(
            pod_failure(&pod).as_deref(),
            Some("container web: CrashLoopBackOff: back-off 40s (4 restarts)")
        );
        let creating = json!({"status": {"containerStatuses": [{"name": "web",
            "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(pod_failure(&creating), None);
    }

    #[test]
    fn selectors_of_workloads_and_jobs() {
        let deployment =
            json!({"kind": "Deployment", "spec": {"selector": {"matchLabels": {"app": "web"}}}});
        assert_eq!(pod_selector(&deployment).as_deref(), Some("app=web"));
        let job = json!({"kind": "Job", "metadata": {"name": "smoke"}});
        assert_eq!(
            pod_selector(&job).as_deref(),
            Some("batch.kubernetes.io/job-name=smoke")
        );
    }

    #[test]
    fn failing_conditions_are_worded() {
        let object = json!({"status": {"conditions": [
            {"type": "Available", "status": "True"},
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "timed out"}]}});
        assert_eq!(
            conditions(&object),
            vec!["Progressing=False ProgressDeadlineExceeded: timed out"]
        );
    }
}
