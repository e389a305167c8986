//! `stack charts update`: pull the selected releases' repository and OCI
//! charts again, replacing their cached copies (each only once its new
//! copy is complete).

use crate::output;
use crate::settings::Settings;
use stack_core::error::{Error, Errors};
use stack_core::load::project::Project;
use stack_core::load::release::ChartSource;
use stack_core::load::render::pull;

pub fn update(project: &Project, settings: &Settings) -> Result<u8, Errors> {
    let mut charts: Vec<(&str, &str)> = project
        .selection
        .releases
        .iter()
        .filter_map(|&index| match &project.releases[index].chart {
            ChartSource::Remote { url, version } => Some((url.as_str(), version.as_str())),
            _ => None,
        })
        .collect();
    charts.sort_unstable();
    charts.dedup();
    let context = project.chart_context();
    let pulled = stack_core::parallel::map(&charts, |(url, version)| {
        pull::refresh(url, version, &context.helm, &context.charts_dir)
    });
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for ((url, version), result) in charts.iter().zip(pulled) {
        match result {
            Ok(digest) => rows.push(vec![
                (*url).to_string(),
                (*version).to_string(),
                format!("sha256:{digest}"),
            ]),
            Err(error) => errors.push(Error::from(error)),
        }
    }
    if !errors.is_empty() {
        return Err(Errors(errors));
    }
    if rows.is_empty() {
        output::note(
            "no selected release has a repository or OCI chart",
            settings.quiet,
        );
    } else {
        output::stdout(&output::table(&["CHART", "VERSION", "DIGEST"], &rows));
    }
    Ok(0)
}
