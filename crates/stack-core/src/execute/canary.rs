//! Canary releases (`strategy: {canary: …}`) without a controller: a
//! canary copy of the release's new version takes a growing share of its
//! Ingress's traffic (ingress-nginx's `canary-weight`), step by step, then
//! the stable version takes the new spec and the copy goes.
//!
//! The release's pods are told apart by `stack.dev/track`: its Deployments'
//! pod templates are `stable`, and the Services its Ingress routes to
//! select `stable` pods only. When a render differs from the deployed
//! revision, the plan's desired set is the new version's stable objects
//! (held back: the stable version keeps running as it is) plus the canary:
//! `<deployment>-canary` (pods `track: canary`), `<service>-canary`
//! selecting them, and `<ingress>-canary` annotated
//! `nginx.ingress.kubernetes.io/canary: "true"` at weight 0 (and
//! `canary-by-header` when `header` is set), every copy labelled `track:
//! canary`. The roll-out applies the canary (and stable objects that do not
//! exist yet, such as a new ConfigMap), waits for it; the steps set the
//! weight, pause, and run analyses; promotion applies the held stable
//! objects, waits for them, then deletes the canary (Ingress first). A
//! failure anywhere before promotion is rolled back like any other: the
//! revision restored has no canary objects, so they are removed, and the
//! stable version was never touched. Revisions never hold canary objects.

use std::time::Duration;

use serde_json::Value;

use crate::execute::error::ReleaseError;
use crate::execute::event::Event;
use crate::execute::objects::{apply_all, delete_object, wait_ready};
use crate::execute::strategy::{suffixed, without_assigned_addresses};
use crate::execute::{Session, readiness, test_jobs};
use crate::load::config::{Analysis, CanarySpec, CanaryStep};
use crate::load::release::Release;
use crate::load::render::RenderedRelease;
use crate::plan::{Action, ReleasePlan};
use stack_kube::object::Object;
use stack_kube::revision::{Revision, Rollout};

/// The label that tells a release's stable pods from its canary's.
pub const TRACK_LABEL: &str = "stack.dev/track";

const CANARY_ANNOTATION: &str = "nginx.ingress.kubernetes.io/canary";
const WEIGHT_ANNOTATION: &str = "nginx.ingress.kubernetes.io/canary-weight";
const HEADER_ANNOTATION: &str = "nginx.ingress.kubernetes.io/canary-by-header";

/// Whether `object` is one of a canary's copies.
pub fn is_canary(object: &Object) -> bool {
    object.body["metadata"]["labels"][TRACK_LABEL] == "canary"
}

/// The Services `ingress` routes to.
fn backends(ingress: &Value) -> Vec<String> {
    let mut names: Vec<String> = ingress["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rule| rule["http"]["paths"].as_array().into_iter().flatten())
        .filter_map(|path| path["backend"]["service"]["name"].as_str())
        .chain(ingress["spec"]["defaultBackend"]["service"]["name"].as_str())
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The render's stable version: Deployments' pods and the routed
/// Services' selectors `track: stable`.
fn stable(spec: &CanarySpec, rendered: &RenderedRelease) -> RenderedRelease {
    let routed = rendered
        .objects
        .iter()
        .find(|o| o.kind == "Ingress" && o.name == spec.ingress)
        .map(|ingress| backends(&ingress.body))
        .unwrap_or_default();
    let mut shaped = rendered.clone();
    for object in &mut shaped.objects {
        if object.kind == "Deployment" {
            object.body["spec"]["template"]["metadata"]["labels"][TRACK_LABEL] = "stable".into();
        } else if object.kind == "Service" && routed.contains(&object.name) {
            object.body["spec"]["selector"][TRACK_LABEL] = "stable".into();
        }
    }
    shaped
}

/// The canary copies of a stable render, at weight 0.
fn copies(spec: &CanarySpec, stable: &RenderedRelease) -> Vec<Object> {
    let Some(ingress) = stable
        .objects
        .iter()
        .find(|o| o.kind == "Ingress" && o.name == spec.ingress)
    else {
        return Vec::new();
    };
    let routed = backends(&ingress.body);
    let mut out = Vec::new();
    for object in &stable.objects {
        if object.kind == "Deployment" {
            let mut copy = renamed(object);
            let spec = &mut copy.body["spec"];
            spec["template"]["metadata"]["labels"][TRACK_LABEL] = "canary".into();
            spec["selector"]["matchLabels"][TRACK_LABEL] = "canary".into();
            out.push(copy);
        } else if object.kind == "Service" && routed.contains(&object.name) {
            let mut copy = renamed(object);
            copy.body["spec"]["selector"][TRACK_LABEL] = "canary".into();
            without_assigned_addresses(&mut copy);
            out.push(copy);
        }
    }
    let mut copy = renamed(ingress);
    let annotations = &mut copy.body["metadata"]["annotations"];
    annotations[CANARY_ANNOTATION] = "true".into();
    annotations[WEIGHT_ANNOTATION] = "0".into();
    if let Some(header) = &spec.header {
        annotations[HEADER_ANNOTATION] = header.clone().into();
    }
    for path in copy.body["spec"]["rules"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .flat_map(|rule| rule["http"]["paths"].as_array_mut().into_iter().flatten())
    {
        let name = &mut path["backend"]["service"]["name"];
        if let Some(service) = name.as_str().map(str::to_string) {
            *name = format!("{service}-canary").into();
        }
    }
    out.push(copy);
    out
}

/// `<name>-canary`, labelled `track: canary`.
fn renamed(object: &Object) -> Object {
    let mut copy = suffixed(object, "canary");
    copy.body["metadata"]["labels"][TRACK_LABEL] = "canary".into();
    copy
}

/// One release's render shaped for its deployed revision: the stable
/// version alone when nothing changed (or on a first deploy), else the
/// new stable version (held) and the canary — at weight 0 from its first
/// step, or, for a canary paused by `pause: {}` whose copies are still
/// what the stack renders, as it runs (nothing to do) unless `promote`
/// (`stack rollout promote`) goes on from where it paused.
pub(crate) fn shape_release(
    spec: &CanarySpec,
    rendered: &RenderedRelease,
    deployed: Option<&Revision>,
    promote: bool,
) -> RenderedRelease {
    let stable = stable(spec, rendered);
    let Some(deployed) = deployed else {
        return stable;
    };
    let stored = deployed.objects.parse();
    if crate::plan::objects_unchanged(&stored, &stable.objects) {
        return stable;
    }
    let mut canary = copies(spec, &stable);
    let paused = deployed.rollout.as_ref().filter(|r| r.step.is_some());
    if let Some(progress) = paused {
        set_weight(&mut canary, progress.weight.unwrap_or(0));
        let running: Vec<&Value> = stored
            .iter()
            .filter(|body| body["metadata"]["labels"][TRACK_LABEL] == "canary")
            .collect();
        let same =
            running.len() == canary.len() && canary.iter().all(|c| running.contains(&&c.body));
        if same && !promote {
            return RenderedRelease {
                objects: stored
                    .iter()
                    .map(|body| Object::from_body(body, "the paused canary"))
                    .collect(),
                rollout: Some(progress.clone()),
                ..crate::execute::blue_green::without_objects(rendered)
            };
        }
        if same {
            let mut shaped = stable;
            shaped.objects.extend(canary);
            shaped.rollout = Some(progress.clone());
            return shaped;
        }
        set_weight(&mut canary, 0);
    }
    let mut shaped = stable;
    shaped.objects.extend(canary);
    shaped
}

/// Set the canary Ingress's weight among `objects`.
fn set_weight(objects: &mut [Object], weight: u8) {
    for object in objects
        .iter_mut()
        .filter(|o| o.kind == "Ingress" && is_canary(o))
    {
        object.body["metadata"]["annotations"][WEIGHT_ANNOTATION] = weight.to_string().into();
    }
}

/// What runs while a canary is paused, to be its revision's objects: the
/// stable objects held back as the deployed revision has them, the rest
/// (the canary at `weight`, stable objects created with it) as rendered.
pub(crate) fn paused_objects(
    rendered: &RenderedRelease,
    plan: &ReleasePlan,
    weight: u8,
) -> stack_kube::revision::Stored {
    let deployed = plan
        .deployed
        .as_ref()
        .map(|p| p.objects.parse())
        .unwrap_or_default();
    let mut objects: Vec<Object> = Vec::with_capacity(rendered.objects.len());
    for object in &rendered.objects {
        if held(rendered, plan, object) {
            if let Some(body) = deployed
                .iter()
                .find(|body| crate::cluster::live::key_of(body) == object.key())
            {
                objects.push(Object::from_body(body, "the stable version"));
            }
        } else {
            objects.push(object.clone());
        }
    }
    set_weight(&mut objects, weight);
    stack_kube::revision::Stored::new(objects.iter().map(|o| &o.body))
}

/// Whether a plan's release is in its canary phase (it has canary objects).
fn canary_phase(rendered: &RenderedRelease) -> bool {
    rendered.objects.iter().any(is_canary)
}

/// What the roll-out holds back during a canary: stable objects that
/// exist and change (the stable version keeps running as it is).
pub(crate) fn held(rendered: &RenderedRelease, plan: &ReleasePlan, object: &Object) -> bool {
    canary_phase(rendered)
        && !is_canary(object)
        && plan
            .changes
            .iter()
            .any(|c| c.action == Action::Update && c.key == object.key())
}

/// After the roll-out and the release's tests: the steps (from where a
/// paused canary stopped), then promotion; or, at `pause: {}`, where the
/// canary paused.
pub(crate) async fn run(
    session: &Session,
    release: &Release,
    spec: &CanarySpec,
    rendered: &RenderedRelease,
    plan: &ReleasePlan,
) -> Result<Option<Rollout>, ReleaseError> {
    if !canary_phase(rendered) {
        return Ok(None);
    }
    let resumed = rendered.rollout.as_ref();
    let start = resumed.and_then(|r| r.step).unwrap_or(0) as usize;
    let mut weight = resumed.and_then(|r| r.weight).unwrap_or(0);
    let (id, timeout) = (&release.id, release.options.timeout);
    let previous = plan
        .deployed
        .as_ref()
        .map(|p| p.objects.parse())
        .unwrap_or_default();
    let ingress_name = format!("{}-canary", spec.ingress);
    for (number, step) in spec.steps.iter().enumerate().skip(start) {
        let say = |text: String| {
            session.reporter.event(
                id,
                &Event::CanaryStep {
                    step: number + 1,
                    what: text,
                },
            );
        };
        match step {
            CanaryStep::SetWeight(to) => {
                weight = *to;
                say(format!("canary weight {weight}%"));
                let mut ingress = rendered
                    .objects
                    .iter()
                    .find(|o| is_canary(o) && o.kind == "Ingress" && o.name == ingress_name)
                    .cloned()
                    .ok_or(ReleaseError::CannotUndo(
                        "the canary Ingress is not rendered",
                    ))?;
                ingress.body["metadata"]["annotations"][WEIGHT_ANNOTATION] =
                    weight.to_string().into();
                apply_all(session, id, &mut [&ingress], &previous, timeout, false).await?;
            }
            CanaryStep::Pause(Some(duration)) => {
                say(format!(
                    "pause {}",
                    crate::execute::event::seconds(*duration)
                ));
                pause(session, *duration).await?;
            }
            CanaryStep::Pause(None) => {
                say(format!(
                    "paused at {weight}%: `stack rollout promote {id}` goes on, `stack rollout abort {id}` takes it back"
                ));
                return Ok(Some(Rollout {
                    active: "stable".into(),
                    step: u32::try_from(number + 1).ok(),
                    weight: Some(weight),
                    ..Rollout::default()
                }));
            }
            CanaryStep::Analysis(analysis) => {
                say("analysis".into());
                let tests: Vec<Object> = match analysis {
                    Analysis::Tests => rendered.tests.clone(),
                    Analysis::Job(name) => rendered
                        .tests
                        .iter()
                        .filter(|t| &t.name == name)
                        .cloned()
                        .collect(),
                };
                test_jobs::run(session, id, &tests, timeout).await?;
            }
        }
    }
    promote(session, release, rendered, plan, &previous).await?;
    Ok(None)
}

/// Wait `duration`; an interrupted run stops here (left pending, the
/// canary at its weight: the next run recovers it).
async fn pause(session: &Session, duration: Duration) -> Result<(), ReleaseError> {
    let deadline = tokio::time::Instant::now() + duration;
    while tokio::time::Instant::now() < deadline {
        if let Some(because) = session.stopped() {
            return Err(ReleaseError::Stopped {
                because: because.into(),
            });
        }
        let left = deadline - tokio::time::Instant::now();
        tokio::time::sleep(left.min(Duration::from_millis(250))).await;
    }
    Ok(())
}

/// The stable version takes the new spec and is waited for; then the
/// canary goes, its Ingress first.
async fn promote(
    session: &Session,
    release: &Release,
    rendered: &RenderedRelease,
    plan: &ReleasePlan,
    previous: &[Value],
) -> Result<(), ReleaseError> {
    let (id, timeout) = (&release.id, release.options.timeout);
    session.reporter.event(
        id,
        &Event::CanaryStep {
            step: 0,
            what: "promoting".into(),
        },
    );
    let mut stable: Vec<&Object> = rendered
        .objects
        .iter()
        .filter(|o| held(rendered, plan, o))
        .collect();
    let applied = apply_all(session, id, &mut stable, previous, timeout, false).await?;
    let all: Vec<&Object> = rendered.objects.iter().filter(|o| !is_canary(o)).collect();
    wait_ready(session, id, &all, &applied, timeout, readiness::readiness).await?;
    let mut canary: Vec<&Object> = rendered.objects.iter().filter(|o| is_canary(o)).collect();
    canary.sort_by_key(|o| o.kind != "Ingress");
    for object in canary {
        delete_object(
            session,
            &object.api_version,
            &object.kind,
            object.namespace.as_deref(),
            &object.name,
        )
        .await?;
    }
    Ok(())
}
