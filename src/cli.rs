//! Command-line syntax (clap types only). Turned into `Settings`
//! before anything is read or touched.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::ArgValueCandidates;

#[derive(Debug, Parser)]
#[command(
    name = "stack",
    version,
    about = "Deploy a whole Kubernetes stack — releases, needs, values, secrets — from git",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Environment to use [default: the stack's `defaultEnvironment`, else `default`]
    #[arg(short, long, global = true, env = "STACK_ENVIRONMENT", add = ArgValueCandidates::new(crate::completions::environments))]
    pub environment: Option<String>,
    /// Stack file, or a directory holding stack.yaml, stacks/*.yaml or *.yaml
    #[arg(short, long, global = true, env = "STACK_FILE")]
    pub file: Option<PathBuf>,
    /// Select releases: `k=v`, `k!=v`, comma = AND; repeat for OR
    #[arg(short = 'l', long = "selector", global = true, add = ArgValueCandidates::new(crate::completions::selectors))]
    pub selectors: Vec<String>,
    /// Path of the kubeconfig file for real clusters
    #[arg(long, global = true, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kube context, overriding the environment's `kubeContext`
    #[arg(long, global = true)]
    pub kube_context: Option<String>,
    /// Set a value over all others: key.path=value (typed)
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Set a value as a string: key.path=value
    #[arg(long = "set-string", global = true, value_name = "KEY=VALUE")]
    pub set_string: Vec<String>,
    /// Output format
    #[arg(short, long, global = true, value_enum, default_value_t = OutputChoice::Text)]
    pub output: OutputChoice,
    /// No colours (also: the `NO_COLOR` environment variable)
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Print only errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Also use the age identities in this file to decrypt secrets
    #[arg(long, global = true, value_name = "FILE")]
    pub age_key_file: Option<PathBuf>,
    /// Print decrypted secret values instead of masking them
    #[arg(long, global = true)]
    pub show_secrets: bool,
    /// A selector that matches no release is not an error
    #[arg(long, global = true)]
    pub allow_no_matching_release: bool,
    /// Also run the direct needs of the selected releases
    #[arg(long, global = true, conflicts_with = "include_transitive_needs")]
    pub include_needs: bool,
    /// Also run all needs of the selected releases, recursively
    #[arg(long, global = true)]
    pub include_transitive_needs: bool,
    /// A deployment group (preview): its own copy of the selected releases, in preview
    /// namespaces, at preview URLs (`mr/26`, a branch name)
    #[arg(long, global = true, value_name = "NAME", env = "STACK_GROUP")]
    pub group: Option<String>,
}

/// `-o`: what a command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputChoice {
    Text,
    Json,
    Yaml,
    /// A pull-request comment (`stack diff` only)
    Markdown,
}

/// The output format commands print in (`-o markdown` is text to them
/// all but `stack diff`, which refuses it elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List releases with namespace, labels, needs and installed
    List,
    /// Print the dependency graph
    Graph {
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
    },
    /// Render manifests to stdout or to a directory
    Template {
        /// Write one folder per release, one file per object
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
        /// Leave out the releases' test objects
        #[arg(long)]
        skip_tests: bool,
        /// Render Helm charts for this Kubernetes version (as `diff` and `apply` do for the
        /// cluster's own); helm's default without it
        #[arg(long, value_name = "VERSION")]
        kube_version: Option<String>,
        /// With --kube-version: APIs the cluster serves besides the built-in ones, for charts'
        /// `.Capabilities.APIVersions` checks (`monitoring.coreos.com/v1,...`)
        #[arg(
            long,
            value_name = "LIST",
            value_delimiter = ',',
            requires = "kube_version"
        )]
        api_versions: Vec<String>,
    },
    /// Parse, render, schema-check every selected release and check its objects by Kubernetes'
    /// rules; no cluster needed (with --cluster, also ask the cluster in a dry run)
    Lint {
        /// Also ask the environment's cluster: unknown kinds, and a server-side dry run of every
        /// object to create or change; nothing is written
        #[arg(long)]
        cluster: bool,
    },
    /// Rendered objects vs the live cluster, per release, as a unified diff
    Diff(DiffArgs),
    /// Diff, then apply what changed, wait, test, prune, record the revision; roll back what fails
    Apply(ApplyArgs),
    /// Delete the selected releases in reverse dependency order
    Destroy(LockArgs),
    /// Run the selected releases' tests against what is deployed
    Test(LockArgs),
    /// Roll a release back to an earlier revision
    Rollback {
        /// `namespace/name`, or a name that is unique in the stack
        #[arg(add = ArgValueCandidates::new(crate::completions::releases))]
        release: String,
        /// The revision to restore [default: the one deployed before the latest]
        revision: Option<u32>,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Each release: revision, state, ready or not
    Status {
        /// Exit 1 unless every selected release's latest revision is
        /// deployed and its objects are ready
        #[arg(long)]
        check: bool,
    },
    /// Where releases with a deployment strategy stand: colours, what the Services select
    Rollout {
        #[command(subcommand)]
        command: RolloutCommand,
    },
    /// The revisions of a release kept in the cluster
    History {
        /// `namespace/name`, or a name that is unique in the stack
        #[arg(add = ArgValueCandidates::new(crate::completions::releases))]
        release: String,
    },
    /// SOPS files with age
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Write the promotable values of one environment into another's values file
    Promote(PromoteArgs),
    /// Compare environments
    Env {
        #[command(subcommand)]
        command: EnvCommand,
    },
    /// Turn another tool's files into a stack
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// The environment's image pull secret (`imagePullSecrets`)
    PullSecrets {
        #[command(subcommand)]
        command: PullSecretsCommand,
    },
    /// Helm charts from repositories and registries
    Charts {
        #[command(subcommand)]
        command: ChartsCommand,
    },
    /// Where a release's value comes from: every layer that sets it, lowest first, with file and line
    Explain {
        /// `namespace/name`, or a name that is unique in the stack
        #[arg(add = ArgValueCandidates::new(crate::completions::releases))]
        release: String,
        /// The value's path: `image.tag`, `database.host`
        path: String,
    },
    /// Print a plan file `stack diff --out` wrote (-o json)
    ShowPlan { file: PathBuf },
    /// The script that makes a shell complete stack's commands, flags, environments and releases
    Completions {
        /// bash, zsh, fish or powershell
        shell: String,
    },
    /// Deployment groups (previews) of the environment: `apply --group NAME` makes one
    Groups {
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// The deploy API: signed deploy requests from CI, queued per environment, followed live
    Server(ServerArgs),
    /// Ask a `stack server` to deploy (signed with the team's key); follow it with --wait
    Deploy(DeployArgs),
    /// The embedded simulated cluster
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Exit 2 when there are changes, 0 when there are none, 1 on error
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Lines of context around each change
    #[arg(short = 'C', long, default_value_t = 3)]
    pub context: usize,
    /// Include releases that are in the cluster but no longer in the stack
    #[arg(long)]
    pub prune_releases: bool,
    /// With -o markdown: the largest comment, the longest diffs shortened to fit
    #[arg(long, value_name = "BYTES", default_value_t = 60_000)]
    pub max_bytes: usize,
    /// Write the plan to FILE, for `stack apply --plan FILE` (digests only: no value)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// After each added line, where its value was set (values file and line, --set, a secrets
    /// file, or the chart's template)
    #[arg(long)]
    pub explain: bool,
    /// Compare with the stack at this git ref instead of the cluster (no cluster needed)
    #[arg(long, value_name = "REF", conflicts_with = "out")]
    pub against: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Releases applied at once [default: CPUs × 4, at least 16]
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub concurrency: Option<usize>,
    /// Take over fields another manager owns
    #[arg(long)]
    pub force_conflicts: bool,
    /// Delete releases that are in the cluster but no longer in the stack
    #[arg(long)]
    pub prune_releases: bool,
    /// Do not wait for readiness
    #[arg(long)]
    pub no_wait: bool,
    /// Roll back a failed release (`release`, the default), or every
    /// release this run changed (`stack`) [default: each release's `atomic`]
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "release", require_equals = true)]
    pub atomic: Option<AtomicScope>,
    /// Leave a failed release as it is, for debugging
    #[arg(long, conflicts_with = "atomic")]
    pub no_atomic: bool,
    /// Run every release's tests [default: each release's `tests`]
    #[arg(long, conflicts_with = "skip_tests")]
    pub tests: bool,
    /// Run no tests
    #[arg(long)]
    pub skip_tests: bool,
    /// How a revision left `pending` by an interrupted run is recovered
    #[arg(long, value_enum, default_value_t = Recover::Back)]
    pub recover: Recover,
    /// Take over the objects of helm releases of the same name and
    /// namespace (their uids stay; helm's release records are kept)
    #[arg(long)]
    pub adopt_helm: bool,
    /// With --adopt-helm: also delete the helm releases' records
    #[arg(long, requires = "adopt_helm")]
    pub forget_helm: bool,
    /// Apply exactly the plan `stack diff --out FILE` wrote, or nothing: refused if the
    /// render or the cluster moved since
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// With --plan: refuse a plan older than this
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "24h", requires = "plan")]
    pub max_age: std::time::Duration,
    /// With --group: the group expires this long after this deploy (`7d`, `12h`), for
    /// `stack groups prune` [default: the environment's `previews.ttl`, else never]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "group")]
    pub ttl: Option<std::time::Duration>,
    #[command(flatten)]
    pub lock: LockArgs,
}

/// `--recover`: which way a revision left pending is recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Recover {
    /// Restore the last deployed revision.
    Back,
    /// Apply the pending revision's objects again.
    Forward,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AtomicScope {
    Release,
    Stack,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Wait this long for another run's lock (`30s`, `5m`) instead of failing
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait_for_lock: Option<std::time::Duration>,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    stack_core::load::config::reader::parse_duration(text)
        .ok_or_else(|| format!("`{text}` is not a duration; write it like 90s, 5m or 1h"))
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The environment whose verified values are promoted
    #[arg(long, value_name = "ENV")]
    pub from: String,
    /// The environment whose values file is written
    #[arg(long, value_name = "ENV")]
    pub to: String,
    /// Print the change and check the gate; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Exit 2 when the target differs from the source in promotable values;
    /// no cluster is read, nothing is written
    #[arg(long, conflicts_with = "dry_run")]
    pub check: bool,
    /// Promote even when the gate refuses or over a hand edit (the log records it)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Write the stack file (and environment values files) that does what
    /// a helmfile.yaml does, and list what did not convert
    Helmfile {
        /// The helmfile.yaml
        file: PathBuf,
        /// Where to write stack.yaml [default: the helmfile's folder]
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
    },
    /// Write a stack of builtin:app releases that runs a Compose project:
    /// stack.yaml, the environment's values file and, encrypted by the
    /// `.sops.yaml` creation rule, its secrets file
    Compose {
        /// The compose file
        file: PathBuf,
        /// Variables for `${VAR}` [default: .env beside the compose file, if there is one]
        #[arg(long, value_name = "FILE")]
        env_file: Option<PathBuf>,
        /// The namespace of the releases [default: the project's name]
        #[arg(long, value_name = "NS")]
        namespace: Option<String>,
        /// The environment the values and secrets files are for
        #[arg(
            long = "for-environment",
            value_name = "NAME",
            default_value = "development"
        )]
        for_environment: String,
        /// Also treat variables whose names match this glob as secrets (`*_DSN`;
        /// repeatable), beside *_API_KEY, *_KEY, *_SECRET, *_PASSWORD, *_PASS,
        /// *_TOKEN, *_CREDENTIALS
        #[arg(long, value_name = "GLOB")]
        sensitive: Vec<String>,
        /// Where to write the files [default: the compose file's folder]
        #[arg(long, value_name = "DIR")]
        output_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// The SOPS-encrypted teams file: per team its keys, environments, selector, notify
    #[arg(long, value_name = "FILE")]
    pub teams: PathBuf,
    /// How long a deployment waits for its environment's lock
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30m")]
    pub lock_wait: std::time::Duration,
    /// Serve HTTPS with this certificate chain (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The server's address: http://127.0.0.1:8080
    #[arg(long, env = "STACK_SERVER")]
    pub server: String,
    /// The team the request is from
    #[arg(long, env = "STACK_TEAM")]
    pub team: String,
    /// A file holding the team's key
    #[arg(long, value_name = "FILE", env = "STACK_KEY_FILE")]
    pub key_file: PathBuf,
    /// The repository and ref the request names [default: git's origin and HEAD]
    #[arg(long)]
    pub repository: Option<String>,
    #[arg(long = "ref")]
    pub git_ref: Option<String>,
    /// Follow the deployment's events until it ends; exit with its result
    #[arg(long)]
    pub wait: bool,
    /// Also trust the CA certificates in this PEM file for an https server
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Each group: its releases, URLs, when it was created and when it expires
    List,
    /// Destroy every group whose `--ttl` (or `previews.ttl`) has passed
    Prune(LockArgs),
}

#[derive(Debug, Subcommand)]
pub enum ChartsCommand {
    /// Pull the selected releases' repository and OCI charts again,
    /// replacing the cached copies in .stack/charts/
    Update,
}

#[derive(Debug, Subcommand)]
pub enum PullSecretsCommand {
    /// Write a managed pull secret anew into every namespace of the selection now
    Refresh(LockArgs),
}

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// How two environments' merged values differ (secrets masked)
    Diff {
        /// The environment shown as `-`
        from: String,
        /// The environment shown as `+`
        to: String,
        /// Exit 2 when they differ, 0 when they do not
        #[arg(long)]
        detailed_exitcode: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Strategy, active and previous colour (and their readiness), what each switched Service
    /// selects, until when the previous colour is kept
    Status {
        /// `namespace/name`, or a name that is unique in the stack [default: the selection]
        release: Option<String>,
    },
    /// Scale the previous colour of the selected blue/green releases away now (they must be
    /// deployed as their files say); what `stack apply` does once `keepPrevious` has passed
    Cleanup(LockArgs),
    /// A paused canary: go on with its steps (up to the next `pause: {}`), then promote it
    Promote {
        /// `namespace/name`, or a name that is unique in the stack
        #[arg(add = ArgValueCandidates::new(crate::completions::releases))]
        release: String,
        /// Make this variant the stable version now and remove the others
        #[arg(long, value_name = "VARIANT", conflicts_with = "full")]
        variant: Option<String>,
        /// Promote now, skipping the steps left
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// Ask the run rolling out a canary to hold it where it is, at its next step
    Pause {
        /// `namespace/name`, or a name that is unique in the stack
        #[arg(add = ArgValueCandidates::new(crate::completions::releases))]
        release: String,
    },
    /// A canary paused by `stack rollout pause` (or `pause: {}`): go on with its steps
    Resume {
        /// `namespace/name`, or a name that is unique in the stack
        #[arg(add = ArgValueCandidates::new(crate::completions::releases))]
        release: String,
        #[command(flatten)]
        lock: LockArgs,
    },
    /// A canary paused by `pause: {}`: remove it (the revision before it is restored)
    Abort {
        /// `namespace/name`, or a name that is unique in the stack
        #[arg(add = ArgValueCandidates::new(crate::completions::releases))]
        release: String,
        #[command(flatten)]
        lock: LockArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Decrypt a SOPS file to stdout (or --output FILE, or --in-place)
    Decrypt {
        file: PathBuf,
        /// Write the plaintext to this file (created 0600)
        #[arg(long = "output-file", value_name = "FILE", conflicts_with = "in_place")]
        output_file: Option<PathBuf>,
        /// Replace the encrypted file with its plaintext
        #[arg(long)]
        in_place: bool,
    },
    /// Encrypt a plaintext YAML/JSON file for the recipients `.sops.yaml` names
    Encrypt {
        file: PathBuf,
        /// Write the encrypted file here
        #[arg(long = "output-file", value_name = "FILE", conflicts_with = "in_place")]
        output_file: Option<PathBuf>,
        /// Replace the plaintext file with the encrypted one
        #[arg(long)]
        in_place: bool,
        /// Write a plain age file (ASCII-armored) instead of a SOPS file
        #[arg(long)]
        age: bool,
    },
    /// Edit a SOPS file in $VISUAL/$EDITOR; unchanged values keep their ciphertext
    Edit { file: PathBuf },
    /// Re-wrap a file's data key for the recipients `.sops.yaml` names now
    Updatekeys { file: PathBuf },
    /// Re-encrypt a file with a new data key, for the same recipients
    Rotate { file: PathBuf },
    /// Generate an age identity (written 0600 with --output, else to stdout)
    Keygen {
        /// Write the identity to this file (created 0600)
        #[arg(long = "output-file", value_name = "FILE")]
        output_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Serve the environment's simulated cluster on 127.0.0.1 until Ctrl-C,
    /// and print a kubeconfig for it
    Serve(ServeArgs),
    /// Where N requests for a host and path would go, per Service and workload: ingress-nginx's
    /// routing (canary weights and headers) over the live Ingresses, Services and ready Pods
    Traffic(TrafficArgs),
}

#[derive(Debug, Args)]
pub struct TrafficArgs {
    /// The request's host (through the Ingresses)
    #[arg(long, required_unless_present = "service", conflicts_with = "service")]
    pub host: Option<String>,
    /// Send the requests straight to this Service, `namespace/name` (from inside the cluster)
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub service: Option<String>,
    /// The request's path
    #[arg(long, default_value = "/")]
    pub path: String,
    /// How many requests
    #[arg(long, default_value_t = 1000)]
    pub requests: u64,
    /// A header every request carries, `NAME=VALUE`
    #[arg(long, value_name = "NAME=VALUE")]
    pub header: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0: any free port)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Also write the kubeconfig to this file
    #[arg(long, value_name = "FILE")]
    pub write_kubeconfig: Option<PathBuf>,
    /// Fraction of requests answered 500 or 429 with Retry-After
    #[arg(long, value_name = "R")]
    pub fault_rate: Option<f64>,
    /// Latency added to every request
    #[arg(long, value_name = "N")]
    pub latency_ms: Option<u64>,
    /// Seed for reproducible faults
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Simulated seconds a rollout takes by default
    #[arg(long, value_name = "S")]
    pub rollout_seconds: Option<f64>,
    /// Touch a stack-managed object as another manager every N ms
    #[arg(long, value_name = "N")]
    pub conflict_writer_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
    Mermaid,
    Json,
}
