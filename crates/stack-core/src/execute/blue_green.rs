//! Blue/green releases (`strategy: {blueGreen: …}`): the release's
//! Deployments run in two colours, `<name>-blue` and `<name>-green`, each
//! labelled `stack.dev/color` (metadata, selector and pod template); the
//! Services the strategy names select the active colour.
//!
//! Before a plan, each blue/green release's render is shaped for its live
//! colours, read from its deployed revision's `rollout` record:
//! - when the release renders as it was deployed, the objects keep the
//!   active colour (nothing to write), and the previous colour is scaled
//!   to zero once its `keepPrevious` time has passed;
//! - otherwise the new version goes to the idle colour (blue on a first
//!   deploy), and the active colour's Deployments are kept as they run, so
//!   that neither the plan nor the prune touches them: they serve until
//!   the switch and stay for an instant rollback.
//!
//! The switched Services are applied last, after the new colour is ready
//! and tested (`Strategy::switch`); anything failing before leaves them
//! selecting the active colour.

use serde_json::Value;

use crate::execute::strategy::{suffixed, without_assigned_addresses};
use crate::load::config::{BlueGreenSpec, StrategySpec};
use crate::load::project::Project;
use crate::load::render::RenderedRelease;
use stack_kube::object::Object;
use stack_kube::revision::{Revision, Rollout};

/// The label that tells a release's colours apart.
pub const COLOR_LABEL: &str = "stack.dev/color";

fn other(colour: &str) -> &'static str {
    if colour == "blue" { "green" } else { "blue" }
}

/// The blue/green spec of a release, if it has one.
pub(crate) fn spec_of(project: &Project, index: usize) -> Option<&BlueGreenSpec> {
    match &project.releases[index].options.strategy {
        StrategySpec::BlueGreen(spec) => Some(spec),
        StrategySpec::Rolling | StrategySpec::Canary(_) => None,
    }
}

/// When a shape is made: the time, and whether the previous colour goes
/// now (`stack rollout cleanup`) rather than when its time has passed.
pub(crate) struct When<'a> {
    pub now: &'a str,
    pub cleanup: bool,
}

/// One release's render shaped for the colours its deployed revision left.
pub(crate) fn shape_release(
    spec: &BlueGreenSpec,
    rendered: &RenderedRelease,
    deployed: Option<&Revision>,
    when: &When<'_>,
) -> RenderedRelease {
    let stored = deployed.map(|r| r.objects.parse()).unwrap_or_default();
    if let Some(rollout) = deployed.and_then(|r| r.rollout.as_ref()) {
        let idle = other(&rollout.active);
        let steady = paint(spec, rendered, &rollout.active, kept(&stored, idle));
        if crate::plan::objects_unchanged(&stored, &steady.objects) {
            let expired = when.cleanup
                || rollout
                    .keep_until
                    .as_deref()
                    .is_some_and(|until| until <= when.now);
            if !expired {
                return RenderedRelease {
                    rollout: Some(rollout.clone()),
                    ..steady
                };
            }
            // The same objects, the idle colour's Deployments at zero.
            let mut scaled = steady;
            for object in &mut scaled.objects {
                if object.kind == "Deployment"
                    && object.body["metadata"]["labels"][COLOR_LABEL] == idle
                {
                    object.body["spec"]["replicas"] = Value::from(0);
                }
            }
            return RenderedRelease {
                rollout: Some(Rollout {
                    active: rollout.active.clone(),
                    previous: None,
                    keep_until: None,
                    ..Rollout::default()
                }),
                ..scaled
            };
        }
    }
    let active = deployed
        .and_then(|r| r.rollout.as_ref())
        .map(|r| r.active.clone());
    let new = active.as_deref().map_or("blue", other);
    let shaped = paint(spec, rendered, new, kept(&stored, other(new)));
    RenderedRelease {
        rollout: Some(Rollout {
            active: new.to_string(),
            previous: active,
            keep_until: spec.keep_previous.map(stack_kube::clock::after),
            ..Rollout::default()
        }),
        ..shaped
    }
}

/// A rollback by hand of a deployed blue/green revision to an earlier one
/// with the other colour active: the earlier revision's objects, but the
/// colour being left kept as it runs (not the earlier revision's copy of
/// it), so the rollback is the Services' switch and nothing else; and the
/// colours that leaves. `None` when the rollback is not such a switch (a
/// failed deploy's new colour is removed, as any failure's objects are).
pub(crate) fn rollback_switch(
    target: &Revision,
    undone: &Revision,
) -> Option<(stack_kube::revision::Stored, Rollout)> {
    let back_to = &target.rollout.as_ref()?.active;
    let leaving = &undone.rollout.as_ref()?.active;
    if undone.state != stack_kube::revision::State::Deployed || back_to == leaving {
        return None;
    }
    let running = kept(&undone.objects.parse(), leaving);
    let mut objects: Vec<Value> = target
        .objects
        .parse()
        .into_iter()
        .filter(|body| {
            !(body["kind"] == "Deployment"
                && body["metadata"]["labels"][COLOR_LABEL] == leaving.as_str())
        })
        .collect();
    objects.extend(running.into_iter().map(|object| object.body));
    let rollout = Rollout {
        active: back_to.clone(),
        previous: Some(leaving.clone()),
        keep_until: undone.rollout.as_ref()?.keep_until.clone(),
        ..Rollout::default()
    };
    Some((stack_kube::revision::Stored::new(&objects), rollout))
}

/// The Deployments of colour `colour` a revision stored, as they run.
fn kept(stored: &[Value], colour: &str) -> Vec<Object> {
    stored
        .iter()
        .filter(|body| {
            body["kind"] == "Deployment" && body["metadata"]["labels"][COLOR_LABEL] == colour
        })
        .map(|body| Object::from_body(body, "the previous colour"))
        .collect()
}

/// The render in `colour`: Deployments renamed and labelled, the switched
/// Services selecting it (and their previews, when asked for), then the
/// other colour's `kept` Deployments.
fn paint(
    spec: &BlueGreenSpec,
    rendered: &RenderedRelease,
    colour: &str,
    kept: Vec<Object>,
) -> RenderedRelease {
    let mut objects = Vec::with_capacity(rendered.objects.len() + kept.len());
    for object in &rendered.objects {
        if object.kind == "Deployment" {
            objects.push(colour_deployment(object, colour));
        } else if is_switched(spec, object) {
            let mut switched = object.clone();
            switched.body["spec"]["selector"][COLOR_LABEL] = Value::from(colour);
            let previewed = spec.preview_service.then(|| preview(&switched));
            objects.push(switched);
            objects.extend(previewed);
        } else {
            objects.push(object.clone());
        }
    }
    objects.extend(kept);
    RenderedRelease {
        objects,
        ..without_objects(rendered)
    }
}

/// A release's render without its objects (cloning them only to drop
/// them would copy every object of the release twice).
pub(crate) fn without_objects(rendered: &RenderedRelease) -> RenderedRelease {
    RenderedRelease {
        id: rendered.id.clone(),
        objects: Vec::new(),
        tests: rendered.tests.clone(),
        hooks: rendered.hooks.clone(),
        values: rendered.values.clone(),
        rollout: rendered.rollout.clone(),
        variants: rendered.variants.clone(),
    }
}

/// Whether `object` is a Service that selects a colour (as a revision
/// stored it: the strategy's switched Services and their previews).
pub(crate) fn selects_colour(object: &Object) -> bool {
    object.kind == "Service" && !object.body["spec"]["selector"][COLOR_LABEL].is_null()
}

/// Whether `object` is one of the Services the strategy switches.
pub(crate) fn is_switched(spec: &BlueGreenSpec, object: &Object) -> bool {
    object.kind == "Service" && spec.services.contains(&object.name)
}

fn colour_deployment(object: &Object, colour: &str) -> Object {
    let mut coloured = suffixed(object, colour);
    let body = &mut coloured.body;
    body["metadata"]["labels"][COLOR_LABEL] = Value::from(colour);
    body["spec"]["selector"]["matchLabels"][COLOR_LABEL] = Value::from(colour);
    body["spec"]["template"]["metadata"]["labels"][COLOR_LABEL] = Value::from(colour);
    coloured
}

/// `<service>-preview`: the Service's copy that selects the new colour.
fn preview(service: &Object) -> Object {
    let mut preview = suffixed(service, "preview");
    without_assigned_addresses(&mut preview);
    preview
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(preview: bool) -> BlueGreenSpec {
        let span = crate::diagnostic::Span::file_start(&crate::diagnostic::SourceFile::new(
            "stack.yaml",
            "",
        ));
        BlueGreenSpec {
            services: vec!["web".into()],
            preview_service: preview,
            keep_previous: None,
            service_span: span.clone(),
            span,
        }
    }

    fn rendered(image: &str) -> RenderedRelease {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": image}]}}}});
        let service = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
        RenderedRelease {
            id: "shop/web".into(),
            objects: vec![
                Object::from_body(&deployment, "templates/deployment.yaml"),
                Object::from_body(&service, "templates/service.yaml"),
            ],
            tests: Vec::new(),
            hooks: Vec::new(),
            values: json!({}),
            rollout: None,
            variants: Vec::new(),
        }
    }

    fn deployed(shaped: &RenderedRelease) -> Revision {
        let bodies: Vec<&Value> = shaped.objects.iter().map(|o| &o.body).collect();
        let mut revision: Revision = serde_json::from_value(json!({
            "release": "shop/web", "number": 1, "state": "deployed", "chart": "web",
            "valuesDigest": "", "started": "2026-12-07T00:00:00Z", "objects": bodies}))
        .unwrap();
        revision.rollout.clone_from(&shaped.rollout);
        revision
    }

    fn at(now: &str) -> When<'_> {
        When {
            now,
            cleanup: false,
        }
    }

    fn names(release: &RenderedRelease) -> Vec<String> {
        release.objects.iter().map(|o| o.name.clone()).collect()
    }

    #[test]
    fn a_first_deploy_is_blue_and_a_change_goes_to_green_beside_it() {
        let first = shape_release(
            &spec(true),
            &rendered("web:1"),
            None,
            &at("2026-12-07T00:00:00Z"),
        );
        assert_eq!(names(&first), ["web-blue", "web", "web-preview"]);
        assert_eq!(first.rollout.as_ref().unwrap().active, "blue");
        assert_eq!(
            first.objects[1].body["spec"]["selector"][COLOR_LABEL],
            "blue"
        );

        let revision = deployed(&first);
        let same = shape_release(
            &spec(true),
            &rendered("web:1"),
            Some(&revision),
            &at("2026-12-07T00:01:00Z"),
        );
        assert_eq!(
            names(&same),
            names(&first),
            "an unchanged release stays blue"
        );
        assert!(crate::plan::objects_unchanged(
            &revision.objects.parse(),
            &same.objects
        ));

        let second = shape_release(
            &spec(true),
            &rendered("web:2"),
            Some(&revision),
            &at("2026-12-07T00:02:00Z"),
        );
        assert_eq!(
            names(&second),
            ["web-green", "web", "web-preview", "web-blue"]
        );
        let rollout = second.rollout.as_ref().unwrap();
        assert_eq!(
            (rollout.active.as_str(), rollout.previous.as_deref()),
            ("green", Some("blue"))
        );
        assert_eq!(
            second.objects[3].body, first.objects[0].body,
            "blue kept as it runs"
        );
    }

    #[test]
    fn the_previous_colour_is_scaled_away_once_its_time_has_passed() {
        let mut with_keep = spec(false);
        with_keep.keep_previous = Some(std::time::Duration::from_secs(60));
        let first = shape_release(
            &with_keep,
            &rendered("web:1"),
            None,
            &at("2026-12-07T00:00:00Z"),
        );
        let second = shape_release(
            &with_keep,
            &rendered("web:2"),
            Some(&deployed(&first)),
            &at("2026-12-07T00:00:00Z"),
        );
        let mut revision = deployed(&second);
        revision.rollout.as_mut().unwrap().keep_until = Some("2026-12-07T01:00:00Z".into());
        let before = shape_release(
            &with_keep,
            &rendered("web:2"),
            Some(&revision),
            &at("2026-12-07T00:30:00Z"),
        );
        assert!(crate::plan::objects_unchanged(
            &revision.objects.parse(),
            &before.objects
        ));
        let after = shape_release(
            &with_keep,
            &rendered("web:2"),
            Some(&revision),
            &at("2026-12-07T01:00:00Z"),
        );
        let blue = after.objects.iter().find(|o| o.name == "web-blue").unwrap();
        assert_eq!(blue.body["spec"]["replicas"], 0);
        assert_eq!(after.rollout.unwrap().previous, None);
    }
}
