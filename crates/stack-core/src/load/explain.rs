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
use crate::load::render::Loaded;

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

/// A YAML file's tree, read at its canonical path (so locations read
/// `environments/x.yaml`, not `stacks/../environments/x.yaml`).
fn tree(file: &Path) -> Option<crate::yaml::Node> {
    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let text = std::fs::read_to_string(&file).ok()?;
    crate::yaml::parse_node(&SourceFile::new(&file, text)).ok()
}

/// Where `path` is written in a YAML file, if it is.
fn location_in(file: &Path, path: &[String]) -> Option<String> {
    let node = tree(file)?;
    node.at(path)?;
    location_at(&node, path)
}

/// The layer a file makes of `path`, if it sets it (a secrets file's
/// without its value).
fn in_file(file: &Path, path: &[String], secret: bool) -> Option<Layer> {
    let node = tree(file)?;
    let value = node.at(path)?.to_value();
    Some(Layer {
        source: location_at(&node, path)?,
        value: (!secret).then_some(value),
    })
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
    let (_, defaults) = chart_of(project, index);
    layers_over(project, index, dotted, &defaults)
}

/// The chart a release renders, if it loads, and its default values.
fn chart_of(project: &Project, index: usize) -> (Option<Loaded>, Value) {
    let release = &project.releases[index];
    let chart = crate::load::render::load_chart(&release.chart, &project.chart_context()).ok();
    let defaults = match &chart {
        Some(Loaded::Templates(chart) | Loaded::App(chart)) => chart.defaults.clone(),
        Some(Loaded::Helm(chart)) => chart.defaults.clone(),
        Some(Loaded::Objects(_)) | None => Value::Object(serde_json::Map::new()),
    };
    (chart, defaults)
}

/// [`layers`] over the chart's `defaults`, loaded once by the caller.
fn layers_over(
    project: &Project,
    index: usize,
    dotted: &str,
    defaults: &Value,
) -> Result<Vec<Layer>, Error> {
    let release = &project.releases[index];
    let path: Vec<String> = dotted.split('.').map(str::to_string).collect();
    let at = pointer(&path);
    let mut out = Vec::new();
    let mut merged = defaults.clone();
    if let Some(value) = defaults.pointer(&at) {
        let file = match &release.chart {
            ChartSource::Local(dir) | ChartSource::Helm(dir) => {
                location_in(&dir.join("values.yaml"), &path)
            }
            _ => None,
        };
        out.push(Layer {
            source: file.unwrap_or_else(|| format!("the defaults of chart {}", release.chart_name)),
            value: Some(value.clone()),
        });
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

/// Every scalar of a values tree as text, by dotted path.
fn leaves(value: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaves(child, &path, out);
            }
        }
        Value::String(text) => out.push((prefix.to_string(), text.clone())),
        Value::Number(_) | Value::Bool(_) => out.push((prefix.to_string(), value.to_string())),
        _ => {}
    }
}

/// What `stack diff --explain` tells of a release's changed lines: where
/// the value on the line was set — the layer that sets the values key it
/// shows, or the chart's template line that writes it.
pub struct Sources<'a> {
    project: &'a Project,
    index: usize,
    /// The chart's default values, loaded once.
    defaults: Value,
    leaves: Vec<(String, String)>,
    templates: Vec<(String, Vec<String>)>,
}

impl<'a> Sources<'a> {
    /// Whether the release's own values give `path` by an expression
    /// (`replicas: "{{ values.scale.web }}"`).
    fn is_expression(&self, path: &str) -> bool {
        let release = &self.project.releases[self.index];
        let keys: Vec<String> = path.split('.').map(str::to_string).collect();
        release.origins.iter().flatten().any(|origin| match origin {
            Origin::Inline(node) => (1..=keys.len())
                .rev()
                .find_map(|len| node.at(&keys[..len]))
                .is_some_and(|n| n.span.text().contains("{{")),
            _ => false,
        })
    }

    /// The values keys a line's value shows: those equal to it, else the
    /// longest it holds (one inside another is not told apart: `shop` in
    /// `example.com/shop/web`).
    fn candidates(&self, value: &str) -> Vec<&(String, String)> {
        let exact: Vec<&(String, String)> = self
            .leaves
            .iter()
            .filter(|(_, text)| text == value)
            .collect();
        if exact.is_empty() {
            let mut within: Vec<&(String, String)> = self
                .leaves
                .iter()
                .filter(|(_, text)| text.len() >= 3 && value.contains(text.as_str()))
                .collect();
            within.sort_by_key(|(_, text)| std::cmp::Reverse(text.len()));
            let mut kept: Vec<&(String, String)> = Vec::new();
            for candidate in within {
                let inside = kept.iter().any(|(_, longer)| {
                    longer.len() > candidate.1.len() && longer.contains(candidate.1.as_str())
                });
                if !inside {
                    kept.push(candidate);
                }
            }
            kept
        } else {
            exact
        }
    }

    /// A masked line's source: the values key the chart's template writes
    /// under `key` (`DATABASE_PASSWORD: {{ values.database.password }}`),
    /// and when the stack file gives that key by an expression, the
    /// environment's layer of the value it names — a file and line, never
    /// the value.
    fn masked(&self, key: &str) -> Option<String> {
        let line = self.templates.iter().find_map(|(_, lines)| {
            lines
                .iter()
                .find(|l| l.trim().starts_with(&format!("{key}:")) && l.contains("values."))
        })?;
        let path = named_value(line)?;
        let top = layers_over(self.project, self.index, &path, &self.defaults)
            .ok()?
            .pop()?;
        if !self.is_expression(&path) {
            let secret = if top.value.is_none() {
                ", a secret"
            } else {
                ""
            };
            return Some(format!("{} ({path}{secret})", top.source));
        }
        let release = &self.project.releases[self.index];
        let keys: Vec<String> = path.split('.').map(str::to_string).collect();
        let expression = release
            .origins
            .iter()
            .flatten()
            .find_map(|origin| match origin {
                Origin::Inline(node) => node.at(&keys).map(|n| n.span.text().to_string()),
                _ => None,
            })?;
        let source = named_value(&expression)?;
        let keys: Vec<String> = source.split('.').map(str::to_string).collect();
        let layer = environment_layers(self.project, &keys).pop()?;
        let secret = if layer.value.is_none() {
            ", a secret"
        } else {
            ""
        };
        Some(format!(
            "{} ({path}), from {} ({source}{secret})",
            top.source, layer.source
        ))
    }

    pub fn of(project: &'a Project, index: usize) -> Self {
        let (chart, defaults) = chart_of(project, index);
        let mut merged = defaults.clone();
        for layer in &project.releases[index].layers {
            crate::load::values::merge(&mut merged, Value::clone(layer));
        }
        let mut found = Vec::new();
        leaves(&merged, "", &mut found);
        let templates = match &chart {
            Some(Loaded::Templates(chart) | Loaded::App(chart)) => chart
                .template_sources()
                .map(|(_, source)| {
                    let lines = source.text.lines().map(str::to_string).collect();
                    (display_path(&source.path), lines)
                })
                .collect(),
            _ => Vec::new(),
        };
        Self {
            project,
            index,
            defaults,
            leaves: found,
            templates,
        }
    }

    /// Where the value of an added line (`+  image: web:1.2`) came from:
    /// the keys whose values it shows — those named as the line's key
    /// first, and when one is an expression of the stack file, the others
    /// it may take its value from — each with where it is set (three at
    /// most); else the chart's template line that writes it.
    pub fn annotate(&self, line: &str) -> Option<String> {
        let content = line
            .strip_prefix('+')
            .filter(|_| !line.starts_with("+++"))?
            .trim();
        let (key, value) = match content.split_once(": ") {
            Some((key, value)) => (key.trim_start_matches("- "), value),
            None => ("", content.trim_start_matches("- ")),
        };
        let value = value.trim().trim_matches('"');
        if value.starts_with("(sensitive value") {
            return self.masked(key);
        }
        if value.is_empty() {
            return None;
        }
        let candidates = self.candidates(value);
        let named = |(path, _): &&(String, String)| path.rsplit('.').next() == Some(key);
        let mut ordered: Vec<&(String, String)> =
            candidates.iter().copied().filter(named).collect();
        let expression =
            ordered.is_empty() || ordered.iter().any(|(path, _)| self.is_expression(path));
        if expression {
            ordered.extend(candidates.iter().copied().filter(|c| !named(c)));
        }
        let mut told: Vec<String> = Vec::new();
        for (path, _) in ordered {
            let Some(layer) = layers_over(self.project, self.index, path, &self.defaults)
                .ok()
                .and_then(|mut l| l.pop())
            else {
                continue;
            };
            if told
                .iter()
                .any(|t| t.starts_with(&format!("{} (", layer.source)))
            {
                continue;
            }
            let secret = if layer.value.is_none() {
                ", a secret"
            } else {
                ""
            };
            told.push(format!("{} ({path}{secret})", layer.source));
            if told.len() == 3 {
                break;
            }
        }
        if !told.is_empty() {
            return Some(told.join(", "));
        }
        self.templates.iter().find_map(|(file, lines)| {
            let number = lines.iter().position(|l| l.trim() == content)?;
            Some(format!("{file}:{} (written in the chart)", number + 1))
        })
    }
}

/// The values path an expression names first (`{{ values.db.password }}`
/// → `db.password`).
fn named_value(text: &str) -> Option<String> {
    let start = text.find("values.")? + "values.".len();
    let path: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .collect();
    let path = path.trim_end_matches('.').to_string();
    (!path.is_empty()).then_some(path)
}
