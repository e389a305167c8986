//! `stack lint`: everything that can be checked without a cluster — stack
//! files, graph, values, templates, schemas, objects by Kubernetes' rules —
//! for every selected release. Loading already reported its problems; this
//! renders. `--cluster` adds what only the cluster can say, as a run's
//! plan asks it: kinds it does not serve, and a server-side dry run.

use crate::output;
use crate::settings::Settings;
use stack_core::error::Errors;
use stack_core::load::project::Project;

pub fn run(project: &Project, settings: &Settings, cluster: bool) -> Result<u8, Errors> {
    let (rendered, removals) = stack_core::execute::run::render_selection(project, None)?;
    let invalid = stack_core::load::validate::refusals(project, &rendered, |_| true);
    if !invalid.is_empty() {
        return Err(
            stack_core::error::Error::Engine(stack_core::execute::EngineError::Invalid {
                objects: invalid,
            })
            .into(),
        );
    }
    if cluster {
        // The plan asks the cluster what a run would: served kinds, and a
        // server-side dry run of each object to create or change.
        let rendered = &rendered;
        super::remote::with_session(project, settings, |session| async move {
            Ok(stack_core::execute::plan(&session, project, rendered, &removals, false).await?)
        })?;
    }
    let objects: usize = rendered
        .iter()
        .map(|(_, r)| r.objects.len() + r.tests.len())
        .sum();
    if !settings.quiet {
        output::stdout(&format!(
            "lint: {} releases, {objects} objects, environment `{}`{}: no problems\n",
            rendered.len(),
            project.environment_name(),
            if cluster {
                ", checked with its cluster"
            } else {
                ""
            }
        ));
    }
    Ok(0)
}
