//! `chart: builtin:app`: one container image, its ports, environment,
//! secrets, probes and volumes, from a few values. The chart's templates
//! and schema ship inside the binary (`charts/app/`) and render like any
//! local chart; what templates do badly is worked out here first, into the
//! `app` the templates read: port names by Kubernetes' rules, the
//! environment split into a ConfigMap and a Secret, probes, resources,
//! labels, volumes.

use serde_json::{Map, Value, json};

use crate::diagnostic::Span;

/// The chart's files, by path within it.
pub(crate) const FILES: &[(&str, &str)] = &[
    ("chart.yaml", include_str!("../../../charts/app/chart.yaml")),
    (
        "values.yaml",
        include_str!("../../../charts/app/values.yaml"),
    ),
    (
        "values.schema.json",
        include_str!("../../../charts/app/values.schema.json"),
    ),
    (
        "templates/configmap.yaml",
        include_str!("../../../charts/app/templates/configmap.yaml"),
    ),
    (
        "templates/deployment.yaml",
        include_str!("../../../charts/app/templates/deployment.yaml"),
    ),
    (
        "templates/secret.yaml",
        include_str!("../../../charts/app/templates/secret.yaml"),
    ),
    (
        "templates/service.yaml",
        include_str!("../../../charts/app/templates/service.yaml"),
    ),
    (
        "templates/volumes.yaml",
        include_str!("../../../charts/app/templates/volumes.yaml"),
    ),
];

/// The values `builtin:app` takes (its schema's properties).
pub const KEYS: &[&str] = &[
    "image",
    "replicas",
    "ports",
    "env",
    "secretEnv",
    "healthCheckPath",
    "resources",
    "serviceType",
    "command",
    "args",
    "volumes",
    "keepConfigVersions",
    "component",
    "partOf",
    "imagePullSecrets",
];

/// The built-in charts, by the name after `builtin:`.
pub const BUILTIN: &[&str] = &["app"];

/// Environment keys that hold secrets: the name ends with one of these
/// (after `_`), or is one of them, in any case.
pub const SENSITIVE_SUFFIXES: &[&str] = &[
    "API_KEY",
    "KEY",
    "SECRET",
    "PASSWORD",
    "PASS",
    "TOKEN",
    "CREDENTIALS",
];

/// Whether an environment variable's name looks like it holds a secret.
pub fn is_sensitive(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SENSITIVE_SUFFIXES
        .iter()
        .any(|suffix| upper == *suffix || upper.ends_with(&format!("_{suffix}")))
}

/// Container ports that usually speak HTTP: named `http`, `http-2`, …
const HTTP_PORTS: &[u64] = &[
    80, 443, 3000, 4000, 5000, 8000, 8008, 8080, 8081, 8443, 8888, 9000,
];

/// What is wrong with an app's values, and where.
#[derive(Debug)]
pub struct AppProblem {
    pub message: String,
    pub hint: String,
    /// The value's path (JSON pointer segments), to be located.
    pub path: Vec<String>,
}

fn problem(message: String, hint: &str, path: &[&str]) -> AppProblem {
    AppProblem {
        message,
        hint: hint.to_string(),
        path: path.iter().map(|s| (*s).to_string()).collect(),
    }
}

/// Kubernetes' rule for a port name (an IANA service name).
pub fn port_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 15 {
        return Some("at most 15 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Some("lowercase letters, digits and '-' only");
    }
    if !name.chars().any(|c| c.is_ascii_lowercase()) {
        return Some("at least one letter");
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Some("no '-' at either end or next to another");
    }
    None
}

/// One port of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Port {
    name: Option<String>,
    /// The Service's port.
    service: u64,
    target: u64,
    protocol: String,
}

/// A `ports` item: `8080`, `"8080:3000"`, `"53/udp"`, or a map.
fn parse_port(item: &Value) -> Option<Port> {
    let protocol = |text: Option<&str>| text.unwrap_or("TCP").to_ascii_uppercase();
    let in_range = |n: u64| (1..=65_535).contains(&n).then_some(n);
    match item {
        Value::Number(number) => {
            let port = in_range(number.as_u64()?)?;
            Some(Port {
                name: None,
                service: port,
                target: port,
                protocol: protocol(None),
            })
        }
        Value::String(text) => {
            let (ports, proto) = match text.split_once('/') {
                Some((ports, proto)) => (ports, Some(proto)),
                None => (text.as_str(), None),
            };
            let (port, target) = match ports.split_once(':') {
                Some((port, target)) => (port.parse().ok()?, target.parse().ok()?),
                None => {
                    let port = ports.parse().ok()?;
                    (port, port)
                }
            };
            Some(Port {
                name: None,
                service: in_range(port)?,
                target: in_range(target)?,
                protocol: protocol(proto),
            })
        }
        Value::Object(map) => {
            let port = in_range(map.get("port")?.as_u64()?)?;
            Some(Port {
                name: map.get("name").and_then(Value::as_str).map(str::to_string),
                service: port,
                target: match map.get("targetPort") {
                    Some(target) => in_range(target.as_u64()?)?,
                    None => port,
                },
                protocol: protocol(map.get("protocol").and_then(Value::as_str)),
            })
        }
        _ => None,
    }
}

/// The app's ports, named: a given name must follow the rule; the others
/// are `http`, `http-2`, … for HTTP-like container ports and
/// `tcp-<port>` (`udp-<port>`) for the rest, never one already taken.
fn named_ports(items: &[Value]) -> Result<Vec<Port>, AppProblem> {
    let mut ports = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = index.to_string();
        let Some(port) = parse_port(item) else {
            return Err(problem(
                format!("`ports[{index}]` is not a port: {item}"),
                "a port is 1–65535: `8080`, `\"8080:3000\"` (Service port to container port), `\"53/udp\"`, or `{port: 8080, name: web}`",
                &["ports", &at],
            ));
        };
        if let Some(name) = &port.name
            && let Some(rule) = port_name_problem(name)
        {
            return Err(problem(
                format!("port name `{name}` breaks Kubernetes' rule for port names: {rule}"),
                "a port name is at most 15 characters of lowercase letters, digits and '-', with a letter, no '-' at either end or twice in a row",
                &["ports", &at, "name"],
            ));
        }
        let clash = ports.iter().any(|p: &Port| {
            (p.service == port.service && p.protocol == port.protocol)
                || (port.name.is_some() && p.name == port.name)
        });
        if clash {
            return Err(problem(
                format!(
                    "`ports[{index}]` repeats {} {}/{}",
                    if port.name.is_some() { "a name or" } else { "" },
                    port.service,
                    port.protocol.to_ascii_lowercase()
                )
                .replace("  ", " "),
                "each Service port (and name) appears once",
                &["ports", &at],
            ));
        }
        ports.push(port);
    }
    let taken: Vec<String> = ports.iter().filter_map(|p| p.name.clone()).collect();
    let mut used = taken;
    let mut http = 0;
    for port in ports.iter_mut().filter(|p| p.name.is_none()) {
        let name = if port.protocol == "TCP" && HTTP_PORTS.contains(&port.target) {
            loop {
                http += 1;
                let name = if http == 1 {
                    "http".to_string()
                } else {
                    format!("http-{http}")
                };
                if !used.contains(&name) {
                    break name;
                }
            }
        } else {
            format!("{}-{}", port.protocol.to_ascii_lowercase(), port.target)
        };
        used.push(name.clone());
        port.name = Some(name);
    }
    Ok(ports)
}

/// A container image reference's problem (an error), or whether it has
/// neither tag nor digest (a warning: it runs whatever `latest` is).
pub fn image_problem(image: &str) -> Result<bool, String> {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let valid = digest.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64
                && hex
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        });
        if !valid {
            return Err(format!(
                "`{digest}` is not a digest (sha256: and 64 hex digits)"
            ));
        }
    }
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match rest[last_slash..].rfind(':') {
        Some(at) => (&rest[..last_slash + at], Some(&rest[last_slash + at + 1..])),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let valid = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with(['.', '-'])
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return Err(format!(
                "tag `{tag}` is not valid (letters, digits, '_', '.', '-'; at most 128)"
            ));
        }
    }
    let mut components = path.split('/').peekable();
    let mut first = true;
    while let Some(component) = components.next() {
        // The first of several components may be a registry (`host:port`).
        let registry = first
            && components.peek().is_some()
            && (component.contains(['.', ':']) || component == "localhost");
        first = false;
        if registry {
            let valid = !component.is_empty()
                && component
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
            if !valid {
                return Err(format!("registry `{component}` is not a host name"));
            }
            continue;
        }
        let valid = !component.is_empty()
            && component.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
            && component.starts_with(|c: char| c.is_ascii_alphanumeric())
            && component.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid {
            return Err(format!(
                "`{component}` is not a repository name (lowercase letters, digits, '.', '_', '-')"
            ));
        }
    }
    Ok(tag.is_none() && digest.is_none())
}

/// Keys of `values` the chart does not know, with the nearest known one.
pub fn unknown_keys(values: &Value, known: &[&str]) -> Vec<(String, Option<String>)> {
    values
        .as_object()
        .into_iter()
        .flat_map(|map| map.keys())
        .filter(|key| !known.contains(&key.as_str()))
        .map(|key| {
            let nearest = crate::suggest::nearest(key, known.iter().copied()).map(str::to_string);
            (key.clone(), nearest)
        })
        .collect()
}

/// A value of `env` as the text a ConfigMap holds.
fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// The environment split: the ConfigMap's, the Secret's, and the `env`
/// keys moved to the Secret because they look sensitive.
fn split_env(values: &Value) -> (Map<String, Value>, Map<String, Value>, Vec<String>) {
    let mut plain = Map::new();
    let mut secret = Map::new();
    let mut moved = Vec::new();
    for (key, value) in values["env"].as_object().into_iter().flatten() {
        if is_sensitive(key) {
            secret.insert(key.clone(), Value::String(text(value)));
            moved.push(key.clone());
        } else {
            plain.insert(key.clone(), Value::String(text(value)));
        }
    }
    for (key, value) in values["secretEnv"].as_object().into_iter().flatten() {
        secret.insert(key.clone(), Value::String(text(value)));
    }
    (plain, secret, moved)
}

/// What `stack` warns of in an app's values (each with its value's path):
/// `env` keys that look sensitive (moved to the Secret), an image without
/// a tag.
pub fn warnings(values: &Value) -> Vec<(String, Vec<String>)> {
    let (_, _, moved) = split_env(values);
    let mut out: Vec<(String, Vec<String>)> = moved
        .into_iter()
        .map(|key| {
            (
                format!("`env.{key}` looks like a secret: it goes into the app's Secret, not its ConfigMap (put it under `secretEnv` to say so)"),
                vec!["env".to_string(), key],
            )
        })
        .collect();
    if let Some(image) = values["image"].as_str()
        && image_problem(image) == Ok(true)
    {
        out.push((
            format!("image `{image}` has no tag: it runs whatever `latest` is when a pod starts"),
            vec!["image".to_string()],
        ));
    }
    out
}

/// Kubernetes' rule for a label value: at most 63 characters of letters,
/// digits, '-', '_', '.', starting and ending with a letter or digit.
fn is_label_value(text: &str) -> bool {
    text.len() <= 63
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The `app` the chart's templates read, from the release's merged values.
pub fn prepare(name: &str, namespace: &str, values: &Value) -> Result<Value, AppProblem> {
    let image = values["image"].as_str().unwrap_or_default();
    if let Err(message) = image_problem(image) {
        return Err(problem(
            format!("image `{image}`: {message}"),
            "write REGISTRY/PATH:TAG, for example ghcr.io/acme/web:1.4.2",
            &["image"],
        ));
    }
    let ports = named_ports(values["ports"].as_array().map_or(&[][..], Vec::as_slice))?;
    let version = image
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .map(|(_, tag)| tag.split('@').next().unwrap_or(tag).to_string());
    let mut labels = json!({
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": values["component"].as_str().unwrap_or("app"),
        "app.kubernetes.io/part-of": values["partOf"].as_str().unwrap_or(namespace),
    });
    if let Some(version) = version.filter(|v| is_label_value(v)) {
        labels["app.kubernetes.io/version"] = version.into();
    }
    let (env, secret_env, _) = split_env(values);
    let first = ports
        .iter()
        .find(|p| p.name.as_deref() == Some("http"))
        .or(ports.first());
    // `healthCheckPath`: a path, an HTTP probe; `""` (the default), a TCP
    // probe on the first port; gone (`null` removes it), no probe.
    let probe = match (values.get("healthCheckPath").and_then(Value::as_str), first) {
        (Some(""), Some(port)) => json!({"tcpSocket": {"port": port.name}}),
        (Some(path), Some(port)) => json!({"httpGet": {"path": path, "port": port.name}}),
        (Some(path), None) if !path.is_empty() => {
            return Err(problem(
                "`healthCheckPath` needs a port to probe, and `ports` is empty".into(),
                "add the port the app listens on, or set `healthCheckPath: null`",
                &["healthCheckPath"],
            ));
        }
        _ => Value::Null,
    };
    let resources = &values["resources"];
    let mut requests = Map::new();
    for key in ["cpu", "memory"] {
        if let Some(value) = resources.get(key).filter(|v| !v.is_null()) {
            requests.insert(key.into(), Value::String(text(value)));
        }
    }
    let resources = if requests.is_empty() {
        Value::Null
    } else {
        let limits = requests
            .get("memory")
            .map_or_else(|| json!({}), |memory| json!({"memory": memory}));
        json!({"requests": requests, "limits": limits})
    };
    let volumes: Vec<Value> = values["volumes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(volume, spec)| {
            json!({
                "name": volume,
                "claim": format!("{name}-{volume}"),
                "size": spec["size"],
                "mountPath": spec["mountPath"],
                "accessMode": spec["accessMode"].as_str().unwrap_or("ReadWriteOnce"),
                "storageClass": spec["storageClass"],
            })
        })
        .collect();
    let pull_secrets: Vec<Value> = values["imagePullSecrets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|secret| json!({"name": secret}))
        .collect();
    Ok(json!({
        "name": name,
        "labels": labels,
        "selector": {
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/instance": name,
        },
        "ports": ports.iter().map(|p| json!({
            "name": p.name,
            "port": p.service,
            "targetPort": p.target,
            "protocol": p.protocol,
        })).collect::<Vec<_>>(),
        "env": env,
        "secretEnv": secret_env,
        "configName": format!("{name}-env"),
        "secretName": format!("{name}-secret-env"),
        "probe": probe,
        "resources": resources,
        "volumes": volumes,
        "imagePullSecrets": pull_secrets,
    }))
}

/// Where an app problem's value was set, if it can be told.
pub(crate) fn locate(release: &crate::load::release::Release, path: &[String]) -> Option<Span> {
    (1..=path.len())
        .rev()
        .find_map(|length| release.locate(&path[..length]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(items: &Value) -> Vec<String> {
        named_ports(items.as_array().unwrap())
            .unwrap()
            .into_iter()
            .map(|p| p.name.unwrap())
            .collect()
    }

    #[test]
    fn the_keys_are_the_schemas() {
        let schema: Value = serde_json::from_str(
            FILES
                .iter()
                .find(|(path, _)| *path == "values.schema.json")
                .unwrap()
                .1,
        )
        .unwrap();
        let mut declared: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut keys = KEYS.to_vec();
        declared.sort_unstable();
        keys.sort_unstable();
        assert_eq!(declared, keys);
    }

    #[test]
    fn ports_are_named_http_first_then_by_protocol_and_port() {
        assert_eq!(
            names(&json!([8080, "9090", "3000:3000", "53/udp", {"port": 5432}])),
            ["http", "tcp-9090", "http-2", "udp-53", "tcp-5432"]
        );
        assert_eq!(
            names(&json!([{"port": 80, "name": "http"}, 8080])),
            ["http", "http-2"]
        );
        let twenty: Vec<Value> = (0..20).map(|i| json!(10_000 + i)).collect();
        let named = names(&Value::Array(twenty));
        assert_eq!(named.len(), 20);
        assert!(named.iter().all(|n| port_name_problem(n).is_none()));
    }

    #[test]
    fn bad_ports_and_names_are_refused_naming_the_rule() {
        let refused = |items: Value| named_ports(items.as_array().unwrap()).unwrap_err().message;
        assert!(refused(json!([70000])).contains("is not a port"));
        assert!(refused(json!([8080, 8080])).contains("repeats"));
        assert!(
            refused(json!([{"port": 80, "name": "a-very-long-port-name"}]))
                .contains("at most 15 characters")
        );
        assert!(refused(json!([{"port": 80, "name": "Web"}])).contains("lowercase"));
        assert!(refused(json!([{"port": 80, "name": "8080"}])).contains("at least one letter"));
    }

    #[test]
    fn images_are_checked_and_a_missing_tag_is_told() {
        assert_eq!(image_problem("ghcr.io/acme/web:1.4.2"), Ok(false));
        assert_eq!(image_problem("localhost:5000/web"), Ok(true));
        assert_eq!(image_problem("nginx"), Ok(true));
        let digest = format!("nginx@sha256:{}", "a".repeat(64));
        assert_eq!(image_problem(&digest), Ok(false));
        assert!(image_problem("Acme/Web:1").is_err());
        assert!(image_problem("web:bad tag").is_err());
        assert!(image_problem("web@sha256:xyz").is_err());
    }

    #[test]
    fn sensitive_names_end_with_a_secret_word() {
        for name in [
            "STRIPE_API_KEY",
            "db_password",
            "TOKEN",
            "AWS_CREDENTIALS",
            "SMTP_PASS",
        ] {
            assert!(is_sensitive(name), "{name}");
        }
        for name in ["LOG_LEVEL", "KEYBOARD", "PASSWORDLESS", "MONKEY"] {
            assert!(!is_sensitive(name), "{name}");
        }
    }
}
