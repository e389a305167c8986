//! `stack promote`, the pure part: which values travel from one environment
//! to the next (the stack file's `promotion.paths` over the source's merged
//! values), how the target differs at them, and the text of the target's
//! values file with the promoted values written in (`edit`). The gate
//! (`gate`) and the provenance log (`log`) are here too; the command
//! (`commands::promote`) reads the cluster and writes the files.

pub mod edit;
pub mod gate;
pub mod log;
pub mod paths;

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::diagnostic::Span;
use paths::{Change, KeyPath};

#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error("this stack has no `promotion` section")]
    NoPromotion,
    #[error("`promotion.files` names no values file for environment `{environment}`")]
    NoTargetFile {
        environment: String,
        known: Vec<String>,
        span: Span,
    },
    #[error("cannot promote `{environment}` to itself")]
    SameEnvironment { environment: String },
    #[error("promotion path `{pattern}` matches nothing in the values of `{environment}`")]
    NoMatch {
        pattern: String,
        environment: String,
        span: Span,
    },
    #[error("`{path}` holds a value decrypted from a secret; secrets are not promoted")]
    SecretValue { path: String, span: Span },
    #[error(
        "{} is not one of the values files of `{environment}`",
        crate::diagnostic::display_path(path)
    )]
    NotAValuesFile {
        path: PathBuf,
        environment: String,
        span: Span,
    },
    #[error(
        "writing {} into {} would not give the promoted values; nothing written",
        key.as_deref().unwrap_or("the values"),
        crate::diagnostic::display_path(path)
    )]
    EditFailed { path: PathBuf, key: Option<String> },
    #[error(
        "{} must be a map of values to promote into",
        crate::diagnostic::display_path(path)
    )]
    NotAMap { path: PathBuf, span: Span },
    #[error("promotion from `{from}` refused: {} not verified there:\n  {}", count(refusals.len()), refusals.join("\n  "))]
    Refused { from: String, refusals: Vec<String> },
    #[error("{} was edited by hand since the last promotion ({time}):\n  {}", crate::diagnostic::display_path(path), edits.join("\n  "))]
    HandEdited {
        path: PathBuf,
        time: String,
        edits: Vec<String>,
    },
    #[error(
        "{}:{line}: not a promotion log entry: {reason}",
        crate::diagnostic::display_path(path)
    )]
    LogLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

fn count(releases: usize) -> String {
    if releases == 1 {
        "1 release is".into()
    } else {
        format!("{releases} releases are")
    }
}

impl PromoteError {
    pub fn span(&self) -> Option<&Span> {
        match self {
            Self::NoTargetFile { span, .. }
            | Self::NoMatch { span, .. }
            | Self::SecretValue { span, .. }
            | Self::NotAValuesFile { span, .. }
            | Self::NotAMap { span, .. } => Some(span),
            _ => None,
        }
    }

    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::NoPromotion => "add `promotion: {paths: [images], files: {staging: ../environments/staging.yaml}}` to a stack file".into(),
            Self::NoTargetFile { known, .. } if known.is_empty() => "add the environment and its values file under `promotion.files`".into(),
            Self::NoTargetFile { known, .. } => format!("`promotion.files` names: {}", known.join(", ")),
            Self::SameEnvironment { .. } => "--from is the verified environment, --to the one to update".into(),
            Self::NoMatch { .. } => "paths are dot-separated keys of the merged values; `*` matches one key".into(),
            Self::SecretValue { .. } => "promote the paths around it, and keep the secret in each environment's secrets file".into(),
            Self::NotAValuesFile { environment, .. } => format!("promoting into it would not change `{environment}`: list it under `environments.{environment}.values`, or name one of those files here"),
            Self::NotAMap { .. } => "a values file is a map of keys; fix the file, or start it with `{}`".into(),
            Self::Refused { .. } => "each line names the command that clears it once its cause is fixed; or pass --force to promote anyway (the log records it)".into(),
            Self::HandEdited { .. } => "to keep the edit, make it in the source environment and promote again (or revert it); --force overwrites it and the log records what it replaced".into(),
            Self::EditFailed { .. } => "simplify the YAML around that key (anchors, comments inside a flow map) or edit it by hand".into(),
            Self::LogLine { .. } => "the log is written by `stack promote`; restore the line from git".into(),
        })
    }
}

/// What a promotion moves, and what it changes in the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The concrete paths that travel, outermost only.
    pub paths: Vec<KeyPath>,
    /// Every promoted leaf with the source's value.
    pub values: Vec<(KeyPath, Value)>,
    /// Where the target's merged values differ, leaf by leaf.
    pub changes: Vec<Change>,
    /// Keys the target has under the promoted paths and the source has not;
    /// they are kept.
    pub kept: Vec<KeyPath>,
    /// Digest of the promoted values.
    pub digest: String,
}

/// Compute the promotion of `source` values into `target` values.
/// `is_secret` tells values that came from decrypted secrets.
pub fn plan(
    patterns: &[(String, Span)],
    source_name: &str,
    source: &Value,
    target: &Value,
    is_secret: impl Fn(&Value) -> bool,
) -> Result<Plan, Vec<PromoteError>> {
    let mut errors = Vec::new();
    let mut found = Vec::new();
    for (pattern, span) in patterns {
        let expanded = paths::expand(pattern, source);
        if expanded.is_empty() {
            errors.push(PromoteError::NoMatch {
                pattern: pattern.clone(),
                environment: source_name.to_string(),
                span: span.clone(),
            });
        }
        found.extend(expanded.into_iter().map(|path| (path, span.clone())));
    }
    let concrete = paths::outermost(found.iter().map(|(path, _)| path.clone()).collect());
    let mut values = Vec::new();
    let mut changes = Vec::new();
    let mut kept = Vec::new();
    let mut promoted = Value::Object(Map::new());
    for path in &concrete {
        let value = paths::get(source, path).cloned().unwrap_or(Value::Null);
        let mut leaves = Vec::new();
        paths::leaves(path, &value, &mut leaves);
        for (leaf, leaf_value) in &leaves {
            if is_secret(leaf_value) {
                let span = found
                    .iter()
                    .find(|(p, _)| p == path)
                    .map(|(_, s)| s.clone());
                errors.extend(span.map(|span| PromoteError::SecretValue {
                    path: paths::display(leaf),
                    span,
                }));
            }
        }
        paths::changes(path, &value, paths::get(target, path), &mut changes);
        paths::extra(path, &value, paths::get(target, path), &mut kept);
        crate::load::values::merge(&mut promoted, nested(path, value));
        values.extend(leaves);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Plan {
        paths: concrete,
        values,
        changes,
        kept,
        digest: stack_kube::revision::values_digest(&promoted),
    })
}

/// `{a: {b: value}}` for the keys `[a, b]`.
pub(crate) fn nested(keys: &[String], value: Value) -> Value {
    keys.iter().rev().fold(value, |inner, key| {
        let mut map = Map::new();
        map.insert(key.clone(), inner);
        Value::Object(map)
    })
}
