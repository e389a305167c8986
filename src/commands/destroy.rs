//! `stack destroy`: delete the selected releases in reverse dependency order
//! — their objects, then their history — and wait for the objects to go.

use std::collections::HashMap;

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;

use crate::settings::Settings;
use stack_core::cluster::live;
use stack_core::error::Errors;
use stack_core::execute::countdown::Countdown;
use stack_core::execute::error::ReleaseError;
use stack_core::execute::event::Event;
use stack_core::execute::{EngineError, apply, groups, hooks};
use stack_core::load::project::Project;
use stack_core::plan;
use stack_kube::revision::Revision;

pub fn run(project: &Project, settings: &Settings) -> Result<u8, Errors> {
    super::remote::with_session(project, settings, |session| async move {
        let stack = project.stack_name();
        let record = groups::check_name(&session.client, &stack, project).await?;
        let work = destroy(&session, project);
        let code = super::remote::locked(&session, project, "stack destroy", work).await?;
        // The whole group is gone: so are its namespaces and its record.
        if let Some(record) = record
            && settings.load.selectors.is_empty()
        {
            let environment = project.environment_name();
            for namespace in groups::remove(&session, &stack, environment, &record).await? {
                session.reporter.event(&namespace, &Event::DeletedNamespace);
            }
        }
        Ok(code)
    })
}

async fn destroy(session: &stack_core::execute::Session, project: &Project) -> Result<u8, Errors> {
    let (history, _) = live::history(&session.client)
        .await
        .map_err(EngineError::api("cannot read release history"))?;
    let revisions = project
        .selection
        .releases
        .iter()
        .filter_map(|&index| history.get(&project.releases[index].id))
        .flatten();
    let scopes = revisions.flat_map(|r| r.objects.scopes()).collect();
    let resources = session.resources.read().await.clone();
    let (objects, _, _) = live::fetch(&session.client, &resources, scopes)
        .await
        .map_err(EngineError::api("cannot read live objects"))?;
    let owned = plan::Owned::index(&objects);
    // The dependency graph reversed: a release goes once every selected
    // release that needs it is gone; independent releases go together.
    let selected = &project.selection.releases;
    let by_id: HashMap<&str, usize> = selected
        .iter()
        .map(|&index| (project.releases[index].id.as_str(), index))
        .collect();
    let mut needed_by: HashMap<usize, Vec<usize>> = HashMap::new();
    for &index in selected {
        for need in &project.releases[index].needs {
            if let Some(&needed) = by_id.get(need.id.as_str()) {
                needed_by.entry(needed).or_default().push(index);
            }
        }
    }
    let order: Vec<usize> = selected.iter().rev().copied().collect();
    let mut countdown = Countdown::new(&order, |index| {
        needed_by.get(&index).cloned().unwrap_or_default()
    });
    let concurrency = session.options.concurrency;
    let mut running = FuturesUnordered::new();
    let mut failed = None;
    loop {
        while failed.is_none() && running.len() < concurrency {
            let Some(index) = countdown.start() else {
                break;
            };
            let id = &project.releases[index].id;
            let removal = plan::plan_removal(Some(index), id, &owned, history.get(id));
            let latest = history.get(id).and_then(|revisions| revisions.last());
            let timeout = project.releases[index].options.timeout;
            running.push(async move {
                (
                    index,
                    destroy_release(session, removal, latest, timeout).await,
                )
            });
        }
        let Some((index, result)) = running.next().await else {
            break;
        };
        match result {
            Ok(()) => countdown.done(index),
            Err(error) => {
                failed.get_or_insert(error);
            }
        }
    }
    match failed {
        Some(error) => Err(stack_core::error::Error::Release(error).into()),
        None => Ok(0),
    }
}

/// Delete one release's objects and history, then wait for its objects to
/// go; the `pre-delete` and `post-delete` hooks of its latest revision run
/// before and after.
async fn destroy_release(
    session: &stack_core::execute::Session,
    removal: plan::ReleasePlan,
    latest: Option<&std::sync::Arc<Revision>>,
    timeout: std::time::Duration,
) -> Result<(), ReleaseError> {
    if removal.up_to_date {
        session.reporter.event(&removal.id, &Event::NotInstalled);
        return Ok(());
    }
    if let Some(revision) = latest {
        hooks::run_recorded(session, revision, "pre-delete", timeout).await?;
    }
    let going = apply::remove_release(session, &removal).await?;
    let resources = session.resources.read().await.clone();
    let waits: Vec<_> = going
        .into_iter()
        .filter_map(|change| {
            let (api, _) = resources.api(
                &session.client,
                &change.api_version,
                &change.key.kind,
                change.key.namespace.as_deref(),
            )?;
            Some(stack_core::execute::wait::until_gone(
                api,
                change.key.name.clone(),
            ))
        })
        .collect();
    futures::stream::iter(waits)
        .buffer_unordered(apply::DELETES_AT_ONCE)
        .collect::<Vec<()>>()
        .await;
    if let Some(revision) = latest {
        hooks::run_recorded(session, revision, "post-delete", timeout).await?;
    }
    Ok(())
}
