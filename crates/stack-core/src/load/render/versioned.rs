//! Configuration that rolls out when it changes (kapp's versioned config):
//! a ConfigMap or Secret annotated `stack.dev/versioned: "true"` is named
//! `<name>-<hash of its content>`, and the release's pod templates that
//! refer to `<name>` refer to that version instead. A change of content
//! is a new object and a new pod template — a rollout — and a rollback
//! restores the old version exactly. The versions deployed before stay
//! beside the new one (`stack.dev/keep-versions`, default 3, counting the
//! current one) until a later deploy leaves them out, when they are pruned.

use std::collections::HashMap;

use serde_json::Value;
use sha2::Digest as _;

use stack_kube::object::Object;

/// The opt-in annotation.
pub const VERSIONED: &str = "stack.dev/versioned";
/// How many versions are kept, the current one counted.
pub const KEEP: &str = "stack.dev/keep-versions";
/// The name a version was made from.
pub const BASE: &str = "stack.dev/versioned-name";

const DEFAULT_KEEP: usize = 3;

fn is_versioned(object: &Object) -> bool {
    matches!(object.kind.as_str(), "ConfigMap" | "Secret")
        && object.body["metadata"]["annotations"][VERSIONED] == "true"
}

/// Whether a release's render has versioned configuration.
pub fn any(objects: &[Object]) -> bool {
    objects.iter().any(is_versioned)
}

/// The first 7 hex digits of the SHA-256 of what the object holds.
fn content_hash(body: &Value) -> String {
    let content = serde_json::json!([
        body["type"],
        body["data"],
        body["stringData"],
        body["binaryData"]
    ]);
    let digest = sha2::Sha256::digest(content.to_string().as_bytes());
    stack_kube::hex::lower(&digest)[..7].to_string()
}

/// Name every versioned ConfigMap and Secret of a release by its content
/// and point the pod templates of `objects` and `tests` at them.
pub(crate) fn apply(objects: &mut [Object], tests: &mut [Object]) {
    let mut renamed: HashMap<(String, Option<String>, String), String> = HashMap::new();
    for object in objects.iter_mut().filter(|o| is_versioned(o)) {
        let base = object.name.clone();
        let name = format!("{base}-{}", content_hash(&object.body));
        object.body["metadata"]["annotations"][BASE] = base.clone().into();
        object.body["metadata"]["name"] = name.clone().into();
        object.name.clone_from(&name);
        renamed.insert((object.kind.clone(), object.namespace.clone(), base), name);
    }
    if renamed.is_empty() {
        return;
    }
    for object in objects.iter_mut().chain(tests.iter_mut()) {
        let namespace = object.namespace.clone();
        let rename = |kind: &str, name: &mut Value| {
            if let Some(current) = name.as_str()
                && let Some(new) =
                    renamed.get(&(kind.to_string(), namespace.clone(), current.to_string()))
            {
                *name = new.clone().into();
            }
        };
        if let Some(pod) = pod_spec(&mut object.body, &object.kind) {
            rewrite(pod, &rename);
        }
    }
}

/// The pod spec of a workload (or a Pod).
fn pod_spec<'a>(body: &'a mut Value, kind: &str) -> Option<&'a mut Value> {
    let pointer = match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => "/spec/template/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        "Pod" => "/spec",
        _ => return None,
    };
    body.pointer_mut(pointer)
}

/// Every reference of a pod spec to a ConfigMap or Secret, renamed. (Read
/// with `pointer_mut`: indexing a JSON map mutably would add the fields
/// it looks for.)
fn rewrite(pod: &mut Value, rename: &impl Fn(&str, &mut Value)) {
    let at = |value: &mut Value, kind: &str, pointer: &str| {
        if let Some(name) = value.pointer_mut(pointer) {
            rename(kind, name);
        }
    };
    for field in ["containers", "initContainers"] {
        let Some(containers) = pod.get_mut(field).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers {
            if let Some(sources) = container.get_mut("envFrom").and_then(Value::as_array_mut) {
                for source in sources {
                    at(source, "ConfigMap", "/configMapRef/name");
                    at(source, "Secret", "/secretRef/name");
                }
            }
            if let Some(variables) = container.get_mut("env").and_then(Value::as_array_mut) {
                for variable in variables {
                    at(variable, "ConfigMap", "/valueFrom/configMapKeyRef/name");
                    at(variable, "Secret", "/valueFrom/secretKeyRef/name");
                }
            }
        }
    }
    if let Some(volumes) = pod.get_mut("volumes").and_then(Value::as_array_mut) {
        for volume in volumes {
            at(volume, "ConfigMap", "/configMap/name");
            at(volume, "Secret", "/secret/secretName");
            if let Some(sources) = volume
                .pointer_mut("/projected/sources")
                .and_then(Value::as_array_mut)
            {
                for source in sources {
                    at(source, "ConfigMap", "/configMap/name");
                    at(source, "Secret", "/secret/name");
                }
            }
        }
    }
    if let Some(secrets) = pod
        .get_mut("imagePullSecrets")
        .and_then(Value::as_array_mut)
    {
        for secret in secrets {
            at(secret, "Secret", "/name");
        }
    }
}

/// The versions of a release's configuration deployed before, to keep
/// beside the rendered ones: for each versioned object, the other versions
/// the deployed revision holds (newest first, as it stores them), up to
/// its `keep-versions` less one.
pub(crate) fn kept(objects: &[Object], deployed: &[Value]) -> Vec<Object> {
    let mut out = Vec::new();
    for object in objects.iter().filter(|o| is_versioned(o)) {
        let annotations = &object.body["metadata"]["annotations"];
        let keep = annotations[KEEP]
            .as_str()
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(DEFAULT_KEEP)
            .max(1);
        let base = &annotations[BASE];
        out.extend(
            deployed
                .iter()
                .filter(|body| {
                    body["kind"].as_str() == Some(object.kind.as_str())
                        && body["metadata"]["namespace"].as_str() == object.namespace.as_deref()
                        && body["metadata"]["annotations"][BASE] == *base
                        && body["metadata"]["name"].as_str() != Some(object.name.as_str())
                })
                .take(keep - 1)
                .map(|body| Object::from_body(body, "a version deployed before")),
        );
    }
    out
}
