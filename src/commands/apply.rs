//! `stack apply`: plan, then run releases as a DAG — each diffed, applied,
//! waited for, pruned and recorded — and print a summary with durations.

use std::sync::Arc;

use crate::cli::{ApplyArgs, OutputFormat};
use crate::engine::{self, Finished, Outcome};
use crate::error::{Error, Errors};
use crate::output;
use crate::project::Project;
use crate::render::RenderedRelease;
use crate::settings::Settings;

/// Rendered releases by index, and the indices of releases to remove.
type Selected = (Vec<(usize, RenderedRelease)>, Vec<usize>);

/// Render the installed selected releases; list the uninstalled ones.
pub fn render_selection(project: &Project) -> Result<Selected, Errors> {
    let installed = project.installed_selection();
    let rendered = project.render(&installed)?;
    let removals = project
        .selection
        .releases
        .iter()
        .copied()
        .filter(|&i| !project.releases[i].installed)
        .collect();
    Ok((installed.into_iter().zip(rendered).collect(), removals))
}

pub fn run(project: &Project, settings: &Settings, args: &ApplyArgs) -> Result<u8, Errors> {
    let (rendered, removals) = render_selection(project)?;
    let concurrency = args
        .concurrency
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(4, |n| n.get() * 4));
    let finished = super::remote::with_session(project, settings, |session| async move {
        let planned =
            engine::plan(&session, project, &rendered, &removals, args.prune_releases).await?;
        let mut session = Arc::try_unwrap(session)
            .unwrap_or_else(|_| unreachable!("the session is not shared yet"));
        session.force_conflicts = args.force_conflicts;
        session.wait = !args.no_wait;
        Ok(engine::apply(
            Arc::new(session),
            project,
            rendered,
            planned.plan,
            concurrency,
        )
        .await)
    })?;
    print_summary(&finished, settings);
    let failed: Vec<&Finished> = finished
        .iter()
        .filter(|f| matches!(f.outcome, Outcome::Failed { .. }))
        .collect();
    if failed.is_empty() {
        return Ok(0);
    }
    let reasons: Vec<String> = failed
        .iter()
        .map(|f| match &f.outcome {
            Outcome::Failed { error } => format!("{}: {error}", f.id),
            _ => String::new(),
        })
        .collect();
    Err(Error::Failed {
        message: format!("{} of {} releases failed:\n  {}", failed.len(), finished.len(), reasons.join("\n  ")),
        hint: Some("fix the cause and run `stack apply` again; `stack status` shows where each release stands".into()),
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
                crate::engine::report::seconds(f.duration),
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

fn describe(outcome: &Outcome) -> (&'static str, Option<u32>) {
    match outcome {
        Outcome::Unchanged => ("unchanged", None),
        Outcome::Deployed { revision } => ("deployed", Some(*revision)),
        Outcome::Removed => ("removed", None),
        Outcome::Failed { .. } => ("failed", None),
        Outcome::Skipped { .. } => ("skipped", None),
    }
}
