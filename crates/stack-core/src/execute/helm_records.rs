//! `--adopt-helm`: what a release taken over from helm keeps of it. helm
//! records each release revision in a Secret of the release's namespace
//! (labels `owner=helm`, `name`, `version`); the revision taken over is
//! named in the new revision's message, and with `--forget-helm` helm's
//! records are deleted (helm then no longer knows the release).

use kube::api::{DeleteParams, ListParams};

use crate::cluster::retry::retry;
use crate::execute::Session;
use crate::execute::error::ReleaseError;
use crate::load::release::Release;

/// The line a taken-over release's revision records: the helm revision it
/// came from (the newest helm record), after deleting helm's records when
/// asked.
pub(crate) async fn take_over(
    session: &Session,
    release: &Release,
) -> Result<String, ReleaseError> {
    let secrets = crate::cluster::apis::secrets(&session.client, &release.namespace);
    let selector = format!("owner=helm,name={}", release.name);
    let params = ListParams::default().labels(&selector);
    let records = retry(|| secrets.list(&params))
        .await
        .map_err(ReleaseError::request(format!(
            "list the records of helm release {}",
            release.id
        )))?;
    let newest = records
        .items
        .iter()
        .filter_map(|secret| {
            secret
                .metadata
                .labels
                .as_ref()?
                .get("version")?
                .parse::<u64>()
                .ok()
        })
        .max();
    let mut message = match newest {
        Some(version) => format!(
            "taken over from helm release {} revision {version}",
            release.id
        ),
        None => format!(
            "taken over from helm release {} (no helm record found)",
            release.id
        ),
    };
    if session.options.forget_helm && !records.items.is_empty() {
        let params = DeleteParams::default();
        for secret in &records.items {
            let name = secret.metadata.name.clone().unwrap_or_default();
            retry(|| secrets.delete(&name, &params))
                .await
                .map_err(ReleaseError::request(format!(
                    "delete helm's record {name}"
                )))?;
        }
        message.push_str("; helm's records deleted");
    }
    Ok(message)
}
