//! What loading charts needs besides their sources: shared by the chart
//! kinds, so a leaf of its own.

use std::path::PathBuf;

use crate::mask::Masks;

/// What loading charts needs besides their source.
pub struct ChartContext {
    /// What a template makes of a secret is registered here.
    pub masks: Masks,
    /// The helm that pulls and renders Helm charts.
    pub helm: PathBuf,
    /// Where pulled charts are kept (`.stack/charts/`).
    pub charts_dir: PathBuf,
    /// Where Helm renders are kept (`.stack/render-cache/`).
    pub render_cache: PathBuf,
    /// The target cluster, when known: Helm charts render for it.
    pub capabilities: Option<Capabilities>,
}

/// What helm is told of the target cluster (`--kube-version`,
/// `--api-versions`), as `helm install` learns it: the server's version and
/// every API it serves (`group/version` and `group/version/Kind`), so a
/// chart's `.Capabilities` checks see the cluster it deploys to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub kube_version: String,
    pub api_versions: Vec<String>,
}

impl Capabilities {
    /// What identifies these capabilities in a render cache key.
    pub(crate) fn identity(&self) -> String {
        format!("{}\n{}", self.kube_version, self.api_versions.join(","))
    }
}
