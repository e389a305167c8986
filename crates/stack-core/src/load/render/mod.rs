//! Rendering: stack-file expressions, charts, and the objects a release's
//! templates produce. Pure: data in, objects out.

pub mod app;
pub mod cache;
pub mod chart;
mod context;
pub mod expression;
pub mod filters;
pub mod helm;
pub mod pull;
mod source;
pub mod versioned;

use std::path::PathBuf;

use minijinja::value::{Serde, Value as JinjaValue};
use serde_json::{Value, json};

pub(crate) use chart::Chart;
pub use context::Capabilities;
pub use source::ChartContext;
pub(crate) use source::Loaded;
pub use source::load as load_chart;

use crate::diagnostic::{SourceFile, Span};
use crate::load::config::ConfigError;
use crate::load::release::Release;
use crate::load::values::merge;
use crate::yaml;
use stack_kube::kinds::Scopes;
use stack_kube::object::Object;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("chart `{}` not found", crate::diagnostic::display_path(path))]
    ChartNotFound { path: PathBuf, span: Span },
    #[error(
        "cannot read {}: {}",
        crate::diagnostic::display_path(path),
        crate::diagnostic::io_reason(source)
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(ConfigError),
    #[error("{message}")]
    Expression { message: String, span: Span },
    #[error("{}template `{template}` failed: {message}", release_prefix(release.as_deref()))]
    Template {
        release: Option<String>,
        template: String,
        message: String,
        span: Option<Span>,
    },
    #[error("release `{release}`: value `{path}` violates the chart's schema: {message}")]
    Schema {
        release: String,
        path: String,
        message: String,
        /// Where the offending value was set, when that can be told; else
        /// the chart's schema.
        span: Span,
    },
    #[error("release `{release}`: {template} renders an invalid object: {message}")]
    Manifest {
        release: String,
        template: String,
        message: String,
        span: Option<Span>,
    },
    #[error(
        "{} is a link to {}, outside the chart",
        crate::diagnostic::display_path(link),
        crate::diagnostic::display_path(target)
    )]
    LinkOutsideChart { link: PathBuf, target: PathBuf },
    #[error(
        "release `{release}`: cannot run helm ({}): {reason}",
        crate::diagnostic::display_path(helm)
    )]
    HelmMissing {
        release: String,
        helm: PathBuf,
        reason: String,
    },
    #[error("release `{release}`: helm template failed: {message}")]
    Helm { release: String, message: String },
    #[error("cannot pull chart {chart}: {message}")]
    Pull { chart: String, message: String },
    #[error("the cached chart {chart} {problem}")]
    ChartCache { chart: String, problem: String },
    #[error("object {object} is rendered twice: by `{first}` and by `{second}`")]
    DuplicateObject {
        object: String,
        first: String,
        second: String,
    },
}

fn release_prefix(release: Option<&str>) -> String {
    release.map_or_else(String::new, |release| format!("release `{release}`: "))
}

impl RenderError {
    pub fn span(&self) -> Option<&Span> {
        match self {
            Self::ChartNotFound { span, .. }
            | Self::Expression { span, .. }
            | Self::Schema { span, .. } => Some(span),
            Self::Template { span, .. } | Self::Manifest { span, .. } => span.as_ref(),
            Self::Config(error) => error.span(),
            Self::Read { .. }
            | Self::DuplicateObject { .. }
            | Self::LinkOutsideChart { .. }
            | Self::HelmMissing { .. }
            | Self::Helm { .. }
            | Self::Pull { .. }
            | Self::ChartCache { .. } => None,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Self::ChartNotFound { .. } => Some(
                "`chart` is a folder with templates/, relative to the stack file that names it"
                    .into(),
            ),
            Self::Config(error) => error.hint(),
            Self::Expression { message, .. } | Self::Template { message, .. }
                if message.contains("undefined") =>
            {
                Some("check the spelling of the value, or give it a default: `{{ values.x | default('y') }}`".into())
            }
            Self::Schema { .. } => Some("fix the value, or the chart's values.schema.json".into()),
            Self::Manifest { span: None, .. } => {
                Some("every document needs apiVersion, kind and metadata.name".into())
            }
            Self::Manifest { .. } => Some(
                "the line shown is the template's output; check indentation and quoting around `{{ }}`".into(),
            ),
            Self::HelmMissing { .. } => Some(
                "a chart with Chart.yaml is a Helm chart, rendered by helm: install helm, or set STACK_HELM to its path".into(),
            ),
            Self::Helm { .. } => Some("the message is helm's; check the chart and the release's values".into()),
            Self::Pull { .. } => Some(
                "check the repository's url, the chart's name and `version`, and that the repository is reachable".into(),
            ),
            Self::ChartCache { .. } => Some(
                "run `stack charts update` to pull it again".into(),
            ),
            Self::DuplicateObject { .. } => {
                Some("an object belongs to one release; remove it from one of them".into())
            }
            Self::LinkOutsideChart { .. } => Some(
                "a chart's templates stay inside its folder: copy the file in, or remove the link"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// A release's rendered objects.
#[derive(Debug, Clone)]
pub struct RenderedRelease {
    pub id: String,
    /// Objects in template order.
    pub objects: Vec<Object>,
    /// Test objects (`templates/tests/`).
    pub tests: Vec<Object>,
    /// A Helm chart's hooks, other than its tests.
    pub hooks: Vec<Hook>,
    /// The merged values the objects were rendered from.
    pub values: Value,
    /// A blue/green release's colours once this render is deployed (set
    /// when the plan shapes it for the live colours).
    pub rollout: Option<stack_kube::revision::Rollout>,
    /// A canary's experimental variants, each rendered with its values
    /// over the release's.
    pub variants: Vec<RenderedVariant>,
}

/// One variant of a canary release, rendered.
#[derive(Debug, Clone)]
pub struct RenderedVariant {
    pub name: String,
    pub objects: Vec<Object>,
}

/// A variant's render error, naming the variant with the release.
fn in_variant(error: RenderError, variant: &str) -> RenderError {
    let named = |release: String| format!("{release} (variant {variant})");
    match error {
        RenderError::Template {
            release,
            template,
            message,
            span,
        } => RenderError::Template {
            release: release.map(named),
            template,
            message,
            span,
        },
        RenderError::Schema {
            release,
            path,
            message,
            span,
        } => RenderError::Schema {
            release: named(release),
            path,
            message,
            span,
        },
        RenderError::Manifest {
            release,
            template,
            message,
            span,
        } => RenderError::Manifest {
            release: named(release),
            template,
            message,
            span,
        },
        RenderError::Helm { release, message } => RenderError::Helm {
            release: named(release),
            message,
        },
        RenderError::Config(ConfigError::Invalid {
            message,
            span,
            hint,
        }) => RenderError::Config(ConfigError::Invalid {
            message: format!("variant `{variant}`: {message}"),
            span,
            hint,
        }),
        other => other,
    }
}

/// Render the variants of a canary release (none for any other): the
/// release with each variant's values as its highest layer.
pub(crate) fn render_variants(
    release: &Release,
    chart: &Loaded,
    environment: &str,
    scopes: &Scopes,
) -> Result<Vec<RenderedVariant>, Vec<RenderError>> {
    let crate::load::config::StrategySpec::Canary(spec) = &release.options.strategy else {
        return Ok(Vec::new());
    };
    spec.variants
        .iter()
        .map(|variant| {
            let mut own = release.clone();
            own.layers.push(std::sync::Arc::new(variant.values.clone()));
            let rendered = render_release(&own, chart, environment, scopes).map_err(|errors| {
                errors
                    .into_iter()
                    .map(|error| in_variant(error, &variant.name))
                    .collect::<Vec<_>>()
            })?;
            Ok(RenderedVariant {
                name: variant.name.clone(),
                objects: rendered.objects,
            })
        })
        .collect()
}

/// A Helm hook (`helm.sh/hook`): run at its events, never one of the
/// release's objects (not diffed, pruned or kept in its revisions).
#[derive(Debug, Clone)]
pub struct Hook {
    pub object: Object,
    /// `pre-install`, `post-upgrade`, …
    pub events: Vec<String>,
    /// `helm.sh/hook-weight`: lower runs first (0 when absent or not a number).
    pub weight: i64,
    /// `helm.sh/hook-delete-policy`; none means `before-hook-creation`.
    pub delete_policies: Vec<String>,
}

impl Hook {
    fn of(object: Object, events: Vec<String>) -> Self {
        let annotations = &object.body["metadata"]["annotations"];
        let weight = annotations["helm.sh/hook-weight"]
            .as_str()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0);
        let delete_policies = annotations["helm.sh/hook-delete-policy"]
            .as_str()
            .map(list)
            .unwrap_or_default();
        Self {
            object,
            events,
            weight,
            delete_policies,
        }
    }

    pub fn runs_at(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }

    /// Whether the hook's object is deleted on `policy`'s occasion.
    pub fn deletes_on(&self, policy: &str) -> bool {
        if self.delete_policies.is_empty() {
            policy == "before-hook-creation"
        } else {
            self.delete_policies.iter().any(|p| p == policy)
        }
    }
}

/// A comma-separated annotation's items.
fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

/// An app's values problem, located where the value was set (else at the
/// release's chart).
fn app_error(release: &Release, problem: app::AppProblem) -> RenderError {
    RenderError::Config(ConfigError::Invalid {
        message: format!("release `{}`: {}", release.id, problem.message),
        span: app::locate(release, &problem.path).unwrap_or_else(|| release.chart_span.clone()),
        hint: Some(problem.hint),
    })
}

/// `builtin:app` knows its values' keys: another in the release's own
/// values (its inline values and values files, not the environment's,
/// which every release shares) is an error naming the nearest known one.
fn check_app_keys(release: &Release) -> Result<(), Vec<RenderError>> {
    let mut own = Value::Object(serde_json::Map::new());
    // The release's own values (`--set` is global: it sets values of
    // every release, not only this chart's).
    for (layer, origin) in release.layers.iter().zip(&release.origins) {
        if matches!(
            origin,
            Some(crate::load::release::Origin::Inline(_) | crate::load::release::Origin::File(_))
        ) {
            merge(&mut own, Value::clone(layer));
        }
    }
    let errors: Vec<RenderError> = app::unknown_keys(&own, app::KEYS)
        .into_iter()
        .map(|(key, nearest)| {
            app_error(
                release,
                app::AppProblem {
                    message: format!("`{key}` is not a value of builtin:app"),
                    hint: match nearest {
                        Some(nearest) => format!("did you mean `{nearest}`?"),
                        None => format!("its values are: {}", app::KEYS.join(", ")),
                    },
                    path: vec![key],
                },
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Render a release with its chart, whichever kind the chart is.
pub(crate) fn render_release(
    release: &Release,
    chart: &Loaded,
    environment: &str,
    scopes: &Scopes,
) -> Result<RenderedRelease, Vec<RenderError>> {
    match chart {
        Loaded::Templates(chart) => render_templates(release, chart, environment, scopes, false),
        Loaded::App(chart) => render_templates(release, chart, environment, scopes, true),
        Loaded::Helm(chart) => render_helm(release, chart, scopes),
        Loaded::Objects(objects) => render_objects(release, objects, scopes),
    }
}

/// Objects given as they are: each one a document, labelled as the
/// release's.
fn render_objects(
    release: &Release,
    objects: &[String],
    scopes: &Scopes,
) -> Result<RenderedRelease, Vec<RenderError>> {
    let documents = objects
        .iter()
        .enumerate()
        .map(|(index, text)| chart::Rendered {
            template: format!("resources[{index}]"),
            text: text.clone(),
        })
        .collect();
    let mut errors = Vec::new();
    let objects = parse_objects(release, documents, scopes, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(RenderedRelease {
        id: release.id.clone(),
        objects,
        tests: Vec::new(),
        hooks: Vec::new(),
        values: Value::Object(serde_json::Map::new()),
        rollout: None,
        variants: Vec::new(),
    })
}

/// `helm template` a release with its own values (helm puts them over the
/// chart's `values.yaml`); its test hooks are its tests.
fn render_helm(
    release: &Release,
    chart: &helm::HelmChart,
    scopes: &Scopes,
) -> Result<RenderedRelease, Vec<RenderError>> {
    let mut own = Value::Object(serde_json::Map::new());
    for layer in &release.layers {
        merge(&mut own, Value::clone(layer));
    }
    let output = chart.render(release, &own).map_err(|error| vec![error])?;
    let mut errors = Vec::new();
    let rendered = parse_objects(release, output, scopes, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let (mut objects, mut tests, hooks) = split_hooks(rendered);
    versioned::apply(&mut objects, &mut tests);
    let mut values = chart.defaults.clone();
    merge(&mut values, own);
    Ok(RenderedRelease {
        id: release.id.clone(),
        objects,
        tests,
        hooks,
        values,
        rollout: None,
        variants: Vec::new(),
    })
}

/// The hooks a revision kept (as [`split_hooks`] found them).
pub(crate) fn recorded_hooks(stored: &stack_kube::revision::Stored) -> Vec<Hook> {
    stored
        .parse()
        .iter()
        .filter_map(|body| {
            let events = body["metadata"]["annotations"]["helm.sh/hook"]
                .as_str()
                .map(list)?;
            Some(Hook::of(Object::from_body(body, "revision"), events))
        })
        .collect()
}

/// A Helm chart's objects, its tests (`helm.sh/hook: test`) and its other
/// hooks.
fn split_hooks(rendered: Vec<Object>) -> (Vec<Object>, Vec<Object>, Vec<Hook>) {
    let mut objects = Vec::new();
    let mut tests = Vec::new();
    let mut hooks = Vec::new();
    for object in rendered {
        let events = object.body["metadata"]["annotations"]["helm.sh/hook"]
            .as_str()
            .map(list);
        match events {
            None => objects.push(object),
            Some(events)
                if events
                    .iter()
                    .all(|e| matches!(e.as_str(), "test" | "test-success")) =>
            {
                tests.push(object);
            }
            Some(events) => hooks.push(Hook::of(object, events)),
        }
    }
    (objects, tests, hooks)
}

/// Merge a release's values over its chart's defaults and render it; the
/// built-in app chart (`app`) gets its values checked and worked out first.
fn render_templates(
    release: &Release,
    chart: &Chart,
    environment: &str,
    scopes: &Scopes,
    app: bool,
) -> Result<RenderedRelease, Vec<RenderError>> {
    let mut values = chart.defaults.clone();
    for layer in &release.layers {
        merge(&mut values, Value::clone(layer));
    }
    if app {
        check_app_keys(release)?;
    }
    chart.validate(&release.id, &values, |pointer| release.locate(pointer))?;
    let mut context = json!({
        "values": values,
        "release": {
            "name": release.name,
            "namespace": release.namespace,
            "id": release.id,
            "labels": release.labels,
        },
        "environment": {"name": environment},
        "chart": {
            "name": chart.name,
            "version": chart.version,
            "description": chart.description,
        },
    });
    // Undefined outside a group (`{{ group | default(…) }}`).
    if let Some(group) = release.group() {
        context["group"] = group.into();
    }
    if app {
        context["app"] = app::prepare(&release.name, &release.namespace, &values)
            .map_err(|problem| vec![app_error(release, problem)])?;
    }
    let context = JinjaValue::from(Serde(context));
    let main = chart.render(&release.id, &chart.templates, &context);
    let tests = chart.render(&release.id, &chart.tests, &context);
    let (main, tests) = match (main, tests) {
        (Ok(main), Ok(tests)) => (main, tests),
        (main, tests) => {
            let mut errors = main.err().unwrap_or_default();
            errors.extend(tests.err().unwrap_or_default());
            return Err(errors);
        }
    };
    let mut errors = Vec::new();
    let mut objects = parse_objects(release, main, scopes, &mut errors);
    let mut tests = parse_objects(release, tests, scopes, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    versioned::apply(&mut objects, &mut tests);
    Ok(RenderedRelease {
        id: release.id.clone(),
        objects,
        tests,
        hooks: Vec::new(),
        values,
        rollout: None,
        variants: Vec::new(),
    })
}

fn parse_objects(
    release: &Release,
    rendered: Vec<chart::Rendered>,
    scopes: &Scopes,
    errors: &mut Vec<RenderError>,
) -> Vec<Object> {
    let release_label = format!("{}.{}", release.namespace, release.name);
    let mut objects = Vec::new();
    for output in rendered {
        let source = SourceFile::new(
            format!("{} (rendered for {})", output.template, release.id),
            output.text,
        );
        let documents = match yaml::parse_documents(&source) {
            Ok(documents) => documents,
            Err(error) => {
                errors.push(RenderError::Manifest {
                    release: release.id.clone(),
                    template: output.template.clone(),
                    message: format!("the output is not valid YAML: {}", error.message),
                    span: Some(error.span),
                });
                continue;
            }
        };
        for document in documents {
            match object_from(document, &release.namespace, &output.template, scopes) {
                Ok(mut object) => {
                    object.label(&release_label);
                    objects.push(object);
                }
                Err(message) => errors.push(RenderError::Manifest {
                    release: release.id.clone(),
                    template: output.template.clone(),
                    message,
                    span: None,
                }),
            }
        }
    }
    objects
}

/// Check a document's identity and fill in the release namespace.
fn object_from(
    mut body: Value,
    release_namespace: &str,
    template: &str,
    scopes: &Scopes,
) -> Result<Object, String> {
    let field = |body: &Value, pointer: &str| {
        body.pointer(pointer)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
            .map(str::to_string)
    };
    if !body.is_object() {
        return Err("a document is not a map".into());
    }
    let api_version = field(&body, "/apiVersion").ok_or("a document has no `apiVersion`")?;
    let kind = field(&body, "/kind").ok_or("a document has no `kind`")?;
    let name =
        field(&body, "/metadata/name").ok_or_else(|| format!("a {kind} has no `metadata.name`"))?;
    let metadata = body
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or("`metadata` is not a map")?;
    let namespace = (!scopes.is_cluster_scoped(&api_version, &kind)).then(|| {
        metadata
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|namespace| !namespace.is_empty())
            .unwrap_or(release_namespace)
            .to_string()
    });
    // `name`, then `namespace`, then the rest, as people write them.
    let rest = std::mem::take(metadata);
    metadata.insert("name".into(), Value::String(name.clone()));
    if let Some(namespace) = &namespace {
        metadata.insert("namespace".into(), Value::String(namespace.clone()));
    }
    metadata.extend(
        rest.into_iter()
            .filter(|(key, _)| key != "name" && key != "namespace"),
    );
    Ok(Object {
        api_version,
        kind,
        name,
        namespace,
        body,
        template: template.to_string(),
    })
}

/// Kinds declared cluster-scoped by CRDs among the rendered objects.
pub(crate) fn scopes_from_crds<'a>(objects: impl IntoIterator<Item = &'a Object>) -> Scopes {
    let mut scopes = Scopes::default();
    for object in objects {
        if object.kind != "CustomResourceDefinition" {
            continue;
        }
        let spec = &object.body["spec"];
        if spec["scope"] == "Cluster"
            && let (Some(group), Some(kind)) =
                (spec["group"].as_str(), spec["names"]["kind"].as_str())
        {
            scopes.add_cluster_scoped(group, kind);
        }
    }
    scopes
}
