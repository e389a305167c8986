//! `stack import helmfile`: a helmfile.yaml (its `---`-separated parts and
//! its `bases:` layered) into a stack file, and environment values files for the values
//! it writes inline. The Go-template expressions people write in
//! helmfile.yaml become their minijinja equivalents (`{{ .Values.x }}`,
//! `{{ .Environment.Name }}`, `{{ requiredEnv "X" }}`, `{{ env "X" |
//! default "y" }}`, `{{ .Release.Name }}`); anything else is kept as written
//! and listed as not converted, with why. helm-secrets files are SOPS files
//! and are named as they are.

pub mod compose;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value, json};

use crate::diagnostic::SourceFile;
use crate::load::config::ConfigError;

/// What an import makes: files to write (relative to the output folder)
/// and, per part of the helmfile, how it converted.
#[derive(Debug)]
pub struct Imported {
    pub files: Vec<(PathBuf, String)>,
    pub report: Vec<Converted>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// `release web`, `environment staging`, …
    pub part: String,
    /// Whether it converted as it is.
    pub converted: bool,
    pub note: String,
}

/// Read a helmfile.yaml and make the stack that does what it does; paths
/// in it are made relative to `output`.
pub fn helmfile(path: &Path, output: &Path) -> Result<Imported, ConfigError> {
    let base = path.parent().unwrap_or(Path::new("."));
    let mut import = Import {
        base: base.to_path_buf(),
        output: output.to_path_buf(),
        report: Vec::new(),
        files: Vec::new(),
    };
    let mut read = Vec::new();
    let merged = layered(path, base, &mut read)?;
    if read.len() > 1 {
        import.note(
            "`bases`",
            true,
            format!(
                "{} files layered under it (maps merged, lists appended, as helmfile does)",
                read.len() - 1
            ),
        );
    }
    let stack = import.stack(&merged);
    let mut files = vec![(
        PathBuf::from("stack.yaml"),
        header() + &crate::yaml::to_string(&stack),
    )];
    files.append(&mut import.files);
    Ok(Imported {
        files,
        report: import.report,
    })
}

/// A helmfile's parts merged, over its `bases:` (paths relative to the
/// imported helmfile's folder, bases of bases included), as helmfile
/// layers them: maps merged, lists appended, the later part winning. A
/// file already read is not read again.
fn layered(
    path: &Path,
    base: &Path,
    read: &mut Vec<PathBuf>,
) -> Result<Map<String, Value>, ConfigError> {
    let canonical = fs_err::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if read.contains(&canonical) {
        return Ok(Map::new());
    }
    read.push(canonical);
    let text = fs_err::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
        span: None,
    })?;
    let mut own = Map::new();
    for part in text.split("\n---") {
        let source = SourceFile::new(path, quote_templates(part));
        if let Value::Object(map) = crate::yaml::parse_values(&source)? {
            layer(&mut own, map);
        }
    }
    let mut merged = Map::new();
    let bases = own.remove("bases");
    for base_file in bases.iter().filter_map(Value::as_array).flatten() {
        if let Some(file) = base_file.as_str() {
            layer(&mut merged, layered(&base.join(file), base, read)?);
        }
    }
    layer(&mut merged, own);
    Ok(merged)
}

/// Merge `over` into `under`: maps key by key, lists appended, anything
/// else replaced.
fn layer(under: &mut Map<String, Value>, over: Map<String, Value>) {
    for (key, value) in over {
        match (under.get_mut(&key), value) {
            (Some(Value::Object(below)), Value::Object(above)) => layer(below, above),
            (Some(Value::Array(below)), Value::Array(above)) => below.extend(above),
            (_, value) => {
                under.insert(key, value);
            }
        }
    }
}

fn header() -> String {
    "# Imported from helmfile.yaml by `stack import helmfile`.\n".into()
}

struct Import {
    base: PathBuf,
    output: PathBuf,
    report: Vec<Converted>,
    files: Vec<(PathBuf, String)>,
}

impl Import {
    fn note(&mut self, part: impl Into<String>, converted: bool, note: impl Into<String>) {
        self.report.push(Converted {
            part: part.into(),
            converted,
            note: note.into(),
        });
    }

    fn stack(&mut self, helmfile: &Map<String, Value>) -> Value {
        let mut stack = Map::new();
        for (key, value) in helmfile {
            match key.as_str() {
                "repositories" => {
                    stack.insert("repositories".into(), self.repositories(value));
                }
                "helmDefaults" => {
                    stack.insert("defaults".into(), self.options(value, "helmDefaults"));
                }
                "environments" => {
                    stack.insert("environments".into(), self.environments(value));
                }
                "releases" => {
                    let releases = value
                        .as_array()
                        .map(|list| list.iter().map(|r| self.release(r)).collect())
                        .unwrap_or_default();
                    stack.insert("releases".into(), Value::Array(releases));
                }
                other => self.note(
                    format!("`{other}`"),
                    false,
                    "not imported: stack has no equivalent yet (helmfiles: import each)",
                ),
            }
        }
        Value::Object(stack)
    }

    fn repositories(&mut self, value: &Value) -> Value {
        let list: Vec<Value> = value
            .as_array()
            .into_iter()
            .flatten()
            .map(|repository| {
                let mut out = Map::new();
                for key in ["name", "url", "oci"] {
                    if let Some(v) = repository.get(key) {
                        out.insert(key.into(), v.clone());
                    }
                }
                Value::Object(out)
            })
            .collect();
        self.note("repositories", true, format!("{} repositories", list.len()));
        Value::Array(list)
    }

    /// helmDefaults and a release's options: `timeout` in seconds becomes
    /// a duration.
    fn options(&mut self, value: &Value, part: &str) -> Value {
        let mut out = Map::new();
        for (key, v) in value.as_object().into_iter().flatten() {
            match key.as_str() {
                "wait" | "atomic" | "createNamespace" => {
                    out.insert(key.clone(), v.clone());
                }
                "timeout" => {
                    out.insert(
                        key.clone(),
                        json!(format!("{}s", v.as_u64().unwrap_or(300))),
                    );
                }
                other => self.note(part, false, format!("`{other}` is not imported")),
            }
        }
        Value::Object(out)
    }

    fn environments(&mut self, value: &Value) -> Value {
        let mut out = Map::new();
        for (name, environment) in value.as_object().into_iter().flatten() {
            let mut env = Map::new();
            let mut files = Vec::new();
            for (index, item) in environment["values"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                match item {
                    Value::String(path) => files.push(json!(self.path(path))),
                    inline => {
                        let file = PathBuf::from(format!("environments/{name}-{index}.yaml"));
                        let text = crate::yaml::to_string(&convert_value(inline, None));
                        files.push(json!(file.to_string_lossy()));
                        self.files.push((file, text));
                    }
                }
            }
            if !files.is_empty() {
                env.insert("values".into(), Value::Array(files));
            }
            let secrets = self.paths(&environment["secrets"]);
            if !secrets.is_empty() {
                env.insert("secrets".into(), Value::Array(secrets));
            }
            if let Some(context) = environment["kubeContext"].as_str() {
                env.insert("kubeContext".into(), json!(context));
            }
            self.note(
                format!("environment {name}"),
                true,
                "values and secrets files named as they are",
            );
            out.insert(name.clone(), Value::Object(env));
        }
        Value::Object(out)
    }

    fn release(&mut self, release: &Value) -> Value {
        let name = release["name"].as_str().unwrap_or_default().to_string();
        let namespace = release["namespace"].as_str().map(str::to_string);
        let names = (name.as_str(), namespace.as_deref().unwrap_or("default"));
        let part = format!("release {name}");
        let mut out = Map::new();
        let mut inline = Map::new();
        let mut problems = Vec::new();
        for (key, value) in release.as_object().into_iter().flatten() {
            match key.as_str() {
                "name" | "namespace" | "version" | "installed" => {
                    let converted = convert_value(value, Some(names));
                    problems.extend(unconverted(&converted));
                    out.insert(key.clone(), converted);
                }
                "chart" => {
                    let chart = value.as_str().unwrap_or_default();
                    let local = chart.starts_with('.') || chart.starts_with('/');
                    out.insert(
                        key.clone(),
                        json!(if local {
                            self.path(chart)
                        } else {
                            chart.to_string()
                        }),
                    );
                }
                "labels" | "needs" => {
                    out.insert(key.clone(), value.clone());
                }
                "values" => {
                    let values = self.release_values(value, names, &mut problems);
                    out.insert("values".into(), values);
                }
                "secrets" => {
                    out.insert("secrets".into(), Value::Array(self.paths(value)));
                }
                "set" => {
                    for item in value.as_array().into_iter().flatten() {
                        let path = item["name"].as_str().unwrap_or_default();
                        let value = convert_value(&item["value"], Some(names));
                        set_path(&mut inline, path, value);
                    }
                }
                "createNamespace" | "atomic" | "wait" | "timeout" => {
                    let options = self.options(&json!({key.clone(): value.clone()}), &part);
                    if let Value::Object(options) = options {
                        out.extend(options);
                    }
                }
                other => problems.push(format!("`{other}` is not imported")),
            }
        }
        if !inline.is_empty() {
            let values = out.entry("values").or_insert_with(|| json!([]));
            if let Value::Array(list) = values {
                list.push(Value::Object(inline));
            }
        }
        if problems.is_empty() {
            self.note(part, true, "converted");
        } else {
            self.note(part, false, problems.join("; "));
        }
        Value::Object(out)
    }

    /// A release's `values:`: files (relative to the output) and inline
    /// values (converted).
    fn release_values(
        &self,
        value: &Value,
        names: (&str, &str),
        problems: &mut Vec<String>,
    ) -> Value {
        let mut list = Vec::new();
        for item in value.as_array().into_iter().flatten() {
            match item {
                Value::String(path) if path.ends_with(".gotmpl") => {
                    match self.template_values(path, names) {
                        Ok(values) => list.push(values),
                        Err(problem) => {
                            problems.push(problem);
                            list.push(json!(self.path(path)));
                        }
                    }
                }
                Value::String(path) => list.push(json!(self.path(path))),
                other => {
                    let converted = convert_value(other, Some(names));
                    problems.extend(unconverted(&converted));
                    list.push(converted);
                }
            }
        }
        Value::Array(list)
    }

    /// A `.gotmpl` values file whose expressions all convert: its values,
    /// converted, inline (a release's inline values are minijinja
    /// templates in stack). Why not, otherwise.
    fn template_values(&self, path: &str, names: (&str, &str)) -> Result<Value, String> {
        let refused = |why: &str| {
            format!("{path} is a Go template {why} (render it, or rewrite it as values)")
        };
        let text = fs_err::read_to_string(self.base.join(path)).map_err(|e| {
            refused(&format!(
                "that cannot be read ({})",
                crate::diagnostic::io_reason(&e)
            ))
        })?;
        let source = SourceFile::new(Path::new(path), quote_templates(&text));
        let values = crate::yaml::parse_values(&source)
            .map_err(|_| refused("that is not YAML once its expressions are quoted"))?;
        let converted = convert_value(&values, Some(names));
        let left = unconverted(&converted);
        if !left.is_empty() {
            return Err(refused(&format!(
                "with expressions that do not convert: {}",
                left.join(", ")
            )));
        }
        Ok(converted)
    }

    /// A list of helmfile paths, relative to the output folder.
    fn paths(&self, value: &Value) -> Vec<Value> {
        value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|path| json!(self.path(path)))
            .collect()
    }

    /// A helmfile path, relative to the output folder.
    fn path(&self, path: &str) -> String {
        let absolute = self.base.join(path);
        relative(&absolute, &self.output)
            .to_string_lossy()
            .into_owned()
    }
}

/// Every string of a value with its templates converted.
fn convert_value(value: &Value, release: Option<(&str, &str)>) -> Value {
    match value {
        Value::String(text) => json!(convert(text, release)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| convert_value(v, release)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), convert_value(v, release)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The expressions left in Go-template form in a converted value.
fn unconverted(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => GO_TEMPLATE
            .find_iter(text)
            .map(|m| format!("`{}` is not converted (stack's expressions are minijinja: `{{{{ values.x }}}}`)", m.as_str()))
            .collect(),
        Value::Array(items) => items.iter().flat_map(unconverted).collect(),
        Value::Object(map) => map.values().flat_map(unconverted).collect(),
        _ => Vec::new(),
    }
}

static GO_TEMPLATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{\{-?\s*(?:\.|[a-z]+ )[^}]*\}\}").expect("a valid regex"));

/// The common helmfile expressions in minijinja.
fn convert(text: &str, release: Option<(&str, &str)>) -> String {
    static RULES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
        [
            (
                r"\{\{-?\s*\.(?:State)?Values\.([A-Za-z0-9_.]+)\s*-?\}\}",
                "{{ values.$1 }}",
            ),
            (
                r"\{\{-?\s*\.Environment\.Name\s*-?\}\}",
                "{{ environment.name }}",
            ),
            (
                r#"\{\{-?\s*requiredEnv\s+"([^"]+)"\s*-?\}\}"#,
                "{{ required_env('$1') }}",
            ),
            (
                r#"\{\{-?\s*env\s+"([^"]+)"\s*\|\s*default\s+"([^"]*)"\s*-?\}\}"#,
                "{{ env('$1') | default('$2') }}",
            ),
            (r#"\{\{-?\s*env\s+"([^"]+)"\s*-?\}\}"#, "{{ env('$1') }}"),
        ]
        .into_iter()
        .map(|(pattern, to)| (Regex::new(pattern).expect("a valid regex"), to))
        .collect()
    });
    let mut out = text.to_string();
    for (pattern, to) in RULES.iter() {
        out = pattern.replace_all(&out, *to).into_owned();
    }
    if let Some((name, namespace)) = release {
        out = out
            .replace("{{ .Release.Name }}", name)
            .replace("{{ .Release.Namespace }}", namespace);
    }
    out
}

/// helmfile.yaml is a Go template before it is YAML: a value that is one
/// `{{ … }}` unquoted is quoted, so that it reads as YAML.
fn quote_templates(text: &str) -> String {
    static WHOLE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?m)^([ \t]*(?:-[ \t]+)?(?:[A-Za-z0-9_.\-]+:[ \t]+)?)(\{\{[^\n]*\}\})[ \t]*$")
            .expect("a valid regex")
    });
    WHOLE
        .replace_all(text, |captures: &regex::Captures<'_>| {
            format!("{}'{}'", &captures[1], captures[2].replace('\'', "''"))
        })
        .into_owned()
}

/// Set `a.b.c` in a map of maps.
fn set_path(map: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut current = map;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            current.insert(part.to_string(), value);
            return;
        }
        let next = current
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(inner) = next else { return };
        current = inner;
    }
}

/// `path` relative to `from` (both absolute or both relative to one place).
fn relative(path: &Path, from: &Path) -> PathBuf {
    let path: Vec<_> = path.components().collect();
    let from: Vec<_> = from.components().collect();
    let common = path.iter().zip(&from).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for component in &path[common..] {
        out.push(component);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_expressions_become_minijinja() {
        assert_eq!(
            convert("{{ .Values.db.host }}", None),
            "{{ values.db.host }}"
        );
        assert_eq!(
            convert("{{ .Environment.Name }}-x", None),
            "{{ environment.name }}-x"
        );
        assert_eq!(
            convert(r#"{{ requiredEnv "TOKEN" }}"#, None),
            "{{ required_env('TOKEN') }}"
        );
        assert_eq!(
            convert(r#"{{ env "REGION" | default "eu" }}"#, None),
            "{{ env('REGION') | default('eu') }}"
        );
        assert_eq!(
            convert("{{ .Release.Name }}-db", Some(("web", "shop"))),
            "web-db"
        );
        let kept = convert("{{ .Values.x | quote }}", None);
        assert_eq!(unconverted(&json!(kept)).len(), 1);
    }

    #[test]
    fn a_whole_template_value_is_quoted_to_read_as_yaml() {
        assert_eq!(
            quote_templates("  installed: {{ .Values.on }}\n  - {{ .Values.f }}\n"),
            "  installed: '{{ .Values.on }}'\n  - '{{ .Values.f }}'\n"
        );
    }

    #[test]
    fn paths_are_made_relative_to_the_output() {
        assert_eq!(
            relative(Path::new("/a/b/c.yaml"), Path::new("/a/d")),
            PathBuf::from("../b/c.yaml")
        );
        assert_eq!(
            relative(Path::new("/a/c.yaml"), Path::new("/a")),
            PathBuf::from("c.yaml")
        );
    }
}
