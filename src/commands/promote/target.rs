//! The environment promoted into: its values file (one of its `values`
//! files, as `promotion.files` names it), parsed with spans, its merged
//! values, and the promotion log beside the file.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::settings::Settings;
use stack_core::diagnostic::SourceFile;
use stack_core::error::Errors;
use stack_core::load::config::{FileRef, Stack, ValuesSource};
use stack_core::load::project::Project;
use stack_core::promote::{PromoteError, log};
use stack_core::yaml::{self, Node, NodeKind};

/// The environment promoted into, and its values file.
pub struct Target {
    pub environment: String,
    pub path: PathBuf,
    pub file: Arc<SourceFile>,
    pub root: Node,
    /// Its merged values (all its values files and secrets).
    pub values: Arc<Value>,
    pub log: PathBuf,
}

impl Target {
    pub fn load(project: &Project, settings: &Settings, name: &str) -> Result<Self, Errors> {
        let stack = &project.stack;
        let resolved = crate::commands::env::resolve(stack, settings, name)?;
        let file = target_file(stack, name)?;
        let path = clean(&file.base.join(file.path.as_str().unwrap_or_default()));
        check_values_file(&resolved.environment, &path, file)?;
        let text = fs_err::read_to_string(&path).map_err(|source| {
            stack_core::load::config::ConfigError::Read {
                path: path.clone(),
                source,
                span: Some(file.path.span.clone()),
            }
        })?;
        let source = SourceFile::new(path.clone(), text);
        let root =
            yaml::parse_node(&source).map_err(stack_core::load::config::ConfigError::Syntax)?;
        if !matches!(root.kind, NodeKind::Mapping(_) | NodeKind::Null) {
            return Err(PromoteError::NotAMap {
                path,
                span: root.span.clone(),
            }
            .into());
        }
        Ok(Self {
            environment: name.to_string(),
            log: log::path_for(&path),
            path,
            file: source,
            root,
            values: resolved.values,
        })
    }
}

/// The values file `promotion.files` names for an environment.
fn target_file<'a>(stack: &'a Stack, name: &str) -> Result<&'a FileRef, Errors> {
    let promotion = super::promotion(stack)?;
    match promotion.files.iter().find(|t| t.environment == name) {
        Some(target) => Ok(&target.file),
        None => Err(PromoteError::NoTargetFile {
            environment: name.to_string(),
            known: promotion
                .files
                .iter()
                .map(|t| t.environment.clone())
                .collect(),
            span: promotion.span.clone(),
        }
        .into()),
    }
}

/// A file that is not among the environment's values files would not
/// change it. (Templated values paths are not checked.)
fn check_values_file(
    environment: &stack_core::load::config::Environment,
    path: &Path,
    file: &FileRef,
) -> Result<(), Errors> {
    let mut templated = false;
    let listed = environment.values.iter().any(|source| match source {
        ValuesSource::File(values) => {
            let text = values.path.as_str().unwrap_or_default();
            templated |= text.contains("{{");
            clean(&values.base.join(text)) == path
        }
        ValuesSource::Inline(_) => false,
    });
    if listed || templated {
        return Ok(());
    }
    Err(PromoteError::NotAValuesFile {
        path: path.to_path_buf(),
        environment: environment.name.clone(),
        span: file.path.span.clone(),
    }
    .into())
}

pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// `stacks/../environments/staging.yaml` → `environments/staging.yaml`.
fn clean(path: &Path) -> PathBuf {
    let mut cleaned = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir if cleaned.file_name().is_some() => {
                cleaned.pop();
            }
            Component::CurDir => {}
            other => cleaned.push(other),
        }
    }
    cleaned
}
