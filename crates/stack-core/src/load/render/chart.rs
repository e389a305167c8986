//! A chart: `chart.yaml`, `values.yaml`, `values.schema.json` and minijinja
//! templates under `templates/` (tests under `templates/tests/`, partials
//! named `_*` for `include`/`import` only). Loaded and compiled once per run,
//! shared by every release that uses it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::Environment;
use minijinja::value::Value as JinjaValue;
use serde_json::Value;

use crate::diagnostic::{SourceFile, Span};
use crate::load::config::ConfigError;
use crate::load::config::reader::MapReader;
use crate::load::render::RenderError;
use crate::load::render::expression::describe;
use crate::yaml;

const CHART_KEYS: &[&str] = &["name", "version", "description", "appVersion"];

pub struct Chart {
    pub dir: PathBuf,
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    /// `values.yaml`, the lowest layer of values.
    pub defaults: Value,
    schema: Option<(jsonschema::Validator, Arc<SourceFile>)>,
    env: Environment<'static>,
    /// Templates rendered into the release's objects, in name order.
    pub templates: Vec<String>,
    /// Templates rendered into its test objects.
    pub tests: Vec<String>,
    sources: HashMap<String, Arc<SourceFile>>,
}

impl Chart {
    /// The chart's template files, by name.
    pub fn template_sources(&self) -> impl Iterator<Item = (&String, &Arc<SourceFile>)> {
        self.sources.iter()
    }
}

/// One template's output.
pub struct Rendered {
    pub template: String,
    pub text: String,
}

/// Where a chart's files are read from.
#[derive(Clone, Copy)]
pub(crate) enum Files<'a> {
    /// A folder.
    Disk(&'a Path),
    /// Shipped inside the binary (`builtin:NAME`): each file's path within
    /// the chart, and its text.
    Embedded {
        name: &'a str,
        files: &'a [(&'static str, &'static str)],
    },
}

impl Files<'_> {
    /// What the chart is called where it is shown: its folder, or `builtin:NAME`.
    fn dir(self) -> PathBuf {
        match self {
            Self::Disk(dir) => dir.to_path_buf(),
            Self::Embedded { name, .. } => PathBuf::from(format!("builtin:{name}")),
        }
    }

    /// A file of the chart, if it has it.
    fn read_optional(
        self,
        relative: &str,
        errors: &mut Vec<RenderError>,
    ) -> Option<Arc<SourceFile>> {
        match self {
            Self::Disk(dir) => read_optional(&dir.join(relative), errors),
            Self::Embedded { files, .. } => files
                .iter()
                .find(|(path, _)| *path == relative)
                .map(|(path, text)| SourceFile::new(self.dir().join(path), (*text).to_string())),
        }
    }

    /// The files below `templates/`: name (`templates/x.yaml`), path, text.
    fn templates(self, errors: &mut Vec<RenderError>) -> Vec<(String, PathBuf, String)> {
        match self {
            Self::Disk(dir) => template_files(&dir.join("templates"), errors)
                .into_iter()
                .filter_map(|path| {
                    let relative = path.strip_prefix(dir).unwrap_or(&path);
                    let name = relative.to_string_lossy().replace('\\', "/");
                    match fs_err::read_to_string(&path) {
                        Ok(text) => Some((name, path, text)),
                        Err(source) => {
                            errors.push(RenderError::Read { path, source });
                            None
                        }
                    }
                })
                .collect(),
            Self::Embedded { files, .. } => files
                .iter()
                .filter(|(path, _)| path.starts_with("templates/"))
                .map(|(path, text)| {
                    (
                        (*path).to_string(),
                        self.dir().join(path),
                        (*text).to_string(),
                    )
                })
                .collect(),
        }
    }
}

impl Chart {
    pub fn load(dir: &Path, masks: &crate::mask::Masks) -> Result<Self, Vec<RenderError>> {
        Self::from_files(Files::Disk(dir), masks)
    }

    /// Load a chart from wherever its files are.
    pub(crate) fn from_files(
        files: Files<'_>,
        masks: &crate::mask::Masks,
    ) -> Result<Self, Vec<RenderError>> {
        let mut errors = Vec::new();
        let dir = files.dir();
        let folder_name = match files {
            Files::Embedded { name, .. } => name.to_string(),
            Files::Disk(dir) => dir.file_name().map_or_else(
                || "chart".to_string(),
                |name| name.to_string_lossy().into_owned(),
            ),
        };
        let (name, version, description) = read_metadata(files, &folder_name, &mut errors);
        let defaults = read_defaults(files, &mut errors);
        let schema = read_schema(files, &mut errors);
        let mut env = crate::load::render::filters::environment(masks);
        let mut templates = Vec::new();
        let mut tests = Vec::new();
        let mut sources = HashMap::new();
        for (name, path, text) in files.templates(&mut errors) {
            let source = SourceFile::new(path.clone(), text.clone());
            if let Err(error) = env.add_template_owned(name.clone(), text) {
                errors.push(template_error(&error, &source, None));
                continue;
            }
            let file_name = path.file_name().unwrap_or_default().to_string_lossy();
            let is_yaml = file_name.ends_with(".yaml") || file_name.ends_with(".yml");
            if is_yaml && !file_name.starts_with('_') {
                if name.starts_with("templates/tests/") {
                    tests.push(name.clone());
                } else {
                    templates.push(name.clone());
                }
            }
            sources.insert(name, source);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            dir,
            name,
            version,
            description,
            defaults,
            schema,
            env,
            templates,
            tests,
            sources,
        })
    }

    pub fn environment(&self) -> &Environment<'static> {
        &self.env
    }

    /// Check merged values against `values.schema.json`: every violation,
    /// named by its value path.
    /// Check merged values against the chart's schema; `locate` tells where
    /// the value at a path (JSON pointer segments) was set.
    pub fn validate(
        &self,
        release: &str,
        values: &Value,
        locate: impl Fn(&[String]) -> Option<Span>,
    ) -> Result<(), Vec<RenderError>> {
        let Some((validator, source)) = &self.schema else {
            return Ok(());
        };
        let errors: Vec<RenderError> = validator
            .iter_errors(values)
            .map(|error| {
                let pointer = error.instance_path().to_string();
                let segments: Vec<String> = pointer
                    .split('/')
                    .skip(1)
                    .map(|s| s.replace("~1", "/").replace("~0", "~"))
                    .collect();
                RenderError::Schema {
                    release: release.to_string(),
                    path: value_path(&pointer),
                    message: error.to_string(),
                    span: locate(&segments).unwrap_or_else(|| Span::file_start(source)),
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Render the named templates with one context.
    pub fn render(
        &self,
        release: &str,
        names: &[String],
        context: &JinjaValue,
    ) -> Result<Vec<Rendered>, Vec<RenderError>> {
        let mut rendered = Vec::with_capacity(names.len());
        let mut errors = Vec::new();
        for name in names {
            let result = self
                .env
                .get_template(name)
                .and_then(|template| template.render(context));
            match result {
                Ok(text) => rendered.push(Rendered {
                    template: name.clone(),
                    text,
                }),
                Err(error) => {
                    let source = error
                        .name()
                        .and_then(|failing| self.sources.get(failing))
                        .or_else(|| self.sources.get(name));
                    match source {
                        Some(source) => errors.push(template_error(&error, source, Some(release))),
                        None => errors.push(RenderError::Template {
                            release: Some(release.to_string()),
                            template: name.clone(),
                            message: describe(&error),
                            span: None,
                        }),
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(rendered)
        } else {
            Err(errors)
        }
    }
}

fn template_error(
    error: &minijinja::Error,
    source: &Arc<SourceFile>,
    release: Option<&str>,
) -> RenderError {
    let span = error
        .range()
        .map(|range| Span::new(source, range))
        .or_else(|| {
            error.line().map(|line| {
                let start = source.offset_of(line, 1);
                let end = source.text[start..]
                    .find('\n')
                    .map_or(source.text.len(), |i| start + i);
                Span::new(source, start..end)
            })
        });
    RenderError::Template {
        release: release.map(str::to_string),
        template: error
            .name()
            .map_or_else(|| source.path.display().to_string(), str::to_string),
        message: describe(error),
        span,
    }
}

/// `/db/port` → `db.port`; `/hosts/0` → `hosts[0]`; the root → `(root)`.
fn value_path(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.parse::<usize>().is_ok() {
            path.push('[');
            path.push_str(&segment);
            path.push(']');
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&segment);
        }
    }
    if path.is_empty() {
        "(root)".into()
    } else {
        path
    }
}

fn read_metadata(
    files: Files<'_>,
    folder_name: &str,
    errors: &mut Vec<RenderError>,
) -> (String, Option<String>, Option<String>) {
    let mut name = folder_name.to_string();
    let (mut version, mut description) = (None, None);
    let Some(source) = files.read_optional("chart.yaml", errors) else {
        return (name, version, description);
    };
    let mut config_errors = Vec::new();
    match yaml::parse_node(&source) {
        Ok(node) if node.is_null() => {}
        Ok(node) => {
            if let Some(map) = MapReader::new(&node, "chart.yaml", CHART_KEYS, &mut config_errors) {
                let text = |key| {
                    map.get(key).map(|node: &yaml::Node| match node.as_str() {
                        Some(text) => text.to_string(),
                        None => node.to_value().to_string(),
                    })
                };
                name = text("name").unwrap_or(name);
                version = text("version");
                description = text("description");
            }
        }
        Err(error) => config_errors.push(ConfigError::Syntax(error)),
    }
    errors.extend(config_errors.into_iter().map(RenderError::Config));
    (name, version, description)
}

fn read_defaults(files: Files<'_>, errors: &mut Vec<RenderError>) -> Value {
    let empty = Value::Object(serde_json::Map::new());
    let Some(source) = files.read_optional("values.yaml", errors) else {
        return empty;
    };
    match yaml::parse_values(&source) {
        Ok(value) if value.is_object() => value,
        Ok(_) => {
            errors.push(RenderError::Config(ConfigError::Invalid {
                message: "values.yaml must be a map of values".into(),
                span: Span::file_start(&source),
                hint: None,
            }));
            empty
        }
        Err(error) => {
            errors.push(RenderError::Config(ConfigError::Syntax(error)));
            empty
        }
    }
}

fn read_schema(
    files: Files<'_>,
    errors: &mut Vec<RenderError>,
) -> Option<(jsonschema::Validator, Arc<SourceFile>)> {
    let source = files.read_optional("values.schema.json", errors)?;
    let schema: Value = match serde_json::from_str(&source.text) {
        Ok(schema) => schema,
        Err(error) => {
            let offset = source.offset_of(error.line(), error.column());
            errors.push(RenderError::Config(ConfigError::Invalid {
                message: format!("invalid JSON: {error}"),
                span: Span::new(&source, offset..offset),
                hint: None,
            }));
            return None;
        }
    };
    match jsonschema::validator_for(&schema) {
        Ok(validator) => Some((validator, source)),
        Err(error) => {
            errors.push(RenderError::Config(ConfigError::Invalid {
                message: format!("invalid JSON Schema: {error}"),
                span: Span::file_start(&source),
                hint: None,
            }));
            None
        }
    }
}

fn read_optional(path: &Path, errors: &mut Vec<RenderError>) -> Option<Arc<SourceFile>> {
    if !path.exists() {
        return None;
    }
    match fs_err::read_to_string(path) {
        Ok(text) => Some(SourceFile::new(path, text)),
        Err(source) => {
            errors.push(RenderError::Read {
                path: path.to_path_buf(),
                source,
            });
            None
        }
    }
}

/// Every file below `templates/`, sorted, recursively — leaving out hidden
/// files and editors' leftovers (`.x.swp`, `x~`, `#x#`), and refusing links
/// that lead outside the chart.
fn template_files(dir: &Path, errors: &mut Vec<RenderError>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let chart = dir
        .parent()
        .and_then(|parent| parent.canonicalize().ok())
        .unwrap_or_else(|| dir.to_path_buf());
    let mut pending = vec![dir.to_path_buf()];
    // Folders read so far, so that a link to a folder above cannot loop.
    let mut visited = std::collections::HashSet::new();
    while let Some(current) = pending.pop() {
        if !visited.insert(current.canonicalize().unwrap_or_else(|_| current.clone())) {
            continue;
        }
        let entries = match fs_err::read_dir(&current) {
            Ok(entries) => entries,
            Err(source) => {
                if current != dir || dir.exists() {
                    errors.push(RenderError::Read {
                        path: current,
                        source,
                    });
                }
                continue;
            }
        };
        for entry in entries.flatten() {
            if is_leftover(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let path = entry.path();
            if entry.file_type().is_ok_and(|kind| kind.is_symlink()) {
                match path.canonicalize() {
                    Ok(target) if !target.starts_with(&chart) => {
                        errors.push(RenderError::LinkOutsideChart { link: path, target });
                        continue;
                    }
                    Ok(_) => {}
                    Err(source) => {
                        errors.push(RenderError::Read { path, source });
                        continue;
                    }
                }
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Hidden files and what editors leave beside the files they edit.
fn is_leftover(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || (name.len() > 1 && name.starts_with('#') && name.ends_with('#'))
}

#[cfg(test)]
mod tests {
    use super::value_path;

    #[test]
    fn schema_paths_read_like_values() {
        assert_eq!(value_path("/db/port"), "db.port");
        assert_eq!(value_path("/hosts/0/name"), "hosts[0].name");
        assert_eq!(value_path(""), "(root)");
    }
}
