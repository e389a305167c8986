//! `stack groups list` and `stack groups prune`: the deployment groups
//! (previews) of the environment, as their records in the cluster say.

use serde_json::Value;

use crate::cli::OutputFormat;
use crate::output;
use crate::settings::Settings;
use stack_core::error::Errors;
use stack_core::execute::groups::{self, GroupRecord};
use stack_core::load::group::Group;
use stack_core::load::project::{LoadOptions, Project};

/// The records of the environment's groups.
fn records(project: &Project, settings: &Settings) -> Result<Vec<GroupRecord>, Errors> {
    let stack = project.stack_name();
    let environment = project.environment_name().to_string();
    super::remote::with_session(project, settings, |session| async move {
        Ok(groups::list(&session.client, &stack, &environment).await?)
    })
}

pub fn list(project: &Project, settings: &Settings) -> Result<u8, Errors> {
    let records = records(project, settings)?;
    let text = match settings.output {
        OutputFormat::Json => format!(
            "{:#}\n",
            serde_json::to_value(&records).unwrap_or(Value::Null)
        ),
        OutputFormat::Yaml => {
            stack_core::yaml::to_string(&serde_json::to_value(&records).unwrap_or(Value::Null))
        }
        OutputFormat::Text if records.is_empty() => {
            format!("no deployment groups in {}\n", project.environment_name())
        }
        OutputFormat::Text => {
            let rows: Vec<Vec<String>> = records
                .iter()
                .map(|record| {
                    vec![
                        record.group.clone(),
                        record.releases.join(","),
                        record.urls.join(" "),
                        record.created.clone(),
                        record.expires.clone().unwrap_or_else(|| "never".into()),
                    ]
                })
                .collect();
            output::table(&["GROUP", "RELEASES", "URLS", "CREATED", "EXPIRES"], &rows)
        }
    };
    output::stdout(&text);
    Ok(0)
}

/// Destroy every expired group: its releases, then its namespaces and
/// record, one group at a time; the first failure stops the prune.
pub fn prune(project: &Project, settings: &Settings) -> Result<u8, Errors> {
    let now = stack_kube::clock::now();
    let expired: Vec<GroupRecord> = records(project, settings)?
        .into_iter()
        .filter(|record| record.expired(&now))
        .collect();
    if expired.is_empty() {
        output::note("no deployment group has expired", settings.quiet);
    }
    for record in expired {
        let group = Group::parse(&record.group)?;
        let mut of_group = settings.clone();
        of_group.load = LoadOptions {
            group: Some(group),
            selectors: Vec::new(),
            ..settings.load.clone()
        };
        let project = Project::load(&of_group.load, &settings.masks)?;
        super::destroy::run(&project, &of_group)?;
        output::stdout(&format!(
            "pruned group {} (expired {})\n",
            record.group,
            record.expires.unwrap_or_default()
        ));
    }
    Ok(0)
}
