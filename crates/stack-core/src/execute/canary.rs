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
//! stable version was never touched. Revisions never hold canary objects
//! (but those of a paused canary, which runs as they say).
//!
//! With `variants`, the release's own render is the stable version (applied
//! as a rolling update) and each variant — the release rendered with its
//! values over the release's — runs as `<deployment>-canary-<variant>`
//! (pods `stack.dev/variant: <variant>`) behind the one canary Service and
//! Ingress (ingress-nginx takes one canary per route). A step gives the
//! canary Ingress the variants' weights added up and splits them by
//! replicas: a variant at weight 0 runs none, the others scaled to their
//! weight against the heaviest (which runs its rendered count). After the
//! last step the variants wait for `stack rollout promote --variant`; the
//! revision then records the winner and a digest of the variants declared,
//! so that the same stack file deploys the winner, not the experiment
//! again.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::execute::error::ReleaseError;
use crate::execute::event::Event;
use crate::execute::objects::{apply_all, delete_object, wait_ready};
use crate::execute::options::Promotion;
use crate::execute::strategy::{suffixed, without_assigned_addresses};
use crate::execute::{Session, readiness, test_jobs};
use crate::load::config::{Analysis, CanarySpec, CanaryStep, Weights};
use crate::load::release::Release;
use crate::load::render::{RenderedRelease, RenderedVariant};
use crate::plan::{Action, ReleasePlan};
use stack_kube::object::Object;
use stack_kube::revision::{Revision, Rollout};

/// The label that tells a release's stable pods from its canary's.
pub const TRACK_LABEL: &str = "stack.dev/track";
/// The label that tells a canary's variants apart.
pub const VARIANT_LABEL: &str = "stack.dev/variant";

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
    let mut shaped = rendered.clone();
    stabilise(spec, &mut shaped.objects);
    shaped
}

/// [`stable`] on a list of objects (a release's or a variant's).
fn stabilise(spec: &CanarySpec, objects: &mut [Object]) {
    let routed = objects
        .iter()
        .find(|o| o.kind == "Ingress" && o.name == spec.ingress)
        .map(|ingress| backends(&ingress.body))
        .unwrap_or_default();
    for object in objects {
        if object.kind == "Deployment" {
            object.body["spec"]["template"]["metadata"]["labels"][TRACK_LABEL] = "stable".into();
        } else if object.kind == "Service" && routed.contains(&object.name) {
            object.body["spec"]["selector"][TRACK_LABEL] = "stable".into();
        }
    }
}

/// The canary copies of a stable render, at weight 0: of its Deployments,
/// or of each variant's.
fn copies(spec: &CanarySpec, stable: &RenderedRelease) -> Vec<Object> {
    let Some(ingress) = stable
        .objects
        .iter()
        .find(|o| o.kind == "Ingress" && o.name == spec.ingress)
    else {
        return Vec::new();
    };
    let routed = backends(&ingress.body);
    let deployments = |objects: &[Object], variant: Option<&str>| -> Vec<Object> {
        objects
            .iter()
            .filter(|o| o.kind == "Deployment")
            .map(|o| canary_deployment(o, variant))
            .collect()
    };
    let mut out = if stable.variants.is_empty() {
        deployments(&stable.objects, None)
    } else {
        stable
            .variants
            .iter()
            .flat_map(|v| deployments(&v.objects, Some(&v.name)))
            .collect()
    };
    for object in &stable.objects {
        if object.kind == "Service" && routed.contains(&object.name) {
            let mut copy = renamed(object, "canary");
            copy.body["spec"]["selector"][TRACK_LABEL] = "canary".into();
            without_assigned_addresses(&mut copy);
            out.push(copy);
        }
    }
    let mut copy = renamed(ingress, "canary");
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

/// `<deployment>-canary` (or `-canary-<variant>`), its pods `track:
/// canary` (and the variant's).
fn canary_deployment(object: &Object, variant: Option<&str>) -> Object {
    let mut copy = match variant {
        None => renamed(object, "canary"),
        Some(variant) => {
            let mut copy = renamed(object, &format!("canary-{variant}"));
            copy.body["metadata"]["labels"][VARIANT_LABEL] = variant.into();
            copy
        }
    };
    for pointer in [
        "/spec/template/metadata/labels",
        "/spec/selector/matchLabels",
    ] {
        if let Some(labels) = copy.body.pointer_mut(pointer) {
            labels[TRACK_LABEL] = "canary".into();
            if let Some(variant) = variant {
                labels[VARIANT_LABEL] = variant.into();
            }
        }
    }
    copy
}

/// `<name>-<suffix>`, labelled `track: canary`.
fn renamed(object: &Object, suffix: &str) -> Object {
    let mut copy = suffixed(object, suffix);
    copy.body["metadata"]["labels"][TRACK_LABEL] = "canary".into();
    copy
}

/// The digest of the variants a canary declares (none without variants):
/// what a revision that ended an experiment records.
pub(crate) fn experiment(spec: &CanarySpec) -> Option<String> {
    if spec.variants.is_empty() {
        return None;
    }
    let declared: Vec<Value> = spec
        .variants
        .iter()
        .map(|v| serde_json::json!([v.name, v.values]))
        .collect();
    Some(stack_kube::revision::values_digest(&Value::Array(declared)))
}

/// Each variant's share (one unnamed share without variants) where a
/// paused canary stopped.
fn shares_of(progress: &Rollout) -> BTreeMap<String, u8> {
    if progress.weights.is_empty() {
        BTreeMap::from([(String::new(), progress.weight.unwrap_or(0))])
    } else {
        progress.weights.clone()
    }
}

/// One release's render shaped for its deployed revision: the stable
/// version alone on a first deploy, when nothing changed, or once an
/// experiment with the variants declared ended (its winner); else the new
/// stable version (held) and the canary — at weight 0 from its first step,
/// or, for a canary paused by `pause: {}` whose copies are still what the
/// stack renders, as it runs (nothing to do) unless `stack rollout
/// promote` goes on from where it paused.
pub(crate) fn shape_release(
    spec: &CanarySpec,
    rendered: &RenderedRelease,
    deployed: Option<&Revision>,
    promotion: &Promotion,
) -> RenderedRelease {
    let mut stable = stable(spec, rendered);
    let experiment = experiment(spec);
    let ended = deployed
        .and_then(|r| r.rollout.as_ref())
        .filter(|r| r.step.is_none() && r.experiment.is_some() && r.experiment == experiment);
    if let Some(ended) = ended {
        winner(spec, &mut stable, ended.variant.as_deref());
        stable.rollout = Some(ended.clone());
        return stable;
    }
    // A first deploy is the stable version alone (an experiment starts
    // with the next deploy: there is a revision to abort back to).
    let Some(deployed) = deployed else {
        return stable;
    };
    let stored = deployed.objects.parse();
    if experiment.is_none() && crate::plan::objects_unchanged(&stored, &stable.objects) {
        return stable;
    }
    let mut canary = copies(spec, &stable);
    let paused = deployed.rollout.as_ref().filter(|r| r.step.is_some());
    if let Some(progress) = paused {
        set_weights(&mut canary, &shares_of(progress), &rendered.variants);
        let running: Vec<&Value> = stored.iter().filter(|body| is_canary_body(body)).collect();
        let same =
            running.len() == canary.len() && canary.iter().all(|c| running.contains(&&c.body));
        if same && *promotion == Promotion::None {
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
            let mut progress = progress.clone();
            if let Promotion::Variant(name) = promotion {
                winner(spec, &mut stable, Some(name));
                progress.variant = Some(name.clone());
            }
            stable.objects.extend(canary);
            stable.rollout = Some(progress);
            return stable;
        }
        set_weights(&mut canary, &BTreeMap::new(), &rendered.variants);
    }
    stable.objects.extend(canary);
    stable
}

/// The stable version becomes `variant`'s render (when it is declared).
fn winner(spec: &CanarySpec, stable: &mut RenderedRelease, variant: Option<&str>) {
    let Some(found) = variant.and_then(|name| stable.variants.iter().find(|v| v.name == name))
    else {
        return;
    };
    let mut objects = found.objects.clone();
    stabilise(spec, &mut objects);
    stable.objects = objects;
}

fn is_canary_body(body: &Value) -> bool {
    body["metadata"]["labels"][TRACK_LABEL] == "canary"
}

/// Give the canary Ingress among `objects` the shares added up and, with
/// variants, each variant's Deployments replicas for its share: none at
/// 0, else its rendered count scaled by its share against the largest
/// (at least 1); before any share, the rendered counts.
fn set_weights(
    objects: &mut [Object],
    shares: &BTreeMap<String, u8>,
    variants: &[RenderedVariant],
) {
    let total: u32 = shares.values().map(|w| u32::from(*w)).sum();
    let largest = u32::from(shares.values().copied().max().unwrap_or(0));
    for object in objects.iter_mut().filter(|o| is_canary(o)) {
        if object.kind == "Ingress" {
            object.body["metadata"]["annotations"][WEIGHT_ANNOTATION] =
                total.min(100).to_string().into();
            continue;
        }
        let Some(variant) = object.body["metadata"]["labels"][VARIANT_LABEL]
            .as_str()
            .map(str::to_string)
        else {
            continue;
        };
        let source = object.name.strip_suffix(&format!("-canary-{variant}"));
        let rendered = variants
            .iter()
            .filter(|v| v.name == variant)
            .flat_map(|v| &v.objects)
            .find(|o| o.kind == "Deployment" && Some(o.name.as_str()) == source)
            .and_then(|o| o.body["spec"]["replicas"].as_u64())
            .unwrap_or(1);
        let share = u64::from(shares.get(&variant).copied().unwrap_or(0));
        let replicas = match (largest, share) {
            (0, _) => rendered,
            (_, 0) => 0,
            (largest, share) => {
                ((rendered * share * 2 + u64::from(largest)) / (2 * u64::from(largest))).max(1)
            }
        };
        object.body["spec"]["replicas"] = replicas.into();
    }
}

/// What runs while a canary is paused, to be its revision's objects: the
/// stable objects held back as the deployed revision has them, the rest
/// (the canary at `progress`'s shares, stable objects created with it) as
/// rendered.
pub(crate) fn paused_objects(
    rendered: &RenderedRelease,
    plan: &ReleasePlan,
    progress: &Rollout,
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
    set_weights(&mut objects, &shares_of(progress), &rendered.variants);
    stack_kube::revision::Stored::new(objects.iter().map(|o| &o.body))
}

/// Whether a plan's release is in its canary phase (it has canary objects).
fn canary_phase(rendered: &RenderedRelease) -> bool {
    rendered.objects.iter().any(is_canary)
}

/// What the roll-out holds back during a canary: stable objects that
/// exist and change (the stable version keeps running as it is) — with
/// variants, only while a winner is promoted (else the release's own
/// render is the stable version, rolled out as it is).
pub(crate) fn held(rendered: &RenderedRelease, plan: &ReleasePlan, object: &Object) -> bool {
    let promoting_winner = rendered.variants.is_empty()
        || rendered
            .rollout
            .as_ref()
            .is_some_and(|r| r.variant.is_some());
    canary_phase(rendered)
        && promoting_winner
        && !is_canary(object)
        && plan
            .changes
            .iter()
            .any(|c| c.action == Action::Update && c.key == object.key())
}

/// After the roll-out and the release's tests: the steps (from where a
/// paused canary stopped), then promotion; or, at `pause: {}` (and, with
/// variants, after the last step), where the canary paused. `stack rollout
/// promote --full` or `--variant` skips the steps left. What the revision
/// records of the rollout is returned: where it paused, or which variant
/// won.
pub(crate) async fn run(
    session: &Session,
    release: &Release,
    spec: &CanarySpec,
    rendered: &RenderedRelease,
    plan: &ReleasePlan,
) -> Result<Option<Rollout>, ReleaseError> {
    if !canary_phase(rendered) {
        return Ok(rendered.rollout.clone());
    }
    let resumed = rendered.rollout.as_ref();
    let promotion = &session.options.promotion;
    let now = resumed.is_some() && matches!(promotion, Promotion::Full | Promotion::Variant(_));
    let previous = plan
        .deployed
        .as_ref()
        .map(|p| p.objects.parse())
        .unwrap_or_default();
    if !now && let Some(paused) = steps(session, release, spec, rendered, &previous).await? {
        return Ok(Some(paused));
    }
    promote(session, release, rendered, plan, &previous).await?;
    Ok(resumed
        .and_then(|r| r.variant.clone())
        .map(|variant| Rollout {
            active: "stable".into(),
            variant: Some(variant),
            experiment: experiment(spec),
            ..Rollout::default()
        }))
}

/// The steps from where the canary is; where it paused, if it did.
async fn steps(
    session: &Session,
    release: &Release,
    spec: &CanarySpec,
    rendered: &RenderedRelease,
    previous: &[Value],
) -> Result<Option<Rollout>, ReleaseError> {
    let resumed = rendered.rollout.as_ref();
    let start = resumed.and_then(|r| r.step).unwrap_or(0) as usize;
    let mut shares = resumed.map_or_else(|| spec.shares(&Weights::Each(0)), shares_of);
    let (id, timeout) = (&release.id, release.options.timeout);
    let paused = |step: usize, shares: &BTreeMap<String, u8>| Rollout {
        active: "stable".into(),
        step: u32::try_from(step).ok(),
        weight: u8::try_from(shares.values().map(|w| u32::from(*w)).sum::<u32>()).ok(),
        weights: if spec.variants.is_empty() {
            BTreeMap::new()
        } else {
            shares.clone()
        },
        experiment: experiment(spec),
        ..Rollout::default()
    };
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
        let asked = |step: usize| {
            say(format!(
                "paused at {} by `stack rollout pause`: `stack rollout resume {id}` goes on, `stack rollout abort {id}` takes it back",
                describe(&shares)
            ));
            Ok(Some(paused(step, &shares)))
        };
        if number > start && crate::execute::lock::pause_requested(session, id).await {
            return asked(number);
        }
        match step {
            CanaryStep::SetWeight(weights) => {
                shares = spec.shares(weights);
                say(format!("canary weight {}", describe(&shares)));
                set_step_weights(session, release, rendered, &shares, previous).await?;
            }
            CanaryStep::Pause(Some(duration)) => {
                say(format!(
                    "pause {}",
                    crate::execute::event::seconds(*duration)
                ));
                if pause(session, id, *duration).await? == Waited::Asked {
                    return asked(number + 1);
                }
            }
            CanaryStep::Pause(None) => {
                say(format!(
                    "paused at {}: `stack rollout promote {id}` goes on, `stack rollout abort {id}` takes it back",
                    describe(&shares)
                ));
                return Ok(Some(paused(number + 1, &shares)));
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
    if spec.variants.is_empty() {
        return Ok(None);
    }
    session.reporter.event(
        id,
        &Event::CanaryStep {
            step: spec.steps.len(),
            what: format!(
                "the variants run at {}: `stack rollout promote {id} --variant NAME` makes one the stable version, `stack rollout abort {id}` removes them",
                describe(&shares)
            ),
        },
    );
    Ok(Some(paused(spec.steps.len(), &shares)))
}

/// `20%`, or `a 10%, b 10%`.
fn describe(shares: &BTreeMap<String, u8>) -> String {
    shares
        .iter()
        .map(|(name, weight)| {
            if name.is_empty() {
                format!("{weight}%")
            } else {
                format!("{name} {weight}%")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `setWeight` step: with variants, their Deployments scaled to their
/// shares and waited for first; then the canary Ingress's weight.
async fn set_step_weights(
    session: &Session,
    release: &Release,
    rendered: &RenderedRelease,
    shares: &BTreeMap<String, u8>,
    previous: &[Value],
) -> Result<(), ReleaseError> {
    let (id, timeout) = (&release.id, release.options.timeout);
    let ingress_name = format!("{}-canary", strategy_ingress(rendered));
    let mut objects: Vec<Object> = rendered
        .objects
        .iter()
        .filter(|o| is_canary(o))
        .filter(|o| {
            o.name == ingress_name || (!rendered.variants.is_empty() && o.kind == "Deployment")
        })
        .cloned()
        .collect();
    if !objects.iter().any(|o| o.kind == "Ingress") {
        return Err(ReleaseError::CannotUndo(
            "the canary Ingress is not rendered",
        ));
    }
    set_weights(&mut objects, shares, &rendered.variants);
    let (ingress, deployments): (Vec<&Object>, Vec<&Object>) =
        objects.iter().partition(|o| o.kind == "Ingress");
    if !deployments.is_empty() {
        let mut scaled = deployments.clone();
        let applied = apply_all(session, id, &mut scaled, previous, timeout, false).await?;
        wait_ready(
            session,
            id,
            &deployments,
            &applied,
            timeout,
            readiness::readiness,
        )
        .await?;
    }
    let mut ingress = ingress;
    apply_all(session, id, &mut ingress, previous, timeout, false).await?;
    Ok(())
}

/// The name of the Ingress a canary render's copy was made from.
fn strategy_ingress(rendered: &RenderedRelease) -> String {
    rendered
        .objects
        .iter()
        .find(|o| o.kind == "Ingress" && is_canary(o))
        .and_then(|o| o.name.strip_suffix("-canary"))
        .unwrap_or_default()
        .to_string()
}

/// How a timed pause ended.
#[derive(Debug, PartialEq, Eq)]
enum Waited {
    Elapsed,
    /// `stack rollout pause` asked the canary to stay where it is.
    Asked,
}

/// Wait `duration`, asking every 2 s whether `stack rollout pause` wants
/// the canary held; an interrupted run stops here (left pending, the
/// canary at its weight: the next run recovers it).
async fn pause(session: &Session, id: &str, duration: Duration) -> Result<Waited, ReleaseError> {
    let deadline = tokio::time::Instant::now() + duration;
    let mut next_look = tokio::time::Instant::now();
    while tokio::time::Instant::now() < deadline {
        if let Some(because) = session.stopped() {
            return Err(ReleaseError::Stopped {
                because: because.into(),
            });
        }
        if tokio::time::Instant::now() >= next_look {
            if crate::execute::lock::pause_requested(session, id).await {
                return Ok(Waited::Asked);
            }
            next_look = tokio::time::Instant::now() + Duration::from_secs(2);
        }
        let left = deadline - tokio::time::Instant::now();
        tokio::time::sleep(left.min(Duration::from_millis(250))).await;
    }
    Ok(Waited::Elapsed)
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
