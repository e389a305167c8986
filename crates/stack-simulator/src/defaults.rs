//! Defaulting as the real API server does it, on create and update and in
//! dry runs (kube-api-subset.md §15), so that diffs against the simulator
//! look like diffs against a real cluster.

use serde_json::{Map, Value, json};

/// Fill in defaults the user did not set. Never overwrites a set field.
pub fn apply(kind: &str, object: &mut Value) {
    match kind {
        "Deployment" => deployment(object),
        "StatefulSet" => stateful_set(object),
        "DaemonSet" => daemon_set(object),
        "ReplicaSet" => {
            default(object, "/spec/replicas", json!(1));
            pod_template(object.pointer_mut("/spec/template"));
        }
        "Job" => job(object),
        "CronJob" => {
            for (pointer, value) in [
                ("/spec/concurrencyPolicy", json!("Allow")),
                ("/spec/suspend", json!(false)),
                ("/spec/successfulJobsHistoryLimit", json!(3)),
                ("/spec/failedJobsHistoryLimit", json!(1)),
            ] {
                default(object, pointer, value);
            }
            default(object, "/spec/jobTemplate/metadata", json!({}));
            default(
                object,
                "/spec/jobTemplate/spec/template/metadata",
                json!({}),
            );
            pod_template(object.pointer_mut("/spec/jobTemplate/spec/template"));
        }
        "Ingress" => default(object, "/status/loadBalancer", json!({})),
        "Pod" => pod_spec(object.pointer_mut("/spec")),
        "Service" => service(object),
        "PersistentVolumeClaim" => {
            default(object, "/spec/volumeMode", json!("Filesystem"));
            default(object, "/status/phase", json!("Pending"));
        }
        "Namespace" => namespace(object),
        "CustomResourceDefinition" => custom_resource_definition(object),
        "Secret" => secret(object),
        _ => {}
    }
    stack_kube::quantity::canonicalize(object);
}

/// Defaults for a status write. The rest of the object is the live one,
/// defaulted when it was written, so only `.status` can gain any: the
/// kind's defaults run on the status alone, which stays in its place.
pub fn apply_to_status(kind: &str, object: &mut Value) {
    let Some(map) = object.as_object_mut() else {
        return apply(kind, object);
    };
    let mut scratch = Map::new();
    if let Some(status) = map.get_mut("status") {
        scratch.insert("status".into(), std::mem::take(status));
    }
    let mut scratch = Value::Object(scratch);
    apply(kind, &mut scratch);
    if let Some(status) = scratch.get_mut("status") {
        map.insert("status".into(), std::mem::take(status));
    }
}

/// Set `pointer` to `value` unless something is there already.
fn default(object: &mut Value, pointer: &str, value: Value) {
    if present(object, pointer) {
        return;
    }
    let mut current = object;
    let mut parts = pointer.split('/').skip(1).peekable();
    while let Some(part) = parts.next() {
        let Some(map) = current.as_object_mut() else {
            return;
        };
        // A pointer segment escapes `/` as `~1` and `~` as `~0` (RFC 6901).
        let key: std::borrow::Cow<str> = if part.contains('~') {
            part.replace("~1", "/").replace("~0", "~").into()
        } else {
            part.into()
        };
        if parts.peek().is_none() {
            map.insert(key.into_owned(), value);
            return;
        }
        // Looked up first: a key is allocated only for a new map.
        if !map.contains_key(key.as_ref()) {
            map.insert(key.to_string(), Value::Object(Map::new()));
        }
        let Some(next) = map.get_mut(key.as_ref()) else {
            return;
        };
        current = next;
    }
}

/// `object.pointer(pointer).is_some()`, without the copy of every segment
/// that `pointer` makes to unescape it, where nothing needs unescaping and
/// no array is crossed.
fn present(object: &Value, pointer: &str) -> bool {
    if pointer.contains('~') || !pointer.starts_with('/') {
        return object.pointer(pointer).is_some();
    }
    let mut current = object;
    for part in pointer.split('/').skip(1) {
        current = match current {
            Value::Object(map) => match map.get(part) {
                Some(next) => next,
                None => return false,
            },
            Value::Array(_) => return object.pointer(pointer).is_some(),
            _ => return false,
        };
    }
    true
}

fn deployment(object: &mut Value) {
    default(object, "/spec/replicas", json!(1));
    default(object, "/spec/revisionHistoryLimit", json!(10));
    default(object, "/spec/progressDeadlineSeconds", json!(600));
    default(object, "/spec/strategy/type", json!("RollingUpdate"));
    if object.pointer("/spec/strategy/type") == Some(&json!("RollingUpdate")) {
        default(
            object,
            "/spec/strategy/rollingUpdate/maxSurge",
            json!("25%"),
        );
        default(
            object,
            "/spec/strategy/rollingUpdate/maxUnavailable",
            json!("25%"),
        );
    }
    pod_template(object.pointer_mut("/spec/template"));
}

fn stateful_set(object: &mut Value) {
    default(object, "/spec/replicas", json!(1));
    default(object, "/spec/podManagementPolicy", json!("OrderedReady"));
    default(object, "/spec/updateStrategy/type", json!("RollingUpdate"));
    if object.pointer("/spec/updateStrategy/type") == Some(&json!("RollingUpdate")) {
        default(
            object,
            "/spec/updateStrategy/rollingUpdate/partition",
            json!(0),
        );
        default(
            object,
            "/spec/updateStrategy/rollingUpdate/maxUnavailable",
            json!(1),
        );
    }
    default(object, "/spec/revisionHistoryLimit", json!(10));
    default(
        object,
        "/spec/persistentVolumeClaimRetentionPolicy/whenDeleted",
        json!("Retain"),
    );
    default(
        object,
        "/spec/persistentVolumeClaimRetentionPolicy/whenScaled",
        json!("Retain"),
    );
    if let Some(templates) = object
        .pointer_mut("/spec/volumeClaimTemplates")
        .and_then(Value::as_array_mut)
    {
        for template in templates {
            default(template, "/apiVersion", json!("v1"));
            default(template, "/kind", json!("PersistentVolumeClaim"));
            default(template, "/spec/volumeMode", json!("Filesystem"));
            default(template, "/status/phase", json!("Pending"));
        }
    }
    pod_template(object.pointer_mut("/spec/template"));
}

fn daemon_set(object: &mut Value) {
    default(object, "/spec/updateStrategy/type", json!("RollingUpdate"));
    if object.pointer("/spec/updateStrategy/type") == Some(&json!("RollingUpdate")) {
        default(
            object,
            "/spec/updateStrategy/rollingUpdate/maxUnavailable",
            json!(1),
        );
        default(
            object,
            "/spec/updateStrategy/rollingUpdate/maxSurge",
            json!(0),
        );
    }
    default(object, "/spec/revisionHistoryLimit", json!(10));
    pod_template(object.pointer_mut("/spec/template"));
}

fn job(object: &mut Value) {
    default(object, "/spec/parallelism", json!(1));
    if object.pointer("/spec/completions").is_none() {
        default(object, "/spec/completions", json!(1));
    }
    default(object, "/spec/backoffLimit", json!(6));
    default(object, "/spec/completionMode", json!("NonIndexed"));
    default(object, "/spec/suspend", json!(false));
    default(object, "/spec/manualSelector", json!(false));
    default(
        object,
        "/spec/podReplacementPolicy",
        json!("TerminatingOrFailed"),
    );
    let uid = object.pointer("/metadata/uid").cloned();
    let name = object.pointer("/metadata/name").cloned();
    if let (Some(uid), Some(name)) = (uid, name)
        && object.pointer("/spec/manualSelector") != Some(&json!(true))
    {
        default(
            object,
            "/spec/selector/matchLabels/batch.kubernetes.io~1controller-uid",
            uid.clone(),
        );
        for (label, value) in [
            ("batch.kubernetes.io~1controller-uid", &uid),
            ("batch.kubernetes.io~1job-name", &name),
            ("controller-uid", &uid),
            ("job-name", &name),
        ] {
            default(
                object,
                &format!("/spec/template/metadata/labels/{label}"),
                value.clone(),
            );
        }
    }
    if object
        .pointer("/spec/template/spec/restartPolicy")
        .is_none()
    {
        default(object, "/spec/template/spec/restartPolicy", json!("Never"));
    }
    pod_template(object.pointer_mut("/spec/template"));
}

fn pod_template(template: Option<&mut Value>) {
    if let Some(template) = template {
        pod_spec(template.pointer_mut("/spec"));
    }
}

fn pod_spec(spec: Option<&mut Value>) {
    let Some(spec) = spec else { return };
    if !spec.is_object() {
        return;
    }
    default(spec, "/restartPolicy", json!("Always"));
    default(spec, "/terminationGracePeriodSeconds", json!(30));
    default(spec, "/dnsPolicy", json!("ClusterFirst"));
    default(spec, "/securityContext", json!({}));
    default(spec, "/schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
            containers.iter_mut().for_each(container);
        }
    }
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for volume in volumes {
            for source in ["configMap", "secret", "projected"] {
                if volume.get(source).is_some() {
                    default(volume, &format!("/{source}/defaultMode"), json!(420));
                }
            }
        }
    }
}

fn container(container: &mut Value) {
    default(
        container,
        "/terminationMessagePath",
        json!("/dev/termination-log"),
    );
    default(container, "/terminationMessagePolicy", json!("File"));
    let image = container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let tag = image.rsplit('/').next().unwrap_or_default();
    let pull = if image.contains('@') || (tag.contains(':') && !tag.ends_with(":latest")) {
        "IfNotPresent"
    } else {
        "Always"
    };
    default(container, "/imagePullPolicy", json!(pull));
    default(container, "/resources", json!({}));
    if let Some(ports) = container.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports {
            default(port, "/protocol", json!("TCP"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(probe) = container.get_mut(probe) {
            default(probe, "/timeoutSeconds", json!(1));
            default(probe, "/periodSeconds", json!(10));
            default(probe, "/successThreshold", json!(1));
            default(probe, "/failureThreshold", json!(3));
            if probe.get("httpGet").is_some() {
                default(probe, "/httpGet/scheme", json!("HTTP"));
            }
        }
    }
}

fn service(object: &mut Value) {
    if let Some(ingress) = object
        .pointer_mut("/status/loadBalancer/ingress")
        .and_then(Value::as_array_mut)
    {
        for entry in ingress.iter_mut().filter(|e| e.get("ip").is_some()) {
            default(entry, "/ipMode", json!("VIP"));
        }
    }
    default(object, "/spec/type", json!("ClusterIP"));
    default(object, "/spec/sessionAffinity", json!("None"));
    let kind = object
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if kind != "ExternalName" {
        if object.pointer("/spec/clusterIP").is_none() {
            let ip = cluster_ip(object);
            default(object, "/spec/clusterIP", json!(ip));
        }
        let ip = object
            .pointer("/spec/clusterIP")
            .cloned()
            .unwrap_or(json!("None"));
        default(object, "/spec/clusterIPs", json!([ip]));
        default(object, "/spec/ipFamilies", json!(["IPv4"]));
        default(object, "/spec/ipFamilyPolicy", json!("SingleStack"));
        default(object, "/spec/internalTrafficPolicy", json!("Cluster"));
    }
    let node_ports = kind == "NodePort" || kind == "LoadBalancer";
    if node_ports {
        default(object, "/spec/externalTrafficPolicy", json!("Cluster"));
    }
    if kind == "LoadBalancer" {
        default(object, "/spec/allocateLoadBalancerNodePorts", json!(true));
    }
    if let Some(ports) = object
        .pointer_mut("/spec/ports")
        .and_then(Value::as_array_mut)
    {
        for (index, port) in ports.iter_mut().enumerate() {
            default(port, "/protocol", json!("TCP"));
            if let Some(number) = port.get("port").cloned() {
                default(port, "/targetPort", number);
            }
            if node_ports {
                default(port, "/nodePort", json!(30000 + index));
            }
        }
    }
    default(object, "/status/loadBalancer", json!({}));
}

/// A stable address from the service's identity, in 10.96.0.0/12.
fn cluster_ip(object: &Value) -> String {
    let identity = format!(
        "{}/{}",
        object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    );
    let hash = identity.bytes().fold(2_166_136_261_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(16_777_619)
    });
    format!("10.96.{}.{}", (hash >> 8) % 256, (hash % 254) + 1)
}

/// A CRD's names complete (`singular`, `listKind`) and its conversion.
fn custom_resource_definition(object: &mut Value) {
    if let Some(kind) = object.pointer("/spec/names/kind").and_then(Value::as_str) {
        let (singular, list) = (kind.to_lowercase(), format!("{kind}List"));
        default(object, "/spec/names/singular", json!(singular));
        default(object, "/spec/names/listKind", json!(list));
    }
    if object.pointer("/spec").is_some() {
        default(object, "/spec/conversion/strategy", json!("None"));
    }
}

fn namespace(object: &mut Value) {
    if let Some(name) = object.pointer("/metadata/name").cloned() {
        default(
            object,
            "/metadata/labels/kubernetes.io~1metadata.name",
            name,
        );
    }
    default(object, "/spec/finalizers", json!(["kubernetes"]));
    default(object, "/status/phase", json!("Active"));
}

/// `stringData` is written into `data` (base64) and dropped; `type: Opaque`.
fn secret(object: &mut Value) {
    use base64::Engine as _;
    default(object, "/type", json!("Opaque"));
    let Some(map) = object.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(string_data)) = map.shift_remove("stringData") {
        let data = map
            .entry("data")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(data) = data.as_object_mut() {
            for (key, value) in string_data {
                let text = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_string);
                data.insert(
                    key,
                    json!(base64::engine::general_purpose::STANDARD.encode(text)),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn escaped_pointer_segments_become_plain_keys() {
        let mut namespace = json!({"kind": "Namespace", "metadata": {"name": "web"}});
        super::apply("Namespace", &mut namespace);
        assert_eq!(
            namespace["metadata"]["labels"],
            json!({"kubernetes.io/metadata.name": "web"})
        );
    }
}
