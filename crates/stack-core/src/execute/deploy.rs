//! A deploy, start to end, as one library call that the command line (and
//! a server) makes: plan; when there is anything to write, take the lock,
//! recover what an interrupted run left, plan again if the history moved
//! meanwhile, and apply the plan as a DAG. A run with nothing to do writes
//! nothing, not even the lock. How it runs comes from the session's
//! `ExecutionOptions`; what happens is reported through its reporter.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cluster::live::History;
use crate::execute::{self, EngineError, Finished, Planned, Session, strategy};
use crate::load::project::Project;
use crate::load::render::RenderedRelease;
use crate::plan::file::PlanFile;
use stack_kube::revision::State;

/// Deploy the rendered releases (by index) and remove `removals` (indices
/// of releases no longer installed) in `environment`; how each release
/// ended.
pub async fn deploy(
    session: &Arc<Session>,
    project: &Project,
    environment: &str,
    rendered: Vec<(usize, RenderedRelease)>,
    removals: &[usize],
    reviewed: Option<&PlanFile>,
) -> Result<Vec<Finished>, EngineError> {
    let prune = session.options.prune_releases;
    let concurrency = session.options.concurrency;
    // Blue/green releases are shaped for their live colours: again when a
    // recovery under the lock changed them.
    let unshaped = strategy::any(project, &rendered).then(|| rendered.clone());
    let (mut rendered, mut planned) =
        strategy::shape_and_plan(session, project, rendered, removals, prune).await?;
    // `apply --plan`: the objects it touches are where the plan saw them.
    if let Some(reviewed) = reviewed {
        stale(reviewed, reviewed.check_live(&planned.live))?;
    }
    refuse_helm_objects(&planned, session.options.adopt_helm)?;
    let indices: Vec<usize> = rendered.iter().map(|(index, _)| *index).collect();
    let namespaces = execute::pull_secrets::namespaces_of(project, &indices);
    let pull = execute::pull_secrets::prepare(session, project, &namespaces, false).await?;
    let pull_writes = pull
        .as_ref()
        .is_some_and(execute::pull_secrets::Plan::writes);
    let pull = pull.map(Arc::new);
    if let Ok(mut slot) = session.pull_secrets.lock() {
        slot.clone_from(&pull);
    }
    let idle = planned.plan.releases.iter().all(|r| r.up_to_date)
        && !pull_writes
        && !execute::recover::has_pending(&planned.live.revisions, &session.stack_name);
    if idle {
        let plan = planned.plan;
        return Ok(execute::apply(Arc::clone(session), project, rendered, plan, concurrency).await);
    }
    let work = async move {
        if recover(session, project, &planned).await? {
            (rendered, planned) = match unshaped {
                Some(unshaped) => {
                    strategy::shape_and_plan(session, project, unshaped, removals, prune).await?
                }
                None => {
                    let planned =
                        execute::plan(session, project, &rendered, removals, prune).await?;
                    (rendered, planned)
                }
            };
        }
        if let Some(pull) = &pull {
            execute::pull_secrets::write(session, pull).await?;
        }
        let plan = planned.plan;
        Ok(execute::apply(Arc::clone(session), project, rendered, plan, concurrency).await)
    };
    execute::lock::holding(session, environment, "stack apply", Box::pin(work)).await
}

/// A reviewed plan that cannot be applied for these reasons, if any.
pub fn stale(plan: &PlanFile, problems: Vec<String>) -> Result<(), EngineError> {
    if problems.is_empty() {
        return Ok(());
    }
    Err(EngineError::StalePlan {
        plan: plan.path.display().to_string(),
        problems,
    })
}

/// Objects a helm release owns are taken over only with `--adopt-helm`,
/// and only from the helm release of the same name and namespace.
fn refuse_helm_objects(planned: &Planned, adopt: bool) -> Result<(), EngineError> {
    let objects: Vec<String> = planned
        .plan
        .releases
        .iter()
        .flat_map(|release| release.changes.iter().map(move |change| (release, change)))
        .filter_map(|(release, change)| {
            let helm = change.helm.as_deref()?;
            (!adopt || helm != release.id).then(|| {
                format!(
                    "{} (helm release {helm}; stack release {})",
                    change.key, release.id
                )
            })
        })
        .collect();
    if objects.is_empty() {
        Ok(())
    } else {
        Err(EngineError::HelmOwned {
            objects,
            adopting: adopt,
        })
    }
}

/// Under the lock: recover what an interrupted run left; whether the
/// history moved since `planned` was made (so it must be made again).
async fn recover(
    session: &Session,
    project: &Project,
    planned: &Planned,
) -> Result<bool, EngineError> {
    let recovered = execute::recover::recover(session, project, session.options.recover).await?;
    let (now, _) = crate::cluster::live::history(&session.client)
        .await
        .map_err(EngineError::api("cannot read release history"))?;
    Ok(!recovered.is_empty() || snapshot(&now) != snapshot(&planned.live.revisions))
}

/// Each release's newest revision and its state: what a plan was made from.
fn snapshot(history: &History) -> BTreeMap<&str, (u32, State)> {
    history
        .iter()
        .filter_map(|(id, revisions)| {
            Some((id.as_str(), revisions.last().map(|r| (r.number, r.state))?))
        })
        .collect()
}
