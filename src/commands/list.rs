//! `stack list`: the selected releases, in graph order.

use serde_json::{Value, json};

use crate::cli::OutputFormat;
use crate::output;
use crate::settings::Settings;
use stack_core::error::Errors;
use stack_core::load::project::Project;

pub fn run(project: &Project, settings: &Settings) -> Result<u8, Errors> {
    let urls = |index: usize| project.urls(index);
    let exposed = project
        .selection
        .releases
        .iter()
        .any(|&i| !urls(i).is_empty());
    let releases: Vec<Value> = project
        .selection
        .releases
        .iter()
        .map(|&index| {
            let release = &project.releases[index];
            json!({
                "id": release.id,
                "name": release.name,
                "namespace": release.namespace,
                "chart": release.chart_name,
                "labels": release.labels,
                "needs": release.needs.iter().map(|need| &need.id).collect::<Vec<_>>(),
                "installed": release.installed,
                "urls": urls(index),
            })
        })
        .collect();
    let text = match settings.output {
        OutputFormat::Json => format!("{:#}\n", Value::Array(releases)),
        OutputFormat::Yaml => stack_core::yaml::to_string(&Value::Array(releases)),
        OutputFormat::Text => {
            let rows: Vec<Vec<String>> = project
                .selection
                .releases
                .iter()
                .map(|&index| {
                    let release = &project.releases[index];
                    let labels: Vec<String> = release
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    let needs: Vec<&str> = release.needs.iter().map(|n| n.id.as_str()).collect();
                    let mut row = vec![
                        release.name.clone(),
                        release.namespace.clone(),
                        release.chart_name.clone(),
                        release.installed.to_string(),
                        labels.join(","),
                        needs.join(","),
                    ];
                    if exposed {
                        row.push(urls(index).join(" "));
                    }
                    row
                })
                .collect();
            let mut header = vec!["NAME", "NAMESPACE", "CHART", "INSTALLED", "LABELS", "NEEDS"];
            if exposed {
                header.push("URLS");
            }
            output::table(&header, &rows)
        }
    };
    output::stdout(&text);
    Ok(0)
}
