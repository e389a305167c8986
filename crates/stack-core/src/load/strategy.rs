//! A release's `strategy:` checked against what it renders: a blue/green
//! release needs a Deployment to colour, and the Services it switches must
//! be among its objects. Refused with the place of `strategy:` before
//! anything reaches a cluster.

use crate::load::config::{CanarySpec, ConfigError, StrategySpec};
use crate::load::release::Release;
use crate::load::render::RenderedRelease;

/// What is wrong with `release`'s strategy, given its render.
pub(crate) fn check(release: &Release, rendered: &RenderedRelease) -> Vec<ConfigError> {
    match &release.options.strategy {
        StrategySpec::Rolling => Vec::new(),
        StrategySpec::BlueGreen(spec) => check_blue_green(release, spec, rendered),
        StrategySpec::Canary(spec) => check_canary(release, spec, rendered),
    }
}

/// A canary needs a Deployment to copy and its Ingress. (The Services the
/// Ingress routes to are not checked here: a chart that renders them
/// wrong gets Kubernetes' own refusal of them, which says more.)
fn check_canary(
    release: &Release,
    spec: &CanarySpec,
    rendered: &RenderedRelease,
) -> Vec<ConfigError> {
    let located =
        |message: String, hint: String, span: &crate::diagnostic::Span| ConfigError::Invalid {
            message,
            span: span.clone(),
            hint: Some(hint),
        };
    let mut errors = Vec::new();
    if !rendered.objects.iter().any(|o| o.kind == "Deployment") {
        errors.push(located(
            format!("release `{}` is a canary but renders no Deployment", release.id),
            "a canary copies a release's Deployments; use it on a release with a Deployment, or leave `strategy` out".into(),
            &spec.span,
        ));
    }
    let ingresses: Vec<&str> = names_of(rendered, "Ingress");
    if !rendered
        .objects
        .iter()
        .any(|o| o.kind == "Ingress" && o.name == spec.ingress)
    {
        errors.push(located(
            format!(
                "`strategy.canary.ingress` names Ingress `{}`, which release `{}` does not render",
                spec.ingress, release.id
            ),
            renders(&ingresses, "Ingress"),
            &spec.ingress_span,
        ));
    }
    errors
}

fn names_of<'a>(rendered: &'a RenderedRelease, kind: &str) -> Vec<&'a str> {
    rendered
        .objects
        .iter()
        .filter(|o| o.kind == kind)
        .map(|o| o.name.as_str())
        .collect()
}

fn renders(names: &[&str], kind: &str) -> String {
    if names.is_empty() {
        format!("the release renders no {kind}")
    } else {
        format!("the release renders: {}", names.join(", "))
    }
}

fn check_blue_green(
    release: &Release,
    spec: &crate::load::config::BlueGreenSpec,
    rendered: &RenderedRelease,
) -> Vec<ConfigError> {
    let invalid = |message: String, hint: String| ConfigError::Invalid {
        message,
        span: spec.span.clone(),
        hint: Some(hint),
    };
    let at_services = |message: String, hint: String| ConfigError::Invalid {
        message,
        span: spec.service_span.clone(),
        hint: Some(hint),
    };
    let mut errors = Vec::new();
    if !rendered.objects.iter().any(|o| o.kind == "Deployment") {
        errors.push(invalid(
            format!(
                "release `{}` is blue/green but renders no Deployment",
                release.id
            ),
            "blue/green runs a release's Deployments in two colours; use it on a release with a Deployment, or leave `strategy` out".into(),
        ));
    }
    if spec.services.is_empty() {
        errors.push(at_services(
            format!(
                "`strategy.blueGreen` of release `{}` names no Service",
                release.id
            ),
            "name the Service(s) whose selector switches: `service: NAME`".into(),
        ));
    }
    let services = names_of(rendered, "Service");
    for name in spec
        .services
        .iter()
        .filter(|n| !services.contains(&n.as_str()))
    {
        errors.push(at_services(
            format!(
                "`strategy.blueGreen.service` names Service `{name}`, which release `{}` does not render",
                release.id
            ),
            renders(&services, "Service"),
        ));
    }
    errors
}
