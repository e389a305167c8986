//! `stack apply`: plan, then run releases as a DAG — each diffed, applied,
//! waited for, pruned and recorded — and print a summary with durations.

use crate::cli::OutputFormat;
use crate::output;
use crate::settings::Settings;
use stack_core::error::{EXIT_ERROR, EXIT_ROLLBACK_FAILED, EXIT_ROLLED_BACK, Error, Errors};
use stack_core::execute::{self, Finished, Outcome, Rollback, Session};
use stack_core::load::project::Project;
use stack_core::load::render::{Capabilities, RenderedRelease};

/// Rendered releases by index, and the indices of releases to remove.
type Selected = (Vec<(usize, RenderedRelease)>, Vec<usize>);

/// Render the installed selected releases (Helm charts for `capabilities`
/// when given, else helm's defaults); list the uninstalled ones.
pub fn render_selection(
    project: &Project,
    capabilities: Option<&Capabilities>,
) -> Result<Selected, Errors> {
    let installed = project.installed_selection();
    let rendered = project.render_for(&installed, capabilities)?;
    let removals = project
        .selection
        .releases
        .iter()
        .copied()
        .filter(|&i| !project.releases[i].installed)
        .collect();
    Ok((installed.into_iter().zip(rendered).collect(), removals))
}

/// The selection rendered for the cluster a run talks to: at once when it
/// holds no Helm chart (a template error needs no cluster to be shown),
/// else once the session knows the cluster's version and APIs.
pub struct ForCluster(Option<Selected>);

impl ForCluster {
    pub fn prepare(project: &Project) -> Result<Self, Errors> {
        if project.renders_helm(&project.installed_selection()) {
            Ok(Self(None))
        } else {
            render_selection(project, None).map(|selected| Self(Some(selected)))
        }
    }

    pub async fn on(self, project: &Project, session: &Session) -> Result<Selected, Errors> {
        match self.0 {
            Some(selected) => Ok(selected),
            None => {
                let capabilities = session.capabilities().await?;
                render_selection(project, Some(&capabilities))
            }
        }
    }
}

pub fn run(project: &Project, settings: &Settings) -> Result<u8, Errors> {
    let rendering = ForCluster::prepare(project)?;
    let (finished, interrupted) =
        super::remote::with_session(project, settings, |session| async move {
            let stack = super::remote::stack_name(project);
            let existing = execute::groups::check_name(&session.client, &stack, project).await?;
            let (rendered, removals) = rendering.on(project, &session).await?;
            execute::groups::record(&session, &stack, project, existing, settings.ttl).await?;
            session.interrupt.listen();
            let environment = &project.environment.environment.name;
            let finished =
                execute::deploy::deploy(&session, project, environment, rendered, &removals)
                    .await?;
            Ok((finished, session.interrupt.is_set()))
        })?;
    print_summary(&finished, settings);
    verdict(&finished, interrupted)
}

/// The exit code: 0, or an error whose code says whether what failed was
/// rolled back (3), could not be (4), or was left in place (1).
fn verdict(finished: &[Finished], interrupted: bool) -> Result<u8, Errors> {
    let mut reasons = Vec::new();
    let mut code = 0;
    let mut left_pending = false;
    for done in finished {
        let (reason, worst) = match &done.outcome {
            Outcome::Failed { error, rollback } => (format!("{}: {error}", done.id), rollback),
            Outcome::Undone {
                rollback: rollback @ Rollback::Failed { .. },
            } => (
                format!("{}: undoing its deployment failed", done.id),
                rollback,
            ),
            _ => continue,
        };
        let (release_code, note) = match worst {
            Rollback::Restored {
                revision: Some(number),
            } => (EXIT_ROLLED_BACK, format!("rolled back (revision {number})")),
            Rollback::Restored { revision: None } => {
                (EXIT_ROLLED_BACK, "removed (first install)".into())
            }
            Rollback::NothingChanged => (EXIT_ROLLED_BACK, "nothing was changed".into()),
            Rollback::Left => (EXIT_ERROR, "left in place".into()),
            Rollback::Failed { error } => {
                (EXIT_ROLLBACK_FAILED, format!("ROLLBACK FAILED: {error}"))
            }
            Rollback::NotAttempted => {
                left_pending = true;
                (
                    EXIT_ERROR,
                    "left pending (what it applied stays; no rollback was tried)".into(),
                )
            }
        };
        code = worst_code(code, release_code);
        reasons.push(format!("{reason}\n    => {note}"));
    }
    let skipped = finished.iter().any(
        |f| matches!(&f.outcome, Outcome::Skipped { because } if because.contains("interrupted")),
    );
    if code == 0 {
        if interrupted && skipped {
            return Err(Error::Failed {
                message: "interrupted: releases that had not started were skipped".into(),
                hint: Some("run `stack apply` again to finish".into()),
            }
            .into());
        }
        return Ok(0);
    }
    let hint = match code {
        EXIT_ROLLED_BACK => {
            "the failed releases are back at their previous revisions and their dependents were not started; fix the cause and run `stack apply` again (`stack history RELEASE` shows the failed revision)"
        }
        EXIT_ROLLBACK_FAILED => {
            "act now: the releases marked ROLLBACK FAILED are between revisions; `stack status` shows where each stands, `stack rollback RELEASE REVISION` restores one by hand, and the next `stack apply` retries"
        }
        _ if left_pending && interrupted => {
            "run `stack apply` to finish: it recovers the releases left pending (`stack status` shows them)"
        }
        _ if left_pending => {
            "once the cluster answers again, run `stack apply`: it recovers the releases left pending (`stack status` shows them)"
        }
        _ => {
            "the failure is left in place for debugging; `stack rollback RELEASE` restores the previous revision"
        }
    };
    Err(Error::Deploy {
        message: format!(
            "{} release(s) failed:\n  {}",
            reasons.len(),
            reasons.join("\n  ")
        ),
        hint: hint.into(),
        code,
    }
    .into())
}

/// 4 over 1 over 3: a failed rollback matters most, then a failure left in place.
fn worst_code(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        EXIT_ROLLBACK_FAILED => 3,
        EXIT_ERROR => 2,
        EXIT_ROLLED_BACK => 1,
        _ => 0,
    };
    if rank(b) > rank(a) { b } else { a }
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

fn describe(outcome: &Outcome) -> (&'static str, Option<u32>) {
    match outcome {
        Outcome::Unchanged => ("unchanged", None),
        Outcome::Deployed { revision } => ("deployed", Some(*revision)),
        Outcome::Removed => ("removed", None),
        Outcome::Failed { rollback, .. } => match rollback {
            Rollback::Restored { revision } => ("failed, rolled back", *revision),
            Rollback::NothingChanged => ("failed, nothing changed", None),
            Rollback::Left => ("failed", None),
            Rollback::Failed { .. } => ("failed, ROLLBACK FAILED", None),
            Rollback::NotAttempted => ("left pending", None),
        },
        Outcome::Skipped { .. } => ("skipped", None),
        Outcome::Undone { rollback } => match rollback {
            Rollback::Failed { .. } => ("undo FAILED", None),
            Rollback::Restored { revision } => ("undone", *revision),
            _ => ("undone", None),
        },
    }
}
