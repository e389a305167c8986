//! Running a plan: removals first (reverse graph order), then releases as a
//! DAG — each starts as soon as all its needs succeeded, at most
//! `concurrency` at a time; a failed release's dependents are skipped; an
//! interrupt starts nothing new. With `--atomic=stack`, a failure undoes
//! every release the run deployed, newest first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::execute::Session;
use crate::execute::apply::{apply_release, remove_release};
use crate::execute::countdown::Countdown;
use crate::execute::error::ReleaseError;
use crate::execute::event::Event;
use crate::execute::rollback::{Undo, roll_back};
use crate::load::project::Project;
use crate::load::render::RenderedRelease;
use crate::plan::{self, Intent, Plan};
use stack_kube::revision::State;

/// What happened to a failed release's changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Rollback {
    /// It failed before changing anything.
    NothingChanged,
    /// Rolled back: the new revision restoring the old one, or `None` when
    /// a first install was removed.
    Restored { revision: Option<u32> },
    /// Not atomic: the failure is left in place.
    Left,
    /// The rollback failed too.
    Failed { error: ReleaseError },
    /// Not tried: the cluster stopped answering. The revision stays
    /// pending, for the next `stack apply` to recover.
    NotAttempted,
}

/// How one release ended in a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Unchanged,
    Deployed {
        revision: u32,
    },
    Removed,
    Failed {
        error: ReleaseError,
        rollback: Rollback,
    },
    Skipped {
        because: String,
    },
    /// Deployed in this run, then undone because another release failed.
    Undone {
        rollback: Rollback,
    },
}

impl Outcome {
    /// A few words for a release's line in the live view.
    pub fn describe(&self) -> String {
        match self {
            Self::Unchanged => "unchanged".into(),
            Self::Deployed { revision } => format!("deployed revision {revision}"),
            Self::Removed => "removed".into(),
            Self::Failed {
                rollback: Rollback::Restored { .. },
                ..
            } => "failed, rolled back".into(),
            Self::Failed {
                rollback: Rollback::Failed { .. },
                ..
            } => "failed, ROLLBACK FAILED".into(),
            Self::Failed {
                rollback: Rollback::NotAttempted,
                ..
            } => "left pending".into(),
            Self::Failed { .. } => "failed".into(),
            Self::Skipped { because } => format!("skipped: {because}"),
            Self::Undone { .. } => "undone".into(),
        }
    }

    pub fn failed(error: ReleaseError) -> Self {
        Self::Failed {
            error,
            rollback: Rollback::Left,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Finished {
    pub id: String,
    pub outcome: Outcome,
    pub duration: Duration,
    pub changes: (usize, usize, usize),
}

/// Apply a plan; every release's outcome in the order they finished.
pub async fn apply(
    session: Arc<Session>,
    project: &Project,
    rendered: Vec<(usize, RenderedRelease)>,
    plan: Plan,
    concurrency: usize,
) -> Vec<Finished> {
    session.reporter.start(&run_ids(project, &plan));
    let mut finished = remove(&session, project, &plan).await;
    let removals: Vec<plan::ReleasePlan> = plan
        .releases
        .iter()
        .filter(|r| r.intent == Intent::Remove)
        .cloned()
        .collect();
    let rendered: HashMap<usize, RenderedRelease> = rendered.into_iter().collect();
    let plans: HashMap<usize, plan::ReleasePlan> = plan
        .releases
        .into_iter()
        .filter(|r| r.intent == Intent::Apply)
        .filter_map(|r| r.index.map(|i| (i, r)))
        .collect();
    let mut countdown = countdown(project, &plans);
    let mut running = tokio::task::JoinSet::new();
    let mut tasks: HashMap<tokio::task::Id, usize> = HashMap::new();
    let skip =
        |index: usize, because: String| skipped(&session, &project.releases[index].id, because);
    loop {
        // Why nothing more starts: this reason wins over a failed need.
        if let Some(because) = session.stopped() {
            for index in countdown.remaining() {
                finished.push(skip(index, because.into()));
            }
        }
        while running.len() < concurrency.max(1) {
            let Some(index) = countdown.start() else {
                break;
            };
            let release = project.releases[index].clone();
            let work = run_release(&session, release, &rendered[&index], &plans[&index]);
            let task = running.spawn(async move { (index, work.await) });
            tasks.insert(task.id(), index);
        }
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        let (index, done) = match joined {
            Ok((_, result)) => result,
            Err(error) => {
                let index = tasks.get(&error.id()).copied().unwrap_or_default();
                (index, panicked(&project.releases[index].id, &error))
            }
        };
        let success = !matches!(
            done.outcome,
            Outcome::Failed { .. } | Outcome::Skipped { .. }
        );
        session.reporter.finish(&done.id, &done.outcome.describe());
        finished.push(done);
        if success {
            countdown.done(index);
        } else if session.stopped().is_none() {
            // What waited for a failure is skipped, naming the need that
            // did not succeed.
            for (blocked, need) in countdown.blocked_by(index) {
                let because = format!("its need {} did not succeed", project.releases[need].id);
                finished.push(skip(blocked, because));
            }
        }
    }
    if session.options.stack_atomic
        && finished
            .iter()
            .any(|f| matches!(f.outcome, Outcome::Failed { .. }))
    {
        undo_run(&session, project, &plans, &removals, &mut finished).await;
    }
    session.reporter.close();
    finished
}

/// Removals first, in reverse graph order.
async fn remove(session: &Session, project: &Project, plan: &Plan) -> Vec<Finished> {
    let mut removals: Vec<&plan::ReleasePlan> = plan
        .releases
        .iter()
        .filter(|r| r.intent == Intent::Remove)
        .collect();
    let position = project.graph.positions();
    removals.sort_by_key(|r| std::cmp::Reverse(r.index.and_then(|i| position.get(&i))));
    let mut finished = Vec::new();
    for removal in removals {
        if removal.up_to_date {
            session.reporter.finish(&removal.id, "unchanged");
            finished.push(Finished {
                id: removal.id.clone(),
                outcome: Outcome::Unchanged,
                duration: Duration::ZERO,
                changes: (0, 0, 0),
            });
            continue;
        }
        let start = Instant::now();
        let counts = removal.counts();
        let outcome = match remove_release(session, removal).await {
            Ok(_) => Outcome::Removed,
            Err(error) => Outcome::failed(error),
        };
        session.reporter.finish(&removal.id, &outcome.describe());
        finished.push(Finished {
            id: removal.id.clone(),
            outcome,
            duration: start.elapsed(),
            changes: counts,
        });
    }
    finished
}

/// `--atomic=stack`: undo every release this run deployed or removed,
/// newest first.
async fn undo_run(
    session: &Session,
    project: &Project,
    plans: &HashMap<usize, plan::ReleasePlan>,
    removals: &[plan::ReleasePlan],
    finished: &mut [Finished],
) {
    let history = match crate::cluster::live::history(&session.client).await {
        Ok((history, _)) => history,
        Err(error) => {
            let error = ReleaseError::request("read release history")(error);
            for done in finished
                .iter_mut()
                .filter(|f| matches!(f.outcome, Outcome::Deployed { .. }))
            {
                done.outcome = Outcome::Undone {
                    rollback: Rollback::Failed {
                        error: error.clone(),
                    },
                };
            }
            return;
        }
    };
    let removals: HashMap<&str, &plan::ReleasePlan> =
        removals.iter().map(|r| (r.id.as_str(), r)).collect();
    let plans: HashMap<&str, (usize, &plan::ReleasePlan)> = plans
        .iter()
        .map(|(i, p)| (p.id.as_str(), (*i, p)))
        .collect();
    for done in finished.iter_mut().rev() {
        if done.outcome == Outcome::Removed {
            let removal = removals.get(done.id.as_str());
            let rollback = match removal {
                Some(removal) => reinstall(session, project, removal).await,
                None => Rollback::Failed {
                    error: ReleaseError::CannotUndo("its plan is lost"),
                },
            };
            done.outcome = Outcome::Undone { rollback };
            continue;
        }
        if !matches!(done.outcome, Outcome::Deployed { .. }) {
            continue;
        }
        let found = plans.get(done.id.as_str()).copied();
        let undone = history.get(&done.id).and_then(|h| h.last()).cloned();
        let (Some((index, release_plan)), Some(undone)) = (found, undone) else {
            done.outcome = Outcome::Undone {
                rollback: Rollback::Failed {
                    error: ReleaseError::CannotUndo("its revisions are not in the cluster"),
                },
            };
            continue;
        };
        let undo = Undo::new(
            undone,
            State::RolledBack,
            "another release of the run failed (--atomic=stack)".into(),
            release_plan.deployed.clone(),
            history.get(&done.id).map_or(&[], Vec::as_slice),
            &project.releases[index].options,
        );
        session.reporter.event(&done.id, &Event::Undoing);
        let rollback = match roll_back(session, undo).await {
            Ok(revision) => Rollback::Restored { revision },
            Err(error) => {
                session.reporter.event(
                    &done.id,
                    &Event::RollbackFailed {
                        error: error.to_string(),
                    },
                );
                Rollback::Failed { error }
            }
        };
        done.outcome = Outcome::Undone { rollback };
    }
}

/// The releases to apply, in graph order, each waiting for its needs.
fn countdown(project: &Project, plans: &HashMap<usize, plan::ReleasePlan>) -> Countdown {
    let order: Vec<usize> = project
        .graph
        .order
        .iter()
        .copied()
        .filter(|index| plans.contains_key(index))
        .collect();
    Countdown::new(&order, |index| project.graph.needs[index].clone())
}

/// The releases of a run, in the order the live view lists them: those
/// applied in graph order, then those removed.
fn run_ids(project: &Project, plan: &Plan) -> Vec<String> {
    let planned: HashMap<usize, &str> = plan
        .releases
        .iter()
        .filter_map(|r| Some((r.index?, r.id.as_str())))
        .collect();
    project
        .graph
        .order
        .iter()
        .filter_map(|i| planned.get(i).copied())
        .chain(
            plan.releases
                .iter()
                .filter(|r| r.index.is_none())
                .map(|r| r.id.as_str()),
        )
        .map(str::to_string)
        .collect()
}

/// One release's run, timed, as a task can own it.
fn run_release(
    session: &Arc<Session>,
    release: crate::load::release::Release,
    rendered: &RenderedRelease,
    plan: &plan::ReleasePlan,
) -> impl std::future::Future<Output = Finished> + Send + 'static {
    let (session, rendered, plan) = (Arc::clone(session), rendered.clone(), plan.clone());
    async move {
        let start = Instant::now();
        let changes = plan.counts();
        let outcome = apply_release(&session, &release, &rendered, &plan).await;
        Finished {
            id: release.id.clone(),
            outcome,
            duration: start.elapsed(),
            changes,
        }
    }
}

/// A release that does not start, and why.
fn skipped(session: &Session, id: &str, because: String) -> Finished {
    session.reporter.event(
        id,
        &Event::Skipped {
            because: because.clone(),
        },
    );
    session.reporter.finish(id, &format!("skipped: {because}"));
    Finished {
        id: id.to_string(),
        outcome: Outcome::Skipped { because },
        duration: Duration::ZERO,
        changes: (0, 0, 0),
    }
}

/// A release task that panicked: a failure whose state is unknown.
fn panicked(id: &str, error: &tokio::task::JoinError) -> Finished {
    Finished {
        id: id.to_string(),
        outcome: Outcome::Failed {
            error: ReleaseError::Panicked {
                message: error.to_string(),
            },
            rollback: Rollback::Failed {
                error: ReleaseError::NotAttempted,
            },
        },
        duration: Duration::ZERO,
        changes: (0, 0, 0),
    }
}

/// Bring back a release this run removed: its last deployed revision is
/// restored as a new one, the way a rollback restores it.
async fn reinstall(session: &Session, project: &Project, removal: &plan::ReleasePlan) -> Rollback {
    let (Some(undone), Some(target)) = (removal.previous.clone(), removal.deployed.clone()) else {
        return Rollback::Failed {
            error: ReleaseError::CannotUndo("it had no deployed revision to restore"),
        };
    };
    let options = removal
        .index
        .map(|i| project.releases[i].options.clone())
        .unwrap_or_default();
    session.reporter.event(&removal.id, &Event::Restoring);
    let undo = Undo {
        undone: std::sync::Arc::unwrap_or_clone(undone),
        state: State::RolledBack,
        reason: "removed by a run whose other releases failed (--atomic=stack); restored".into(),
        target: Some(std::sync::Arc::unwrap_or_clone(target)),
        keep: removal.adopted.clone(),
        existing: removal.kept.clone(),
        timeout: options.timeout,
        history_max: options.history_max,
    };
    match roll_back(session, undo).await {
        Ok(revision) => Rollback::Restored { revision },
        Err(error) => Rollback::Failed { error },
    }
}
