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
}
