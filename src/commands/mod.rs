//! One module per command; each reads top to bottom as load → plan → show.

mod against;
mod apply;
mod charts;
mod cluster;
mod deploy;
mod destroy;
mod diff;
mod env;
mod graph;
mod groups;
mod import;
mod lint;
mod list;
mod markdown;
mod promote;
mod remote;
mod rollback;
mod rollout;
mod secrets;
mod status;
mod template;
mod test;

use crate::cli::{
    ChartsCommand, Cli, ClusterCommand, Command, EnvCommand, GroupsCommand, ImportCommand,
    PullSecretsCommand, RolloutCommand, SecretsCommand,
};
use crate::output;
use crate::settings::Settings;
use stack_core::error::Errors;
use stack_core::load::project::Project;
use stack_core::load::render::Capabilities;

/// Run a command; the exit code on success (2 = changes, for diff).
pub fn run(cli: &Cli, settings: &Settings) -> Result<u8, Errors> {
    match &cli.command {
        Command::List => list::run(&load(settings)?, settings),
        Command::Graph { format } => graph::run(&load(settings)?, *format),
        Command::Template {
            output_dir,
            skip_tests,
            kube_version,
            api_versions,
        } => template::run(
            &load(settings)?,
            settings,
            output_dir.as_deref(),
            *skip_tests,
            kube_version
                .as_ref()
                .map(|version| Capabilities {
                    kube_version: version.clone(),
                    api_versions: api_versions.clone(),
                })
                .as_ref(),
        ),
        Command::Lint { cluster } => lint::run(&load(settings)?, settings, *cluster),
        Command::Diff(args) if args.against.is_some() => {
            against::run(settings, args, args.against.as_deref().unwrap_or_default())
        }
        Command::Diff(args) => diff::run(&load(settings)?, settings, args),
        // `rollout cleanup` is an apply whose options scale previous colours away.
        Command::Apply(_)
        | Command::Rollout {
            command: RolloutCommand::Cleanup(_),
        } => apply::run(&load(settings)?, settings),
        Command::Destroy(_) => destroy::run(&load(settings)?, settings),
        Command::Test(_) => test::run(&load(settings)?, settings),
        Command::Rollback {
            release, revision, ..
        } => rollback::run(&load(settings)?, settings, release, *revision),
        Command::Status { check } => status::status(&load(settings)?, settings, *check),
        Command::History { release } => status::history(&load(settings)?, settings, release),
        Command::Rollout {
            command: RolloutCommand::Status { release },
        } => rollout::status(&load(settings)?, settings, release.as_deref()),
        Command::Rollout {
            command: RolloutCommand::Promote {
                release, variant, ..
            },
        } => rollout::promote(load(settings)?, settings, release, variant.as_deref()),
        Command::Rollout {
            command: RolloutCommand::Pause { release },
        } => rollout::pause(&load(settings)?, settings, release),
        Command::Rollout {
            command: RolloutCommand::Resume { release, .. },
        } => rollout::promote(load(settings)?, settings, release, None),
        Command::Rollout {
            command: RolloutCommand::Abort { release, .. },
        } => rollout::abort(&load(settings)?, settings, release),
        Command::Secrets {
            command:
                SecretsCommand::Decrypt {
                    file,
                    output_file,
                    in_place,
                },
        } => secrets::decrypt(settings, file, output_file.as_deref(), *in_place),
        Command::Secrets {
            command:
                SecretsCommand::Encrypt {
                    file,
                    output_file,
                    in_place,
                    age,
                },
        } => secrets::encrypt(file, output_file.as_deref(), *in_place, *age),
        Command::Secrets {
            command: SecretsCommand::Edit { file },
        } => secrets::edit(settings, file),
        Command::Secrets {
            command: SecretsCommand::Updatekeys { file },
        } => secrets::update_keys(settings, file),
        Command::Secrets {
            command: SecretsCommand::Rotate { file },
        } => secrets::rotate(settings, file),
        Command::Secrets {
            command: SecretsCommand::Keygen { output_file },
        } => secrets::keygen(output_file.as_deref()),
        Command::Promote(args) => promote::run(settings, args),
        Command::Env {
            command:
                EnvCommand::Diff {
                    from,
                    to,
                    detailed_exitcode,
                },
        } => env::diff(settings, from, to, *detailed_exitcode),
        Command::Cluster {
            command: ClusterCommand::Serve(args),
        } => cluster::serve(settings, args),
        Command::Cluster {
            command: ClusterCommand::Traffic(args),
        } => cluster::traffic(&load(settings)?, settings, args),
        Command::ShowPlan { file } => diff::show_plan(settings, file),
        Command::Explain { release, path } => explain(&load(settings)?, settings, release, path),
        Command::Completions { shell } => {
            let script = crate::completions::script(shell).map_err(|message| {
                stack_core::error::Error::Failed {
                    message,
                    hint: None,
                }
            })?;
            output::stdout(&script);
            Ok(0)
        }
        Command::Server(args) => deploy::serve(settings, args),
        Command::Deploy(args) => deploy::deploy(settings, args),
        Command::Groups {
            command: GroupsCommand::List,
        } => groups::list(&load(settings)?, settings),
        Command::Groups {
            command: GroupsCommand::Prune(_),
        } => groups::prune(&load(settings)?, settings),
        Command::Charts {
            command: ChartsCommand::Update,
        } => charts::update(&load(settings)?, settings),
        Command::PullSecrets {
            command: PullSecretsCommand::Refresh(_),
        } => pull_secrets(&load(settings)?, settings),
        Command::Import {
            command: ImportCommand::Helmfile { file, output_dir },
        } => import::helmfile(settings, file, output_dir.as_deref()),
        Command::Import {
            command:
                ImportCommand::Compose {
                    file,
                    env_file,
                    namespace,
                    for_environment,
                    sensitive,
                    output_dir,
                },
        } => import::compose(
            settings,
            file,
            env_file.as_deref(),
            &stack_core::import::compose::ComposeOptions {
                namespace: namespace.clone(),
                environment: for_environment.clone(),
                sensitive: sensitive.clone(),
            },
            output_dir.as_deref(),
        ),
    }
}

/// `stack explain RELEASE KEY.PATH`.
fn explain(
    project: &Project,
    settings: &Settings,
    release: &str,
    path: &str,
) -> Result<u8, Errors> {
    let id = status::find_release(project, release)?;
    let index = project
        .releases
        .iter()
        .position(|r| r.id == id)
        .unwrap_or_default();
    let layers = stack_core::load::explain::layers(project, index, path)?;
    if settings.output == crate::cli::OutputFormat::Text {
        let rows: Vec<Vec<String>> = layers
            .iter()
            .enumerate()
            .map(|(n, layer)| {
                let value = layer
                    .value
                    .as_ref()
                    .map_or_else(|| "(a secret)".into(), ToString::to_string);
                vec![(n + 1).to_string(), layer.source.clone(), value]
            })
            .collect();
        output::stdout(&format!(
            "{id} {path}, lowest precedence first:\n{}",
            output::table(&["#", "SET IN", "VALUE"], &rows)
        ));
    } else {
        let value = serde_json::to_value(&layers).unwrap_or_default();
        output::stdout(&format!("{value:#}\n"));
    }
    Ok(0)
}

/// `stack pull-secrets refresh`.
fn pull_secrets(
    project: &stack_core::load::project::Project,
    settings: &Settings,
) -> Result<u8, Errors> {
    let environment = project.environment_name().to_string();
    let written = remote::with_session(project, settings, |session| async move {
        Ok(stack_core::execute::pull_secrets::refresh(&session, project, &environment).await?)
    })?;
    let Some(spec) = &project.environment.environment.pull_secret else {
        crate::output::note(
            "this environment has no `imagePullSecrets`: nothing to refresh",
            settings.quiet,
        );
        return Ok(0);
    };
    crate::output::stdout(&if written.is_empty() {
        format!(
            "the pull secret `{}` is not managed: nothing written\n",
            spec.name()
        )
    } else {
        format!(
            "refreshed the pull secret `{}` in {}\n",
            spec.name(),
            written.join(", ")
        )
    });
    Ok(0)
}

/// A runtime for commands that talk to a cluster, and for the simulator:
/// one thread. A command's work is requests in flight, not CPU (rendering,
/// the CPU-heavy part, runs on threads of its own before); the simulator's
/// objects sit behind one lock, so more threads would only hand it over.
/// One thread spares the cross-thread wake-ups and leaves the other cores
/// to whatever runs beside it: a first apply of the 2,000-object bench
/// stack took about 15% less time and CPU on two cores than with a
/// multi-threaded runtime on each side.
fn runtime() -> Result<tokio::runtime::Runtime, Errors> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| {
            Errors::from(stack_core::error::Error::Write {
                path: "tokio runtime".into(),
                source,
            })
        })
}

/// Load the project and show its warnings and the needs it will not run.
fn load(settings: &Settings) -> Result<Project, Errors> {
    let project = Project::load(&settings.load, &settings.masks)?;
    if !settings.quiet {
        output::print_diagnostics(&project.warnings, settings.color);
    }
    if let Some(note) = project.skipped_needs_note() {
        output::note(&note, settings.quiet);
    }
    Ok(project)
}
