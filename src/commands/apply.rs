//! `stack apply`: plan, then run releases as a DAG — each diffed, applied,
//! waited for, pruned and recorded — and print a summary with durations.

use crate::cli::OutputFormat;
use crate::output;
use crate::settings::Settings;
use stack_core::error::Errors;
use stack_core::execute::Finished;
use stack_core::execute::run::{self, ForCluster};
use stack_core::execute::verdict::{describe, verdict};
use stack_core::load::project::Project;
use stack_core::plan::file::PlanFile;

pub fn run(project: &Project, settings: &Settings) -> Result<u8, Errors> {
    let rendering = ForCluster::prepare(project)?;
    let plan = match &settings.plan {
        Some((file, max_age)) => {
            let plan = PlanFile::read(file)?;
            refuse(file, &plan.check_scope(project, *max_age))?;
            Some((plan, file))
        }
        None => None,
    };
    let (finished, interrupted) =
        super::remote::with_session(project, settings, |session| async move {
            session.interrupt.listen();
            let rendering = match plan {
                Some((plan, file)) => checked(&session, project, rendering, &plan, file).await?,
                None => rendering,
            };
            let finished = run::apply(&session, project, rendering, settings.ttl).await?;
            Ok((finished, session.interrupt.is_set()))
        })?;
    print_summary(&finished, settings);
    Ok(verdict(&finished, interrupted)?)
}

/// The render checked against the plan's digests, and the live objects
/// against the resourceVersions it saw: any difference refuses the run
/// before anything is written.
async fn checked(
    session: &stack_core::execute::Session,
    project: &Project,
    rendering: ForCluster,
    plan: &PlanFile,
    file: &std::path::Path,
) -> Result<ForCluster, Errors> {
    let (rendered, removals) = rendering.on(project, session).await?;
    refuse(file, &plan.check_render(project, &rendered))?;
    let prune = session.options.prune_releases;
    let (_, planned) = stack_core::execute::strategy::shape_and_plan(
        session,
        project,
        rendered.clone(),
        &removals,
        prune,
    )
    .await?;
    refuse(file, &plan.check_live(&planned.live))?;
    Ok(ForCluster::rendered((rendered, removals)))
}

/// Refuse a plan for these reasons, if any.
fn refuse(file: &std::path::Path, problems: &[String]) -> Result<(), Errors> {
    if problems.is_empty() {
        return Ok(());
    }
    Err(stack_core::error::Error::Failed {
        message: format!(
            "the plan {} cannot be applied as it is:\n  {}",
            file.display(),
            problems.join("\n  ")
        ),
        hint: Some("nothing was written; make a new plan with `stack diff --out FILE`, review it, and apply that".into()),
    }
    .into())
}

fn print_summary(finished: &[Finished], settings: &Settings) {
    if settings.output == OutputFormat::Json {
        let releases: Vec<serde_json::Value> = finished
            .iter()
            .map(|f| {
                let (result, revision) = describe(&f.outcome);
                serde_json::json!({"id": f.id, "result": result, "revision": revision, "seconds": f.duration.as_secs_f64()})
            })
            .collect();
        output::stdout(&format!("{:#}\n", serde_json::Value::Array(releases)));
        return;
    }
    if settings.quiet {
        return;
    }
    let rows: Vec<Vec<String>> = finished
        .iter()
        .map(|f| {
            let (result, revision) = describe(&f.outcome);
            let (create, change, delete) = f.changes;
            vec![
                f.id.clone(),
                result.to_string(),
                revision.map_or_else(|| "-".into(), |r| r.to_string()),
                create.to_string(),
                change.to_string(),
                delete.to_string(),
                stack_core::execute::event::seconds(f.duration),
            ]
        })
        .collect();
    output::stdout(&output::table(
        &[
            "RELEASE", "RESULT", "REVISION", "CREATE", "CHANGE", "DELETE", "DURATION",
        ],
        &rows,
    ));
}
