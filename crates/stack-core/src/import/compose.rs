//! `stack import compose`: a Compose project into a stack of `builtin:app`
//! releases. The compose specification's service keys that people use map
//! onto the app chart's values (image, ports, environment and env_file,
//! depends_on, healthcheck, deploy.replicas and resources, named volumes,
//! command and entrypoint, profiles); `${VAR}` interpolation is done at
//! import (`${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
//! `${VAR?error}`, `$VAR`, `$$`). What cannot be deployed from an image
//! (`build` alone, bind mounts, port ranges) is refused and named; what
//! has no meaning in a cluster (networks, restart, container_name) is
//! noted. Environment values whose names look sensitive go into a
//! separate tree, for the caller to encrypt — they are never written as
//! plaintext. A service name used as a host in a value (`db:5432`,
//! `postgres://db/app`) becomes the in-cluster name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value, json};

use super::Converted;
use crate::diagnostic::{SourceFile, Span};
use crate::load::config::ConfigError;
use crate::load::render::app::is_sensitive;
use crate::yaml::{Node, NodeKind};

const TOP_KEYS: &[&str] = &[
    "version", "name", "services", "networks", "volumes", "configs", "secrets", "include",
];

/// Service keys with no meaning in a cluster: noted, not imported.
const IGNORED: &[&str] = &[
    "networks",
    "restart",
    "container_name",
    "hostname",
    "labels",
    "logging",
    "stdin_open",
    "tty",
    "init",
    "stop_grace_period",
    "extra_hosts",
    "dns",
];

/// What an import of a Compose project makes.
#[derive(Debug)]
pub struct ComposeImport {
    /// `stack.yaml` and the environment's values file, relative to the
    /// output folder.
    pub files: Vec<(PathBuf, String)>,
    /// The secrets file to write (relative), and what it holds: every
    /// service's sensitive environment, to be encrypted before it is
    /// written. `None` when no value is sensitive.
    pub secrets: Option<(PathBuf, Value)>,
    pub report: Vec<Converted>,
}

/// Where the stack's files go and what they are called.
#[derive(Debug, Clone)]
pub struct ComposeOptions {
    pub namespace: Option<String>,
    /// The environment the values and secrets files are for.
    pub environment: String,
    /// More names that hold secrets, as globs (`*_DSN`), beside the
    /// built-in patterns.
    pub sensitive: Vec<String>,
}

/// A name glob (`*` any characters), matched whole and in any case.
fn glob(pattern: &str) -> Regex {
    let escaped: Vec<String> = pattern.split('*').map(regex::escape).collect();
    Regex::new(&format!("(?i)^{}$", escaped.join(".*"))).expect("an escaped glob is a valid regex")
}

/// The secrets file's path for an environment, relative to the output.
pub fn secrets_path(environment: &str) -> PathBuf {
    PathBuf::from(format!("secrets/{environment}.yaml"))
}

/// `KEY=VALUE` lines of a `.env` file (`#` comments, `export `, quotes).
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = fs_err::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
        span: None,
    })?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            out.insert(line.to_string(), String::new());
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        out.insert(key.trim().to_string(), value.to_string());
    }
    Ok(out)
}

fn invalid(message: String, hint: &str, span: &Span) -> ConfigError {
    ConfigError::Invalid {
        message,
        span: span.clone(),
        hint: Some(hint.to_string()),
    }
}

/// `${VAR}`, `${VAR:-d}`, `${VAR-d}`, `${VAR:?e}`, `${VAR?e}`, `$VAR`, `$$`.
fn interpolate(
    text: &str,
    variables: &BTreeMap<String, String>,
    span: &Span,
) -> Result<String, ConfigError> {
    static VARIABLE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))",
        )
        .expect("a valid regex")
    });
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for captures in VARIABLE.captures_iter(text) {
        let whole = captures.get(0).map_or(0..0, |m| m.range());
        out.push_str(&text[last..whole.start]);
        last = whole.end;
        if &captures[1] == "$" {
            out.push('$');
            continue;
        }
        let name = captures
            .get(2)
            .or_else(|| captures.get(5))
            .map_or("", |m| m.as_str());
        let value = variables.get(name);
        let operator = captures.get(3).map(|m| m.as_str());
        let argument = captures.get(4).map_or("", |m| m.as_str());
        let empty = value.is_none_or(String::is_empty);
        match operator {
            Some(":-") if empty => out.push_str(argument),
            Some("-") if value.is_none() => out.push_str(argument),
            Some(":?") if empty => {
                return Err(required(name, argument, span));
            }
            Some("?") if value.is_none() => {
                return Err(required(name, argument, span));
            }
            _ => out.push_str(value.map_or("", String::as_str)),
        }
    }
    out.push_str(&text[last..]);
    Ok(out)
}

fn required(name: &str, message: &str, span: &Span) -> ConfigError {
    invalid(
        format!(
            "`${name}` is required: {}",
            if message.is_empty() {
                "it is not set"
            } else {
                message
            }
        ),
        "set it in the environment, or in the --env-file (default: .env beside the compose file)",
        span,
    )
}

/// The compose tree with every string interpolated.
fn resolved(node: &Node, variables: &BTreeMap<String, String>) -> Result<Value, ConfigError> {
    Ok(match &node.kind {
        NodeKind::String(text) => Value::String(interpolate(text, variables, &node.span)?),
        NodeKind::Sequence(items) => Value::Array(
            items
                .iter()
                .map(|item| resolved(item, variables))
                .collect::<Result<_, _>>()?,
        ),
        NodeKind::Mapping(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, value)| Ok((key.name.clone(), resolved(value, variables)?)))
                .collect::<Result<_, ConfigError>>()?,
        ),
        _ => node.to_value(),
    })
}

/// A DNS label from a service name (`my_worker` → `my-worker`).
fn release_name(service: &str) -> String {
    stack_kube::object::dns_label(&service.replace('_', "-"))
}

struct Import {
    /// `--sensitive` globs.
    sensitive: Vec<Regex>,
    namespace: String,
    services: Vec<String>,
    report: Vec<Converted>,
    base: PathBuf,
}

impl Import {
    /// Whether a name holds a secret: the built-in patterns, `--sensitive`.
    fn is_sensitive(&self, name: &str) -> bool {
        is_sensitive(name) || self.sensitive.iter().any(|glob| glob.is_match(name))
    }

    fn note(&mut self, part: &str, converted: bool, note: impl Into<String>) {
        self.report.push(Converted {
            part: part.to_string(),
            converted,
            note: note.into(),
        });
    }

    /// A value with every service name used as a host made in-cluster:
    /// after `//` or `@`, before a `:port`, or (`bare`) the whole value.
    fn hosts(&mut self, part: &str, value: &str, bare: bool) -> String {
        let mut out = value.to_string();
        for service in self.services.clone() {
            let host = format!(
                "{}.{}.svc.cluster.local",
                release_name(&service),
                self.namespace
            );
            let escaped = regex::escape(&service);
            let pattern = if bare {
                format!(r"(^|//|@)({escaped})(:[0-9]+|/|$)")
            } else {
                format!(r"(//|@)({escaped})(:[0-9]+|/|$)|(^)({escaped})(:[0-9]+)")
            };
            let pattern = Regex::new(&pattern).expect("a valid regex");
            let rewritten = pattern
                .replace_all(&out, |c: &regex::Captures<'_>| {
                    let group =
                        |i: usize| c.get(i).or_else(|| c.get(i + 3)).map_or("", |m| m.as_str());
                    format!("{}{host}{}", group(1), group(3))
                })
                .into_owned();
            if rewritten != out {
                self.note(part, true, format!("host `{service}` → `{host}`"));
                out = rewritten;
            }
        }
        out
    }

    /// `environment` (a map or `KEY=VALUE` list) over `env_file`s.
    fn environment(
        &mut self,
        part: &str,
        service: &Map<String, Value>,
        variables: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        let mut env = BTreeMap::new();
        let files: Vec<Value> = match service.get("env_file") {
            Some(Value::Array(items)) => items.clone(),
            Some(other) => vec![other.clone()],
            None => Vec::new(),
        };
        for file in files {
            let (path, required) = match &file {
                Value::Object(long) => (
                    long.get("path")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    long.get("required")
                        .and_then(Value::as_bool)
                        .unwrap_or(true),
                ),
                other => (other.as_str().unwrap_or_default().to_string(), true),
            };
            let full = self.base.join(&path);
            if !full.exists() && !required {
                continue;
            }
            env.extend(read_env_file(&full)?);
            self.note(part, true, format!("env_file {path} read"));
        }
        match service.get("environment") {
            Some(Value::Object(map)) => {
                for (key, value) in map {
                    let value = match value {
                        Value::Null => match variables.get(key) {
                            Some(value) => value.clone(),
                            None => continue,
                        },
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    env.insert(key.clone(), value);
                }
            }
            Some(Value::Array(items)) => {
                for item in items.iter().filter_map(Value::as_str) {
                    match item.split_once('=') {
                        Some((key, value)) => {
                            env.insert(key.to_string(), value.to_string());
                        }
                        None => {
                            if let Some(value) = variables.get(item) {
                                env.insert(item.to_string(), value.clone());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(env
            .into_iter()
            .map(|(key, value)| {
                let value = self.hosts(&format!("{part} env {key}"), &value, true);
                (key, value)
            })
            .collect())
    }

    /// Compose ports (short or long syntax, and `expose`) as app ports.
    fn ports(&mut self, part: &str, service: &Map<String, Value>) -> Vec<Value> {
        let mut out = Vec::new();
        for item in service
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let text = port_text(item);
            match app_port(&text) {
                Ok((value, host_left_out)) => {
                    if host_left_out {
                        self.note(
                            part,
                            true,
                            format!("port {text}: the host address is left out"),
                        );
                    }
                    out.push(value);
                }
                Err(why) => self.note(part, false, format!("port {text} refused: {why}")),
            }
        }
        for item in service
            .get("expose")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let text = item
                .as_str()
                .map_or_else(|| item.to_string(), str::to_string);
            if let Ok(port) = text.parse::<u64>()
                && !out.iter().any(|p| p.as_u64() == Some(port))
            {
                out.push(Value::from(port));
            }
        }
        out
    }

    /// `healthcheck` as the app's `healthCheckPath`: an HTTP URL on
    /// localhost gives its path; `disable: true` none; anything else a TCP
    /// probe (noted).
    fn health(&mut self, part: &str, check: &Value) -> Option<Value> {
        if check["disable"] == true {
            return Some(Value::Null);
        }
        let test = match &check["test"] {
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            Value::String(text) => text.clone(),
            _ => String::new(),
        };

        if let Some(found) = URL.captures(&test) {
            let path = found.get(1).map_or("/", |m| m.as_str()).to_string();
            self.note(part, true, format!("healthcheck → HTTP probes on {path}"));
            return Some(Value::from(path));
        }
        self.note(
            part,
            false,
            "healthcheck command not imported: the app is probed on its first port (TCP)",
        );
        None
    }

    /// `deploy.resources` as requests (reservations, else limits).
    fn resources(deploy: &Value, notes: &mut Vec<String>) -> Option<Value> {
        let resources = &deploy["resources"];
        let pick = |key: &str| {
            resources["reservations"][key]
                .as_str()
                .map(str::to_string)
                .or_else(|| {
                    resources["reservations"][key]
                        .as_f64()
                        .map(|n| n.to_string())
                })
                .or_else(|| resources["limits"][key].as_str().map(str::to_string))
                .or_else(|| resources["limits"][key].as_f64().map(|n| n.to_string()))
        };
        let mut out = Map::new();
        if let Some(cpus) = pick("cpus")
            && let Ok(cpus) = cpus.parse::<f64>()
        {
            out.insert("cpu".into(), format!("{}m", (cpus * 1000.0).round()).into());
        }
        if let Some(memory) = pick("memory") {
            let converted = compose_memory(&memory);
            if converted != memory {
                notes.push(format!("memory {memory} → {converted}"));
            }
            out.insert("memory".into(), converted.into());
        }
        (!out.is_empty()).then(|| Value::Object(out))
    }
}

/// A compose port (short syntax, or the long one) as short-syntax text.
fn port_text(item: &Value) -> String {
    match item {
        Value::Object(long) => {
            let target = long
                .get("target")
                .map(ToString::to_string)
                .unwrap_or_default();
            let published = long
                .get("published")
                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string));
            let mut text = published.map_or(target.clone(), |p| format!("{p}:{target}"));
            if let Some(protocol) = long.get("protocol").and_then(Value::as_str) {
                text = format!("{text}/{protocol}");
            }
            text
        }
        Value::Number(n) => n.to_string(),
        other => other.as_str().unwrap_or_default().to_string(),
    }
}

/// `[HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL]` as an app port, and whether a
/// host address was left out; why not, for a range or no port.
fn app_port(text: &str) -> Result<(Value, bool), &'static str> {
    let (ports, protocol) = match text.split_once('/') {
        Some((ports, protocol)) => (ports, Some(protocol)),
        None => (text, None),
    };
    let parts: Vec<&str> = ports.split(':').collect();
    let (published, target, host) = match parts.as_slice() {
        [target] => (None, *target, false),
        [published, target] => (Some(*published), *target, false),
        [_, published, target] => (Some(*published), *target, true),
        _ => return Err("not a port"),
    };
    if target.contains('-') || published.is_some_and(|p| p.contains('-')) {
        return Err("a range: name each port");
    }
    let target = target.parse::<u64>().map_err(|_| "not a port")?;
    let port = published
        .filter(|p| !p.is_empty())
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(target);
    let short = if port == target {
        target.to_string()
    } else {
        format!("{port}:{target}")
    };
    let value = match protocol.filter(|p| *p != "tcp") {
        Some(protocol) => Value::from(format!("{short}/{protocol}")),
        None if port == target => Value::from(target),
        None => Value::from(short),
    };
    Ok((value, host))
}

/// An HTTP URL on this host, its path captured.
static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"https?://(?:localhost|127\.0\.0\.1)(?::[0-9]+)?(/[^\s'\x22]*)?")
        .expect("a valid regex")
});

/// Compose memory (`512m`, `1g`, `1gb`, bytes) as a Kubernetes quantity.
fn compose_memory(text: &str) -> String {
    let lower = text.trim().to_ascii_lowercase();
    let digits: String = lower
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let unit = lower[digits.len()..].trim_end_matches('b');
    match unit {
        "k" => format!("{digits}Ki"),
        "m" => format!("{digits}Mi"),
        "g" => format!("{digits}Gi"),
        "" => digits,
        _ => text.to_string(),
    }
}

/// `command` / `entrypoint`: a list, or a string split as a shell would
/// (quotes kept together).
fn words(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::Array(items) => Some(
            items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                .collect(),
        ),
        Value::String(text) => {
            let mut out = Vec::new();
            let mut current = String::new();
            let mut quote: Option<char> = None;
            let mut started = false;
            for c in text.chars() {
                match (quote, c) {
                    (Some(q), c) if c == q => quote = None,
                    (None, '"' | '\'') => {
                        quote = Some(c);
                        started = true;
                    }
                    (None, c) if c.is_whitespace() => {
                        if started || !current.is_empty() {
                            out.push(std::mem::take(&mut current));
                            started = false;
                        }
                    }
                    (_, c) => current.push(c),
                }
            }
            if started || !current.is_empty() {
                out.push(current);
            }
            Some(out)
        }
        _ => None,
    }
}

/// Read a compose file and make the stack that runs it.
pub fn compose(
    path: &Path,
    variables: &BTreeMap<String, String>,
    options: &ComposeOptions,
) -> Result<ComposeImport, ConfigError> {
    let text = fs_err::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
        span: None,
    })?;
    let source = SourceFile::new(path, text);
    let node = crate::yaml::parse_node(&source).map_err(ConfigError::Syntax)?;
    let NodeKind::Mapping(entries) = &node.kind else {
        return Err(invalid(
            "a compose file is a map with `services`".into(),
            "see the compose specification",
            &node.span,
        ));
    };
    for (key, _) in entries {
        if !TOP_KEYS.contains(&key.name.as_str()) && !key.name.starts_with("x-") {
            return Err(ConfigError::UnknownKey {
                key: key.name.clone(),
                context: "a compose file",
                span: key.span.clone(),
                suggestion: crate::suggest::nearest(&key.name, TOP_KEYS.iter().copied())
                    .map(str::to_string),
                valid: TOP_KEYS.to_vec(),
            });
        }
    }
    let compose = resolved(&node, variables)?;
    let services_span = node
        .at(&["services".to_string()])
        .map_or_else(|| node.span.clone(), |n| n.span.clone());
    let Some(services) = compose["services"].as_object().filter(|s| !s.is_empty()) else {
        return Err(invalid(
            "the compose file has no `services`".into(),
            "a compose file names its containers under `services:`",
            &services_span,
        ));
    };
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let namespace = options.namespace.clone().unwrap_or_else(|| {
        let named = compose["name"].as_str().map_or_else(
            || {
                std::path::absolute(&base)
                    .ok()
                    .and_then(|dir| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_else(|| "default".into())
            },
            str::to_string,
        );
        stack_kube::object::dns_label(&named)
    });
    let mut import = Import {
        sensitive: options.sensitive.iter().map(|p| glob(p)).collect(),
        namespace: namespace.clone(),
        services: services.keys().cloned().collect(),
        report: Vec::new(),
        base,
    };
    if compose.get("version").is_some() {
        import.note(
            "`version`",
            true,
            "left out: the compose specification no longer uses it",
        );
    }
    if compose.get("networks").is_some() {
        import.note(
            "`networks`",
            false,
            "left out: every release of a namespace reaches the others by Service name",
        );
    }
    let mut releases = Vec::new();
    let mut values = Map::new();
    let mut secrets = Map::new();
    for (name, service) in services {
        let Some(service) = service.as_object() else {
            continue;
        };
        let Some(imported) = import.service(name, service, variables)? else {
            continue;
        };
        releases.push(imported.entry);
        values.insert(imported.key.clone(), imported.own);
        if let Some(secret) = imported.secret {
            secrets.insert(imported.key, secret);
        }
    }
    if releases.is_empty() {
        return Err(invalid(
            "no service of the compose file can be imported".into(),
            "every service was refused (see above): give each an `image`",
            &services_span,
        ));
    }
    let environment = &options.environment;
    let values_file = PathBuf::from(format!("environments/{environment}.yaml"));
    let has_secrets = !secrets.is_empty();
    let mut env_entry = json!({
        "cluster": "simulated",
        "values": [values_file.display().to_string()],
    });
    if has_secrets {
        env_entry["secrets"] = json!([secrets_path(environment).display().to_string()]);
    }
    let stack = json!({
        "defaultEnvironment": environment,
        "environments": {environment: env_entry},
        "releases": releases,
    });
    let header = format!(
        "# Imported from {} by `stack import compose`.\n",
        path.file_name().map_or_else(
            || "the compose file".into(),
            |n| n.to_string_lossy().into_owned()
        )
    );
    let files = vec![
        (
            PathBuf::from("stack.yaml"),
            format!("{header}{}", crate::yaml::to_string(&stack)),
        ),
        (
            values_file,
            format!(
                "{header}{}",
                crate::yaml::to_string(&json!({"services": values}))
            ),
        ),
    ];
    Ok(ComposeImport {
        files,
        secrets: has_secrets.then(|| (secrets_path(environment), json!({"services": secrets}))),
        report: import.report,
    })
}

/// One service, imported.
struct Service {
    /// Its key under `services` in the values and secrets files.
    key: String,
    /// Its release in the stack file.
    entry: Value,
    /// Its values in the environment's values file.
    own: Value,
    /// Its values in the secrets file.
    secret: Option<Value>,
}

impl Import {
    /// A service as a release of `builtin:app`, or `None` when refused.
    fn service(
        &mut self,
        name: &str,
        service: &Map<String, Value>,
        variables: &BTreeMap<String, String>,
    ) -> Result<Option<Service>, ConfigError> {
        let part = format!("service {name}");
        let release = release_name(name);
        if release != name {
            self.note(&part, true, format!("named `{release}` (a DNS label)"));
        }
        let Some(image) = service.get("image").and_then(Value::as_str) else {
            self.note(
                &part,
                false,
                "refused: it has `build` and no `image` — stack deploys images: build and push it, then name it in `image`",
            );
            return Ok(None);
        };
        if service.contains_key("build") {
            self.note(&part, true, "`build` left out: the `image` is deployed");
        }
        for key in service.keys() {
            if IGNORED.contains(&key.as_str()) {
                self.note(
                    &part,
                    false,
                    format!("`{key}` left out: it has no meaning in a cluster"),
                );
            }
        }
        let mut own = Map::new();
        own.insert("image".into(), image.into());
        own.insert(
            "replicas".into(),
            service
                .get("deploy")
                .and_then(|d| d.get("replicas"))
                .cloned()
                .unwrap_or_else(|| 1.into()),
        );
        let env = self.environment(&part, service, variables)?;
        let (sensitive, plain): (BTreeMap<_, _>, BTreeMap<_, _>) =
            env.into_iter().partition(|(key, value)| {
                self.is_sensitive(key) || holds_secret(value, variables, |n| self.is_sensitive(n))
            });
        if !plain.is_empty() {
            own.insert("env".into(), json!(plain));
        }
        if !sensitive.is_empty() {
            let keys: Vec<&str> = sensitive.keys().map(String::as_str).collect();
            self.note(
                &part,
                true,
                format!(
                    "to the encrypted secrets file (their names or values look sensitive): {}",
                    keys.join(", ")
                ),
            );
        }
        let key = release.replace('-', "_");
        let mut app = self.structure(&part, service);
        let reference = |value: &str| format!("{{{{ values.services.{key}.{value} }}}}");
        for value in own.keys() {
            app.insert(value.clone(), reference(value).into());
        }
        if !sensitive.is_empty() {
            app.insert("secretEnv".into(), reference("secretEnv").into());
        }
        let entry = self.entry(&part, &release, service, app);
        self.note(
            &part,
            true,
            format!("release {}/{release} (builtin:app)", self.namespace),
        );
        Ok(Some(Service {
            key,
            entry,
            own: Value::Object(own),
            secret: (!sensitive.is_empty()).then(|| json!({"secretEnv": sensitive})),
        }))
    }

    /// The app values that stay in the stack file: ports, probes,
    /// resources, command, volumes.
    fn structure(&mut self, part: &str, service: &Map<String, Value>) -> Map<String, Value> {
        let mut app = Map::new();
        let ports = self.ports(part, service);
        if !ports.is_empty() {
            app.insert("ports".into(), Value::Array(ports));
        }
        if let Some(check) = service.get("healthcheck")
            && let Some(path) = self.health(part, check)
        {
            app.insert("healthCheckPath".into(), path);
        }
        if !app.contains_key("healthCheckPath") && !app.contains_key("ports") {
            app.insert("healthCheckPath".into(), Value::Null);
        }
        if let Some(deploy) = service.get("deploy") {
            let mut notes = Vec::new();
            if let Some(resources) = Import::resources(deploy, &mut notes) {
                app.insert("resources".into(), resources);
            }
            for note in notes {
                self.note(part, true, note);
            }
        }
        if let Some(entrypoint) = service.get("entrypoint").and_then(words) {
            app.insert("command".into(), json!(entrypoint));
        }
        if let Some(command) = service.get("command").and_then(words) {
            let command: Vec<String> = command
                .iter()
                .map(|word| self.hosts(&format!("{part} command"), word, false))
                .collect();
            app.insert("args".into(), json!(command));
        }
        let volumes = self.volumes(part, service);
        if !volumes.is_empty() {
            app.insert("volumes".into(), Value::Object(volumes));
        }
        app
    }

    /// The release's entry in the stack file.
    fn entry(
        &mut self,
        part: &str,
        release: &str,
        service: &Map<String, Value>,
        app: Map<String, Value>,
    ) -> Value {
        let mut entry = Map::new();
        entry.insert("name".into(), release.into());
        entry.insert("namespace".into(), self.namespace.clone().into());
        entry.insert("chart".into(), "builtin:app".into());
        let needs = needs(service);
        if !needs.is_empty() {
            entry.insert("needs".into(), json!(needs));
        }
        if let Some(profiles) = service.get("profiles").and_then(Value::as_array)
            && let Some(first) = profiles.first().and_then(Value::as_str)
        {
            entry.insert("labels".into(), json!({"profile": first}));
            if profiles.len() > 1 {
                self.note(
                    part,
                    false,
                    format!("profiles after `{first}` left out: a release has one `profile` label"),
                );
            }
        }
        entry.insert("values".into(), Value::Array(vec![Value::Object(app)]));
        Value::Object(entry)
    }
}

/// Whether a value holds a secret though its name does not say so: a
/// password in a URL (`scheme://user:password@host`), or the value of a
/// variable whose name is sensitive (`postgres://app:${DB_PASSWORD}@db`).
fn holds_secret(
    value: &str,
    variables: &BTreeMap<String, String>,
    is_sensitive: impl Fn(&str) -> bool,
) -> bool {
    static USERINFO: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:[^/@\s]+@").expect("a valid regex")
    });
    USERINFO.is_match(value)
        || variables.iter().any(|(name, secret)| {
            is_sensitive(name) && secret.len() >= 4 && value.contains(secret.as_str())
        })
}

/// `depends_on` (a list, or a map with conditions) as `needs`.
fn needs(service: &Map<String, Value>) -> Vec<String> {
    match service.get("depends_on") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(release_name)
            .collect(),
        Some(Value::Object(map)) => map.keys().map(|k| release_name(k)).collect(),
        _ => Vec::new(),
    }
}

impl Import {
    /// Named volumes as the app's volumes (1Gi, noted); bind mounts and
    /// anonymous volumes are refused, named.
    fn volumes(&mut self, part: &str, service: &Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::new();
        for item in service
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (kind, source, target) = match item {
                Value::Object(long) => (
                    long.get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("volume")
                        .to_string(),
                    long.get("source")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    long.get("target")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                ),
                other => {
                    let text = other.as_str().unwrap_or_default();
                    let mut parts = text.split(':');
                    let first = parts.next().unwrap_or_default().to_string();
                    match parts.next() {
                        Some(target) => {
                            let bind = first.starts_with(['.', '/', '~']);
                            (
                                if bind { "bind" } else { "volume" }.to_string(),
                                first,
                                target.to_string(),
                            )
                        }
                        None => ("anonymous".to_string(), String::new(), first),
                    }
                }
            };
            match kind.as_str() {
                "volume" if !source.is_empty() => {
                    let name = release_name(&source);
                    self.note(part, true, format!("volume {source} → a 1Gi PersistentVolumeClaim at {target} (set its `size`)"));
                    out.insert(name, json!({"size": "1Gi", "mountPath": target}));
                }
                "bind" => self.note(
                    part,
                    false,
                    format!("bind mount {source}:{target} refused: a cluster has no host folder; bake it into the image or use a named volume"),
                ),
                _ => self.note(
                    part,
                    false,
                    format!("volume at {target} refused: name it (`NAME:{target}`) to keep its data"),
                ),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span() -> Span {
        Span::file_start(&SourceFile::new("compose.yaml", ""))
    }

    #[test]
    fn variables_are_interpolated_as_compose_does() {
        let vars: BTreeMap<String, String> = [
            ("TAG".to_string(), "1.2".to_string()),
            ("EMPTY".to_string(), String::new()),
        ]
        .into_iter()
        .collect();
        let run = |text: &str| interpolate(text, &vars, &span());
        assert_eq!(run("web:${TAG}").unwrap(), "web:1.2");
        assert_eq!(run("web:$TAG").unwrap(), "web:1.2");
        assert_eq!(run("${MISSING:-3}").unwrap(), "3");
        assert_eq!(run("${EMPTY:-3}").unwrap(), "3");
        assert_eq!(run("${EMPTY-3}").unwrap(), "");
        assert_eq!(run("$$HOME").unwrap(), "$HOME");
        assert!(
            run("${MISSING:?set the tag}")
                .unwrap_err()
                .to_string()
                .contains("set the tag")
        );
        assert!(run("${EMPTY:?x}").is_err());
        assert_eq!(run("${EMPTY?x}").unwrap(), "");
    }

    #[test]
    fn sensitive_globs_match_whole_names_in_any_case() {
        assert!(glob("*_DSN").is_match("sentry_dsn"));
        assert!(!glob("*_DSN").is_match("SENTRY_DSN_URL"));
        assert!(glob("LICENSE").is_match("License"));
    }

    #[test]
    fn commands_split_like_a_shell_and_memory_converts() {
        assert_eq!(
            words(&json!("celery -A 'app worker' --loglevel=info")).unwrap(),
            ["celery", "-A", "app worker", "--loglevel=info"]
        );
        assert_eq!(compose_memory("512m"), "512Mi");
        assert_eq!(compose_memory("1GB"), "1Gi");
    }
}
