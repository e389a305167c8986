//! `stack destroy`: delete the selected releases in reverse dependency order
//! — their objects, then their history — and wait for the objects to go.

use crate::cluster::live;
use crate::engine::{EngineError, apply};
use crate::error::Errors;
use crate::plan;
use crate::project::Project;
use crate::settings::Settings;

pub fn run(
    project: &Project,
    settings: &Settings,
    lock_args: &crate::cli::LockArgs,
) -> Result<u8, Errors> {
    super::remote::with_session(project, settings, |session| async move {
        let work = destroy(&session, project);
        super::remote::locked(&session, project, "stack destroy", lock_args, work).await
    })
}

async fn destroy(session: &crate::engine::Session, project: &Project) -> Result<u8, Errors> {
    let (history, _) = live::history(&session.client)
        .await
        .map_err(EngineError::api("cannot read release history"))?;
    let revisions = project
        .selection
        .releases
        .iter()
        .filter_map(|&index| history.get(&project.releases[index].id))
        .flatten();
    let objects = session
        .live_around(revisions.flat_map(|r| &r.objects), None)
        .await
        .map_err(EngineError::api("cannot read live objects"))?;
    let owned = plan::Owned::index(&objects);
    let mut order = project.selection.releases.clone();
    order.reverse();
    for index in order {
        let id = &project.releases[index].id;
        let removal = plan::plan_removal(Some(index), id, &owned, history.get(id));
        if removal.up_to_date {
            session.reporter.line(id, "not installed");
            continue;
        }
        apply::remove_release(session, &removal)
            .await
            .map_err(|message| crate::error::Error::Failed {
                message,
                hint: None,
            })?;
        for change in &removal.changes {
            let resources = session.resources.read().await.clone();
            if let Some((api, _)) = resources.api(
                &session.client,
                &change.api_version,
                &change.key.kind,
                change.key.namespace.as_deref(),
            ) {
                crate::engine::wait::until_gone(api, change.key.name.clone()).await;
            }
        }
    }
    Ok(0)
}
