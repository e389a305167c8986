//! Server-side apply with the answer decoded only as far as the engine
//! reads it: a 2,000-object apply need not build 2,000 typed objects (or
//! decode the base64 data of every Secret) to throw them away.

use kube::api::{Patch, PatchParams};
use serde_json::Value;

use crate::cluster::retry::retry;

/// What server-side apply answered about an object, enough to tell its
/// state from an older one: the same object (uid) at least at this generation.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Applied {
    pub uid: Option<String>,
    pub generation: Option<i64>,
}

impl Applied {
    /// Whether `object` is this object, at least as new as applied.
    pub(crate) fn admits(&self, object: &Value) -> bool {
        let uid = object["metadata"]["uid"].as_str();
        let generation = object["metadata"]["generation"].as_i64();
        self.uid.as_deref().is_none_or(|ours| uid == Some(ours))
            && self
                .generation
                .is_none_or(|ours| generation.is_some_and(|g| g >= ours))
    }
}

#[derive(serde::Deserialize)]
struct Answer {
    #[serde(default)]
    metadata: Applied,
}

/// Server-side apply `body` as `name` into the collection at `url`
/// (`Api::resource_url`), retried like every idempotent request.
pub async fn apply(
    client: &kube::Client,
    url: &str,
    name: &str,
    params: &PatchParams,
    body: &Value,
) -> Result<Applied, kube::Error> {
    let request = kube::core::Request::new(url);
    let patch = Patch::Apply(body);
    let answer: Answer = retry(|| async {
        let http = request
            .patch(name, params, &patch)
            .map_err(kube::Error::BuildRequest)?;
        client.request(http).await
    })
    .await?;
    Ok(answer.metadata)
}
