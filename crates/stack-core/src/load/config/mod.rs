//! Stack files: discovery, parsing and validation into a [`Stack`], the
//! first stage of the pipeline (load → plan → execute).
//!
//! Everything here keeps the source span of what it read. Strings that may
//! hold `{{ … }}` expressions are kept as [`Node`]s; they are evaluated later,
//! once an environment is chosen (see `resolve`).

mod discovery;
mod error;
mod expose;
mod parse;
mod previews;
mod pull_secret;
pub mod reader;
mod strategy;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use discovery::{StackFiles, discover};
pub use error::ConfigError;
pub use expose::{Access, Auth, DomainTls, ExposeSpec, IngressSettings, UrlTemplate, is_domain};
pub use parse::parse_stack_file;
pub use previews::{DEFAULT_NAMESPACE, Previews};
pub use pull_secret::{PullSecretSpec, PullSource};
pub use strategy::{Analysis, CanarySpec, CanaryStep, Variant, Weights};

use crate::diagnostic::{SourceFile, Span};
use crate::yaml::Node;

/// All stack files of one stack, merged into one graph.
#[derive(Debug, Default)]
pub struct Stack {
    /// Where `.stack/` (simulated cluster state, promotion log) lives.
    pub state_dir: PathBuf,
    pub files: Vec<Arc<SourceFile>>,
    pub environments: Vec<Environment>,
    pub default_environment: Option<(String, Span)>,
    pub releases: Vec<ReleaseSpec>,
    pub promotion: Option<Promotion>,
    /// Helm chart repositories (`repositories:`), in file order.
    pub repositories: Vec<Repository>,
    /// `helmBinary:`, the helm that renders Helm charts.
    pub helm_binary: Option<PathBuf>,
}

/// A Helm chart repository that `chart: NAME/CHART` refers to.
#[derive(Debug, Clone)]
pub struct Repository {
    pub name: String,
    /// Without a trailing `/`; `oci://…` for a registry.
    pub url: String,
    pub oci: bool,
    pub span: Span,
}

/// Where an environment's cluster is.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterTarget {
    /// The embedded simulated cluster, with its fault-injection settings.
    Simulated(SimulatedOptions),
    /// A context of the user's kubeconfig.
    KubeContext(String),
    /// The kubeconfig's current context.
    CurrentContext,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimulatedOptions {
    pub fault_rate: Option<f64>,
    pub latency_ms: Option<u64>,
    pub seed: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    pub span: Span,
    pub cluster: ClusterTarget,
    /// Values files (paths) or inline maps, lowest precedence first.
    pub values: Vec<ValuesSource>,
    pub secrets: Vec<FileRef>,
    /// `ageKeyFile`: an identity file for this environment's secrets (for
    /// throwaway demo and CI keys; people use `SOPS_AGE_KEY_FILE` and friends).
    pub age_key_file: Option<PathBuf>,
    /// `imagePullSecrets`: the registry credentials of its namespaces.
    pub pull_secret: Option<PullSecretSpec>,
    /// `ingress`: how its exposed releases are reached.
    pub ingress: Option<IngressSettings>,
    /// `previews`: where and how its deployment groups deploy.
    pub previews: Previews,
}

/// A values layer: a file, or a map written inline.
#[derive(Debug, Clone)]
pub enum ValuesSource {
    /// A path, possibly templated, relative to `base`.
    File(FileRef),
    Inline(Node),
}

/// A path written in a stack file, relative to the file that names it.
#[derive(Debug, Clone)]
pub struct FileRef {
    pub path: Node,
    pub base: PathBuf,
}

/// Per-file defaults for every release of that file.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    pub timeout: Duration,
    pub wait: bool,
    pub atomic: bool,
    pub create_namespace: bool,
    pub tests: bool,
    pub history_max: u32,
    pub namespace: Option<String>,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            wait: true,
            atomic: true,
            create_namespace: true,
            tests: false,
            history_max: 10,
            namespace: None,
        }
    }
}

/// A release as written: templated fields are still nodes.
#[derive(Debug, Clone)]
pub struct ReleaseSpec {
    pub name: Node,
    pub namespace: Option<Node>,
    pub chart: Node,
    /// `version:` of a repository or OCI chart.
    pub version: Option<Node>,
    pub labels: Vec<(String, Node)>,
    pub needs: Vec<Node>,
    pub installed: Option<Node>,
    pub values: Vec<ValuesSource>,
    pub secrets: Vec<FileRef>,
    pub options: ReleaseOptions,
    /// The directory of the stack file, which relative paths start from.
    pub base: PathBuf,
    pub span: Span,
}

/// Deployment options after applying the file's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseOptions {
    pub timeout: Duration,
    pub wait: bool,
    pub atomic: bool,
    pub create_namespace: bool,
    pub tests: bool,
    pub history_max: u32,
    /// How a new version takes over (`strategy:`).
    pub strategy: StrategySpec,
    /// `expose:`: its Service reached at the environment's URLs.
    pub expose: Option<ExposeSpec>,
    /// `shared: true`: a deployment group does not copy it; the group's
    /// releases that need it use the environment's own.
    pub shared: bool,
}

/// How a release's new version takes over from the running one.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum StrategySpec {
    /// Each workload rolls its pods over by itself (no `strategy:`).
    #[default]
    Rolling,
    BlueGreen(BlueGreenSpec),
    Canary(CanarySpec),
}

/// `strategy: {blueGreen: …}`: the release's Deployments run in two
/// colours; a deploy brings up the idle colour and, once it is ready and
/// tested, switches the named Services' selectors to it.
#[derive(Debug, Clone)]
pub struct BlueGreenSpec {
    /// The Services (rendered by the release) whose selector switches.
    pub services: Vec<String>,
    /// Also a `<service>-preview` Service selecting the new colour.
    pub preview_service: bool,
    /// How long the previous colour stays at full size; `None`: until the
    /// next deploy.
    pub keep_previous: Option<Duration>,
    /// Where `strategy:` is written.
    pub span: Span,
    /// Where the Services are named (`strategy:` when they are not).
    pub service_span: Span,
}

impl PartialEq for BlueGreenSpec {
    fn eq(&self, other: &Self) -> bool {
        (&self.services, self.preview_service, self.keep_previous)
            == (&other.services, other.preview_service, other.keep_previous)
    }
}

impl Default for ReleaseOptions {
    fn default() -> Self {
        let defaults = Defaults::default();
        Self {
            timeout: defaults.timeout,
            wait: defaults.wait,
            atomic: defaults.atomic,
            create_namespace: defaults.create_namespace,
            tests: defaults.tests,
            history_max: defaults.history_max,
            strategy: StrategySpec::Rolling,
            expose: None,
            shared: false,
        }
    }
}

/// What `stack promote` moves between environments.
#[derive(Debug, Clone)]
pub struct Promotion {
    /// Dot-separated value paths; `*` matches one key.
    pub paths: Vec<(String, Span)>,
    /// Per target environment, the values file promote writes into.
    pub files: Vec<PromotionFile>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct PromotionFile {
    pub environment: String,
    /// Where the environment is named.
    pub span: Span,
    pub file: FileRef,
}

/// Load and merge every stack file; all problems are reported together.
pub fn load(files: &StackFiles) -> Result<Stack, Vec<ConfigError>> {
    let mut stack = Stack {
        state_dir: files.state_dir.clone(),
        ..Stack::default()
    };
    let mut errors = Vec::new();
    for path in &files.files {
        match fs_err::read_to_string(path) {
            Ok(text) => {
                let source = SourceFile::new(path.clone(), text);
                parse_stack_file(&source, &mut stack, &mut errors);
                stack.files.push(source);
            }
            Err(source) => errors.push(ConfigError::Read {
                path: path.clone(),
                source,
                span: None,
            }),
        }
    }
    check_promotion(&stack, &mut errors);
    if errors.is_empty() {
        Ok(stack)
    } else {
        Err(errors)
    }
}

/// `promotion.files` names environments of the stack.
fn check_promotion(stack: &Stack, errors: &mut Vec<ConfigError>) {
    let Some(promotion) = &stack.promotion else {
        return;
    };
    let known: Vec<&str> = stack.environments.iter().map(|e| e.name.as_str()).collect();
    for target in &promotion.files {
        if !known.contains(&target.environment.as_str()) {
            let hint = match crate::suggest::nearest(&target.environment, known.iter().copied()) {
                Some(name) => format!("did you mean `{name}`?"),
                None => format!("environments of this stack: {}", known.join(", ")),
            };
            errors.push(ConfigError::Invalid {
                message: format!(
                    "`promotion.files` names `{}`, which is not an environment",
                    target.environment
                ),
                span: target.span.clone(),
                hint: Some(hint),
            });
        }
    }
}

impl Stack {
    pub fn environment(&self, name: &str) -> Result<&Environment, ConfigError> {
        self.environments
            .iter()
            .find(|environment| environment.name == name)
            .ok_or_else(|| {
                let known: Vec<String> = self.environments.iter().map(|e| e.name.clone()).collect();
                ConfigError::UnknownEnvironment {
                    name: name.to_string(),
                    suggestion: crate::suggest::nearest(name, known.iter().map(String::as_str))
                        .map(str::to_string),
                    known,
                }
            })
    }
}
