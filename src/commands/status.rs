//! `stack status` and `stack history`: where releases stand, read from the
//! revisions kept in the cluster and the readiness of their live objects.

use serde_json::{Value, json};

use crate::cli::OutputFormat;
use crate::output;
use crate::settings::Settings;
use stack_core::cluster::live;
use stack_core::error::{Error, Errors};
use stack_core::execute::readiness::Readiness;
use stack_core::execute::{EngineError, apply::live_readiness};
use stack_core::load::project::Project;
use stack_kube::revision::Revision;
use std::sync::Arc;

pub fn status(project: &Project, settings: &Settings, check: bool) -> Result<u8, Errors> {
    let rows = super::remote::with_session(project, settings, |session| async move {
        let (history, _) = live::history(&session.client)
            .await
            .map_err(EngineError::api("cannot read release history"))?;
        let scopes = project
            .selection
            .releases
            .iter()
            .filter_map(|&index| deployed(history.get(&project.releases[index].id)))
            .flat_map(|revision| revision.objects.scopes())
            .collect();
        // Kept as text and read one at a time: thousands of whole objects
        // held at once cost more than the rest of the command.
        let resources = session.resources.read().await.clone();
        let (objects, _, _) = live::fetch(&session.client, &resources, scopes)
            .await
            .map_err(EngineError::api("cannot read live objects"))?;
        let mut rows = Vec::new();
        for &index in &project.selection.releases {
            let release = &project.releases[index];
            let revisions = history.get(&release.id);
            let latest = revisions.and_then(|r| r.last());
            // A release whose latest revision is pending (an interrupted
            // run) or failed is not ready, whatever an older revision was.
            let current = latest.filter(|r| r.state == stack_kube::revision::State::Deployed);
            let ready = current.is_some_and(|revision| {
                revision.objects.parse().iter().all(|object| {
                    objects
                        .get(&live::key_of(object))
                        .is_some_and(|live| live_readiness(&live.whole()) == Readiness::Ready)
                })
            });
            rows.push(json!({
                "id": release.id,
                "revision": latest.map_or(0, |r| r.number),
                "state": latest.map_or("not-installed", |r| r.state.as_str()),
                "ready": ready,
                "deployedAt": deployed(revisions).and_then(|r| r.finished.clone()),
                "urls": project.urls(index),
            }));
        }
        Ok(rows)
    })?;
    let all_ready = rows.iter().all(|row| row["ready"] == true);
    let exposed = rows
        .iter()
        .any(|row| row["urls"].as_array().is_some_and(|u| !u.is_empty()));
    match settings.output {
        OutputFormat::Json => output::stdout(&format!("{:#}\n", Value::Array(rows))),
        OutputFormat::Yaml => output::stdout(&stack_core::yaml::to_string(&Value::Array(rows))),
        OutputFormat::Text => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|row| {
                    let mut cells = vec![
                        row["id"].as_str().unwrap_or_default().to_string(),
                        row["revision"].to_string(),
                        row["state"].as_str().unwrap_or_default().to_string(),
                        row["deployedAt"].as_str().unwrap_or("-").to_string(),
                        if row["ready"] == true {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                    ];
                    if exposed {
                        let urls: Vec<&str> = row["urls"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .collect();
                        cells.push(urls.join(" "));
                    }
                    cells
                })
                .collect();
            let mut header = vec!["RELEASE", "REVISION", "STATE", "DEPLOYED AT", "READY"];
            if exposed {
                header.push("URLS");
            }
            output::stdout(&output::table(&header, &table));
        }
    }
    if check && !all_ready {
        return Err(Errors::from(Error::Failed {
            message: "not every selected release is deployed and ready".into(),
            hint: Some("the table shows which: a pending release is recovered by the next `stack apply`, a failed one by a fix or `stack rollback RELEASE`".into()),
        }));
    }
    Ok(0)
}

fn deployed(revisions: Option<&Vec<Arc<Revision>>>) -> Option<&Revision> {
    stack_core::plan::last_deployed(revisions?).map(AsRef::as_ref)
}

/// The release a command line names: `namespace/name`, or a name that is
/// unique in the stack.
pub fn find_release(project: &Project, wanted: &str) -> Result<String, Errors> {
    let matches: Vec<&str> = project
        .releases
        .iter()
        .map(|r| r.id.as_str())
        .filter(|id| *id == wanted || id.rsplit('/').next() == Some(wanted))
        .collect();
    match matches.as_slice() {
        [id] => Ok((*id).to_string()),
        [] => Err(Error::Failed {
            message: format!("no release `{wanted}` in this stack"),
            hint: stack_core::suggest::nearest(
                wanted,
                project.releases.iter().map(|r| r.id.as_str()),
            )
            .map(|s| format!("did you mean `{s}`?")),
        }
        .into()),
        several => Err(Error::Failed {
            message: format!("`{wanted}` names several releases: {}", several.join(", ")),
            hint: Some("write it as namespace/name".into()),
        }
        .into()),
    }
}

pub fn history(project: &Project, settings: &Settings, wanted: &str) -> Result<u8, Errors> {
    let id = find_release(project, wanted)?;
    let revisions = super::remote::with_session(project, settings, |session| async move {
        let (history, _) = live::history(&session.client)
            .await
            .map_err(EngineError::api("cannot read release history"))?;
        Ok(history.get(&id).cloned().unwrap_or_default())
    })?;
    let rows: Vec<Value> = revisions
        .iter()
        .map(|r| json!({"revision": r.number, "state": r.state.as_str(), "started": r.started, "finished": r.finished,
            "chart": r.chart, "valuesDigest": r.values_digest, "commit": r.commit, "message": r.message}))
        .collect();
    match settings.output {
        OutputFormat::Json => output::stdout(&format!("{:#}\n", Value::Array(rows))),
        OutputFormat::Yaml => output::stdout(&stack_core::yaml::to_string(&Value::Array(rows))),
        OutputFormat::Text => {
            let table: Vec<Vec<String>> = revisions
                .iter()
                .map(|r| {
                    vec![
                        r.number.to_string(),
                        r.state.as_str().to_string(),
                        r.started.clone(),
                        r.chart.clone(),
                        r.values_digest.clone(),
                        r.commit.clone().unwrap_or_else(|| "-".into()),
                        r.message
                            .as_deref()
                            .and_then(|m| m.lines().next())
                            .unwrap_or_default()
                            .to_string(),
                    ]
                })
                .collect();
            output::stdout(&output::table(
                &[
                    "REVISION", "STATE", "UPDATED", "CHART", "VALUES", "COMMIT", "MESSAGE",
                ],
                &table,
            ));
        }
    }
    Ok(0)
}
