//! Rolling a release back: the revision being undone is marked (`failed`,
//! or `rolled-back` when it had deployed), the target revision's objects are
//! re-applied with force under a new revision, every object that carries the
//! release's label but is not in the target is deleted, and the target is
//! waited for. Without a target (a first install) the release's objects are
//! removed. A kill at any point leaves a `pending` revision that the next
//! run recovers the same way.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::cluster::live;
use crate::execute::error::ReleaseError;
use crate::execute::event::Event;
use crate::execute::objects::{apply_all, delete_object, wait_ready};
use crate::execute::{Session, blue_green, history, hooks, readiness, wait};
use stack_kube::object::{Object, ObjectKey};
use stack_kube::revision::{Revision, State};

/// What to undo, and what to bring back.
#[derive(Debug, Clone)]
pub struct Undo {
    /// The newest revision: the one being undone.
    pub undone: Revision,
    /// What it is marked: `failed` or `rolled-back`.
    pub state: State,
    pub reason: String,
    /// The revision to restore; `None` removes the release.
    pub target: Option<Revision>,
    /// `Kind/namespace/name` of objects that existed before without being
    /// ours (adopted): never deleted.
    pub keep: BTreeSet<String>,
    /// The numbers of the release's revisions in the cluster.
    pub existing: Vec<u32>,
    pub timeout: Duration,
    pub history_max: u32,
}

impl Undo {
    /// An undo of a release whose kept revisions are `history` (what they
    /// adopted is kept, new revisions are numbered after them).
    pub fn new(
        undone: std::sync::Arc<Revision>,
        state: State,
        reason: String,
        target: Option<std::sync::Arc<Revision>>,
        history: &[std::sync::Arc<Revision>],
        options: &crate::load::config::ReleaseOptions,
    ) -> Self {
        Self {
            undone: std::sync::Arc::unwrap_or_clone(undone),
            state,
            reason,
            target: target.map(std::sync::Arc::unwrap_or_clone),
            keep: stack_kube::revision::adopted_in(history),
            existing: history.iter().map(|r| r.number).collect(),
            timeout: options.timeout,
            history_max: options.history_max,
        }
    }
}

/// Roll back; the number of the restored revision, `None` when the release
/// was removed.
pub async fn roll_back(session: &Session, mut undo: Undo) -> Result<Option<u32>, ReleaseError> {
    let id = undo.undone.release.clone();
    let reason = Some(undo.reason.clone());
    let Some(target) = undo.target.clone() else {
        // Removed first, marked after: a kill in between leaves it pending.
        session.reporter.event(&id, &Event::RemovingFirstInstall);
        remove_extra(session, &undo, &[]).await?;
        history::mark(session, &mut undo.undone, undo.state, reason).await?;
        return Ok(None);
    };
    let number = undo
        .existing
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(undo.undone.number)
        + 1;
    session.reporter.event(
        &id,
        &Event::RollingBack {
            target: target.number,
            revision: number,
        },
    );
    let mut restored = Revision {
        number,
        state: State::Pending,
        started: stack_kube::clock::now(),
        finished: None,
        tests_passed: None,
        message: Some(restore_message(&target, &undo)),
        ..target.clone()
    };
    // A blue/green switch back writes only what differs from the deployed
    // revision it leaves (the Services): both colours already run.
    let mut running = Vec::new();
    if let Some((objects, rollout)) = blue_green::rollback_switch(&target, &undo.undone) {
        restored.objects = objects;
        restored.rollout = Some(rollout);
        running = undo.undone.objects.parse();
    }
    // The restoring revision is pending before anything changes, and the
    // undone one is marked only once it is deployed: a kill at any point
    // leaves a pending revision for the next run to recover.
    history::write(session, &restored).await?;
    // An interrupted run applied again is no rollback: no rollback hooks.
    let rolling_back = target.number != undo.undone.number;
    if rolling_back {
        hooks::run_recorded(session, &target, "pre-rollback", undo.timeout).await?;
    }
    let bodies = restored.objects.parse();
    let objects: Vec<Object> = bodies
        .iter()
        .map(|body| Object::from_body(body, "revision"))
        .collect();
    // A blue/green release's Services switch only once the colour they
    // select is ready, and what is removed goes after the switch: at no
    // point does a Service select pods that are not ready.
    let (mut switched, mut refs): (Vec<&Object>, Vec<&Object>) = objects
        .iter()
        .filter(|object| !running.contains(&object.body))
        .partition(|object| restored.rollout.is_some() && blue_green::selects_colour(object));
    let applied = apply_all(session, &id, &mut refs, &bodies, undo.timeout, true).await?;
    if switched.is_empty() {
        remove_extra(session, &undo, &bodies).await?;
    }
    wait_ready(
        session,
        &id,
        &refs,
        &applied,
        undo.timeout,
        readiness::readiness,
    )
    .await?;
    if !switched.is_empty() {
        apply_all(session, &id, &mut switched, &bodies, undo.timeout, true).await?;
        remove_extra(session, &undo, &bodies).await?;
    }
    if rolling_back {
        hooks::run_recorded(session, &target, "post-rollback", undo.timeout).await?;
    }
    history::mark(session, &mut restored, State::Deployed, None).await?;
    if rolling_back {
        history::mark(session, &mut undo.undone, undo.state, reason).await?;
    }
    let tidy = async {
        history::supersede(session, Some(&target)).await?;
        let mut kept = undo.existing.clone();
        kept.push(undo.undone.number);
        history::trim(session, &id, &kept, number, undo.history_max).await
    };
    if let Err(error) = tidy.await {
        session.reporter.event(
            &id,
            &Event::Warning {
                message: error.to_string(),
            },
        );
    }
    Ok(Some(number))
}

fn restore_message(target: &Revision, undo: &Undo) -> String {
    if target.number == undo.undone.number {
        format!(
            "revision {} applied again after an interrupted run",
            target.number
        )
    } else {
        format!(
            "rollback to revision {} after revision {} {}",
            target.number,
            undo.undone.number,
            undo.state.as_str()
        )
    }
}

/// Delete every live object labelled for the release that `keep_objects`
/// does not have, looking in every kind and namespace the revisions name.
async fn remove_extra(
    session: &Session,
    undo: &Undo,
    keep_objects: &[serde_json::Value],
) -> Result<(), ReleaseError> {
    let id = &undo.undone.release;
    let revisions = std::iter::once(&undo.undone).chain(undo.target.as_ref());
    let selector = format!(
        "{}={}",
        stack_kube::object::RELEASE_LABEL,
        id.replacen('/', ".", 1)
    );
    let bodies: Vec<serde_json::Value> = revisions
        .flat_map(|r| r.objects.parse().into_iter().chain(r.tests.parse()))
        .collect();
    let labelled = session
        .live_around(&bodies, Some(&selector))
        .await
        .map_err(ReleaseError::request("read the release's objects"))?;
    let wanted: BTreeSet<ObjectKey> = keep_objects.iter().map(live::key_of).collect();
    let mut extra: Vec<(&ObjectKey, &serde_json::Value)> = labelled
        .iter()
        .filter(|(key, _)| {
            let name = key.to_string();
            let adopted = undo.keep.contains(&name)
                || undo.undone.adopted.contains(&name)
                || undo
                    .target
                    .as_ref()
                    .is_some_and(|t| t.adopted.contains(&name));
            !wanted.contains(key) && !adopted
        })
        .collect();
    extra.sort_by_key(|(key, _)| std::cmp::Reverse(super::order::rank(&key.kind)));
    for (key, object) in &extra {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        delete_object(
            session,
            api_version,
            &key.kind,
            key.namespace.as_deref(),
            &key.name,
        )
        .await?;
        session.reporter.event(
            id,
            &Event::Deleted {
                object: key.to_string(),
            },
        );
    }
    if keep_objects.is_empty() {
        let resources = session.resources.read().await.clone();
        let resources = &resources;
        let gone = extra.iter().map(|(key, object)| async move {
            let api_version = object["apiVersion"].as_str().unwrap_or_default();
            let api = resources.api(
                &session.client,
                api_version,
                &key.kind,
                key.namespace.as_deref(),
            );
            if let Some((api, _)) = api {
                wait::until_gone(api, key.name.clone()).await;
            }
        });
        let all = futures::future::join_all(gone);
        if tokio::time::timeout(undo.timeout, all).await.is_err() {
            return Err(ReleaseError::Deleting(
                "waiting for the release's objects to be deleted",
            ));
        }
    }
    Ok(())
}
