//! Loading a release's chart from where it comes from ([`ChartSource`]):
//! today a local folder of minijinja templates. The sources planned next
//! (Helm charts from a folder, a repository or OCI; the built-in app chart)
//! are loaded here too, each into what renders the same `RenderedRelease`.

use super::{Chart, RenderError};
use crate::load::release::ChartSource;
use crate::mask::Masks;

/// Load the chart: its metadata, default values and templates. What its
/// templates make of a secret is registered in `masks`.
pub fn load(source: &ChartSource, masks: &Masks) -> Result<Chart, Vec<RenderError>> {
    match source {
        ChartSource::Local(dir) => Chart::load(dir, masks),
    }
}
