//! Command line and `STACK_*` environment resolved into one validated value
//! before any file or cluster is touched.

use std::path::PathBuf;

use crate::cli::{AtomicScope, Cli, Command, OutputChoice, OutputFormat, Recover, RolloutCommand};
use stack_core::error::Errors;
use stack_core::execute::options::{Direction, ExecutionOptions, Promotion};
use stack_core::load::graph::{GraphError, NeedsMode, Selector};
use stack_core::load::project::LoadOptions;
use stack_core::load::values::SetValue;
use stack_core::mask::Masks;

#[derive(Debug, Clone)]
pub struct Settings {
    /// What to load: stack, environment, values, keys, selection.
    pub load: LoadOptions,
    pub output: OutputFormat,
    pub color: bool,
    pub quiet: bool,
    pub verbose: bool,
    pub kubeconfig: Option<PathBuf>,
    pub kube_context: Option<String>,
    /// How a run against the cluster executes (`apply`'s flags; the lock
    /// wait of every command that takes the lock).
    pub execution: ExecutionOptions,
    /// The run's secrets, and whether output shows them.
    pub masks: Masks,
    /// `apply --ttl`: how long a deployment group lives after this deploy.
    pub ttl: Option<std::time::Duration>,
    /// `diff -o markdown`: a pull-request comment (`output` is then text).
    pub markdown: bool,
    /// `apply --plan FILE --max-age D`.
    pub plan: Option<(PathBuf, std::time::Duration)>,
}

impl Settings {
    pub fn resolve(cli: &Cli, masks: &Masks) -> Result<Self, Errors> {
        let global = &cli.global;
        let selectors = global
            .selectors
            .iter()
            .map(|text| Selector::parse(text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(GraphError::from)?;
        let mut sets = Vec::new();
        for text in &global.set {
            sets.push(SetValue::parse(text, false)?);
        }
        for text in &global.set_string {
            sets.push(SetValue::parse(text, true)?);
        }
        let needs = if global.include_transitive_needs {
            NeedsMode::Transitive
        } else if global.include_needs {
            NeedsMode::Direct
        } else {
            NeedsMode::Skip
        };
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        let markdown = global.output == OutputChoice::Markdown;
        if markdown && !matches!(cli.command, Command::Diff(_)) {
            return Err(stack_core::error::Error::Failed {
                message: "`-o markdown` is the output of `stack diff` only".into(),
                hint: Some("use `-o text`, `-o json` or `-o yaml`".into()),
            }
            .into());
        }
        Ok(Self {
            load: LoadOptions {
                target: global.file.clone().unwrap_or_else(|| PathBuf::from(".")),
                environment: global.environment.clone(),
                sets,
                age_key_file: global.age_key_file.clone(),
                selectors,
                needs,
                allow_no_match: global.allow_no_matching_release,
                group: global
                    .group
                    .as_deref()
                    .map(stack_core::load::group::Group::parse)
                    .transpose()?,
                ad_hoc: None,
                secrets_without_keys: false,
            },
            output: match global.output {
                OutputChoice::Text | OutputChoice::Markdown => OutputFormat::Text,
                OutputChoice::Json => OutputFormat::Json,
                OutputChoice::Yaml => OutputFormat::Yaml,
            },
            color: !global.no_color && !no_color_env,
            quiet: global.quiet,
            verbose: global.verbose,
            kubeconfig: global.kubeconfig.clone(),
            kube_context: global.kube_context.clone(),
            execution: execution(&cli.command),
            masks: masks.clone(),
            markdown,
            plan: match &cli.command {
                Command::Apply(args) => args.plan.clone().map(|file| (file, args.max_age)),
                _ => None,
            },
            ttl: match &cli.command {
                Command::Apply(args) => args.ttl,
                _ => None,
            },
        })
    }
}

/// The execution options a command's flags ask for.
fn execution(command: &Command) -> ExecutionOptions {
    let defaults = ExecutionOptions::default();
    match command {
        Command::Apply(args) => ExecutionOptions {
            concurrency: args.concurrency.unwrap_or(defaults.concurrency),
            force_conflicts: args.force_conflicts,
            wait: !args.no_wait,
            atomic: if args.no_atomic {
                Some(false)
            } else {
                args.atomic.map(|_| true)
            },
            stack_atomic: args.atomic == Some(AtomicScope::Stack),
            tests: match (args.tests, args.skip_tests) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            prune_releases: args.prune_releases,
            recover: match args.recover {
                Recover::Back => Direction::Back,
                Recover::Forward => Direction::Forward,
            },
            wait_for_lock: args.lock.wait_for_lock,
            adopt_helm: args.adopt_helm,
            forget_helm: args.forget_helm,
            scale_away_previous: false,
            promotion: Promotion::None,
        },
        Command::Rollout {
            command:
                RolloutCommand::Promote {
                    lock,
                    variant,
                    full,
                    ..
                },
        } => ExecutionOptions {
            wait_for_lock: lock.wait_for_lock,
            promotion: match (variant, full) {
                (Some(variant), _) => Promotion::Variant(variant.clone()),
                (None, true) => Promotion::Full,
                (None, false) => Promotion::Next,
            },
            ..defaults
        },
        Command::Rollout {
            command: RolloutCommand::Resume { lock, .. },
        } => ExecutionOptions {
            wait_for_lock: lock.wait_for_lock,
            promotion: Promotion::Next,
            ..defaults
        },
        Command::Rollout {
            command: RolloutCommand::Cleanup(lock),
        } => ExecutionOptions {
            wait_for_lock: lock.wait_for_lock,
            scale_away_previous: true,
            ..defaults
        },
        Command::Destroy(lock)
        | Command::Groups {
            command: crate::cli::GroupsCommand::Prune(lock),
        }
        | Command::Test(lock)
        | Command::PullSecrets {
            command: crate::cli::PullSecretsCommand::Refresh(lock),
        }
        | Command::Rollback { lock, .. }
        | Command::Rollout {
            command: RolloutCommand::Abort { lock, .. },
        } => ExecutionOptions {
            wait_for_lock: lock.wait_for_lock,
            ..defaults
        },
        _ => defaults,
    }
}
