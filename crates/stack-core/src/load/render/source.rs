//! Loading a release's chart from where it comes from ([`ChartSource`]):
//! today a local folder of minijinja templates. The sources planned next
//! (Helm charts from a folder, a repository or OCI; the built-in app chart)
//! are loaded here too, each into what renders the same `RenderedRelease`.

use super::{Chart, RenderError};
use crate::load::release::ChartSource;

/// Load the chart: its metadata, default values and templates.
pub fn load(source: &ChartSource) -> Result<Chart, Vec<RenderError>> {
    match source {
        ChartSource::Local(dir) => Chart::load(dir),
    }
}
