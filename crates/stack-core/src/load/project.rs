//! The load stage as one value: stack files → environment → releases →
//! graph → selection, and rendering of the selected releases. Every command
//! starts here; nothing in this module touches a cluster.

use std::collections::HashMap;
use std::sync::Arc;

use crate::diagnostic::Diagnostic;
use crate::error::{Error, Errors};
use crate::load::config::{self, Stack};
use crate::load::graph::{Graph, GraphError, NeedsMode, Selection, Selector};
use crate::load::release::{ChartSource, Release};
use crate::load::render::{self, Capabilities, ChartContext, Loaded, RenderError, RenderedRelease};
use crate::load::resolve::{self, ResolvedEnvironment};
use crate::load::values::SetValue;
use crate::mask::Masks;
use stack_kube::kinds::Scopes;
use stack_kube::object::ObjectKey;

/// What to load: the command line's (or a request's) choice of stack,
/// environment, values, keys and selection.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// A stack file or the folder holding `stack.yaml`.
    pub target: std::path::PathBuf,
    /// `-e`; `None` means the stack's `defaultEnvironment`, else `default`.
    pub environment: Option<String>,
    /// `--set` and `--set-string`, in order.
    pub sets: Vec<SetValue>,
    /// `--age-key-file`; otherwise the environment's, else the usual places.
    pub age_key_file: Option<std::path::PathBuf>,
    pub selectors: Vec<Selector>,
    /// Whether the needs of selected releases are selected too.
    pub needs: NeedsMode,
    /// A selector matching nothing is not an error.
    pub allow_no_match: bool,
    /// `--group`: deploy the selection as this deployment group's copies.
    pub group: Option<crate::load::group::Group>,
    /// A release of objects given as they are, beside the stack's.
    pub ad_hoc: Option<crate::load::release::AdHoc>,
    /// A secrets file no identity opens stands in with digests of its
    /// ciphertexts instead of failing (`diff --against` without keys).
    pub secrets_without_keys: bool,
}

pub struct Project {
    pub stack: Stack,
    pub environment: ResolvedEnvironment,
    pub releases: Vec<Release>,
    pub graph: Graph,
    pub selection: Selection,
    pub warnings: Vec<Diagnostic>,
    /// The run's secrets: every value decrypted while loading and rendering
    /// is registered here, and what the run prints is masked with it.
    pub masks: Masks,
}

/// Load the stack files and find the environment to use: `-e`, else the
/// stack's `defaultEnvironment`, else `default`.
pub fn load_environment(
    options: &LoadOptions,
) -> Result<(Stack, crate::load::config::Environment), Errors> {
    let files = config::discover(&options.target)?;
    let stack = config::load(&files).map_err(Errors::from_all)?;
    let name = options
        .environment
        .clone()
        .or_else(|| {
            stack
                .default_environment
                .as_ref()
                .map(|(name, _)| name.clone())
        })
        .unwrap_or_else(|| "default".into());
    let environment = resolve::environment(&stack, &name)?;
    Ok((stack, environment))
}

impl Project {
    /// Load, resolve and select, registering every decrypted value in
    /// `masks`. All problems found are reported together.
    pub fn load(options: &LoadOptions, masks: &Masks) -> Result<Self, Errors> {
        let (stack, environment) = load_environment(options)?;
        let mut secrets = resolve::SecretFiles::new(
            options
                .age_key_file
                .clone()
                .or_else(|| environment.age_key_file.clone()),
            masks,
        );
        secrets.stand_in = options.secrets_without_keys;
        let environment =
            resolve::resolve_environment(&environment, &mut secrets, options.group.as_ref())
                .map_err(Errors)?;
        let mut releases =
            resolve::resolve_releases(&stack, &environment, &options.sets, &mut secrets)
                .map_err(Errors)?;
        if let Some(ad_hoc) = &options.ad_hoc {
            releases.push(ad_hoc.release());
        }
        let (graph, mut warnings) = Graph::build(&releases).map_err(Errors::from_all)?;
        warnings.extend(app_warnings(&releases));
        let selection = graph.select(&releases, &options.selectors, options.needs);
        if selection.releases.is_empty() && !options.selectors.is_empty() && !options.allow_no_match
        {
            return Err(GraphError::NoMatch {
                selectors: options.selectors.iter().map(ToString::to_string).collect(),
            }
            .into());
        }
        Ok(Self {
            stack,
            environment,
            releases,
            graph,
            selection,
            warnings,
            masks: masks.clone(),
        })
    }

    /// What loading this stack's charts needs: its masks, its helm, its
    /// chart cache.
    pub fn chart_context(&self) -> ChartContext {
        self.chart_context_for(None)
    }

    /// The chart context of a render for a known cluster.
    fn chart_context_for(&self, capabilities: Option<&Capabilities>) -> ChartContext {
        ChartContext {
            capabilities: capabilities.cloned(),
            masks: self.masks.clone(),
            helm: render::helm::helm_binary(self.stack.helm_binary.as_deref()),
            charts_dir: self.stack.state_dir.join(".stack").join("charts"),
            render_cache: self.stack.state_dir.join(".stack").join("render-cache"),
        }
    }

    pub fn environment_name(&self) -> &str {
        &self.environment.environment.name
    }

    /// The name revisions record to tell this stack's releases from
    /// others': the folder holding the stack files (its parent, for a
    /// `stacks/` folder), as a DNS label — it is a label value and part of
    /// the lock's name.
    pub fn stack_name(&self) -> String {
        let dir = std::fs::canonicalize(&self.stack.state_dir)
            .unwrap_or_else(|_| self.stack.state_dir.clone());
        let named = if dir.file_name().is_some_and(|n| n == "stacks") {
            dir.parent().unwrap_or(&dir).to_path_buf()
        } else {
            dir
        };
        named.file_name().map_or_else(
            || "stack".into(),
            |n| stack_kube::object::dns_label(&n.to_string_lossy()),
        )
    }

    /// Who a run's revisions say deployed them: the stack, or for a
    /// deployment group the stack and the group — so that neither prunes,
    /// recovers or locks the other's releases.
    pub fn owner(&self) -> String {
        let stack = self.stack_name();
        match &self.environment.group {
            Some(group) => group.owner(&stack),
            None => stack,
        }
    }

    /// The stack's git commit, when it is in a git repository.
    pub fn git_commit(&self) -> Option<String> {
        git(&self.stack.state_dir, &["rev-parse", "--short=12", "HEAD"])
    }

    /// The URLs a release (by index) is reached at, when it is exposed.
    pub fn urls(&self, index: usize) -> Vec<String> {
        crate::load::expose::urls(
            &self.releases[index],
            self.environment.environment.ingress.as_ref(),
            self.environment_name(),
        )
    }

    /// One line naming the needs of the selection that will not run.
    pub fn skipped_needs_note(&self) -> Option<String> {
        if self.selection.skipped_needs.is_empty() {
            return None;
        }
        let names: Vec<&str> = self
            .selection
            .skipped_needs
            .iter()
            .map(|&index| self.releases[index].id.as_str())
            .collect();
        Some(format!(
            "not selected, not run: {} (needed by the selection; add --include-needs to run them)",
            names.join(", ")
        ))
    }

    /// Selected releases that are installed, in graph order.
    pub fn installed_selection(&self) -> Vec<usize> {
        self.selection
            .releases
            .iter()
            .copied()
            .filter(|&index| self.releases[index].installed)
            .collect()
    }

    /// Render releases (by index) in parallel; every error is reported, and
    /// an object rendered by two releases is one.
    pub fn render(&self, indices: &[usize]) -> Result<Vec<RenderedRelease>, Errors> {
        self.render_for(indices, None)
    }

    /// Whether any of these releases (by index) is a Helm chart, which
    /// renders for the target cluster's capabilities.
    pub fn renders_helm(&self, indices: &[usize]) -> bool {
        indices.iter().any(|&index| {
            matches!(
                self.releases[index].chart,
                ChartSource::Helm(_) | ChartSource::Remote { .. }
            )
        })
    }

    /// [`Project::render`] with Helm charts rendered for a cluster's
    /// version and APIs (helm's defaults without them).
    pub fn render_for(
        &self,
        indices: &[usize],
        capabilities: Option<&Capabilities>,
    ) -> Result<Vec<RenderedRelease>, Errors> {
        let mut sources: Vec<ChartSource> = indices
            .iter()
            .map(|&index| self.releases[index].chart.clone())
            .collect();
        sources.sort();
        sources.dedup();
        let context = self.chart_context_for(capabilities);
        let loaded = crate::parallel::map(&sources, |source| render::load_chart(source, &context));
        let mut charts: HashMap<ChartSource, Arc<Loaded>> = HashMap::new();
        let mut errors: Vec<Error> = Vec::new();
        for (source, chart) in sources.into_iter().zip(loaded) {
            match chart {
                Ok(chart) => {
                    charts.insert(source, Arc::new(chart));
                }
                Err(chart_errors) => errors.extend(chart_errors.into_iter().map(Error::from)),
            }
        }
        if !errors.is_empty() {
            return Err(Errors(errors));
        }
        let scopes = Scopes::default();
        let environment = self.environment_name();
        let results = crate::parallel::map(indices, |&index| {
            let release = &self.releases[index];
            let chart = &charts[&release.chart];
            let mut rendered = render::render_release(release, chart, environment, &scopes)?;
            rendered.variants = render::render_variants(release, chart, environment, &scopes)?;
            Ok::<_, Vec<render::RenderError>>(rendered)
        });
        let mut rendered = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(release) => rendered.push(release),
                Err(release_errors) => errors.extend(release_errors.into_iter().map(Error::from)),
            }
        }
        if !errors.is_empty() {
            return Err(Errors(errors));
        }
        fix_custom_scopes(&mut rendered);
        check_duplicates(&rendered)?;
        let strategies: Vec<Error> = indices
            .iter()
            .zip(&rendered)
            .flat_map(|(&index, release)| {
                crate::load::strategy::check(&self.releases[index], release)
            })
            .map(Error::from)
            .collect();
        if !strategies.is_empty() {
            return Err(Errors(strategies));
        }
        let ingress = self.environment.environment.ingress.as_ref();
        let mut exposure = Vec::new();
        for (&index, release) in indices.iter().zip(&mut rendered) {
            let environment = self.environment_name();
            match crate::load::expose::objects(&self.releases[index], release, ingress, environment)
            {
                Ok(objects) => release.objects.extend(objects),
                Err(error) => exposure.push(Error::from(error)),
            }
        }
        if !exposure.is_empty() {
            return Err(Errors(exposure));
        }
        if let Some(group) = &self.environment.group {
            for release in &mut rendered {
                crate::load::group::mark(release, group);
            }
        }
        Ok(rendered)
    }
}

/// What `git ARGS` prints in `dir` (trimmed), when it succeeds.
pub fn git(dir: &std::path::Path, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// What `builtin:app` warns of in its releases' values (sensitive `env`
/// keys, an image without a tag), located where the value was set.
fn app_warnings(releases: &[Release]) -> Vec<crate::diagnostic::Diagnostic> {
    let mut out = Vec::new();
    for release in releases
        .iter()
        .filter(|r| matches!(r.chart, ChartSource::Builtin(_)))
    {
        let mut values = serde_json::Value::Object(serde_json::Map::new());
        for layer in &release.layers {
            crate::load::values::merge(&mut values, serde_json::Value::clone(layer));
        }
        for (message, path) in render::app::warnings(&values) {
            out.push(
                crate::diagnostic::Diagnostic::warning(format!(
                    "release `{}`: {message}",
                    release.id
                ))
                .with_span(render::app::locate(release, &path)),
            );
        }
    }
    out
}

/// Objects of kinds that a rendered CRD declares cluster-scoped lose the
/// namespace they were given by default.
fn fix_custom_scopes(rendered: &mut [RenderedRelease]) {
    let scopes = render::scopes_from_crds(rendered.iter().flat_map(|r| r.objects.iter()));
    for object in rendered.iter_mut().flat_map(|r| {
        r.objects
            .iter_mut()
            .chain(r.tests.iter_mut())
            .chain(r.hooks.iter_mut().map(|hook| &mut hook.object))
    }) {
        if object.namespace.is_some() && scopes.is_cluster_scoped(&object.api_version, &object.kind)
        {
            object.namespace = None;
            if let Some(metadata) = object
                .body
                .get_mut("metadata")
                .and_then(|m| m.as_object_mut())
            {
                metadata.remove("namespace");
            }
        }
    }
}

fn check_duplicates(rendered: &[RenderedRelease]) -> Result<(), Errors> {
    let mut owners: HashMap<ObjectKey, String> = HashMap::new();
    let mut errors = Vec::new();
    for release in rendered {
        let hooks = release.hooks.iter().map(|hook| &hook.object);
        for object in release.objects.iter().chain(&release.tests).chain(hooks) {
            let key = object.key();
            let place = format!("{} ({})", release.id, object.template);
            if let Some(first) = owners.get(&key) {
                errors.push(Error::from(RenderError::DuplicateObject {
                    object: key.to_string(),
                    first: first.clone(),
                    second: place,
                }));
            } else {
                owners.insert(key, place);
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Errors(errors))
    }
}
