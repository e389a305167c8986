//! A release after its environment is chosen: every template expression of
//! its stack-file entry evaluated, its values layers loaded.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::diagnostic::Span;
use crate::load::config::ReleaseOptions;

#[derive(Debug, Clone)]
pub struct Release {
    /// `namespace/name`.
    pub id: String,
    pub name: String,
    pub namespace: String,
    /// Where its chart comes from.
    pub chart: ChartSource,
    /// The chart folder's last path segment (the implicit `chart` label).
    pub chart_name: String,
    /// Labels as written in the stack file.
    pub labels: BTreeMap<String, String>,
    pub needs: Vec<Need>,
    pub installed: bool,
    pub options: ReleaseOptions,
    /// Values layers above the chart defaults, lowest first.
    pub layers: Vec<Arc<Value>>,
    /// Where each layer was written, when a value of it can be pointed at
    /// (the stack file's inline values, a values file); `None` for the
    /// environment's merged values, secrets and `--set`.
    pub origins: Vec<Option<Origin>>,
    pub span: Span,
    pub chart_span: Span,
    /// What it is in a deployment group's deploy.
    pub place: Place,
}

/// A release in the environment's own deploy, or in a deployment group's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Place {
    /// The environment's own release.
    #[default]
    Environment,
    /// A group's copy of the environment's release `of` (its id), in a
    /// preview namespace.
    Copy { group: String, of: String },
    /// `shared: true` in a group's deploy: the environment's own, which
    /// the group does not deploy; the group's releases that need it use it.
    Shared,
}

impl Release {
    /// The deployment group's label, for a group's copy.
    pub fn group(&self) -> Option<&str> {
        match &self.place {
            Place::Copy { group, .. } => Some(group),
            _ => None,
        }
    }
}

/// Where a release's chart comes from, as its stack-file entry names it
/// (loaded by `render::load_chart`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChartSource {
    /// A folder of minijinja templates (`chart: ./charts/backend`).
    Local(PathBuf),
    /// A local Helm chart: a folder with `Chart.yaml` and Go templates.
    Helm(PathBuf),
    /// A Helm chart from a chart repository (`REPO_URL/CHART`) or a
    /// registry (`oci://…/CHART`), at a version.
    Remote { url: String, version: String },
    /// A chart shipped inside the binary (`chart: builtin:app`).
    Builtin(String),
    /// Objects given as they are (a deploy request's `resources`): their
    /// JSON list, deployed as one release.
    Objects(String),
}

/// Where a values layer was written.
#[derive(Debug, Clone)]
pub enum Origin {
    Inline(crate::yaml::Node),
    File(PathBuf),
    /// `--set` and `--set-string`.
    Set,
}

impl Release {
    /// Where the value at `pointer` (JSON pointer segments) that the merged
    /// values hold was set: in the highest layer that has it, if that layer
    /// can be pointed at.
    pub(crate) fn locate(&self, pointer: &[String]) -> Option<Span> {
        let path = pointer.iter().fold(String::new(), |mut path, segment| {
            path.push('/');
            path.push_str(&segment.replace('~', "~0").replace('/', "~1"));
            path
        });
        let highest = self
            .layers
            .iter()
            .rposition(|layer| layer.pointer(&path).is_some())?;
        match self.origins.get(highest)?.as_ref()? {
            Origin::Set => None,
            Origin::Inline(node) => node.at(pointer).map(|n| n.span.clone()),
            Origin::File(file) => {
                let text = std::fs::read_to_string(file).ok()?;
                let source = crate::diagnostic::SourceFile::new(file, text);
                let node = crate::yaml::parse_node(&source).ok()?;
                node.at(pointer).map(|n| n.span.clone())
            }
        }
    }
}

/// A release of objects given as they are, beside the stack's (the
/// deploy server's `resources` of a request).
#[derive(Debug, Clone)]
pub struct AdHoc {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// The objects (maps with `apiVersion`, `kind` and `metadata.name`).
    pub objects: Vec<Value>,
}

impl AdHoc {
    /// The release: its objects its chart, deployed, waited for and
    /// rolled back as any other.
    pub(crate) fn release(&self) -> Release {
        let source = crate::diagnostic::SourceFile::new("the request's resources", "");
        let span = Span::new(&source, 0..0);
        Release {
            id: format!("{}/{}", self.namespace, self.name),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            chart: ChartSource::Objects(Value::Array(self.objects.clone()).to_string()),
            chart_name: "resources".into(),
            labels: self.labels.clone(),
            needs: Vec::new(),
            installed: true,
            options: ReleaseOptions::default(),
            layers: Vec::new(),
            origins: Vec::new(),
            span: span.clone(),
            chart_span: span,
            place: Place::Environment,
        }
    }
}

/// One `needs` entry, resolved to a release id.
#[derive(Debug, Clone)]
pub struct Need {
    pub id: String,
    pub span: Span,
}

impl Release {
    /// User labels plus the implicit `name`, `namespace` and `chart`, which
    /// win over user labels of the same key.
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels.clone();
        labels.insert("name".into(), self.name.clone());
        labels.insert("namespace".into(), self.namespace.clone());
        labels.insert("chart".into(), self.chart_name.clone());
        labels
    }
}

/// `[namespace/]name`, a bare name meaning `default_namespace`.
pub(crate) fn need_id(need: &str, default_namespace: &str) -> String {
    match need.split_once('/') {
        Some((namespace, name)) => format!("{}/{}", namespace.trim(), name.trim()),
        None => format!("{default_namespace}/{}", need.trim()),
    }
}
