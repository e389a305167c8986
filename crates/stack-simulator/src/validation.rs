//! What the API server refuses, worded as it words it (held to a real
//! kube-apiserver by `tests/conformance.rs`): bodies its decoder cannot read
//! (400: a string for `replicas`, a number in a ConfigMap's data, a Secret's
//! data that is not base64), and objects its validation rejects (422, with a
//! cause per field: names, label keys and values, annotation keys, config
//! keys, negative replicas, container images, Service ports, Ingress hosts
//! and path types, a selector that misses its template, and changes to
//! immutable fields).

use base64::Engine as _;
use serde_json::{Value, json};

use crate::resources::ResourceType;
use crate::status::ApiError;

const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const NAME_PART: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const CONFIG_KEY: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

/// One refused field: `(field, reason, message)`.
pub type Cause = (String, &'static str, String);

fn invalid(field: impl Into<String>, value: &Value, text: &str) -> Cause {
    (
        field.into(),
        "FieldValueInvalid",
        format!("Invalid value: {value}: {text}"),
    )
}

/// Refuse what the server's decoder cannot read into the typed object.
pub fn decode(resource: &ResourceType, body: &Value) -> Result<(), ApiError> {
    let refuse = |detail: String| {
        ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {detail}",
            kind = resource.kind,
            version = resource.version,
        ))
    };
    let go_type = |value: &Value| match value {
        Value::Number(number) if number.is_f64() => format!("number {number}"),
        Value::Number(_) => "number".to_string(),
        Value::Bool(_) => "bool".to_string(),
        Value::Array(_) => "array".to_string(),
        Value::Object(_) => "object".to_string(),
        _ => "string".to_string(),
    };
    if resource.built_in()
        && ["Deployment", "StatefulSet", "ReplicaSet"].contains(&resource.kind.as_str())
        && let Some(replicas) = body["spec"].get("replicas")
        && !replicas.is_null()
        && replicas.as_i64().is_none_or(|n| i32::try_from(n).is_err())
    {
        return Err(refuse(format!(
            "json: cannot unmarshal {} into Go struct field {}Spec.spec.replicas of type int32",
            go_type(replicas),
            resource.kind
        )));
    }
    if resource.group.is_empty()
        && resource.kind == "ConfigMap"
        && let Some(data) = body["data"].as_object()
        && let Some(value) = data.values().find(|v| !v.is_string() && !v.is_null())
    {
        return Err(refuse(format!(
            "json: cannot unmarshal {} into Go struct field ConfigMap.data of type string",
            go_type(value)
        )));
    }
    if resource.group.is_empty()
        && resource.kind == "Secret"
        && let Some(data) = body["data"].as_object()
    {
        for value in data.values().filter_map(Value::as_str) {
            if let Err(error) = base64::engine::general_purpose::STANDARD.decode(value) {
                let at = match error {
                    base64::DecodeError::InvalidByte(at, _)
                    | base64::DecodeError::InvalidLastSymbol(at, _) => at,
                    _ => value.len(),
                };
                return Err(refuse(format!("illegal base64 data at input byte {at}")));
            }
        }
    }
    Ok(())
}

/// What a kube-apiserver says when asked to create `object` of a built-in
/// kind and it refuses: the message of its 400 or 422; `None` when it
/// accepts it or the kind is not built in.
pub fn refusal(object: &Value) -> Option<String> {
    static BUILT_IN: std::sync::LazyLock<crate::resources::Registry> =
        std::sync::LazyLock::new(Default::default);
    let resource = BUILT_IN.by_kind(object["apiVersion"].as_str()?, object["kind"].as_str()?)?;
    if let Err(error) = decode(resource, object) {
        return Some(error.message);
    }
    let causes = causes(resource, object, None);
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    (!causes.is_empty())
        .then(|| ApiError::invalid_causes(&resource.kind, &resource.group, name, &causes).message)
}

/// Every cause the server would give for this object (`old`: the live
/// object of an update).
pub fn causes(resource: &ResourceType, object: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let metadata = &object["metadata"];
    if let Some(name) = metadata["name"].as_str().filter(|n| !n.is_empty()) {
        name_causes(resource, name, &mut causes);
    }
    map_causes(&metadata["labels"], "metadata.labels", true, &mut causes);
    map_causes(
        &metadata["annotations"],
        "metadata.annotations",
        false,
        &mut causes,
    );
    if !resource.built_in() {
        return causes;
    }
    let template = &object["spec"]["template"];
    map_causes(
        &template["metadata"]["labels"],
        "spec.template.metadata.labels",
        true,
        &mut causes,
    );
    match resource.kind.as_str() {
        "ConfigMap" | "Secret" => {
            for key in object["data"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                if key.is_empty()
                    || !key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
                {
                    causes.push(invalid(format!("data[{key}]"), &json!(key), CONFIG_KEY));
                }
            }
        }
        "Service" => service_causes(object, &mut causes),
        "Ingress" => ingress_causes(object, &mut causes),
        _ => {}
    }
    if let Some(replicas) = object["spec"]["replicas"].as_i64().filter(|n| *n < 0) {
        causes.push(invalid(
            "spec.replicas",
            &json!(replicas),
            "must be greater than or equal to 0",
        ));
    }
    for (index, container) in template["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if container["image"]
            .as_str()
            .is_none_or(|i| i.trim().is_empty())
        {
            let field = format!("spec.template.spec.containers[{index}].image");
            causes.push((field, "FieldValueRequired", "Required value".into()));
        }
    }
    selector_causes(resource, object, &mut causes);
    if let Some(old) = old {
        immutable_causes(resource, object, old, &mut causes);
    }
    causes
}

fn name_causes(resource: &ResourceType, name: &str, causes: &mut Vec<Cause>) {
    let value = json!(name);
    match resource.kind.as_str() {
        "Service" if resource.group.is_empty() && name.contains('.') => {
            causes.push(invalid("metadata.name", &value, "must not contain dots"));
        }
        // Since 1.34 a Service name is an RFC 1123 label (it may start with
        // a digit), no longer an RFC 1035 one: as a Namespace's.
        "Service" | "Namespace" if resource.group.is_empty() => {
            if name.len() > 63 {
                causes.push(invalid(
                    "metadata.name",
                    &value,
                    "must be no more than 63 characters",
                ));
            }
            if !is_label(name) {
                causes.push(invalid("metadata.name", &value, LABEL));
            }
        }
        _ => {
            if name.len() > 253 {
                causes.push(invalid(
                    "metadata.name",
                    &value,
                    "must be no more than 253 characters",
                ));
            }
            if !is_subdomain(name) {
                causes.push(invalid("metadata.name", &value, SUBDOMAIN));
            }
        }
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn is_label(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// Dot-separated labels.
fn is_subdomain(text: &str) -> bool {
    text.split('.').all(is_label)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, possibly empty when `empty`.
fn is_label_value(text: &str) -> bool {
    text.is_empty()
        || (text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && text.starts_with(|c: char| c.is_ascii_alphanumeric())
            && text.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// Label or annotation keys (qualified names) and, for labels, values.
fn map_causes(map: &Value, field: &str, values: bool, causes: &mut Vec<Cause>) {
    for (key, value) in map.as_object().into_iter().flatten() {
        let shown = json!(key);
        let (prefix, name) = key
            .rsplit_once('/')
            .map_or((None, key.as_str()), |(p, n)| (Some(p), n));
        if let Some(prefix) = prefix
            && (prefix.len() > 253 || !is_subdomain(prefix))
        {
            causes.push(invalid(field, &shown, &format!("prefix part {SUBDOMAIN}")));
        }
        if name.is_empty() {
            causes.push(invalid(field, &shown, "name part must be non-empty"));
        } else if name.len() > 63 {
            causes.push(invalid(
                field,
                &shown,
                "name part must be no more than 63 characters",
            ));
        } else if !is_label_value(name) {
            causes.push(invalid(field, &shown, NAME_PART));
        }
        let Some(text) = value.as_str().filter(|_| values) else {
            continue;
        };
        if text.len() > 63 {
            causes.push(invalid(field, value, "must be no more than 63 bytes"));
        } else if !is_label_value(text) {
            causes.push(invalid(field, value, LABEL_VALUE));
        }
    }
}

fn service_causes(object: &Value, causes: &mut Vec<Cause>) {
    let range = "must be between 1 and 65535, inclusive";
    for (index, port) in object["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        for field in ["port", "targetPort"] {
            if let Some(number) = port[field].as_i64().filter(|n| !(1..=65535).contains(n)) {
                causes.push(invalid(
                    format!("spec.ports[{index}].{field}"),
                    &json!(number),
                    range,
                ));
            }
        }
    }
}

fn ingress_causes(object: &Value, causes: &mut Vec<Cause>) {
    for (index, rule) in object["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(host) = rule["host"].as_str().filter(|h| !h.is_empty()) {
            let bare = host.strip_prefix("*.").unwrap_or(host);
            if !is_subdomain(bare) {
                causes.push(invalid(
                    format!("spec.rules[{index}].host"),
                    &json!(host),
                    SUBDOMAIN,
                ));
            }
        }
        for (path_index, path) in rule["http"]["paths"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if path["pathType"].is_null() {
                causes.push((
                    format!("spec.rules[{index}].http.paths[{path_index}].pathType"),
                    "FieldValueRequired",
                    "Required value: pathType must be specified".into(),
                ));
            }
        }
    }
}

fn selector_causes(resource: &ResourceType, object: &Value, causes: &mut Vec<Cause>) {
    if !["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"].contains(&resource.kind.as_str()) {
        return;
    }
    let Some(selector) = object["spec"]["selector"]["matchLabels"].as_object() else {
        causes.push((
            "spec.selector".into(),
            "FieldValueRequired",
            "Required value".into(),
        ));
        return;
    };
    let labels = &object["spec"]["template"]["metadata"]["labels"];
    if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        let shown = if labels.is_object() {
            labels.clone()
        } else {
            json!({})
        };
        causes.push(invalid(
            "spec.template.metadata.labels",
            &shown,
            "`selector` does not match template `labels`",
        ));
    }
}

fn immutable_causes(resource: &ResourceType, new: &Value, old: &Value, causes: &mut Vec<Cause>) {
    let changed = |pointer: &str| new.pointer(pointer) != old.pointer(pointer);
    let immutable = |field: &str, pointer: &str| {
        invalid(
            field,
            new.pointer(pointer).unwrap_or(&Value::Null),
            "field is immutable",
        )
    };
    match resource.kind.as_str() {
        "Job" if changed("/spec/template") => {
            causes.push(immutable("spec.template", "/spec/template"));
        }
        "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet" | "Job"
            if changed("/spec/selector") =>
        {
            causes.push(immutable("spec.selector", "/spec/selector"));
        }
        "Service" if changed("/spec/clusterIP") && !old["spec"]["clusterIP"].is_null() => {
            let shown = json!([new["spec"]["clusterIP"]]);
            causes.push(invalid(
                "spec.clusterIPs[0]",
                &shown,
                "may not change once set",
            ));
        }
        "ConfigMap" | "Secret" if old["immutable"] == json!(true) => {
            for field in ["data", "binaryData"] {
                if changed(&format!("/{field}")) {
                    let text = "Forbidden: field is immutable when `immutable` is set";
                    causes.push((field.into(), "FieldValueForbidden", text.into()));
                }
            }
        }
        _ => {}
    }
    if resource.kind == "StatefulSet" && changed("/spec/serviceName") {
        causes.push(immutable("spec.serviceName", "/spec/serviceName"));
    }
}
