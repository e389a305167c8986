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
    // A reviewed plan's scope is checked before the cluster is; its
    // render and the live objects by the run, before anything is written.
    let plan = match &settings.plan {
        Some((file, max_age)) => {
            let plan = PlanFile::read(file)?;
            let problems = plan.check_scope(project, *max_age);
            stack_core::execute::deploy::stale(&plan, problems)?;
            Some(plan)
        }
        None => None,
    };
    let (finished, interrupted) =
        super::remote::with_session(project, settings, |session| async move {
            session.interrupt.listen();
            let plan = plan.as_ref();
            let finished = run::apply(&session, project, rendering, settings.ttl, plan).await?;
            Ok((finished, session.interrupt.is_set()))
        })?;
    print_summary(&finished, settings);
    Ok(verdict(&finished, interrupted)?)
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
