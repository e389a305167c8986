//! Helm charts as a chart source: a folder with `Chart.yaml` and Go
//! templates, rendered by the real `helm template` (found through
//! `STACK_HELM`, else `helm` on `PATH`). The release's values go to helm in
//! a 0600 file inside a private folder, never on its command line; helm's
//! output is split into its templates' documents and read like a minijinja
//! chart's. Objects that are `helm.sh/hook: test` are the release's tests.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::RenderError;
use super::cache::{RenderCache, folder_digest};
use super::chart::Rendered;
use super::context::{Capabilities, ChartContext};
use crate::load::release::Release;
use crate::mask::Masks;

/// A local Helm chart: its metadata and default values.
pub struct HelmChart {
    pub dir: PathBuf,
    /// The helm that renders it.
    pub helm: PathBuf,
    pub name: String,
    pub version: Option<String>,
    /// `values.yaml`: what helm merges the release's values over.
    pub defaults: Value,
    /// Every file of the chart folder, digested, and the capabilities it
    /// renders for: part of the cache key.
    digest: String,
    /// The target cluster's version and APIs, when known.
    capabilities: Option<Capabilities>,
    cache: RenderCache,
    /// The cache key holds the values with these masked (and the digest
    /// of their encrypted files); an output holding one is not cached.
    masks: Masks,
}

impl HelmChart {
    /// Read `Chart.yaml` (name, version) and `values.yaml`.
    pub fn load(dir: &Path, context: &ChartContext) -> Result<Self, Vec<RenderError>> {
        let metadata = read_yaml(&dir.join("Chart.yaml"))?.unwrap_or(Value::Null);
        let defaults = read_yaml(&dir.join("values.yaml"))?
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::Object(serde_json::Map::new()));
        let folder = dir.file_name().map_or_else(
            || "chart".to_string(),
            |name| name.to_string_lossy().into_owned(),
        );
        Ok(Self {
            dir: dir.to_path_buf(),
            helm: context.helm.clone(),
            digest: format!(
                "{}\n{}",
                folder_digest(dir),
                context
                    .capabilities
                    .as_ref()
                    .map(Capabilities::identity)
                    .unwrap_or_default()
            ),
            capabilities: context.capabilities.clone(),
            cache: RenderCache::new(context.render_cache.clone(), &context.helm),
            masks: context.masks.clone(),
            name: metadata["name"].as_str().map_or(folder, str::to_string),
            version: metadata["version"].as_str().map(str::to_string),
            defaults,
        })
    }

    /// `helm template` the release with `values` (the release's own layers,
    /// merged; helm puts them over the chart's defaults), or its cached
    /// output: one entry per template.
    pub fn render(&self, release: &Release, values: &Value) -> Result<Vec<Rendered>, RenderError> {
        let mut masked = values.clone();
        self.masks.stored_object(&mut masked);
        let key = self.cache.key(
            &self.digest,
            (&release.name, &release.namespace),
            &self.masks.sources_digest(),
            &masked,
        );
        if let Some(output) = self.cache.get(&key) {
            return Ok(split_output(&output, &self.name));
        }
        let output = self.template(release, values)?;
        if self.masks.stored_text(&output) == output {
            self.cache.put(&key, &output);
        }
        Ok(split_output(&output, &self.name))
    }

    /// Run `helm template` within the release's timeout: its output.
    fn template(&self, release: &Release, values: &Value) -> Result<String, RenderError> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("stack-helm-");
        if let Some(private) = private_folder() {
            builder.permissions(private);
        }
        let folder = builder.tempdir().map_err(|source| RenderError::Read {
            path: std::env::temp_dir(),
            source,
        })?;
        let values_file = folder.path().join("values.json");
        write_private(
            &values_file,
            &serde_json::to_vec(values).unwrap_or_default(),
        )
        .map_err(|source| RenderError::Read {
            path: values_file.clone(),
            source,
        })?;
        let helm = &self.helm;
        let mut command = Command::new(helm);
        command
            .args(["template", &release.name])
            .arg(&self.dir)
            .args([
                "--namespace",
                &release.namespace,
                "--include-crds",
                "--values",
            ])
            .arg(&values_file);
        if let Some(capabilities) = &self.capabilities {
            command.args(["--kube-version", &capabilities.kube_version]);
            if !capabilities.api_versions.is_empty() {
                command.args(["--api-versions", &capabilities.api_versions.join(",")]);
            }
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = command.spawn().map_err(|source| RenderError::HelmMissing {
            release: release.id.clone(),
            helm: helm.clone(),
            reason: crate::diagnostic::io_reason(&source),
        })?;
        let (ok, stdout, stderr) =
            finish(child, release.options.timeout).map_err(|reason| RenderError::Helm {
                release: release.id.clone(),
                message: reason,
            })?;
        if !ok {
            return Err(RenderError::Helm {
                release: release.id.clone(),
                message: helm_message(&stderr),
            });
        }
        Ok(stdout)
    }
}

/// The helm to run: `STACK_HELM`, else the stack file's `helmBinary`,
/// else `helm` from `PATH`.
pub fn helm_binary(configured: Option<&Path>) -> PathBuf {
    std::env::var_os("STACK_HELM")
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .or_else(|| configured.map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("helm"))
}

/// A YAML file as JSON; `None` when it does not exist.
fn read_yaml(path: &Path) -> Result<Option<Value>, Vec<RenderError>> {
    let text = match fs_err::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(vec![RenderError::Read {
                path: path.to_path_buf(),
                source,
            }]);
        }
    };
    let source = crate::diagnostic::SourceFile::new(path, text);
    crate::yaml::parse_values(&source)
        .map(Some)
        .map_err(|error| vec![RenderError::Config(error.into())])
}

/// A folder only its owner can enter (where permissions are Unix modes).
fn private_folder() -> Option<std::fs::Permissions> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        Some(std::fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Write `bytes` to a new file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

/// Wait for helm within `timeout` (killing it after), reading its output
/// as it comes: whether it succeeded, its stdout and its stderr.
pub(super) fn finish(
    mut child: Child,
    timeout: Duration,
) -> Result<(bool, String, String), String> {
    // Each stream is read to its end on a thread of its own, which says so:
    // helm's output is whole when both streams have closed, which is when
    // it exits. Nothing polls; the timeout is the wait's deadline.
    let (closed, streams_closed) = std::sync::mpsc::channel::<()>();
    let reader = |stream: Option<Box<dyn std::io::Read + Send>>| {
        let closed = closed.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut stream) = stream {
                let _ = stream.read_to_string(&mut text);
            }
            let _ = closed.send(());
            text
        })
    };
    let stdout = reader(child.stdout.take().map(|s| Box::new(s) as _));
    let stderr = reader(child.stderr.take().map(|s| Box::new(s) as _));
    drop(closed);
    let deadline = Instant::now() + timeout;
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = streams_closed.recv_timeout(left) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "helm did not finish within the release's timeout ({}s): stopped",
                timeout.as_secs()
            ));
        }
    }
    let status = child
        .wait()
        .map_err(|error| format!("waiting for helm failed: {error}"))?;
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Ok((status.success(), stdout, stderr))
}

/// helm's error, without its `Error: ` prefix and its usage hints.
pub(super) fn helm_message(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.is_empty() && !line.starts_with("Use --debug"))
        .collect();
    let text = lines.join("\n");
    text.strip_prefix("Error: ").unwrap_or(&text).to_string()
}

/// Split `helm template` output into its documents, grouped by the
/// template each names in its `# Source: CHART/…` line, in output order.
fn split_output(output: &str, chart: &str) -> Vec<Rendered> {
    let mut rendered: Vec<Rendered> = Vec::new();
    for document in documents(output) {
        let source = document
            .lines()
            .find_map(|line| line.strip_prefix("# Source: "))
            .map(str::trim);
        let Some(source) = source else {
            continue;
        };
        let template = source
            .strip_prefix(chart)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(source)
            .to_string();
        match rendered.last_mut() {
            Some(last) if last.template == template => {
                last.text.push_str("\n---\n");
                last.text.push_str(document);
            }
            _ => rendered.push(Rendered {
                template,
                text: document.to_string(),
            }),
        }
    }
    rendered
}

/// The documents of a YAML stream, split at `---` lines.
fn documents(output: &str) -> impl Iterator<Item = &str> {
    let mut starts = vec![0];
    let mut offset = 0;
    for line in output.split_inclusive('\n') {
        if line.trim_end() == "---" {
            starts.push(offset);
            starts.push(offset + line.len());
        }
        offset += line.len();
    }
    starts.push(output.len());
    let bounds: Vec<(usize, usize)> = starts
        .chunks(2)
        .filter_map(|pair| match pair {
            [start, end] => Some((*start, *end)),
            _ => None,
        })
        .collect();
    bounds
        .into_iter()
        .map(move |(start, end)| &output[start..end])
        .filter(|document| !document.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_split_by_template_and_the_chart_name_dropped() {
        let output = "---\n# Source: demo/templates/service.yaml\nkind: Service\n---\n# Source: demo/templates/a.yaml\nkind: A\n---\n# Source: demo/templates/a.yaml\nkind: B\n";
        let rendered = split_output(output, "demo");
        let names: Vec<&str> = rendered.iter().map(|r| r.template.as_str()).collect();
        assert_eq!(names, ["templates/service.yaml", "templates/a.yaml"]);
        assert!(rendered[1].text.contains("kind: A") && rendered[1].text.contains("kind: B"));
        assert!(rendered[1].text.contains("\n---\n"));
    }

    #[test]
    fn helm_errors_lose_their_prefix_and_debug_hint() {
        let stderr = "Error: template: demo/templates/x.yaml:3:4: executing \"x\": nil pointer\nUse --debug flag to render out invalid YAML\n";
        assert_eq!(
            helm_message(stderr),
            "template: demo/templates/x.yaml:3:4: executing \"x\": nil pointer"
        );
    }
}
