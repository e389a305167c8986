//! Choose an environment and turn every [`ReleaseSpec`] into a [`Release`]:
//! evaluate `{{ … }}` (with `environment`, `values` and `release`), load
//! values files, check release identities.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::secrets::identities::Identities;
use std::sync::Arc;

use minijinja::value::{Serde, Value as JinjaValue};
use serde_json::{Map, Value, json};

use crate::diagnostic::{SourceFile, Span};
use crate::error::Error;
use crate::load::config::{
    ConfigError, Environment, FileRef, ReleaseSpec, Repository, Stack, ValuesSource,
};
use crate::load::group::Group;
use crate::load::release::{ChartSource, Need, Origin, Place, Release, need_id};
use crate::load::render::RenderError;
use crate::load::render::expression::Evaluator;
use crate::load::values::{SetValue, merge};
use crate::mask::Masks;
use crate::yaml;

/// The chosen environment with its merged values.
#[derive(Debug, Clone)]
pub struct ResolvedEnvironment {
    pub environment: Environment,
    /// Environment values and secrets, merged.
    pub values: Arc<Value>,
    /// A managed pull secret's docker config, decrypted from its
    /// `dockerConfig` file (its values registered as secrets).
    pub pull_config: Option<Arc<Value>>,
    /// The deployment group resolved for (`--group`): its `previews.values`
    /// are in `values`, and its releases go to preview namespaces.
    pub group: Option<Group>,
}

/// Reads values files once per run, however many releases name them.
#[derive(Default)]
struct ValuesFiles {
    cache: HashMap<PathBuf, Arc<Value>>,
}

impl ValuesFiles {
    fn read(&mut self, path: &Path, span: &Span) -> Result<Arc<Value>, Error> {
        if let Some(value) = self.cache.get(path) {
            return Ok(Arc::clone(value));
        }
        let text = fs_err::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
            span: Some(span.clone()),
        })?;
        let source = SourceFile::new(path, text);
        let value = yaml::parse_values(&source).map_err(ConfigError::Syntax)?;
        if !value.is_object() {
            return Err(ConfigError::Invalid {
                message: "a values file must be a map of values".into(),
                span: Span::file_start(&source),
                hint: None,
            }
            .into());
        }
        let value = Arc::new(value);
        self.cache.insert(path.to_path_buf(), Arc::clone(&value));
        Ok(value)
    }
}

/// Find the environment by name; a stack without environments has an
/// implicit `default` one that targets the kubeconfig's current context.
pub fn environment(stack: &Stack, name: &str) -> Result<Environment, Error> {
    if stack.environments.is_empty() && name == "default" {
        let span = stack.files.first().map_or_else(
            || Span::new(&SourceFile::new("", ""), 0..0),
            Span::file_start,
        );
        return Ok(Environment {
            name: name.into(),
            span,
            cluster: crate::load::config::ClusterTarget::CurrentContext,
            values: Vec::new(),
            secrets: Vec::new(),
            age_key_file: None,
            pull_secret: None,
            ingress: None,
            previews: crate::load::config::Previews::default(),
        });
    }
    Ok(stack.environment(name)?.clone())
}

/// Merge an environment's values files and secrets, and for a deployment
/// group its `previews.values` over them.
pub fn resolve_environment(
    environment: &Environment,
    secrets: &mut SecretFiles,
    group: Option<&Group>,
) -> Result<ResolvedEnvironment, Vec<Error>> {
    let mut files = ValuesFiles::default();
    let mut values = Value::Object(Map::new());
    let mut errors = Vec::new();
    let env = crate::load::render::filters::environment(&secrets.masks);
    let mut context = json!({"environment": {"name": environment.name}});
    if let Some(group) = group {
        context["group"] = group.label.clone().into();
    }
    let context = JinjaValue::from(Serde(context));
    let evaluator = Evaluator::new(&env, context);
    for source in &environment.values {
        match layer(source, &evaluator, &mut files) {
            Ok((layer, _)) => merge(&mut values, Value::clone(&layer)),
            Err(error) => errors.push(error),
        }
    }
    for secret in &environment.secrets {
        match secrets.layer(secret, &evaluator) {
            Ok(layer) => merge(&mut values, Value::clone(&layer)),
            Err(error) => errors.push(error),
        }
    }
    let previews = group.map_or(&[][..], |_| &environment.previews.values[..]);
    for source in previews {
        match layer(source, &evaluator, &mut files) {
            Ok((layer, _)) => merge(&mut values, Value::clone(&layer)),
            Err(error) => errors.push(error),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let pull_config = match &environment.pull_secret {
        Some(crate::load::config::PullSecretSpec::Managed {
            source: crate::load::config::PullSource::DockerConfig(file),
            ..
        }) => Some(
            secrets
                .layer(file, &evaluator)
                .map_err(|error| vec![error])?,
        ),
        _ => None,
    };
    Ok(ResolvedEnvironment {
        environment: environment.clone(),
        values: Arc::new(values),
        pull_config,
        group: group.cloned(),
    })
}

/// Decrypts secrets files once per run, however many releases name them;
/// identities are loaded on first use.
pub struct SecretFiles {
    explicit: Option<PathBuf>,
    identities: Option<Identities>,
    cache: HashMap<PathBuf, Arc<Value>>,
    /// Where every decrypted value is registered.
    masks: Masks,
    /// A file no identity opens stands in with a digest of each value's
    /// ciphertext instead of failing (a diff without the keys).
    pub stand_in: bool,
}

/// Each encrypted value of a SOPS tree as `(encrypted <digest>)`.
fn seal(value: &mut Value) {
    match value {
        Value::String(text) if text.starts_with("ENC[") => {
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(text.as_bytes());
            *text = format!("(encrypted {})", stack_kube::hex::lower(&digest[..4]));
        }
        Value::Object(map) => map.values_mut().for_each(seal),
        Value::Array(items) => items.iter_mut().for_each(seal),
        _ => {}
    }
}

impl SecretFiles {
    pub fn new(explicit: Option<PathBuf>, masks: &Masks) -> Self {
        Self {
            explicit,
            identities: None,
            cache: HashMap::new(),
            masks: masks.clone(),
            stand_in: false,
        }
    }

    /// A secrets file read without its keys: each encrypted value as
    /// `(encrypted <digest>)`, so that a changed secret shows as one.
    fn stood_in(path: &Path) -> Option<Arc<Value>> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut value = crate::yaml::parse_values(&SourceFile::new(path, text)).ok()?;
        if let Value::Object(map) = &mut value {
            map.remove("sops");
        }
        seal(&mut value);
        Some(Arc::new(value))
    }

    fn layer(&mut self, secret: &FileRef, evaluator: &Evaluator) -> Result<Arc<Value>, Error> {
        let path = secret.base.join(evaluator.text(&secret.path)?);
        if let Some(layer) = self.cache.get(&path) {
            return Ok(Arc::clone(layer));
        }
        let span = Some(secret.path.span.clone());
        if !path.exists() {
            return Err(ConfigError::Read {
                path,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
                span,
            }
            .into());
        }
        let decrypted = match self.decrypt(&path, span) {
            Err(_) if self.stand_in => {
                let layer = Self::stood_in(&path).unwrap_or_default();
                self.cache.insert(path, Arc::clone(&layer));
                return Ok(layer);
            }
            decrypted => decrypted?,
        };
        for secret in &decrypted.secrets {
            self.masks.register(secret);
        }
        if let Ok(bytes) = fs_err::read(&path) {
            use sha2::Digest as _;
            self.masks
                .add_source(stack_kube::hex::lower(&sha2::Sha256::digest(&bytes)));
        }
        let mut merged = Value::Object(Map::new());
        for document in &decrypted.documents {
            merge(&mut merged, document.to_value());
        }
        let layer = Arc::new(merged);
        self.cache.insert(path, Arc::clone(&layer));
        Ok(layer)
    }
}

impl SecretFiles {
    fn decrypt(
        &mut self,
        path: &Path,
        span: Option<Span>,
    ) -> Result<crate::secrets::sops::Decrypted, Error> {
        if self.identities.is_none() {
            let loaded =
                crate::secrets::identities::load(self.explicit.as_deref()).map_err(|error| {
                    Error::Secrets {
                        error,
                        span: span.clone(),
                    }
                })?;
            self.identities = Some(loaded);
        }
        let identities = self
            .identities
            .as_ref()
            .expect("identities were just loaded");
        crate::secrets::decrypt_file(path, identities)
            .map_err(|error| Error::Secrets { error, span })
    }
}

fn layer(
    source: &ValuesSource,
    evaluator: &Evaluator,
    files: &mut ValuesFiles,
) -> Result<(Arc<Value>, Origin), Error> {
    match source {
        ValuesSource::File(file) => {
            let path = file.base.join(evaluator.text(&file.path)?);
            Ok((files.read(&path, &file.path.span)?, Origin::File(path)))
        }
        ValuesSource::Inline(node) => Ok((
            Arc::new(evaluator.tree(node)?),
            Origin::Inline(node.clone()),
        )),
    }
}

/// Resolve every release of the stack for one environment.
pub(crate) fn resolve_releases(
    stack: &Stack,
    environment: &ResolvedEnvironment,
    sets: &[SetValue],
    secrets: &mut SecretFiles,
) -> Result<Vec<Release>, Vec<Error>> {
    let env = crate::load::render::filters::environment(&secrets.masks);
    let set_layer = (!sets.is_empty()).then(|| {
        let mut overlay = Value::Object(Map::new());
        for set in sets {
            merge(&mut overlay, set.to_overlay());
        }
        Arc::new(overlay)
    });
    // `--set` is above everything, in stack-file expressions too.
    let mut expression_values = Value::clone(&environment.values);
    if let Some(overlay) = &set_layer {
        merge(&mut expression_values, Value::clone(overlay));
    }
    let values = JinjaValue::from(Serde(&expression_values));
    let mut files = ValuesFiles::default();
    let mut releases: Vec<Release> = Vec::new();
    let mut errors = Vec::new();
    for spec in &stack.releases {
        let resolved = resolve_release(
            spec,
            environment,
            &env,
            &values,
            &mut files,
            secrets,
            &stack.repositories,
        );
        match resolved {
            Ok(mut release) => {
                if let Some(first) = releases.iter().find(|r| r.id == release.id) {
                    errors.push(
                        ConfigError::DuplicateRelease {
                            id: release.id.clone(),
                            first: first.span.clone(),
                            second: release.span.clone(),
                        }
                        .into(),
                    );
                    continue;
                }
                release.layers.insert(0, Arc::clone(&environment.values));
                release.origins.insert(0, None);
                // An app's pods use the environment's pull secret unless
                // its values name their own.
                if let (Some(pull), ChartSource::Builtin(_)) =
                    (&environment.environment.pull_secret, &release.chart)
                {
                    release
                        .layers
                        .insert(0, Arc::new(json!({"imagePullSecrets": [pull.name()]})));
                    release.origins.insert(0, None);
                }
                if let Some(overlay) = &set_layer {
                    release.layers.push(Arc::clone(overlay));
                    release.origins.push(Some(Origin::Set));
                }
                releases.push(release);
            }
            Err(mut release_errors) => errors.append(&mut release_errors),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if environment.group.is_some() {
        to_group(&mut releases);
    }
    Ok(releases)
}

/// A group's copies need each other, not the environment's releases they
/// were copied from: a need on a copied release is moved to its copy (a
/// need on a shared one stays the environment's).
fn to_group(releases: &mut [Release]) {
    let copies: HashMap<String, String> = releases
        .iter()
        .filter_map(|r| match &r.place {
            Place::Copy { of, .. } => Some((of.clone(), r.id.clone())),
            _ => None,
        })
        .collect();
    for release in releases.iter_mut() {
        for need in &mut release.needs {
            if let Some(copy) = copies.get(&need.id) {
                need.id.clone_from(copy);
            }
        }
    }
}

fn resolve_release(
    spec: &ReleaseSpec,
    environment: &ResolvedEnvironment,
    env: &minijinja::Environment<'static>,
    values: &JinjaValue,
    files: &mut ValuesFiles,
    secrets: &mut SecretFiles,
    repositories: &[Repository],
) -> Result<Release, Vec<Error>> {
    let environment_context =
        JinjaValue::from(Serde(json!({"name": environment.environment.name})));
    // Undefined outside a group (`{{ group | default(…) }}`).
    let group = environment
        .group
        .as_ref()
        .map_or(JinjaValue::UNDEFINED, |g| JinjaValue::from(g.label.clone()));
    let base = Evaluator::new(
        env,
        minijinja::context! {
            environment => environment_context.clone(),
            values => values.clone(),
            group => group.clone(),
        },
    );
    let name = base.text(&spec.name).map_err(|e| vec![e.into()])?;
    let own_namespace = match &spec.namespace {
        Some(node) => base.text(node).map_err(|e| vec![e.into()])?,
        None => "default".to_string(),
    };
    let (namespace, place) =
        place(spec, environment, &own_namespace, &name).map_err(|e| vec![e])?;
    let mut errors: Vec<Error> = Vec::new();
    let labels = labels(spec, &base, &mut errors);
    let release_context = JinjaValue::from(Serde(json!({
        "name": name, "namespace": namespace, "labels": labels,
    })));
    let evaluator = Evaluator::new(
        env,
        minijinja::context! {
            environment => environment_context,
            values => values.clone(),
            release => release_context,
            group => group,
        },
    );
    let (chart, chart_name) = chart_source(spec, &evaluator, repositories, &mut errors)?;
    // Needs name the environment's releases; a group's copies are moved
    // to each other afterwards (`to_group`).
    let needs = needs(spec, &evaluator, &own_namespace, &mut errors);
    let installed = match &spec.installed {
        None => true,
        Some(node) => match installed_flag(&evaluator, node) {
            Ok(flag) => flag,
            Err(error) => {
                errors.push(error);
                true
            }
        },
    };
    let (layers, origins) = value_layers(spec, &evaluator, files, secrets, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Release {
        id: format!("{namespace}/{name}"),
        name,
        namespace,
        chart,
        chart_name,
        labels,
        needs,
        installed,
        options: spec.options.clone(),
        layers,
        origins,
        span: spec.name.span.clone(),
        chart_span: spec.chart.span.clone(),
        place,
    })
}

/// The release's labels, evaluated.
fn labels(
    spec: &ReleaseSpec,
    evaluator: &Evaluator,
    errors: &mut Vec<Error>,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for (key, node) in &spec.labels {
        match evaluator.text(node) {
            Ok(value) => {
                labels.insert(key.clone(), value);
            }
            Err(error) => errors.push(error.into()),
        }
    }
    labels
}

/// Where a release goes in this deploy: its own namespace, or — a group's
/// copy — the preview namespace, which must be a namespace name.
fn place(
    spec: &ReleaseSpec,
    environment: &ResolvedEnvironment,
    namespace: &str,
    name: &str,
) -> Result<(String, Place), Error> {
    let Some(group) = &environment.group else {
        return Ok((namespace.to_string(), Place::Environment));
    };
    if spec.options.shared {
        return Ok((namespace.to_string(), Place::Shared));
    }
    let previews = &environment.environment.previews;
    let preview = previews.namespace_for(namespace, &group.label);
    if !stack_kube::object::is_dns_label(&preview) {
        let (template, span) = previews.namespace.clone().unwrap_or_else(|| {
            let span = spec.namespace.as_ref().map_or(&spec.name.span, |n| &n.span);
            (crate::load::config::DEFAULT_NAMESPACE.into(), span.clone())
        });
        return Err(ConfigError::Invalid {
            message: format!(
                "the preview namespace of release `{namespace}/{name}` in group `{}` would be `{preview}`, which is not a namespace name",
                group.name
            ),
            span,
            hint: Some(format!(
                "`{template}` must give at most 63 lowercase letters, digits and '-'; set a shorter `previews.namespace` of the environment"
            )),
        }
        .into());
    }
    let place = Place::Copy {
        group: group.label.clone(),
        of: format!("{namespace}/{name}"),
    };
    Ok((preview, place))
}

/// The releases it needs, as ids (a bare name is in the release's namespace).
fn needs(
    spec: &ReleaseSpec,
    evaluator: &Evaluator,
    namespace: &str,
    errors: &mut Vec<Error>,
) -> Vec<Need> {
    spec.needs
        .iter()
        .filter_map(|node| match evaluator.text(node) {
            Ok(text) => Some(Need {
                id: need_id(&text, namespace),
                span: node.span.clone(),
            }),
            Err(error) => {
                errors.push(error.into());
                None
            }
        })
        .collect()
}

/// Where the release's chart comes from, and its name (the implicit
/// `chart` label): a local folder, relative to the stack file, that must
/// exist.
fn chart_source(
    spec: &ReleaseSpec,
    evaluator: &Evaluator,
    repositories: &[Repository],
    errors: &mut Vec<Error>,
) -> Result<(ChartSource, String), Vec<Error>> {
    let text = evaluator.text(&spec.chart).map_err(|e| vec![e.into()])?;
    if let Some(builtin) = text.strip_prefix("builtin:") {
        let known = crate::load::render::app::BUILTIN;
        if !known.contains(&builtin) {
            return Err(vec![
                ConfigError::Invalid {
                    message: format!("there is no built-in chart `{builtin}`"),
                    span: spec.chart.span.clone(),
                    hint: Some(format!(
                        "the built-in charts are: {}",
                        known
                            .iter()
                            .map(|name| format!("builtin:{name}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                }
                .into(),
            ]);
        }
        return Ok((
            ChartSource::Builtin(builtin.to_string()),
            builtin.to_string(),
        ));
    }
    let name = Path::new(text.trim_end_matches('/'))
        .file_name()
        .map_or_else(|| text.clone(), |name| name.to_string_lossy().into_owned());
    let dir = spec.base.join(&text);
    let remote = if text.starts_with("oci://") {
        Some(text.clone())
    } else if dir.is_dir() {
        None
    } else {
        repository_chart(&text, repositories)
    };
    let Some(url) = remote else {
        if !dir.is_dir() {
            errors.push(chart_not_found(&text, dir.clone(), spec, repositories));
        }
        let source = if dir.join("Chart.yaml").is_file() {
            ChartSource::Helm(dir)
        } else {
            ChartSource::Local(dir)
        };
        return Ok((source, name));
    };
    let Some(version) = &spec.version else {
        return Err(vec![
            ConfigError::Invalid {
                message: format!("chart `{text}` comes from a repository: it needs `version`"),
                span: spec.chart.span.clone(),
                hint: Some("add `version: X.Y.Z` to the release, as helmfile requires".into()),
            }
            .into(),
        ]);
    };
    let version = evaluator.text(version).map_err(|e| vec![e.into()])?;
    Ok((ChartSource::Remote { url, version }, name))
}

/// `NAME/CHART` where NAME is one of `repositories:`: the chart's URL
/// (`REPO_URL/CHART` for a chart repository, `oci://…/CHART` for a registry).
fn repository_chart(text: &str, repositories: &[Repository]) -> Option<String> {
    let (repository, chart) = text.split_once('/')?;
    let repository = repositories.iter().find(|r| r.name == repository)?;
    Some(format!("{}/{chart}", repository.url))
}

/// A chart that is no folder: an unknown repository when it reads like
/// `NAME/CHART`, else a missing folder.
fn chart_not_found(
    text: &str,
    dir: PathBuf,
    spec: &ReleaseSpec,
    repositories: &[Repository],
) -> Error {
    if let Some((repository, _)) = text.split_once('/')
        && !spec.base.join(repository).is_dir()
        && !repository.starts_with('.')
    {
        let known: Vec<&str> = repositories.iter().map(|r| r.name.as_str()).collect();
        return ConfigError::Invalid {
            message: format!("chart `{text}`: no folder, and no repository `{repository}`"),
            span: spec.chart.span.clone(),
            hint: Some(if known.is_empty() {
                "a chart is a folder next to the stack file, or `REPO/CHART` with REPO in `repositories:`".into()
            } else {
                format!("repositories: {}", known.join(", "))
            }),
        }
        .into();
    }
    RenderError::ChartNotFound {
        path: dir,
        span: spec.chart.span.clone(),
    }
    .into()
}

/// The release's own values layers, lowest first: its values (files and
/// inline), then its secrets; where each was written, when it can be
/// pointed at.
fn value_layers(
    spec: &ReleaseSpec,
    evaluator: &Evaluator,
    files: &mut ValuesFiles,
    secrets: &mut SecretFiles,
    errors: &mut Vec<Error>,
) -> (Vec<Arc<Value>>, Vec<Option<Origin>>) {
    let mut layers = Vec::new();
    let mut origins = Vec::new();
    for source in &spec.values {
        match layer(source, evaluator, files) {
            Ok((layer, origin)) => {
                layers.push(layer);
                origins.push(Some(origin));
            }
            Err(error) => errors.push(error),
        }
    }
    for secret in &spec.secrets {
        match secrets.layer(secret, evaluator) {
            Ok(layer) => {
                layers.push(layer);
                origins.push(None);
            }
            Err(error) => errors.push(error),
        }
    }
    (layers, origins)
}

fn installed_flag(evaluator: &Evaluator, node: &yaml::Node) -> Result<bool, Error> {
    let value = match &node.kind {
        yaml::NodeKind::Bool(flag) => return Ok(*flag),
        yaml::NodeKind::String(text) => evaluator.string(text, &node.span)?,
        _ => Value::Null,
    };
    match value {
        Value::Bool(flag) => Ok(flag),
        Value::String(text) if text.trim() == "true" => Ok(true),
        Value::String(text) if text.trim() == "false" => Ok(false),
        other => Err(ConfigError::Invalid {
            message: format!("`installed` must evaluate to true or false, not {other}"),
            span: node.span.clone(),
            hint: Some(
                "for example `installed: \"{{ values.app1.enabled }}\"` with a boolean value"
                    .into(),
            ),
        }
        .into()),
    }
}
