//! Writing a release's revisions: one Secret each (see `revision`), the
//! newest `historyMax` kept.

use kube::api::{Api, DeleteParams, PatchParams};

use crate::cluster::retry::retry;
use crate::execute::Session;
use crate::execute::error::ReleaseError;
use crate::plan::diff::FIELD_MANAGER;
use stack_kube::revision::{Revision, State};

type Secrets = Api<k8s_openapi::api::core::v1::Secret>;

fn secrets(session: &Session, namespace: &str) -> Secrets {
    crate::cluster::apis::secrets(&session.client, namespace)
}

/// Create or replace a revision's Secret.
pub async fn write(session: &Session, revision: &Revision) -> Result<(), ReleaseError> {
    let secret = revision.to_secret();
    let namespace = secret["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let name = secret["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let api = secrets(session, &namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    crate::cluster::apply::apply(&session.client, api.resource_url(), &name, &params, &secret)
        .await
        .map(|_| ())
        .map_err(ReleaseError::request(format!(
            "record revision {}",
            revision.number
        )))
}

/// Record a revision in a new state (and why), finished now.
pub async fn mark(
    session: &Session,
    revision: &mut Revision,
    state: State,
    message: Option<String>,
) -> Result<(), ReleaseError> {
    revision.state = state;
    revision.finished = Some(stack_kube::clock::now());
    if let Some(message) = message {
        // Stored masked: a secret rotated later must not show in history.
        let message = session.reporter.masks().stored_text(&message);
        revision.message = Some(match revision.message.take() {
            Some(earlier) => format!("{earlier}\n(then: {message})"),
            None => message,
        });
    }
    write(session, revision).await
}

/// Mark the revision that `current` replaced as superseded.
pub(crate) async fn supersede(
    session: &Session,
    replaced: Option<&Revision>,
) -> Result<(), ReleaseError> {
    if let Some(replaced) = replaced
        && replaced.state == State::Deployed
    {
        let mut superseded = replaced.clone();
        superseded.state = State::Superseded;
        write(session, &superseded).await?;
    }
    Ok(())
}

/// Keep the last `keep` revisions of a release: of the revisions `kept` in
/// the cluster, delete those more than `keep` below `current`.
pub async fn trim(
    session: &Session,
    id: &str,
    kept: &[u32],
    current: u32,
    keep: u32,
) -> Result<(), ReleaseError> {
    let oldest = current.saturating_sub(keep);
    let old: Vec<u32> = kept.iter().copied().filter(|&n| n <= oldest).collect();
    delete(session, id, &old)
        .await
        .map_err(ReleaseError::request("trim history"))
}

/// Delete every revision of a release: the `kept` ones its plan read (no
/// LIST per release; the run holds the lock, nobody adds one meanwhile).
pub(crate) async fn delete_all(
    session: &Session,
    id: &str,
    kept: &[u32],
) -> Result<(), ReleaseError> {
    delete(session, id, kept)
        .await
        .map_err(ReleaseError::request("delete history"))
}

/// Delete these revisions of a release; one already gone is fine.
async fn delete(session: &Session, id: &str, numbers: &[u32]) -> Result<(), kube::Error> {
    let (namespace, name) = id.split_once('/').unwrap_or(("default", id));
    let api = secrets(session, namespace);
    let params = DeleteParams::default();
    for &number in numbers {
        let secret = stack_kube::revision::secret_name(name, number);
        match retry(|| api.delete(&secret, &params)).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
