//! A release's `strategy:`: `blueGreen` (the Services it switches, a
//! preview Service, how long the previous colour is kept) or `canary` (the
//! Ingress that carries the traffic, its steps, a header that always
//! reaches the canary, experimental variants). Every problem is located;
//! weights must be 0–100 and increasing (with variants: none decreasing,
//! their sum increasing and at most 100), pauses durations or `{}`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::diagnostic::Span;
use crate::load::config::reader::{MapReader, expect_string, parse_duration, wrong_type};
use crate::load::config::{BlueGreenSpec, ConfigError, StrategySpec};
use crate::yaml::{Node, NodeKind};

const STRATEGY_KEYS: &[&str] = &["blueGreen", "canary"];
const BLUE_GREEN_KEYS: &[&str] = &["service", "previewService", "keepPrevious"];
const CANARY_KEYS: &[&str] = &["ingress", "steps", "header", "variants"];
const VARIANT_KEYS: &[&str] = &["values"];
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
    /// Experimental versions run at once (`variants:`), by name; none: the
    /// canary is the release's new version.
    pub variants: Vec<Variant>,
    /// Where `strategy:` is written.
    pub span: Span,
    /// Where the Ingress is named.
    pub ingress_span: Span,
}

impl PartialEq for CanarySpec {
    fn eq(&self, other: &Self) -> bool {
        (&self.ingress, &self.steps, &self.header, &self.variants)
            == (&other.ingress, &other.steps, &other.header, &other.variants)
    }
}

/// An experimental version of a canary release: the release rendered with
/// these values over its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub name: String,
    pub values: serde_json::Value,
}

/// A `setWeight` step's shares of the traffic, in percent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Weights {
    /// The canary's share, or each variant's.
    Each(u8),
    /// Each variant's own (`setWeight: {a: 10, b: 25}`; a variant not named
    /// gets none).
    Per(BTreeMap<String, u8>),
}

impl Weights {
    /// The share of `variant` (of the canary when there are no variants).
    pub fn of(&self, variant: &str) -> u8 {
        match self {
            Self::Each(weight) => *weight,
            Self::Per(weights) => weights.get(variant).copied().unwrap_or(0),
        }
    }
}

impl CanarySpec {
    /// Every variant's share at `weights`, by name (one unnamed entry, `""`,
    /// for a canary without variants).
    pub fn shares(&self, weights: &Weights) -> BTreeMap<String, u8> {
        if self.variants.is_empty() {
            return BTreeMap::from([(String::new(), weights.of(""))]);
        }
        self.variants
            .iter()
            .map(|v| (v.name.clone(), weights.of(&v.name)))
            .collect()
    }
}

/// One step of a canary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanaryStep {
    /// The canary's share of the traffic (each variant's), in percent.
    SetWeight(Weights),
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
    let variants = map
        .get("variants")
        .map(|node| parse_variants(node, errors))
        .unwrap_or_default();
    let names: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
    let steps_node = map.get("steps");
    let steps = parse_steps(map.list("steps", errors), &names, errors);
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
        variants,
        span: strategy.span.clone(),
        ingress_span: ingress.span.clone(),
    })
}

/// `variants: {NAME: {values: {…}}}`: names are DNS labels (they end the
/// names of the variant's objects), values a map.
fn parse_variants(node: &Node, errors: &mut Vec<ConfigError>) -> Vec<Variant> {
    let NodeKind::Mapping(entries) = &node.kind else {
        errors.push(wrong_type(
            "variants",
            "a map of variant names to `{values: …}`",
            node,
        ));
        return Vec::new();
    };
    let mut variants = Vec::new();
    for (key, body) in entries {
        let valid = !key.name.is_empty()
            && key.name.len() <= 20
            && key.name.starts_with(|c: char| c.is_ascii_lowercase())
            && key
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !key.name.ends_with('-');
        if !valid {
            errors.push(invalid(
                format!("variant name `{}` is not a DNS label", key.name),
                "a variant's name ends its objects' names: lowercase letters, digits and '-', starting with a letter, at most 20 characters",
                &key.span,
            ));
            continue;
        }
        let Some(map) = MapReader::new(body, "a canary variant", VARIANT_KEYS, errors) else {
            continue;
        };
        let values = match map.get("values") {
            Some(values) if matches!(values.kind, NodeKind::Mapping(_)) => values.to_value(),
            Some(other) => {
                errors.push(wrong_type("values", "a map of values", other));
                continue;
            }
            None => serde_json::Value::Object(serde_json::Map::new()),
        };
        variants.push(Variant {
            name: key.name.clone(),
            values,
        });
    }
    if variants.is_empty() && errors.is_empty() {
        errors.push(invalid(
            "`strategy.canary.variants` names no variant",
            "write `variants: {a: {values: {…}}}`, or leave `variants` out for a canary of the release's new version",
            &node.span,
        ));
    }
    variants
}

fn parse_steps(
    items: &[Node],
    variants: &[&str],
    errors: &mut Vec<ConfigError>,
) -> Vec<CanaryStep> {
    let mut steps = Vec::new();
    let mut last_weight: Option<Weights> = None;
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
            "setWeight" => weight(map.get("setWeight"), variants, &mut last_weight, errors),
            "pause" => pause(map.get("pause"), errors),
            _ => analysis(map.get("analysis"), errors),
        };
        steps.extend(step);
    }
    steps
}

fn weight(
    node: Option<&Node>,
    variants: &[&str],
    last: &mut Option<Weights>,
    errors: &mut Vec<ConfigError>,
) -> Option<CanaryStep> {
    let node = node?;
    let percent = |node: &Node, errors: &mut Vec<ConfigError>| {
        let value = match &node.kind {
            NodeKind::Number(number) => number.as_u64().and_then(|n| u8::try_from(n).ok()),
            _ => None,
        };
        let value = value.filter(|v| *v <= 100);
        if value.is_none() {
            errors.push(invalid(
                "`setWeight` must be a whole number from 0 to 100",
                "the canary's share of the traffic, in percent",
                &node.span,
            ));
        }
        value
    };
    let weights = match &node.kind {
        NodeKind::Mapping(entries) if !variants.is_empty() => {
            let mut per = BTreeMap::new();
            for (key, value) in entries {
                if !variants.contains(&key.name.as_str()) {
                    errors.push(invalid(
                        format!(
                            "`setWeight` names variant `{}`, which is not declared",
                            key.name
                        ),
                        &format!("the variants are: {}", variants.join(", ")),
                        &key.span,
                    ));
                    return None;
                }
                per.insert(key.name.clone(), percent(value, errors)?);
            }
            Weights::Per(per)
        }
        NodeKind::Mapping(_) => {
            errors.push(invalid(
                "`setWeight` gives weights by variant, but the canary has no `variants`",
                "write `setWeight: 10`, or declare `variants:`",
                &node.span,
            ));
            return None;
        }
        _ => Weights::Each(percent(node, errors)?),
    };
    let count = variants.len().max(1);
    let names: Vec<&str> = if variants.is_empty() {
        vec![""]
    } else {
        variants.to_vec()
    };
    let total = |w: &Weights| names.iter().map(|n| u32::from(w.of(n))).sum::<u32>();
    if total(&weights) > 100 {
        errors.push(invalid(
            format!(
                "`setWeight` gives the variants {}% of the traffic in all",
                total(&weights)
            ),
            &format!("the {count} variants' weights add up to at most 100"),
            &node.span,
        ));
    }
    if let Some(previous) = last.as_ref() {
        let lower = names.iter().find(|n| weights.of(n) < previous.of(n));
        if total(&weights) <= total(previous) || lower.is_some() {
            let what = match lower {
                Some(name) if !name.is_empty() => format!("variant `{name}`'s weight"),
                _ => "the weight".into(),
            };
            errors.push(invalid(
                format!(
                    "`setWeight` does not increase on the step before it ({what}: {} after {})",
                    lower.map_or(total(&weights), |n| u32::from(weights.of(n))),
                    lower.map_or(total(previous), |n| u32::from(previous.of(n)))
                ),
                "a canary's weights go up step by step",
                &node.span,
            ));
        }
    }
    *last = Some(weights.clone());
    Some(CanaryStep::SetWeight(weights))
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
