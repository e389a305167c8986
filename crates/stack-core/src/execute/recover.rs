//! Crash recovery: a revision still `pending` when a run starts was left by
//! a run that died (kill -9, a lost machine). Before anything else, each one
//! is said out loud and rolled back to the release's last deployed revision
//! (removed, when there is none) — or, with `--recover=forward`, its own
//! objects are applied again. Never "another operation is in progress".

use crate::cluster::live;
use crate::execute::error::ReleaseError;
use crate::execute::event::{Event, Recovery};
pub use crate::execute::options::Direction;
use crate::execute::rollback::{Undo, roll_back};
use crate::execute::{EngineError, Session};
use crate::load::project::Project;
use stack_kube::revision::State;

/// After a recovery: older revisions still `pending` (a rollback that was
/// itself interrupted) are marked failed, and going forward supersedes the
/// revision that was deployed before.
async fn settle(
    session: &Session,
    revisions: &[std::sync::Arc<stack_kube::revision::Revision>],
    direction: Direction,
) -> Result<(), ReleaseError> {
    let newest = revisions.last().map_or(0, |r| r.number);
    for revision in revisions
        .iter()
        .filter(|r| r.state == State::Pending && r.number != newest)
    {
        let mut revision = stack_kube::revision::Revision::clone(revision);
        let reason = "interrupted: the run that applied it stopped before it finished".to_string();
        crate::execute::history::mark(session, &mut revision, State::Failed, Some(reason)).await?;
    }
    if direction == Direction::Forward {
        crate::execute::history::supersede(
            session,
            crate::plan::last_deployed(revisions).map(AsRef::as_ref),
        )
        .await?;
    }
    Ok(())
}

/// Whether a release's newest revision is pending, left by a run of this stack.
fn is_pending(revisions: &[std::sync::Arc<stack_kube::revision::Revision>], stack: &str) -> bool {
    revisions
        .last()
        .is_some_and(|r| r.state == State::Pending && r.stack == stack)
}

/// Whether any release of this stack has its newest revision pending.
pub(crate) fn has_pending(history: &crate::cluster::live::History, stack: &str) -> bool {
    history
        .values()
        .any(|revisions| is_pending(revisions, stack))
}

/// Recover every pending revision of this stack; the ids recovered.
pub async fn recover(
    session: &Session,
    project: &Project,
    direction: Direction,
) -> Result<Vec<String>, EngineError> {
    let (history, _) = live::history(&session.client)
        .await
        .map_err(EngineError::api("cannot read release history"))?;
    let mut pending: Vec<_> = history
        .iter()
        .filter(|(_, revisions)| is_pending(revisions, &session.stack_name))
        .collect();
    pending.sort_by(|a, b| a.0.cmp(b.0));
    let mut recovered = Vec::new();
    for (id, revisions) in pending {
        let Some(undone) = revisions.last().cloned() else {
            continue;
        };
        let options = project
            .releases
            .iter()
            .find(|r| &r.id == id)
            .map(|r| &r.options);
        let target = match direction {
            Direction::Forward => Some(undone.clone()),
            // The last deployed revision; failing that, the newest that was
            // ever live — never "remove" a release that once deployed.
            Direction::Back => crate::plan::last_deployed(revisions).cloned().or_else(|| {
                revisions
                    .iter()
                    .rev()
                    .find(|r| matches!(r.state, State::Superseded | State::RolledBack))
                    .cloned()
            }),
        };
        let recovery = match (direction, &target) {
            (Direction::Forward, _) => Recovery::Forward,
            (Direction::Back, Some(target)) => Recovery::Back {
                revision: target.number,
            },
            (Direction::Back, None) => Recovery::Removal,
        };
        session.reporter.event(
            id,
            &Event::Recovering {
                revision: undone.number,
                recovery,
            },
        );
        let undo = Undo::new(
            undone,
            State::Failed,
            "interrupted: the run that applied it stopped before it finished".into(),
            target,
            revisions,
            &options.cloned().unwrap_or_default(),
        );
        let failed = |error: ReleaseError| EngineError::Recovery {
            release: id.clone(),
            error,
        };
        roll_back(session, undo).await.map_err(failed)?;
        settle(session, revisions, direction)
            .await
            .map_err(failed)?;
        recovered.push(id.clone());
    }
    Ok(recovered)
}
