//! The promotion gate's reading of the source environment's cluster: the
//! revisions of every selected release and the live objects of their newest
//! revisions, judged by `promote::gate`.

use std::collections::{BTreeSet, HashMap};

use crate::settings::Settings;
use stack_core::cluster::live;
use stack_core::error::Errors;
use stack_core::execute::EngineError;
use stack_core::execute::apply::live_readiness;
use stack_core::execute::readiness::Readiness;
use stack_core::load::project::Project;
use stack_core::promote::gate::{self, Candidate};
use stack_core::promote::log::Provenance;
use stack_kube::revision::Revision;

/// Each installed selected release's provenance, and the refusals (`id:
/// reason`) of those the gate does not let through.
pub fn verify(
    project: &Project,
    settings: &Settings,
) -> Result<(Vec<Provenance>, Vec<String>), Errors> {
    let installed = project.installed_selection();
    let rendered = project.render(&installed)?;
    let (history, objects) = read(project, settings, &installed)?;
    // Judged as a deploy would make it: blue/green and canary releases in
    // the colours and phase their deployed revisions left.
    let rendered: Vec<_> = stack_core::execute::strategy::shape_for(
        project,
        installed.iter().copied().zip(rendered).collect(),
        &history,
        &settings.execution,
    )?
    .into_iter()
    .map(|(_, release)| release)
    .collect();
    let mut provenance = Vec::new();
    let mut refusals = Vec::new();
    let no_revisions: Vec<std::sync::Arc<Revision>> = Vec::new();
    for (index, rendered) in installed.iter().zip(&rendered) {
        let release = &project.releases[*index];
        let digest = stack_kube::revision::values_digest(&rendered.values);
        let bodies = |objects: &[stack_kube::object::Object]| -> Vec<serde_json::Value> {
            objects.iter().map(|o| o.body.clone()).collect()
        };
        let (rendered_objects, tests) = (bodies(&rendered.objects), bodies(&rendered.tests));
        let candidate = Candidate {
            digest: &digest,
            objects: &rendered_objects,
            tests: &tests,
            has_tests: release.options.tests && !rendered.tests.is_empty(),
            revisions: history.get(&release.id).unwrap_or(&no_revisions),
        };
        let verdict = gate::verify(&candidate, |object| ready(&objects, object));
        if let Err(refusal) = &verdict {
            refusals.push(format!(
                "{}: {refusal}; {}",
                release.id,
                refusal.remedy(&project.environment.environment.name)
            ));
        }
        let verified = verdict.is_ok();
        provenance.push(Provenance {
            id: release.id.clone(),
            revision: candidate.revisions.last().map(|r| r.number),
            values_digest: digest,
            verified,
        });
    }
    Ok((provenance, refusals))
}

/// Every revision in the cluster, and the live objects of the selected
/// releases' newest revisions.
fn read(
    project: &Project,
    settings: &Settings,
    installed: &[usize],
) -> Result<(History, Objects), Errors> {
    crate::commands::remote::with_session(project, settings, |session| async move {
        let (history, _) = live::history(&session.client)
            .await
            .map_err(EngineError::api("cannot read release history"))?;
        let scopes: BTreeSet<live::Scope> = installed
            .iter()
            .filter_map(|&index| history.get(&project.releases[index].id)?.last())
            .flat_map(|revision| revision.objects.scopes())
            .collect();
        let resources = session.resources.read().await.clone();
        let (objects, _, _) = live::fetch_selected(&session.client, &resources, scopes, None)
            .await
            .map_err(EngineError::api("cannot read live objects"))?;
        Ok((history, objects))
    })
}

type History = live::History;
type Objects = HashMap<stack_kube::object::ObjectKey, serde_json::Value>;

fn ready(objects: &Objects, object: &serde_json::Value) -> bool {
    objects
        .get(&live::key_of(object))
        .is_some_and(|live| live_readiness(live) == Readiness::Ready)
}
