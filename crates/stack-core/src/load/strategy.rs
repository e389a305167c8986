//! A release's `strategy:` checked against what it renders: a blue/green
//! release needs a Deployment to colour, and the Services it switches must
//! be among its objects. Refused with the place of `strategy:` before
//! anything reaches a cluster.

use crate::load::config::{ConfigError, StrategySpec};
use crate::load::release::Release;
use crate::load::render::RenderedRelease;

/// What is wrong with `release`'s strategy, given its render.
pub(crate) fn check(release: &Release, rendered: &RenderedRelease) -> Vec<ConfigError> {
    let StrategySpec::BlueGreen(spec) = &release.options.strategy else {
        return Vec::new();
    };
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
    let services: Vec<&str> = rendered
        .objects
        .iter()
        .filter(|o| o.kind == "Service")
        .map(|o| o.name.as_str())
        .collect();
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
            if services.is_empty() {
                "the release renders no Service".into()
            } else {
                format!("the release renders: {}", services.join(", "))
            },
        ));
    }
    errors
}
