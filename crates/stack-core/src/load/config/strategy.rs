//! A release's `strategy:`: `blueGreen` (the Services it switches, a
//! preview Service, how long the previous colour is kept) or `canary` (the
//! Ingress that carries the traffic, its steps, a header that always
//! reaches the canary). Every problem is located; weights must be 0–100
//! and increasing, pauses durations or `{}`.

use std::time::Duration;

use crate::diagnostic::Span;
use crate::load::config::reader::{MapReader, expect_string, parse_duration, wrong_type};
use crate::load::config::{BlueGreenSpec, ConfigError, StrategySpec};
use crate::yaml::{Node, NodeKind};

const STRATEGY_KEYS: &[&str] = &["blueGreen", "canary"];
const BLUE_GREEN_KEYS: &[&str] = &["service", "previewService", "keepPrevious"];
const CANARY_KEYS: &[&str] = &["ingress", "steps", "header"];
const STEP_KEYS: &[&str] = &["setWeight", "pause", "analysis"];
const ANALYSIS_KEYS: &[&str] = &["tests", "job"];

/// `strategy: {canary: …}`: a canary copy of the release's workloads gets
/// a share of the Ingress's traffic, step by step, before it is promoted.
#[derive(Debug, Clone)]
pub struct CanarySpec {
    /// The Ingress (rendered by the release) that carries the traffic.
    pub ingress: String,
    pub steps: Vec<CanaryStep>,
    /// Requests with this header (`always`) always reach the canary.
    pub header: Option<String>,
    /// Where `strategy:` is written.
    pub span: Span,
    /// Where the Ingress is named.
    pub ingress_span: Span,
}

impl PartialEq for CanarySpec {
    fn eq(&self, other: &Self) -> bool {
        (&self.ingress, &self.steps, &self.header) == (&other.ingress, &other.steps, &other.header)
    }
}

/// One step of a canary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanaryStep {
    /// The canary's share of the traffic, in percent.
    SetWeight(u8),
    /// Wait this long; `None` waits for `stack rollout promote`.
    Pause(Option<Duration>),
    /// Run the release's tests (or a Job of the release) against the canary.
    Analysis(Analysis),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Analysis {
    Tests,
    Job(String),
}

fn invalid(message: impl Into<String>, hint: &str, span: &Span) -> ConfigError {
    ConfigError::Invalid {
        message: message.into(),
        span: span.clone(),
        hint: Some(hint.into()),
    }
}

/// `strategy:`: exactly one of `blueGreen` and `canary`.
pub(crate) fn parse(node: &Node, errors: &mut Vec<ConfigError>) -> StrategySpec {
    let Some(map) = MapReader::new(node, "strategy", STRATEGY_KEYS, errors) else {
        return StrategySpec::Rolling;
    };
    match (map.get("blueGreen"), map.get("canary")) {
        (Some(_), Some(_)) => {
            errors.push(invalid(
                "`strategy` names both `blueGreen` and `canary`",
                "a release rolls out one way: keep one of them",
                &node.span,
            ));
            StrategySpec::Rolling
        }
        (Some(blue_green), None) => parse_blue_green(blue_green, node, errors),
        (None, Some(canary)) => parse_canary(canary, node, errors),
        (None, None) => {
            errors.push(invalid(
                "`strategy` names no strategy",
                "write `strategy: {blueGreen: {service: NAME}}`, or leave `strategy` out for a rolling update",
                &node.span,
            ));
            StrategySpec::Rolling
        }
    }
}

fn parse_blue_green(node: &Node, strategy: &Node, errors: &mut Vec<ConfigError>) -> StrategySpec {
    let Some(map) = MapReader::new(node, "strategy.blueGreen", BLUE_GREEN_KEYS, errors) else {
        return StrategySpec::Rolling;
    };
    let services: Vec<String> = match map.get("service") {
        Some(Node {
            kind: NodeKind::String(name),
            ..
        }) => vec![name.clone()],
        Some(Node {
            kind: NodeKind::Sequence(items),
            ..
        }) => items
            .iter()
            .filter_map(|item| expect_string(item, "service", errors))
            .filter_map(|item| item.as_str().map(str::to_string))
            .collect(),
        Some(other) => {
            errors.push(wrong_type(
                "service",
                "a Service name or a list of them",
                other,
            ));
            Vec::new()
        }
        None => {
            map.require("service", "strategy.blueGreen", errors);
            Vec::new()
        }
    };
    StrategySpec::BlueGreen(BlueGreenSpec {
        services,
        preview_service: map.bool("previewService", errors).unwrap_or(false),
        keep_previous: map.duration("keepPrevious", errors),
        span: strategy.span.clone(),
        service_span: map
            .get("service")
            .map_or_else(|| strategy.span.clone(), |node| node.span.clone()),
    })
}

fn parse_canary(node: &Node, strategy: &Node, errors: &mut Vec<ConfigError>) -> StrategySpec {
    let Some(map) = MapReader::new(node, "strategy.canary", CANARY_KEYS, errors) else {
        return StrategySpec::Rolling;
    };
    let ingress = map
        .require("ingress", "strategy.canary", errors)
        .and_then(|n| expect_string(n, "ingress", errors));
    let header = map
        .string("header", errors)
        .and_then(Node::as_str)
        .map(str::to_string);
    let steps_node = map.get("steps");
    let steps = parse_steps(map.list("steps", errors), errors);
    if steps.is_empty() && steps_node.is_some() {
        errors.push(invalid(
            "`strategy.canary.steps` is empty",
            "a canary needs at least one step, such as `- setWeight: 10`",
            &steps_node.map_or_else(|| node.span.clone(), |n| n.span.clone()),
        ));
    }
    let Some(ingress) = ingress else {
        return StrategySpec::Rolling;
    };
    StrategySpec::Canary(CanarySpec {
        ingress: ingress.as_str().unwrap_or_default().to_string(),
        steps,
        header,
        span: strategy.span.clone(),
        ingress_span: ingress.span.clone(),
    })
}

fn parse_steps(items: &[Node], errors: &mut Vec<ConfigError>) -> Vec<CanaryStep> {
    let mut steps = Vec::new();
    let mut last_weight: Option<u8> = None;
    for item in items {
        let Some(map) = MapReader::new(item, "a canary step", STEP_KEYS, errors) else {
            continue;
        };
        let present: Vec<&str> = STEP_KEYS
            .iter()
            .copied()
            .filter(|k| map.get(k).is_some())
            .collect();
        if present.len() != 1 {
            errors.push(invalid(
                format!(
                    "a canary step is one of `setWeight`, `pause`, `analysis`; this one has {}",
                    if present.is_empty() {
                        "none".to_string()
                    } else {
                        present.join(" and ")
                    }
                ),
                "write each step as its own list item",
                &item.span,
            ));
            continue;
        }
        let step = match present[0] {
            "setWeight" => weight(map.get("setWeight"), &mut last_weight, errors),
            "pause" => pause(map.get("pause"), errors),
            _ => analysis(map.get("analysis"), errors),
        };
        steps.extend(step);
    }
    steps
}

fn weight(
    node: Option<&Node>,
    last: &mut Option<u8>,
    errors: &mut Vec<ConfigError>,
) -> Option<CanaryStep> {
    let node = node?;
    let value = match &node.kind {
        NodeKind::Number(number) => number.as_u64().and_then(|n| u8::try_from(n).ok()),
        _ => None,
    };
    let Some(value) = value.filter(|v| *v <= 100) else {
        errors.push(invalid(
            "`setWeight` must be a whole number from 0 to 100",
            "the canary's share of the traffic, in percent",
            &node.span,
        ));
        return None;
    };
    if let Some(previous) = *last
        && value <= previous
    {
        errors.push(invalid(
            format!("`setWeight: {value}` does not increase on the step before it ({previous})"),
            "a canary's weights go up step by step",
            &node.span,
        ));
    }
    *last = Some(value);
    Some(CanaryStep::SetWeight(value))
}

fn pause(node: Option<&Node>, errors: &mut Vec<ConfigError>) -> Option<CanaryStep> {
    let node = node?;
    let parsed = match &node.kind {
        NodeKind::Mapping(entries) if entries.is_empty() => Some(None),
        NodeKind::Number(number) => number.as_u64().map(|s| Some(Duration::from_secs(s))),
        NodeKind::String(text) => parse_duration(text).map(Some),
        _ => None,
    };
    if parsed.is_none() {
        errors.push(invalid(
            "`pause` is not a duration or `{}`",
            "write a duration such as 30s or 2m, or `{}` to wait for `stack rollout promote`",
            &node.span,
        ));
    }
    parsed.map(CanaryStep::Pause)
}

fn analysis(node: Option<&Node>, errors: &mut Vec<ConfigError>) -> Option<CanaryStep> {
    let node = node?;
    let map = MapReader::new(node, "a canary analysis", ANALYSIS_KEYS, errors)?;
    if let Some(job) = map.string("job", errors).and_then(Node::as_str) {
        return Some(CanaryStep::Analysis(Analysis::Job(job.to_string())));
    }
    if map.bool("tests", errors) == Some(true) {
        return Some(CanaryStep::Analysis(Analysis::Tests));
    }
    errors.push(invalid(
        "a canary analysis runs nothing",
        "write `analysis: {tests: true}` (the release's tests) or `analysis: {job: NAME}`",
        &node.span,
    ));
    None
}
