//! `stack rollback RELEASE [REVISION]`: restore a revision kept in the
//! cluster — by default the one deployed before the latest — as a new
//! revision, the same way a failed apply is rolled back.

use crate::settings::Settings;
use stack_core::cluster::live;
use stack_core::error::{EXIT_ROLLBACK_FAILED, Error, Errors};
use stack_core::execute::event::Event;
use stack_core::execute::rollback::{Undo, roll_back};
use stack_core::execute::{EngineError, Session};
use stack_core::load::config::ReleaseOptions;
use stack_core::load::project::Project;
use stack_kube::revision::{Revision, State};
use std::sync::Arc;

pub fn run(
    project: &Project,
    settings: &Settings,
    wanted: &str,
    revision: Option<u32>,
) -> Result<u8, Errors> {
    let id = super::status::find_release(project, wanted)?;
    let options = project
        .releases
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.options.clone())
        .unwrap_or_default();
    super::remote::with_session(project, settings, |session| async move {
        // A revision that does not exist is refused before the lock is taken
        // (no write at all); under the lock the history is read again.
        choose(&id, &revisions_of(&session, &id).await?, revision)?;
        let work = roll_back_release(&session, &id, revision, &options);
        super::remote::locked(&session, project, "stack rollback", work).await
    })
}

async fn roll_back_release(
    session: &Session,
    id: &str,
    revision: Option<u32>,
    options: &ReleaseOptions,
) -> Result<u8, Errors> {
    let revisions = revisions_of(session, id).await?;
    let (latest, target) = choose(id, &revisions, revision)?;
    let state = match latest.state {
        State::Deployed => State::RolledBack,
        State::Pending => State::Failed,
        state => state,
    };
    let reason = format!("rolled back by hand to revision {}", target.number);
    let undo = Undo::new(latest, state, reason, Some(target), &revisions, options);
    match roll_back(session, undo).await {
                Ok(number) => {
                    session.reporter.event(
                        id,
                        &Event::RolledBackByHand {
                            revision: number.unwrap_or(0),
                        },
                    );
                    Ok(0)
                }
                Err(message) => Err(Errors::from(Error::Deploy {
                    message: format!("cannot roll back {id}: {message}"),
                    hint: "`stack status` shows where the release stands; run the rollback again once the cause is fixed".into(),
                    code: EXIT_ROLLBACK_FAILED,
                })),
            }
}

/// The revisions of release `id` kept in the cluster, oldest first.
async fn revisions_of(session: &Session, id: &str) -> Result<Vec<Arc<Revision>>, Errors> {
    let (mut history, _) = live::history(&session.client)
        .await
        .map_err(EngineError::api("cannot read release history"))?;
    Ok(history.remove(id).unwrap_or_default())
}

/// The latest revision and the one to restore.
fn choose(
    id: &str,
    revisions: &[Arc<Revision>],
    wanted: Option<u32>,
) -> Result<(Arc<Revision>, Arc<Revision>), Errors> {
    let failed = |message: String, hint: &str| {
        Errors::from(Error::Failed {
            message,
            hint: Some(hint.into()),
        })
    };
    let Some(latest) = revisions.last().cloned() else {
        return Err(failed(
            format!("{id} has no revisions in the cluster"),
            "`stack apply` installs it",
        ));
    };
    let target = match wanted {
        Some(number) => revisions.iter().find(|r| r.number == number).cloned(),
        None => revisions
            .iter()
            .rev()
            .skip(1)
            .find(|r| matches!(r.state, State::Deployed | State::Superseded))
            .cloned(),
    };
    let Some(target) = target else {
        return Err(failed(
            format!(
                "{id} has no revision {} to roll back to",
                wanted.map_or_else(|| "deployed before the latest".into(), |n| n.to_string())
            ),
            "`stack history RELEASE` lists the revisions kept",
        ));
    };
    if target.number == latest.number {
        return Err(failed(
            format!("revision {} is already the latest of {id}", target.number),
            "name an earlier revision; `stack history RELEASE` lists them",
        ));
    }
    Ok((latest, target))
}
