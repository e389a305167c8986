//! One stack file's tree → the parts of a [`Stack`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::SourceFile;
use crate::load::config::reader::{MapReader, expect_string, wrong_type};
use crate::load::config::{
    ClusterTarget, ConfigError, Defaults, Environment, FileRef, Promotion, PromotionFile,
    ReleaseOptions, ReleaseSpec, Repository, SimulatedOptions, Stack, StrategySpec, ValuesSource,
};
use crate::yaml::{Node, NodeKind, parse_node};

const TOP_KEYS: &[&str] = &[
    "environments",
    "defaults",
    "releases",
    "promotion",
    "defaultEnvironment",
    "repositories",
    "helmBinary",
];
const REPOSITORY_KEYS: &[&str] = &["name", "url", "oci"];
const ENVIRONMENT_KEYS: &[&str] = &[
    "cluster",
    "kubeContext",
    "values",
    "secrets",
    "ageKeyFile",
    "imagePullSecrets",
    "ingress",
    "previews",
];
const SIMULATED_KEYS: &[&str] = &["faultRate", "latencyMs", "seed"];
const DEFAULTS_KEYS: &[&str] = &[
    "timeout",
    "wait",
    "atomic",
    "createNamespace",
    "tests",
    "historyMax",
    "namespace",
];
const RELEASE_KEYS: &[&str] = &[
    "name",
    "namespace",
    "chart",
    "version",
    "labels",
    "needs",
    "installed",
    "tests",
    "values",
    "secrets",
    "timeout",
    "wait",
    "atomic",
    "createNamespace",
    "historyMax",
    "strategy",
    "expose",
    "shared",
];
const PROMOTION_KEYS: &[&str] = &["paths", "files"];

/// Parse one stack file into `stack`, collecting every problem in `errors`.
pub fn parse_stack_file(
    source: &Arc<SourceFile>,
    stack: &mut Stack,
    errors: &mut Vec<ConfigError>,
) {
    let root = match parse_node(source) {
        Ok(root) => root,
        Err(error) => {
            errors.push(error.into());
            return;
        }
    };
    if root.is_null() {
        return;
    }
    let Some(top) = MapReader::new(&root, "a stack file", TOP_KEYS, errors) else {
        return;
    };
    let base = source.path.parent().unwrap_or(Path::new(".")).to_path_buf();
    if let Some(node) = top.string("defaultEnvironment", errors) {
        let name = node.as_str().unwrap_or_default().to_string();
        if let Some((_, first)) = &stack.default_environment {
            errors.push(ConfigError::Invalid {
                message: "`defaultEnvironment` is set in more than one stack file".into(),
                span: node.span.clone(),
                hint: Some(format!("keep only the one at {}", first.location())),
            });
        } else {
            stack.default_environment = Some((name, node.span.clone()));
        }
    }
    if let Some(node) = top.get("environments") {
        parse_environments(node, &base, stack, errors);
    }
    for item in top.list("repositories", errors) {
        if let Some(repository) = parse_repository(item, stack, errors) {
            stack.repositories.push(repository);
        }
    }
    if let Some(node) = top.string("helmBinary", errors) {
        let path = PathBuf::from(node.as_str().unwrap_or_default());
        stack.helm_binary = Some(if path.components().count() > 1 {
            base.join(path)
        } else {
            path
        });
    }
    let defaults = top
        .get("defaults")
        .map(|node| parse_defaults(node, errors))
        .unwrap_or_default();
    for item in top.list("releases", errors) {
        if let Some(release) = parse_release(item, &defaults, &base, errors) {
            stack.releases.push(release);
        }
    }
    if let Some(node) = top.get("promotion") {
        if let Some(existing) = &stack.promotion {
            errors.push(ConfigError::Invalid {
                message: "`promotion` is set in more than one stack file".into(),
                span: node.span.clone(),
                hint: Some(format!("keep only the one at {}", existing.span.location())),
            });
        } else {
            stack.promotion = parse_promotion(node, &base, errors);
        }
    }
}

fn parse_environments(node: &Node, base: &Path, stack: &mut Stack, errors: &mut Vec<ConfigError>) {
    let NodeKind::Mapping(entries) = &node.kind else {
        errors.push(wrong_type(
            "environments",
            "a map of environment names",
            node,
        ));
        return;
    };
    for (key, body) in entries {
        if let Some(first) = stack.environments.iter().find(|e| e.name == key.name) {
            errors.push(ConfigError::DuplicateEnvironment {
                name: key.name.clone(),
                first: first.span.clone(),
                second: key.span.clone(),
            });
            continue;
        }
        let mut environment = Environment {
            name: key.name.clone(),
            span: key.span.clone(),
            cluster: ClusterTarget::CurrentContext,
            values: Vec::new(),
            secrets: Vec::new(),
            age_key_file: None,
            pull_secret: None,
            ingress: None,
            previews: super::Previews::default(),
        };
        if !body.is_null() {
            let Some(map) = MapReader::new(body, "an environment", ENVIRONMENT_KEYS, errors) else {
                continue;
            };
            environment.cluster = parse_cluster(&map, errors);
            environment.values = parse_values_list(map.list("values", errors), base, errors);
            environment.secrets = parse_file_list(map.list("secrets", errors), base, errors);
            environment.age_key_file = map
                .string("ageKeyFile", errors)
                .and_then(Node::as_str)
                .map(|path| base.join(path));
            environment.pull_secret = map
                .get("imagePullSecrets")
                .and_then(|node| super::pull_secret::parse(node, base, errors));
            environment.ingress = map
                .get("ingress")
                .and_then(|node| super::expose::parse_ingress(node, errors));
            environment.previews = map
                .get("previews")
                .map(|node| super::previews::parse(node, base, errors))
                .unwrap_or_default();
        }
        stack.environments.push(environment);
    }
}

fn parse_cluster(map: &MapReader, errors: &mut Vec<ConfigError>) -> ClusterTarget {
    let context = map.string("kubeContext", errors);
    let cluster = map.get("cluster");
    if let (Some(context), Some(_)) = (context, cluster) {
        errors.push(ConfigError::Invalid {
            message: "an environment has either `cluster` or `kubeContext`, not both".into(),
            span: context.span.clone(),
            hint: Some("`cluster: simulated` is the embedded cluster; `kubeContext` names a context of your kubeconfig".into()),
        });
    }
    if let Some(context) = context {
        return ClusterTarget::KubeContext(context.as_str().unwrap_or_default().to_string());
    }
    let Some(cluster) = cluster else {
        return ClusterTarget::CurrentContext;
    };
    if cluster.as_str() == Some("simulated") {
        return ClusterTarget::Simulated(SimulatedOptions::default());
    }
    if let NodeKind::Mapping(entries) = &cluster.kind
        && let [(key, body)] = entries.as_slice()
        && key.name == "simulated"
    {
        return ClusterTarget::Simulated(parse_simulated(body, errors));
    }
    errors.push(ConfigError::Invalid {
        message: "`cluster` must be `simulated` or `{simulated: {...}}`".into(),
        span: cluster.span.clone(),
        hint: Some("to deploy to a real cluster, use `kubeContext: NAME`".into()),
    });
    ClusterTarget::CurrentContext
}

fn parse_simulated(node: &Node, errors: &mut Vec<ConfigError>) -> SimulatedOptions {
    let mut options = SimulatedOptions::default();
    if node.is_null() {
        return options;
    }
    let Some(map) = MapReader::new(
        node,
        "the simulated cluster settings",
        SIMULATED_KEYS,
        errors,
    ) else {
        return options;
    };
    if let Some(rate) = map.get("faultRate") {
        match &rate.kind {
            NodeKind::Number(number)
                if number.as_f64().is_some_and(|r| (0.0..=1.0).contains(&r)) =>
            {
                options.fault_rate = number.as_f64();
            }
            _ => errors.push(ConfigError::Invalid {
                message: "`faultRate` must be a number from 0 to 1".into(),
                span: rate.span.clone(),
                hint: Some("0.05 answers one request in twenty with a 500 or a 429".into()),
            }),
        }
    }
    options.latency_ms = map.unsigned("latencyMs", errors);
    options.seed = map.unsigned("seed", errors);
    options
}

fn parse_defaults(node: &Node, errors: &mut Vec<ConfigError>) -> Defaults {
    let mut defaults = Defaults::default();
    let Some(map) = MapReader::new(node, "defaults", DEFAULTS_KEYS, errors) else {
        return defaults;
    };
    if let Some(timeout) = map.duration("timeout", errors) {
        defaults.timeout = timeout;
    }
    defaults.wait = map.bool("wait", errors).unwrap_or(defaults.wait);
    defaults.atomic = map.bool("atomic", errors).unwrap_or(defaults.atomic);
    defaults.create_namespace = map
        .bool("createNamespace", errors)
        .unwrap_or(defaults.create_namespace);
    defaults.tests = map.bool("tests", errors).unwrap_or(defaults.tests);
    if let Some(max) = history_max(&map, errors) {
        defaults.history_max = max;
    }
    defaults.namespace = map
        .string("namespace", errors)
        .and_then(Node::as_str)
        .map(str::to_string);
    defaults
}

fn history_max(map: &MapReader, errors: &mut Vec<ConfigError>) -> Option<u32> {
    let value = map.unsigned("historyMax", errors)?;
    match u32::try_from(value) {
        Ok(max) if max >= 1 => Some(max),
        _ => {
            errors.push(ConfigError::Invalid {
                message: "`historyMax` must be at least 1".into(),
                span: map
                    .get("historyMax")
                    .map_or(map.node.span.clone(), |n| n.span.clone()),
                hint: Some("the deployed revision is always kept; 10 is the default".into()),
            });
            None
        }
    }
}

fn parse_release(
    node: &Node,
    defaults: &Defaults,
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<ReleaseSpec> {
    let map = MapReader::new(node, "a release", RELEASE_KEYS, errors)?;
    let name = map.require("name", "a release", errors);
    let chart = map.require("chart", "a release", errors);
    let name = name.and_then(|n| expect_string(n, "name", errors)).cloned();
    let chart = chart
        .and_then(|n| expect_string(n, "chart", errors))
        .cloned();
    let namespace = map.string("namespace", errors).cloned();
    let version = map.string("version", errors).cloned();
    let labels = parse_labels(map.get("labels"), errors);
    let needs = map
        .list("needs", errors)
        .iter()
        .filter_map(|need| expect_string(need, "needs", errors).cloned())
        .collect();
    let installed = map.get("installed").and_then(|node| match node.kind {
        NodeKind::Bool(_) | NodeKind::String(_) => Some(node.clone()),
        _ => {
            errors.push(wrong_type(
                "installed",
                "true, false or a template expression",
                node,
            ));
            None
        }
    });
    let options = ReleaseOptions {
        timeout: map.duration("timeout", errors).unwrap_or(defaults.timeout),
        wait: map.bool("wait", errors).unwrap_or(defaults.wait),
        atomic: map.bool("atomic", errors).unwrap_or(defaults.atomic),
        create_namespace: map
            .bool("createNamespace", errors)
            .unwrap_or(defaults.create_namespace),
        tests: map.bool("tests", errors).unwrap_or(defaults.tests),
        history_max: history_max(&map, errors).unwrap_or(defaults.history_max),
        strategy: map.get("strategy").map_or(StrategySpec::Rolling, |node| {
            super::strategy::parse(node, errors)
        }),
        expose: map
            .get("expose")
            .and_then(|node| super::expose::parse_expose(node, errors)),
        shared: map.bool("shared", errors).unwrap_or(false),
    };
    let values = parse_values_list(map.list("values", errors), base, errors);
    let secrets = parse_file_list(map.list("secrets", errors), base, errors);
    let namespace = namespace.or_else(|| {
        defaults.namespace.as_ref().map(|text| Node {
            kind: NodeKind::String(text.clone()),
            span: node.span.clone(),
        })
    });
    Some(ReleaseSpec {
        name: name?,
        namespace,
        chart: chart?,
        version,
        labels,
        needs,
        installed,
        values,
        secrets,
        options,
        base: base.to_path_buf(),
        span: node.span.clone(),
    })
}

/// One of `repositories:` (helmfile's form): a name, the chart
/// repository's URL, and `oci: true` for a registry.
fn parse_repository(
    node: &Node,
    stack: &Stack,
    errors: &mut Vec<ConfigError>,
) -> Option<Repository> {
    let map = MapReader::new(node, "a repository", REPOSITORY_KEYS, errors)?;
    let name = map.require("name", "a repository", errors);
    let url = map.require("url", "a repository", errors);
    let oci = map.bool("oci", errors).unwrap_or(false);
    let name = name.and_then(|n| expect_string(n, "name", errors))?;
    let url = url.and_then(|n| expect_string(n, "url", errors))?;
    let name_text = name.as_str().unwrap_or_default().to_string();
    let mut url_text = url
        .as_str()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    if oci && !url_text.starts_with("oci://") {
        url_text = format!("oci://{url_text}");
    }
    let scheme_ok = if oci {
        true
    } else {
        url_text.starts_with("http://") || url_text.starts_with("https://")
    };
    if !scheme_ok {
        errors.push(ConfigError::Invalid {
            message: format!("repository `{name_text}`: `url` must start with http:// or https://"),
            span: url.span.clone(),
            hint: Some("for a registry, add `oci: true`".into()),
        });
        return None;
    }
    if let Some(first) = stack.repositories.iter().find(|r| r.name == name_text) {
        errors.push(ConfigError::Invalid {
            message: format!("repository `{name_text}` is defined twice"),
            span: name.span.clone(),
            hint: Some(format!("the first is at {}", first.span.location())),
        });
        return None;
    }
    Some(Repository {
        name: name_text,
        url: url_text,
        oci,
        span: name.span.clone(),
    })
}

fn parse_labels(node: Option<&Node>, errors: &mut Vec<ConfigError>) -> Vec<(String, Node)> {
    let Some(node) = node else {
        return Vec::new();
    };
    let NodeKind::Mapping(entries) = &node.kind else {
        errors.push(wrong_type("labels", "a map of strings", node));
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|(key, value)| match &value.kind {
            NodeKind::String(_) => Some((key.name.clone(), value.clone())),
            NodeKind::Bool(_) | NodeKind::Number(_) => {
                // `tier: 1` or `critical: true` is clearly meant as text.
                let text = value.to_value().to_string();
                Some((
                    key.name.clone(),
                    Node {
                        kind: NodeKind::String(text),
                        span: value.span.clone(),
                    },
                ))
            }
            _ => {
                errors.push(wrong_type(&key.name, "a string label value", value));
                None
            }
        })
        .collect()
}

pub(super) fn parse_values_list(
    items: &[Node],
    base: &Path,
    errors: &mut Vec<ConfigError>,
) -> Vec<ValuesSource> {
    items
        .iter()
        .filter_map(|item| match &item.kind {
            NodeKind::String(_) => Some(ValuesSource::File(FileRef {
                path: item.clone(),
                base: base.to_path_buf(),
            })),
            NodeKind::Mapping(_) => Some(ValuesSource::Inline(item.clone())),
            _ => {
                errors.push(wrong_type("values", "a file path or a map of values", item));
                None
            }
        })
        .collect()
}

fn parse_file_list(items: &[Node], base: &Path, errors: &mut Vec<ConfigError>) -> Vec<FileRef> {
    items
        .iter()
        .filter_map(|item| expect_string(item, "secrets", errors))
        .map(|item| FileRef {
            path: item.clone(),
            base: base.to_path_buf(),
        })
        .collect()
}

fn parse_promotion(node: &Node, base: &Path, errors: &mut Vec<ConfigError>) -> Option<Promotion> {
    let map = MapReader::new(node, "promotion", PROMOTION_KEYS, errors)?;
    let mut paths = Vec::new();
    for item in map.list("paths", errors) {
        let Some(item) = expect_string(item, "paths", errors) else {
            continue;
        };
        let path = item.as_str().unwrap_or_default();
        if path.split('.').any(str::is_empty) {
            errors.push(ConfigError::Invalid {
                message: format!("`{path}` is not a value path"),
                span: item.span.clone(),
                hint: Some(
                    "write keys separated by dots, `*` for any one key: `charts.*.version`".into(),
                ),
            });
        } else {
            paths.push((path.to_string(), item.span.clone()));
        }
    }
    let mut files = Vec::new();
    if let Some(node) = map.get("files") {
        if let NodeKind::Mapping(entries) = &node.kind {
            for (key, value) in entries {
                if let Some(path) = expect_string(value, &key.name, errors) {
                    files.push(PromotionFile {
                        environment: key.name.clone(),
                        span: key.span.clone(),
                        file: FileRef {
                            path: path.clone(),
                            base: base.to_path_buf(),
                        },
                    });
                }
            }
        } else {
            errors.push(wrong_type(
                "files",
                "a map of environment → values file",
                node,
            ));
        }
    }
    Some(Promotion {
        paths,
        files,
        span: node.span.clone(),
    })
}
