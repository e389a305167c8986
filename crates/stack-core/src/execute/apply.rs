//! One release, applied: ensure its namespace, record a pending revision,
//! server-side apply what changed (in kind order, field manager `stack`),
//! wait for readiness up to the release timeout, run its tests, prune what
//! the render no longer has, and record the revision as deployed. When a
//! step fails and the release is atomic, it is rolled back to its last
//! deployed revision (or removed, on a first install).

use std::collections::BTreeSet;

use futures::StreamExt as _;

use crate::execute::error::ReleaseError;
use crate::execute::event::Event;
use crate::execute::objects::{delete_change, ensure_namespace};
use crate::execute::readiness::{self, Readiness};
use crate::execute::rollback::{Undo, roll_back};
use crate::execute::strategy::Strategy;
use crate::execute::{Outcome, Rollback, Session, helm_records, history, hooks, test_jobs};
use crate::load::release::Release;
use crate::load::render::RenderedRelease;
use crate::plan::{Action, Change, ReleasePlan};
use stack_kube::revision::{Revision, State, Stored};

pub(crate) async fn apply_release(
    session: &Session,
    release: &Release,
    rendered: &RenderedRelease,
    plan: &ReleasePlan,
) -> Outcome {
    let id = &release.id;
    if plan.up_to_date {
        session.reporter.event(id, &Event::Unchanged);
        return Outcome::Unchanged;
    }
    // Stopped from outside: the cluster went silent (nothing can be rolled
    // back on a cluster that does not answer), or the run was interrupted
    // (Ctrl-C, SIGTERM, the lock taken over). The revision stays pending,
    // and the next apply recovers it.
    let stopped = |because: String| {
        session.reporter.event(
            id,
            &Event::Stopped {
                because: because.clone(),
            },
        );
        Outcome::Failed {
            error: ReleaseError::Stopped { because },
            rollback: Rollback::NotAttempted,
        }
    };
    let result = tokio::select! {
        result = run(session, release, rendered, plan) => result,
        lost = session.contact.until_lost() => return stopped(lost.to_string()),
        () = session.interrupt.wait() => return stopped("the run was interrupted".into()),
    };
    let (error, revision) = match result {
        Ok(number) => return Outcome::Deployed { revision: number },
        Err(failure) => failure,
    };
    if let Some(lost) = session.contact.lost() {
        return stopped(lost.to_string());
    }
    session.reporter.event(
        id,
        &Event::Failed {
            error: error.to_string(),
        },
    );
    let rollback = after_failure(session, release, plan, &error, revision).await;
    Outcome::Failed { error, rollback }
}

/// What becomes of a failed release's changes: nothing to undo, left in
/// place (not atomic; its revision marked failed), or rolled back to the
/// last deployed revision (or removed, on a first install).
async fn after_failure(
    session: &Session,
    release: &Release,
    plan: &ReleasePlan,
    error: &ReleaseError,
    revision: Option<Revision>,
) -> Rollback {
    let id = &release.id;
    let atomic = session.options.atomic.unwrap_or(release.options.atomic);
    let Some(mut revision) = revision else {
        return if atomic {
            Rollback::NothingChanged
        } else {
            Rollback::Left
        };
    };
    if !atomic {
        let reason = Some(error.to_string());
        return match history::mark(session, &mut revision, State::Failed, reason).await {
            Ok(()) => Rollback::Left,
            Err(mark) => Rollback::Failed { error: mark },
        };
    }
    let undo = Undo {
        undone: revision,
        state: State::Failed,
        reason: error.to_string(),
        target: plan.deployed.as_deref().cloned(),
        keep: plan.adopted.clone(),
        existing: plan.kept.clone(),
        timeout: release.options.timeout,
        history_max: release.options.history_max,
    };
    match roll_back(session, undo).await {
        Ok(restored) => {
            session.reporter.event(
                id,
                &Event::RolledBack {
                    restored,
                    replaced: plan.deployed.as_ref().map_or(0, |d| d.number),
                },
            );
            Rollback::Restored { revision: restored }
        }
        Err(error) => {
            session.reporter.event(
                id,
                &Event::RollbackFailed {
                    error: error.to_string(),
                },
            );
            Rollback::Failed { error }
        }
    }
}

/// Objects the plan adopts: they existed before without being ours.
pub fn adopted(plan: &ReleasePlan) -> BTreeSet<stack_kube::object::ObjectKey> {
    plan.changes
        .iter()
        .filter(|c| c.adopts)
        .map(|c| c.key.clone())
        .collect()
}

/// Whether a release's tests run in this apply.
fn tests_enabled(session: &Session, release: &Release) -> bool {
    session.options.tests.unwrap_or(release.options.tests)
}

/// The steps of one release; on failure the reason and the pending
/// revision, if one was written.
async fn run(
    session: &Session,
    release: &Release,
    rendered: &RenderedRelease,
    plan: &ReleasePlan,
) -> Result<u32, (ReleaseError, Option<Revision>)> {
    let id = &release.id;
    let started = std::time::Instant::now();
    if release.options.create_namespace {
        ensure_namespace(session, &release.namespace)
            .await
            .map_err(|e| (e, None))?;
    }
    let number = plan.previous.as_ref().map_or(1, |p| p.number + 1);
    let mut revision = Revision {
        release: id.clone(),
        stack: session.stack_name.clone(),
        number,
        state: State::Pending,
        chart: release.chart_name.clone(),
        values_digest: stack_kube::revision::values_digest(&rendered.values),
        commit: session.commit.clone(),
        started: stack_kube::clock::now(),
        finished: None,
        objects: Stored::new(
            rendered
                .objects
                .iter()
                .filter(|o| !crate::execute::canary::is_canary(o))
                .map(|o| &o.body),
        ),
        tests: Stored::new(rendered.tests.iter().map(|o| &o.body)),
        hooks: Stored::new(rendered.hooks.iter().map(|h| &h.object.body)),
        rollout: rendered.rollout.clone(),
        tests_passed: None,
        message: None,
        adopted: adopted(plan).iter().map(ToString::to_string).collect(),
    };
    history::write(session, &revision)
        .await
        .map_err(|e| (e, None))?;
    let steps = steps(session, release, rendered, plan, &mut revision).await;
    if let Err(error) = steps {
        return Err((error, Some(revision)));
    }
    session.reporter.event(
        id,
        &Event::Deployed {
            revision: number,
            duration: started.elapsed(),
        },
    );
    Ok(number)
}

/// Apply, wait, test, prune and record; the revision is pending throughout.
async fn steps(
    session: &Session,
    release: &Release,
    rendered: &RenderedRelease,
    plan: &ReleasePlan,
    revision: &mut Revision,
) -> Result<(), ReleaseError> {
    let id = &release.id;
    let timeout = release.options.timeout;
    let (creates, updates, deletes) = plan.counts();
    session.reporter.event(
        id,
        &Event::Applying {
            revision: revision.number,
            creates,
            updates,
            deletes,
        },
    );
    if let Some(warning) = hooks::not_run(&rendered.hooks) {
        session
            .reporter
            .event(id, &Event::Warning { message: warning });
    }
    let install = plan.deployed.is_none();
    let (pre, post) = if install {
        ("pre-install", "post-install")
    } else {
        ("pre-upgrade", "post-upgrade")
    };
    hooks::run(session, id, &rendered.hooks, pre, timeout).await?;
    let strategy = Strategy::of(release);
    strategy.roll_out(session, release, rendered, plan).await?;
    hooks::run(session, id, &rendered.hooks, post, timeout).await?;
    if tests_enabled(session, release) && !rendered.tests.is_empty() {
        let result = test_jobs::run(session, id, &rendered.tests, timeout).await;
        revision.tests_passed = Some(result.is_ok());
        result?;
    }
    let after = strategy.switch(session, release, rendered, plan).await?;
    if let Some(paused) = after.as_ref().filter(|r| r.step.is_some()) {
        // A paused canary: its revision holds what runs; nothing is pruned
        // until it is promoted.
        revision.objects = crate::execute::canary::paused_objects(rendered, plan, paused);
        revision.rollout = after;
        history::mark(session, revision, State::Deployed, None).await?;
        history::supersede(session, plan.deployed.as_deref()).await?;
        return Ok(());
    }
    if matches!(strategy, Strategy::Canary(_)) {
        revision.rollout = after;
    }
    for change in plan.changes.iter().filter(|c| c.action == Action::Delete) {
        delete_change(session, change).await?;
        session.reporter.event(
            id,
            &Event::Pruned {
                object: change.key.to_string(),
            },
        );
    }
    let taken_over = if plan.changes.iter().any(|c| c.helm.is_some()) {
        Some(helm_records::take_over(session, release).await?)
    } else {
        None
    };
    history::mark(session, revision, State::Deployed, taken_over).await?;
    // Deployed: what follows is bookkeeping, and its failure only a warning.
    let tidy = async {
        history::supersede(session, plan.deployed.as_deref()).await?;
        history::trim(
            session,
            id,
            &plan.kept,
            revision.number,
            release.options.history_max,
        )
        .await
    };
    if let Err(error) = tidy.await {
        session.reporter.event(
            id,
            &Event::Warning {
                message: error.to_string(),
            },
        );
    }
    Ok(())
}

/// Deletes (and waits for objects to go) in flight at once per release.
pub const DELETES_AT_ONCE: usize = 16;

/// Delete everything a release owns, then its history. Returns the objects
/// still going away (a finalizer, a graceful deletion); the others were
/// gone when their deletion was answered.
pub async fn remove_release<'a>(
    session: &Session,
    plan: &'a ReleasePlan,
) -> Result<Vec<&'a Change>, ReleaseError> {
    let mut changes: Vec<_> = plan.changes.iter().collect();
    changes.sort_by_key(|c| std::cmp::Reverse(super::order::rank(&c.key.kind)));
    // Reverse order of kinds (workloads before their ConfigMaps, Namespaces
    // last); the objects of one rank are deleted together.
    let mut going = Vec::new();
    for rank in
        changes.chunk_by(|a, b| super::order::rank(&a.key.kind) == super::order::rank(&b.key.kind))
    {
        let deleted: Vec<Result<bool, ReleaseError>> = futures::stream::iter(rank)
            .map(|change| delete_change(session, change))
            .buffered(DELETES_AT_ONCE)
            .collect()
            .await;
        for (change, gone) in rank.iter().zip(deleted) {
            if !gone? {
                going.push(*change);
            }
        }
    }
    history::delete_all(session, &plan.id, &plan.kept).await?;
    session.reporter.event(&plan.id, &Event::Removed);
    Ok(going)
}

/// The readiness of a live object, for `stack status`.
pub fn live_readiness(object: &serde_json::Value) -> Readiness {
    readiness::readiness(object).unwrap_or(Readiness::Ready)
}
