//! Planning a run against the cluster: read the live state the selection
//! touches (one LIST per kind and namespace), compare each release with its
//! own live objects, refuse kinds the cluster does not serve and objects it
//! would refuse, and confirm each change with a server-side dry run.

use std::collections::{BTreeSet, HashMap, HashSet};

use futures::StreamExt as _;
use kube::api::{Patch, PatchParams};
use serde_json::Value;

use crate::cluster::live::{self, LiveObject, LiveState};
use crate::cluster::resources::Resources;
use crate::execute::{EngineError, Session};
use crate::load::project::Project;
use crate::load::render::RenderedRelease;
use crate::plan::diff::{self, Comparison, FIELD_MANAGER};
use crate::plan::{self, Action, Intent, Plan};
use stack_kube::object::ObjectKey;

/// A plan and the live state it was made from.
pub struct Planned {
    pub plan: Plan,
    pub live: LiveState,
    /// Releases with revisions in the cluster that the stack no longer has.
    pub orphans: Vec<String>,
}

/// Fetch the live state the selection touches and compare it with the
/// render; changes found locally are confirmed with a server-side dry run.
pub async fn plan(
    session: &Session,
    project: &Project,
    rendered: &[(usize, RenderedRelease)],
    removals: &[usize],
    prune_releases: bool,
) -> Result<Planned, EngineError> {
    let history = read_history(session).await?;
    plan_with_history(
        session,
        project,
        rendered,
        removals,
        prune_releases,
        history,
    )
    .await
}

/// The release history and the namespaces that exist (one LIST each).
pub async fn read_history(
    session: &Session,
) -> Result<(live::History, BTreeSet<String>), EngineError> {
    live::history(&session.client)
        .await
        .map_err(EngineError::api("cannot read release history"))
}

/// [`plan`] with the release history already read (a run that shaped its
/// renders for it plans with the same one).
pub async fn plan_with_history(
    session: &Session,
    project: &Project,
    rendered: &[(usize, RenderedRelease)],
    removals: &[usize],
    prune_releases: bool,
    (history, namespaces): (live::History, BTreeSet<String>),
) -> Result<Planned, EngineError> {
    session
        .namespaces
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .extend(namespaces.iter().cloned());
    let orphans = orphans(project, &history, &session.stack_name);
    let removed_ids: Vec<String> = removals
        .iter()
        .map(|&i| project.releases[i].id.clone())
        .chain(orphans.iter().filter(|_| prune_releases).cloned())
        .collect();
    let scopes = scopes(project, rendered, &removed_ids, &history);
    let resources = session.resources.read().await.clone();
    let (objects, unserved, requests) = live::fetch(&session.client, &resources, scopes)
        .await
        .map_err(EngineError::api("cannot read live objects"))?;
    unknown_kinds(project, rendered, &unserved, &resources)?;
    let owned = plan::Owned::index(&objects);
    let mut releases = Vec::new();
    for &index in removals {
        let id = &project.releases[index].id;
        releases.push(plan::plan_removal(Some(index), id, &owned, history.get(id)));
    }
    if prune_releases {
        for id in &orphans {
            releases.push(plan::plan_removal(None, id, &owned, history.get(id)));
        }
    }
    // Each release is compared on its own: on every core.
    releases.extend(crate::parallel::map(rendered, |(index, release)| {
        let id = &project.releases[*index].id;
        plan::plan_release(
            *index,
            &project.releases[*index],
            release,
            &objects,
            &owned,
            &unserved,
            history.get(id),
        )
    }));
    drop(owned);
    let mut planned = Planned {
        plan: Plan { releases },
        live: LiveState {
            objects,
            unserved,
            namespaces,
            revisions: history,
            requests: requests + 2,
        },
        orphans: if prune_releases { Vec::new() } else { orphans },
    };
    confirm(session, project, rendered, &mut planned).await?;
    Ok(planned)
}

/// Releases with revisions of this stack in the cluster that the stack no
/// longer has.
fn orphans(project: &Project, history: &live::History, stack: &str) -> Vec<String> {
    let known: BTreeSet<&str> = project.releases.iter().map(|r| r.id.as_str()).collect();
    history
        .iter()
        .filter(|(id, revisions)| {
            !known.contains(id.as_str()) && revisions.last().is_some_and(|r| r.stack == stack)
        })
        .map(|(id, _)| id.clone())
        .collect()
}

/// Every kind and namespace the run's objects are in, now and in the last
/// revision of each release it applies or removes: what to LIST.
fn scopes(
    project: &Project,
    rendered: &[(usize, RenderedRelease)],
    removed_ids: &[String],
    history: &live::History,
) -> BTreeSet<live::Scope> {
    let mut scopes = BTreeSet::new();
    for (index, release) in rendered {
        scopes.extend(release.objects.iter().map(|o| live::scope_of(&o.body)));
        if let Some(previous) = history
            .get(&project.releases[*index].id)
            .and_then(|h| h.last())
        {
            scopes.extend(previous.objects.scopes());
        }
    }
    for id in removed_ids {
        if let Some(previous) = history.get(id).and_then(|h| h.last()) {
            scopes.extend(previous.objects.scopes());
        }
    }
    scopes
}

/// Refuse objects whose kind the cluster does not serve and no CRD among
/// the rendered objects defines: applying them would only wait out the
/// release's timeout, after other releases were changed.
fn unknown_kinds(
    project: &Project,
    rendered: &[(usize, RenderedRelease)],
    unserved: &BTreeSet<(String, String)>,
    resources: &Resources,
) -> Result<(), EngineError> {
    if unserved.is_empty() {
        return Ok(());
    }
    let defined: BTreeSet<(String, String)> = rendered
        .iter()
        .flat_map(|(_, r)| r.objects.iter().chain(&r.tests))
        .filter(|o| o.kind == "CustomResourceDefinition")
        .flat_map(|crd| {
            let spec = &crd.body["spec"];
            let (group, kind) = (
                spec["group"].as_str().unwrap_or_default(),
                spec["names"]["kind"].as_str().unwrap_or_default(),
            );
            spec["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |v| {
                    Some((format!("{group}/{}", v["name"].as_str()?), kind.to_string()))
                })
        })
        .collect();
    let mut objects = Vec::new();
    for (index, release) in rendered {
        for object in release.objects.iter().chain(&release.tests) {
            let kind = (object.api_version.clone(), object.kind.clone());
            if !unserved.contains(&kind) || defined.contains(&kind) {
                continue;
            }
            let mut line = format!(
                "{}/{} ({}) of {}, from {}",
                object.kind,
                object.name,
                object.api_version,
                project.releases[*index].id,
                object.template
            );
            if let Some((version, kind)) = resources.nearest(&object.api_version, &object.kind) {
                line.push_str(&format!("; did you mean `{kind}` ({version})?"));
            }
            objects.push(line);
        }
    }
    if objects.is_empty() {
        Ok(())
    } else {
        Err(EngineError::UnknownKinds { objects })
    }
}

/// Ask the server (dry run) about every update the local comparison found,
/// so a defaulting quirk never shows as a change, and about every object to
/// create in a namespace that exists: an object the server would refuse
/// (an invalid name, label or field, an immutable field changed) stops the
/// run here, before its first write, with the server's own words.
async fn confirm(
    session: &Session,
    project: &Project,
    rendered: &[(usize, RenderedRelease)],
    planned: &mut Planned,
) -> Result<(), EngineError> {
    refuse_invalid_creates(project, rendered, planned)?;
    let resources = session.resources.read().await.clone();
    let checks = dry_runs(session, &resources, rendered, planned);
    let verdicts: Vec<_> = futures::stream::iter(checks)
        .buffer_unordered(16)
        .collect()
        .await;
    planned.live.requests += verdicts.len();
    take_verdicts(planned, verdicts)?;
    mark_up_to_date(rendered, planned);
    Ok(())
}

/// Objects to create in namespaces this run creates cannot be dry-run (the
/// namespace is not there yet): they are checked against Kubernetes' rules
/// here instead.
fn refuse_invalid_creates(
    project: &Project,
    rendered: &[(usize, RenderedRelease)],
    planned: &Planned,
) -> Result<(), EngineError> {
    let to_create_in_new_namespaces: HashSet<ObjectKey> = planned
        .plan
        .releases
        .iter()
        .flat_map(|release| &release.changes)
        .filter(|change| {
            change.action == Action::Create
                && !change.awaits_kind
                && change
                    .key
                    .namespace
                    .as_ref()
                    .is_some_and(|n| !planned.live.namespaces.contains(n))
        })
        .map(|change| change.key.clone())
        .collect();
    let invalid = crate::load::validate::refusals(project, rendered, |object| {
        to_create_in_new_namespaces.contains(&object.key())
    });
    if !invalid.is_empty() {
        return Err(EngineError::Invalid { objects: invalid });
    }
    Ok(())
}

/// What the server says of one change: `Ok(None)` nothing to add, a
/// comparison of its dry run, or its refusal.
type Verdict = (usize, usize, Result<Option<Comparison>, String>);

/// A server-side dry run of every update, and of every create in a
/// namespace that exists.
fn dry_runs<'a>(
    session: &'a Session,
    resources: &'a Resources,
    rendered: &'a [(usize, RenderedRelease)],
    planned: &'a Planned,
) -> Vec<impl std::future::Future<Output = Verdict> + 'a> {
    let bodies: HashMap<ObjectKey, &Value> = rendered
        .iter()
        .flat_map(|(_, r)| r.objects.iter().map(|o| (o.key(), &o.body)))
        .collect();
    let mut checks = Vec::new();
    for (release_index, release) in planned.plan.releases.iter().enumerate() {
        for (change_index, change) in release.changes.iter().enumerate() {
            let in_existing_namespace = change
                .key
                .namespace
                .as_ref()
                .is_none_or(|n| planned.live.namespaces.contains(n));
            let live = match change.action {
                Action::Update => planned.live.objects.get(&change.key).map(LiveObject::value),
                Action::Create if in_existing_namespace && !change.awaits_kind => Some(Value::Null),
                _ => None,
            };
            let (Some(desired), Some(live)) = (bodies.get(&change.key), live) else {
                continue;
            };
            let creates = change.action == Action::Create;
            let Some((api, _)) = resources.api(
                &session.client,
                &change.api_version,
                &change.key.kind,
                change.key.namespace.as_deref(),
            ) else {
                continue;
            };
            let desired = (*desired).clone();
            let name = change.key.name.clone();
            checks.push(async move {
                let params = PatchParams::apply(FIELD_MANAGER).dry_run();
                let patch = Patch::Apply(&desired);
                let result =
                    crate::cluster::retry::retry(|| api.patch(&name, &params, &patch)).await;
                let verdict = match result {
                    Ok(_) if creates => Ok(None),
                    Ok(object) => {
                        let dry_run = serde_json::to_value(object).unwrap_or_default();
                        Ok(Some(diff::compare_dry_run(&desired, &dry_run, &live)))
                    }
                    Err(kube::Error::Api(status)) if matches!(status.code, 400 | 422) => {
                        Err(status.message)
                    }
                    Err(_) => Ok(None),
                };
                (release_index, change_index, verdict)
            });
        }
    }
    checks
}

/// Drop the changes the server says are none; refuse the run if it
/// refuses any.
fn take_verdicts(planned: &mut Planned, verdicts: Vec<Verdict>) -> Result<(), EngineError> {
    let mut drop_list: Vec<(usize, usize)> = Vec::new();
    let mut refused = Vec::new();
    for (release_index, change_index, verdict) in verdicts {
        match verdict {
            Ok(Some(Comparison::Unchanged)) => drop_list.push((release_index, change_index)),
            Ok(Some(comparison)) => {
                planned.plan.releases[release_index].changes[change_index].comparison = comparison;
            }
            Ok(None) => {}
            Err(message) => {
                let release = &planned.plan.releases[release_index];
                let change = &release.changes[change_index];
                refused.push(format!(
                    "{} {}/{} of {}: {message}",
                    if change.action == Action::Create {
                        "creating"
                    } else {
                        "changing"
                    },
                    change.key.kind,
                    change.key.name,
                    release.id
                ));
            }
        }
    }
    if !refused.is_empty() {
        refused.sort();
        return Err(EngineError::Refused { objects: refused });
    }
    drop_list.sort_unstable_by(|a, b| b.cmp(a));
    for (release_index, change_index) in drop_list {
        let release = &mut planned.plan.releases[release_index];
        release.changes.remove(change_index);
        release.unchanged += 1;
    }
    Ok(())
}

/// A release with no change whose last revision is deployed and rendered
/// the same is up to date: nothing to write, not even a revision.
fn mark_up_to_date(rendered: &[(usize, RenderedRelease)], planned: &mut Planned) {
    let by_index: HashMap<usize, &RenderedRelease> =
        rendered.iter().map(|(i, r)| (*i, r)).collect();
    for release in &mut planned.plan.releases {
        if release.intent == Intent::Apply && release.changes.is_empty() {
            let rendered = release.index.and_then(|i| by_index.get(&i));
            if let (Some(rendered), Some(previous)) = (rendered, &release.previous) {
                release.up_to_date = previous.state == stack_kube::revision::State::Deployed
                    && plan::renders_unchanged(previous, rendered);
            }
        }
    }
}
