//! Execution: plan against the live cluster, then apply releases as a DAG —
//! each starts as soon as all its needs succeeded, at most `concurrency` at a
//! time — and destroy them in reverse. The only module besides `cluster`
//! that does I/O.

pub mod apply;
pub mod order;
pub mod report;
pub mod wait;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use kube::api::{Patch, PatchParams};
use serde_json::Value;
use tokio::sync::RwLock;

use crate::cluster::live::{self, LiveState};
use crate::cluster::resources::Resources;
use crate::diff::{self, Comparison, FIELD_MANAGER};
use crate::mask::Masker;
use crate::object::ObjectKey;
use crate::plan::{self, Action, Intent, Plan};
use crate::project::Project;
use crate::render::RenderedRelease;

pub use report::Reporter;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{context}: {source}")]
    Api {
        context: String,
        source: kube::Error,
    },
}

impl EngineError {
    pub fn api(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let context = context.into();
        move |source| Self::Api { context, source }
    }
}

/// Everything a run shares.
pub struct Session {
    pub client: kube::Client,
    pub resources: RwLock<Resources>,
    pub masker: Masker,
    pub reporter: Reporter,
    /// Recorded on revisions, to tell this stack's releases from others'.
    pub stack_name: String,
    pub commit: Option<String>,
    /// Namespaces known to exist.
    pub namespaces: Mutex<BTreeSet<String>>,
    pub force_conflicts: bool,
    pub wait: bool,
}

impl Session {
    pub async fn new(
        client: kube::Client,
        masker: Masker,
        reporter: Reporter,
        stack_name: String,
        commit: Option<String>,
    ) -> Result<Self, EngineError> {
        let resources = Resources::discover(&client)
            .await
            .map_err(EngineError::api("discovery failed"))?;
        Ok(Self {
            client,
            resources: RwLock::new(resources),
            masker,
            reporter,
            stack_name,
            commit,
            namespaces: Mutex::new(BTreeSet::new()),
            force_conflicts: false,
            wait: true,
        })
    }
}

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
    let (history, namespaces) = live::history(&session.client)
        .await
        .map_err(EngineError::api("cannot read release history"))?;
    session
        .namespaces
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .extend(namespaces.iter().cloned());
    let known: BTreeSet<&str> = project.releases.iter().map(|r| r.id.as_str()).collect();
    let orphans: Vec<String> = history
        .iter()
        .filter(|(id, revisions)| {
            !known.contains(id.as_str())
                && revisions
                    .last()
                    .is_some_and(|r| r.stack == session.stack_name)
        })
        .map(|(id, _)| id.clone())
        .collect();
    let mut scopes = BTreeSet::new();
    let mut scope = |object: &Value| {
        scopes.insert(live::scope_of(object));
    };
    for (index, release) in rendered {
        release.objects.iter().for_each(|o| scope(&o.body));
        if let Some(previous) = history
            .get(&project.releases[*index].id)
            .and_then(|h| h.last())
        {
            previous.objects.iter().for_each(&mut scope);
        }
    }
    let removed_ids: Vec<String> = removals
        .iter()
        .map(|&i| project.releases[i].id.clone())
        .chain(orphans.iter().filter(|_| prune_releases).cloned())
        .collect();
    for id in &removed_ids {
        if let Some(previous) = history.get(id).and_then(|h| h.last()) {
            previous.objects.iter().for_each(&mut scope);
        }
    }
    let resources = session.resources.read().await.clone();
    let (objects, unserved, requests) = live::fetch(&session.client, &resources, scopes)
        .await
        .map_err(EngineError::api("cannot read live objects"))?;
    let mut releases = Vec::new();
    for &index in removals {
        let id = &project.releases[index].id;
        releases.push(plan::plan_removal(
            Some(index),
            id,
            &objects,
            history.get(id),
        ));
    }
    if prune_releases {
        for id in &orphans {
            releases.push(plan::plan_removal(None, id, &objects, history.get(id)));
        }
    }
    for (index, release) in rendered {
        let id = &project.releases[*index].id;
        releases.push(plan::plan_release(
            *index,
            &project.releases[*index],
            release,
            &objects,
            &unserved,
            history.get(id),
        ));
    }
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
    confirm(session, project, rendered, &mut planned).await;
    Ok(planned)
}

/// Ask the server (dry run) about every update the local comparison found:
/// a defaulting quirk never shows as a change.
async fn confirm(
    session: &Session,
    project: &Project,
    rendered: &[(usize, RenderedRelease)],
    planned: &mut Planned,
) {
    let resources = session.resources.read().await.clone();
    let bodies: HashMap<ObjectKey, &Value> = rendered
        .iter()
        .flat_map(|(_, r)| r.objects.iter().map(|o| (o.key(), &o.body)))
        .collect();
    let _ = project;
    let mut checks = Vec::new();
    for (release_index, release) in planned.plan.releases.iter().enumerate() {
        for (change_index, change) in release.changes.iter().enumerate() {
            if change.action != Action::Update {
                continue;
            }
            let (Some(desired), Some(live)) = (
                bodies.get(&change.key),
                planned.live.objects.get(&change.key),
            ) else {
                continue;
            };
            let Some((api, _)) = resources.api(
                &session.client,
                &change.api_version,
                &change.key.kind,
                change.key.namespace.as_deref(),
            ) else {
                continue;
            };
            let (desired, live) = ((*desired).clone(), live.clone());
            let name = change.key.name.clone();
            checks.push(async move {
                let params = PatchParams::apply(FIELD_MANAGER).dry_run();
                let patch = Patch::Apply(&desired);
                let result =
                    crate::cluster::retry::retry(|| api.patch(&name, &params, &patch)).await;
                let verdict = result.ok().map(|object| {
                    let dry_run = serde_json::to_value(object).unwrap_or_default();
                    diff::compare_dry_run(&desired, &dry_run, &live)
                });
                (release_index, change_index, verdict)
            });
        }
    }
    let verdicts: Vec<_> = futures::stream::iter(checks)
        .buffer_unordered(16)
        .collect()
        .await;
    planned.live.requests += verdicts.len();
    let mut drop_list: Vec<(usize, usize)> = Vec::new();
    for (release_index, change_index, verdict) in verdicts {
        match verdict {
            Some(Comparison::Unchanged) => drop_list.push((release_index, change_index)),
            Some(comparison) => {
                planned.plan.releases[release_index].changes[change_index].comparison = comparison;
            }
            None => {}
        }
    }
    drop_list.sort_unstable_by(|a, b| b.cmp(a));
    for (release_index, change_index) in drop_list {
        let release = &mut planned.plan.releases[release_index];
        release.changes.remove(change_index);
        release.unchanged += 1;
    }
    for release in &mut planned.plan.releases {
        if release.intent == Intent::Apply && release.changes.is_empty() {
            let rendered = rendered
                .iter()
                .find(|(i, _)| Some(*i) == release.index)
                .map(|(_, r)| r);
            if let (Some(rendered), Some(previous)) = (rendered, &release.previous) {
                let bodies: Vec<Value> = rendered.objects.iter().map(|o| o.body.clone()).collect();
                release.up_to_date = previous.state == crate::revision::State::Deployed
                    && previous.values_digest == crate::revision::values_digest(&rendered.values)
                    && previous.objects == bodies;
            }
        }
    }
}

/// How one release ended in a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Unchanged,
    Deployed { revision: u32 },
    Removed,
    Failed { error: String },
    Skipped { because: String },
}

#[derive(Debug, Clone)]
pub struct Finished {
    pub id: String,
    pub outcome: Outcome,
    pub duration: Duration,
    pub changes: (usize, usize, usize),
}

/// Apply a plan: removals first (reverse graph order), then releases as a
/// DAG. Returns every release's outcome in the order they finished.
pub async fn apply(
    session: Arc<Session>,
    project: &Project,
    rendered: Vec<(usize, RenderedRelease)>,
    plan: Plan,
    concurrency: usize,
) -> Vec<Finished> {
    let mut finished = Vec::new();
    let mut removals: Vec<plan::ReleasePlan> = plan
        .releases
        .iter()
        .filter(|r| r.intent == Intent::Remove)
        .cloned()
        .collect();
    removals.sort_by_key(|r| {
        std::cmp::Reverse(
            r.index
                .and_then(|i| project.graph.order.iter().position(|&o| o == i)),
        )
    });
    for removal in removals {
        let start = Instant::now();
        let counts = removal.counts();
        let outcome = match apply::remove_release(&session, &removal).await {
            Ok(()) => Outcome::Removed,
            Err(error) => Outcome::Failed { error },
        };
        finished.push(Finished {
            id: removal.id.clone(),
            outcome,
            duration: start.elapsed(),
            changes: counts,
        });
    }
    let rendered: HashMap<usize, RenderedRelease> = rendered.into_iter().collect();
    let plans: HashMap<usize, plan::ReleasePlan> = plan
        .releases
        .into_iter()
        .filter(|r| r.intent == Intent::Apply)
        .filter_map(|r| r.index.map(|i| (i, r)))
        .collect();
    let mut state: HashMap<usize, Option<bool>> = plans.keys().map(|&i| (i, None)).collect();
    let mut running = tokio::task::JoinSet::new();
    let mut started: BTreeSet<usize> = BTreeSet::new();
    loop {
        let mut progressed = true;
        while progressed {
            progressed = false;
            for &index in &project.graph.order {
                if !plans.contains_key(&index) || started.contains(&index) {
                    continue;
                }
                let needs: Vec<usize> = project.graph.needs[index]
                    .iter()
                    .copied()
                    .filter(|n| plans.contains_key(n))
                    .collect();
                if let Some(&failed) = needs.iter().find(|n| state[n] == Some(false)) {
                    started.insert(index);
                    state.insert(index, Some(false));
                    let because =
                        format!("its need {} did not succeed", project.releases[failed].id);
                    session
                        .reporter
                        .line(&project.releases[index].id, &format!("skipped: {because}"));
                    finished.push(Finished {
                        id: project.releases[index].id.clone(),
                        outcome: Outcome::Skipped { because },
                        duration: Duration::ZERO,
                        changes: (0, 0, 0),
                    });
                    progressed = true;
                    continue;
                }
                if running.len() >= concurrency.max(1)
                    || !needs.iter().all(|n| state[n] == Some(true))
                {
                    continue;
                }
                started.insert(index);
                let (session, release) = (Arc::clone(&session), project.releases[index].clone());
                let (rendered, release_plan) = (rendered[&index].clone(), plans[&index].clone());
                running.spawn(async move {
                    let start = Instant::now();
                    let counts = release_plan.counts();
                    let outcome =
                        apply::apply_release(&session, &release, &rendered, &release_plan).await;
                    (
                        index,
                        Finished {
                            id: release.id.clone(),
                            outcome,
                            duration: start.elapsed(),
                            changes: counts,
                        },
                    )
                });
                progressed = true;
            }
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        if let Ok((index, done)) = joined {
            let success = !matches!(
                done.outcome,
                Outcome::Failed { .. } | Outcome::Skipped { .. }
            );
            state.insert(index, Some(success));
            finished.push(done);
        }
    }
    finished
}
