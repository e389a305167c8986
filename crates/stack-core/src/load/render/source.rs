//! Loading a release's chart from where it comes from ([`ChartSource`]): a
//! local folder of minijinja templates, a local Helm chart, or a Helm chart
//! from a repository or registry (pulled once into `.stack/charts/`), or a
//! chart shipped inside the binary (`builtin:app`); each renders the same
//! `RenderedRelease`.

pub use super::context::ChartContext;
use super::helm::HelmChart;
use super::{Chart, RenderError};
use crate::load::release::ChartSource;

/// A chart, loaded once per run however many releases use it.
pub enum Loaded {
    /// minijinja templates, rendered in-process.
    Templates(Box<Chart>),
    /// A Helm chart, rendered by `helm template`.
    Helm(Box<HelmChart>),
    /// `builtin:app`: minijinja templates shipped inside the binary, whose
    /// values are worked out first (see `app`).
    App(Box<Chart>),
    /// Objects given as they are, one JSON document each.
    Objects(Vec<String>),
}

/// Load the chart: its metadata, default values and templates.
pub fn load(source: &ChartSource, context: &ChartContext) -> Result<Loaded, Vec<RenderError>> {
    match source {
        ChartSource::Local(dir) => {
            Chart::load(dir, &context.masks).map(|chart| Loaded::Templates(Box::new(chart)))
        }
        ChartSource::Helm(dir) => {
            HelmChart::load(dir, context).map(|chart| Loaded::Helm(Box::new(chart)))
        }
        ChartSource::Builtin(name) => {
            let files = super::chart::Files::Embedded {
                name,
                files: super::app::FILES,
            };
            Chart::from_files(files, &context.masks).map(|chart| Loaded::App(Box::new(chart)))
        }
        ChartSource::Objects(list) => {
            let objects: Vec<serde_json::Value> = serde_json::from_str(list).unwrap_or_default();
            Ok(Loaded::Objects(
                objects.iter().map(ToString::to_string).collect(),
            ))
        }
        ChartSource::Remote { url, version } => {
            let dir = super::pull::cached(url, version, &context.helm, &context.charts_dir)
                .map_err(|error| vec![error])?;
            HelmChart::load(&dir, context).map(|chart| Loaded::Helm(Box::new(chart)))
        }
    }
}
