//! How a release's new objects take over from its old ones: the step of a
//! deploy between "revision recorded as pending" and "tests", and the
//! switch after the tests. `Rolling` (the default) applies every changed
//! object at once and lets each workload's own rolling update replace its
//! pods, then waits for readiness; it has no switch. `BlueGreen` applies
//! the new colour (everything but the Services it switches), waits for it,
//! and — once the tests passed — switches the Services' selectors to it,
//! one write each (see `blue_green`). The steps around them (hooks, tests,
//! prune, the revision's record, rollback) stay the same. Before a plan,
//! `shape` gives each such release's render the form its deployed revision
//! calls for (colours, a canary's phase).

use std::collections::BTreeSet;

use crate::execute::error::ReleaseError;
use crate::execute::event::Event;
use crate::execute::objects::{apply_all, wait_ready};
use crate::execute::readiness;
use crate::execute::{EngineError, Session};
use crate::execute::{blue_green, canary};
use crate::load::config::{BlueGreenSpec, CanarySpec, StrategySpec};
use crate::load::project::Project;
use crate::load::release::Release;
use crate::load::render::RenderedRelease;
use crate::plan::{Action, ReleasePlan};
use stack_kube::object::Object;
use stack_kube::revision::Rollout;

/// How a release is rolled out.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Strategy<'a> {
    /// Apply what changed; each workload rolls its pods over by itself.
    #[default]
    Rolling,
    /// Bring up the idle colour, then switch the Services to it.
    BlueGreen(&'a BlueGreenSpec),
    /// Bring up a canary beside the stable version, step its weight up,
    /// then promote it.
    Canary(&'a CanarySpec),
}

impl<'a> Strategy<'a> {
    /// The strategy a release declares.
    pub fn of(release: &'a Release) -> Self {
        match &release.options.strategy {
            StrategySpec::Rolling => Self::Rolling,
            StrategySpec::Canary(spec) => Self::Canary(spec),
            StrategySpec::BlueGreen(spec) => Self::BlueGreen(spec),
        }
    }

    /// Bring the release's changed objects into the cluster and, unless the
    /// run or the release says not to wait, wait until they are ready.
    pub(crate) async fn roll_out(
        self,
        session: &Session,
        release: &Release,
        rendered: &RenderedRelease,
        plan: &ReleasePlan,
    ) -> Result<(), ReleaseError> {
        let held = |object: &Object| match self {
            Self::Rolling => false,
            Self::BlueGreen(spec) => blue_green::is_switched(spec, object),
            Self::Canary(_) => canary::held(rendered, plan, object),
        };
        rolling(session, release, rendered, plan, &held).await
    }

    /// After the tests: point the switched Services at the new colour, or
    /// run a canary's steps and promote it.
    /// A canary paused by `pause: {}` says where it paused.
    pub(crate) async fn switch(
        self,
        session: &Session,
        release: &Release,
        rendered: &RenderedRelease,
        plan: &ReleasePlan,
    ) -> Result<Option<Rollout>, ReleaseError> {
        let spec = match self {
            Self::Rolling => return Ok(None),
            Self::Canary(spec) => return canary::run(session, release, spec, rendered, plan).await,
            Self::BlueGreen(spec) => spec,
        };
        let changed = changed_keys(plan);
        let mut services: Vec<&Object> = rendered
            .objects
            .iter()
            .filter(|o| blue_green::is_switched(spec, o) && changed.contains(&o.key()))
            .collect();
        if services.is_empty() {
            return Ok(None);
        }
        let previous = previous_bodies(plan);
        let names = services.iter().map(|s| s.name.clone()).collect();
        apply_all(
            session,
            &release.id,
            &mut services,
            &previous,
            release.options.timeout,
            false,
        )
        .await?;
        let colour = rendered
            .rollout
            .as_ref()
            .map(|r| r.active.clone())
            .unwrap_or_default();
        session.reporter.event(
            &release.id,
            &Event::Switched {
                services: names,
                colour,
            },
        );
        Ok(None)
    }
}

/// A copy of `object` named `<name>-<suffix>` (a strategy's colour, its
/// preview or its canary).
pub(crate) fn suffixed(object: &Object, suffix: &str) -> Object {
    let mut copy = object.clone();
    copy.name = format!("{}-{suffix}", object.name);
    copy.body["metadata"]["name"] = copy.name.clone().into();
    copy
}

/// A second Service of the same spec: the addresses the cluster assigned
/// the first (cluster IPs, node ports) are left for it to assign anew.
pub(crate) fn without_assigned_addresses(service: &mut Object) {
    if let Some(spec) = service.body["spec"].as_object_mut() {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    for port in service.body["spec"]["ports"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_object_mut)
    {
        port.remove("nodePort");
    }
}

/// The objects a plan creates or changes.
fn changed_keys(plan: &ReleasePlan) -> BTreeSet<stack_kube::object::ObjectKey> {
    plan.changes
        .iter()
        .filter(|c| c.action != Action::Delete)
        .map(|c| c.key.clone())
        .collect()
}

/// The objects of the release's deployed revision, as stored.
fn previous_bodies(plan: &ReleasePlan) -> Vec<serde_json::Value> {
    plan.deployed
        .as_ref()
        .map(|p| p.objects.parse())
        .unwrap_or_default()
}

/// Apply what changed (but the `held` objects) and wait for the rest.
async fn rolling(
    session: &Session,
    release: &Release,
    rendered: &RenderedRelease,
    plan: &ReleasePlan,
    held: &(dyn Fn(&Object) -> bool + Sync),
) -> Result<(), ReleaseError> {
    let (id, timeout) = (&release.id, release.options.timeout);
    let changed = changed_keys(plan);
    let mut objects: Vec<&Object> = rendered
        .objects
        .iter()
        .filter(|o| changed.contains(&o.key()) && !held(o))
        .collect();
    let previous = previous_bodies(plan);
    // Taking over from helm: helm's field manager owns the fields.
    let adopting = session.options.adopt_helm && plan.changes.iter().any(|c| c.helm.is_some());
    let applied = apply_all(session, id, &mut objects, &previous, timeout, adopting).await?;
    if release.options.wait && session.options.wait {
        let all: Vec<&Object> = rendered.objects.iter().filter(|o| !held(o)).collect();
        wait_ready(session, id, &all, &applied, timeout, readiness::readiness).await?;
    }
    Ok(())
}

/// Whether any of these releases has a strategy (blue/green or canary) or
/// versioned configuration, so that its render is shaped for what is
/// deployed.
pub fn any(project: &Project, rendered: &[(usize, RenderedRelease)]) -> bool {
    rendered.iter().any(|(index, release)| {
        project.releases[*index].options.strategy != StrategySpec::Rolling
            || crate::load::render::versioned::any(&release.objects)
    })
}

/// Shape every release of `rendered` that has a strategy or versioned
/// configuration for what its deployed revision left (blue/green colours,
/// a canary's phase, the configuration versions kept; see `blue_green`,
/// `canary` and `render::versioned`), and plan the shaped renders: the
/// release history is read once for both.
pub async fn shape_and_plan(
    session: &Session,
    project: &Project,
    rendered: Vec<(usize, RenderedRelease)>,
    removals: &[usize],
    prune_releases: bool,
) -> Result<(Vec<(usize, RenderedRelease)>, crate::execute::Planned), EngineError> {
    let history = crate::execute::read_history(session).await?;
    let rendered = if any(project, &rendered) {
        shape_for(project, rendered, &history.0, &session.options)?
    } else {
        rendered
    };
    let planned = crate::execute::plan_with_history(
        session,
        project,
        &rendered,
        removals,
        prune_releases,
        history,
    )
    .await?;
    Ok((rendered, planned))
}

/// Shape renders for a release history already read (the promotion gate
/// judges the render a deploy would make).
pub fn shape_for(
    project: &Project,
    mut rendered: Vec<(usize, RenderedRelease)>,
    history: &crate::cluster::live::History,
    options: &crate::execute::ExecutionOptions,
) -> Result<Vec<(usize, RenderedRelease)>, EngineError> {
    let now = stack_kube::clock::now();
    let cleanup = options.scale_away_previous;
    let mut changed = Vec::new();
    for (index, release) in &mut rendered {
        let deployed = history
            .get(&release.id)
            .and_then(|revisions| crate::plan::last_deployed(revisions));
        if let Some(deployed) = deployed
            && crate::load::render::versioned::any(&release.objects)
        {
            let kept =
                crate::load::render::versioned::kept(&release.objects, &deployed.objects.parse());
            release.objects.extend(kept);
        }
        if let StrategySpec::Canary(spec) = &project.releases[*index].options.strategy {
            *release = crate::execute::canary::shape_release(
                spec,
                release,
                deployed.map(AsRef::as_ref),
                &options.promotion,
            );
            continue;
        }
        let Some(spec) = blue_green::spec_of(project, *index) else {
            continue;
        };
        let when = blue_green::When { now: &now, cleanup };
        let shaped = blue_green::shape_release(spec, release, deployed.map(AsRef::as_ref), &when);
        let active = |rollout: Option<&Rollout>| rollout.map(|r| r.active.clone());
        let before = active(deployed.and_then(|r| r.rollout.as_ref()));
        if cleanup && before != active(shaped.rollout.as_ref()) {
            changed.push(release.id.clone());
        }
        *release = shaped;
    }
    if !changed.is_empty() {
        return Err(EngineError::NotSteady { releases: changed });
    }
    Ok(rendered)
}

/// Whether any of these releases is a canary (whose paused state `stack
/// diff` previews the promotion of).
pub fn any_canary(project: &Project, rendered: &[(usize, RenderedRelease)]) -> bool {
    rendered.iter().any(|(index, _)| {
        matches!(
            project.releases[*index].options.strategy,
            StrategySpec::Canary(_)
        )
    })
}

/// What `stack rollout promote --full` would change of the canaries that
/// `shaped` finds paused (those without variants, whose promotion needs no
/// winner named): their renders (`unshaped`) shaped for that promotion
/// and planned with the history the run's plan read (`live`). `None` when
/// no canary is paused.
pub async fn promotion_preview(
    session: &Session,
    project: &Project,
    unshaped: Vec<(usize, RenderedRelease)>,
    shaped: &[(usize, RenderedRelease)],
    live: &crate::cluster::live::LiveState,
) -> Result<Option<crate::execute::Planned>, EngineError> {
    let paused: BTreeSet<usize> = shaped
        .iter()
        .filter(|(index, release)| {
            let paused = release.rollout.as_ref().is_some_and(|r| r.step.is_some());
            let plain = matches!(
                &project.releases[*index].options.strategy,
                StrategySpec::Canary(spec) if spec.variants.is_empty()
            );
            paused && plain
        })
        .map(|(index, _)| *index)
        .collect();
    if paused.is_empty() {
        return Ok(None);
    }
    let selected: Vec<(usize, RenderedRelease)> = unshaped
        .into_iter()
        .filter(|(index, _)| paused.contains(index))
        .collect();
    let options = crate::execute::ExecutionOptions {
        promotion: crate::execute::Promotion::Full,
        ..session.options.clone()
    };
    let promoted = shape_for(project, selected, &live.revisions, &options)?;
    let history = (live.revisions.clone(), live.namespaces.clone());
    Ok(Some(
        crate::execute::plan_with_history(session, project, &promoted, &[], false, history).await?,
    ))
}
