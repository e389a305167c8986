//! `stack explain RELEASE KEY.PATH`: where a release's value comes from —
//! every layer that sets it, from lowest to highest precedence, each with
//! its file and line: the chart's defaults, the environment's values files
//! and secrets files (never the secret itself), a preview's values, the
//! release's own values (inline or files) and `--set`.

use std::path::Path;

use serde_json::Value;

use crate::diagnostic::{SourceFile, display_path};
use crate::error::Error;
use crate::load::config::ValuesSource;
use crate::load::project::Project;
use crate::load::release::{ChartSource, Origin};

/// One layer that sets the value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Layer {
    /// `file:line:column`, `--set`, or what else set it.
    pub source: String,
    /// The value it sets; `None` for a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// The JSON pointer of a dotted path.
fn pointer(path: &[String]) -> String {
    path.iter().fold(String::new(), |mut out, key| {
        out.push('/');
        out.push_str(&key.replace('~', "~0").replace('/', "~1"));
        out
    })
}

/// Where `path` — or, when an expression gives it, the key above it
/// that holds the expression — is written in a tree.
fn location_at(node: &crate::yaml::Node, path: &[String]) -> Option<String> {
    (1..=path.len())
        .rev()
        .find_map(|len| node.at(&path[..len]))
        .map(|n| n.span.location())
}

/// Where `path` is written in a YAML file, if it is.
fn location_in(file: &Path, path: &[String]) -> Option<String> {
    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let text = std::fs::read_to_string(&file).ok()?;
    let source = SourceFile::new(&file, text);
    let node = crate::yaml::parse_node(&source).ok()?;
    node.at(path)?;
    location_at(&node, path)
}

fn in_file(file: &Path, path: &[String], secret: bool) -> Option<Layer> {
    let source = location_in(file, path)?;
    let value = if secret {
        None
    } else {
        let text = std::fs::read_to_string(file).ok()?;
        let parsed = crate::yaml::parse_values(&SourceFile::new(file, text)).ok()?;
        parsed.pointer(&pointer(path)).cloned()
    };
    Some(Layer { source, value })
}

/// The environment's layers (values, secrets, a preview's values).
fn environment_layers(project: &Project, path: &[String]) -> Vec<Layer> {
    let environment = &project.environment.environment;
    let secrets: Vec<std::path::PathBuf> = environment
        .secrets
        .iter()
        .filter_map(|f| f.path.as_str().map(|p| f.base.join(p)))
        .collect();
    let previews: Vec<&ValuesSource> = match &project.environment.group {
        Some(_) => environment.previews.values.iter().collect(),
        None => Vec::new(),
    };
    let mut out = Vec::new();
    let from = |source: &ValuesSource, out: &mut Vec<Layer>| match source {
        ValuesSource::File(file) => {
            if let Some(layer) = file
                .path
                .as_str()
                .and_then(|p| in_file(&file.base.join(p), path, false))
            {
                out.push(layer);
            }
        }
        ValuesSource::Inline(node) => {
            if let Some(found) = node.at(path) {
                out.push(Layer {
                    source: found.span.location(),
                    value: Some(found.to_value()),
                });
            }
        }
    };
    for source in &environment.values {
        from(source, &mut out);
    }
    out.extend(secrets.iter().filter_map(|file| in_file(file, path, true)));
    for source in previews {
        from(source, &mut out);
    }
    out
}

/// The value's layers, lowest first; a path set nowhere is an error that
/// names the closest one that is.
pub fn layers(project: &Project, index: usize, dotted: &str) -> Result<Vec<Layer>, Error> {
    let release = &project.releases[index];
    let path: Vec<String> = dotted.split('.').map(str::to_string).collect();
    let at = pointer(&path);
    let mut out = Vec::new();
    let context = project.chart_context();
    let mut merged = Value::Object(serde_json::Map::new());
    if let Ok(chart) = crate::load::render::load_chart(&release.chart, &context) {
        let defaults = match &chart {
            crate::load::render::Loaded::Templates(chart)
            | crate::load::render::Loaded::App(chart) => chart.defaults.clone(),
            crate::load::render::Loaded::Helm(chart) => chart.defaults.clone(),
            crate::load::render::Loaded::Objects(_) => Value::Null,
        };
        if let Some(value) = defaults.pointer(&at) {
            let file = match &release.chart {
                ChartSource::Local(dir) | ChartSource::Helm(dir) => {
                    location_in(&dir.join("values.yaml"), &path)
                }
                _ => None,
            };
            out.push(Layer {
                source: file
                    .unwrap_or_else(|| format!("the defaults of chart {}", release.chart_name)),
                value: Some(value.clone()),
            });
        }
        crate::load::values::merge(&mut merged, defaults);
    }
    for (layer, origin) in release.layers.iter().zip(&release.origins) {
        crate::load::values::merge(&mut merged, Value::clone(layer));
        let Some(value) = layer.pointer(&at) else {
            continue;
        };
        match origin {
            // The environment's merged values: told file by file.
            None => out.extend(environment_layers(project, &path)),
            Some(Origin::Set) => out.push(Layer {
                source: "--set".into(),
                value: Some(value.clone()),
            }),
            Some(Origin::Inline(node)) => out.push(Layer {
                source: location_at(node, &path)
                    .unwrap_or_else(|| display_path(release.span.path())),
                value: Some(value.clone()),
            }),
            Some(Origin::File(file)) => out.push(Layer {
                source: location_in(file, &path).unwrap_or_else(|| display_path(file)),
                value: Some(value.clone()),
            }),
        }
    }
    if out.is_empty() {
        let mut paths = Vec::new();
        collect_paths(&merged, "", &mut paths);
        return Err(Error::Failed {
            message: format!("release `{}` has no value `{dotted}`", release.id),
            hint: crate::suggest::nearest(dotted, paths.iter().map(String::as_str))
                .map(|closest| format!("did you mean `{closest}`?")),
        });
    }
    Ok(out)
}

/// Every dotted path of a values tree.
fn collect_paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Value::Object(map) = value {
        for (key, child) in map {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            collect_paths(child, &path, out);
            out.push(path);
        }
    }
}
