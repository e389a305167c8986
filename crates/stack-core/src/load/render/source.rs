//! Loading a release's chart from where it comes from ([`ChartSource`]): a
//! local folder of minijinja templates, or a local Helm chart. The sources
//! planned next (Helm charts from a repository or OCI; the built-in app
//! chart) are loaded here too, each into what renders the same
//! `RenderedRelease`.

use super::helm::HelmChart;
use super::{Chart, RenderError};
use crate::load::release::ChartSource;
use crate::mask::Masks;

/// A chart, loaded once per run however many releases use it.
pub enum Loaded {
    /// minijinja templates, rendered in-process.
    Templates(Box<Chart>),
    /// A Helm chart, rendered by `helm template`.
    Helm(HelmChart),
}

/// Load the chart: its metadata, default values and templates. What its
/// templates make of a secret is registered in `masks`.
pub fn load(source: &ChartSource, masks: &Masks) -> Result<Loaded, Vec<RenderError>> {
    match source {
        ChartSource::Local(dir) => {
            Chart::load(dir, masks).map(|chart| Loaded::Templates(Box::new(chart)))
        }
        ChartSource::Helm(dir) => HelmChart::load(dir).map(Loaded::Helm),
    }
}
