//! Kind → resource mapping from discovery (aggregated first, legacy as the
//! fallback), so custom resources work like built-in ones. Refreshed when a
//! kind is not served yet (a CRD applied in this run).

use std::collections::HashMap;

use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Discovery, Scope};

#[derive(Debug, Clone)]
pub struct Served {
    pub resource: ApiResource,
    pub namespaced: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Resources {
    by_kind: HashMap<(String, String), Served>,
}

impl Resources {
    /// What the cluster serves, retried for `patience`: aggregated
    /// discovery, or the legacy kind when the server does not serve that.
    pub async fn discover(
        client: &kube::Client,
        patience: std::time::Duration,
    ) -> Result<Self, kube::Error> {
        let aggregated =
            super::retry::retry_for(patience, || Discovery::new(client.clone()).run_aggregated())
                .await;
        let discovery = match aggregated {
            Ok(discovery) => discovery,
            Err(kube::Error::Api(status)) if matches!(status.code, 404 | 406 | 415) => {
                super::retry::retry_for(patience, || Discovery::new(client.clone()).run()).await?
            }
            Err(error) => return Err(error),
        };
        let mut by_kind = HashMap::new();
        for group in discovery.groups() {
            for version in group.versions() {
                for (resource, capabilities) in group.versioned_resources(version) {
                    by_kind.insert(
                        (resource.api_version.clone(), resource.kind.clone()),
                        Served {
                            namespaced: capabilities.scope == Scope::Namespaced,
                            resource,
                        },
                    );
                }
            }
        }
        Ok(Self { by_kind })
    }

    /// The served kind nearest to a misspelt or misversioned one: the same
    /// kind in another version, else the closest name (`Servic` → `Service`).
    pub fn nearest(&self, api_version: &str, kind: &str) -> Option<(&str, &str)> {
        let served = || self.by_kind.keys().map(|(v, k)| (v.as_str(), k.as_str()));
        if let Some(found) = served().find(|(_, k)| *k == kind) {
            return Some(found);
        }
        let group = |v: &str| v.rsplit_once('/').map_or("", |(g, _)| g).to_string();
        let name = crate::suggest::nearest(
            kind,
            served()
                .filter(|(v, _)| group(v) == group(api_version))
                .map(|(_, k)| k),
        )?;
        served().find(|(v, k)| *k == name && group(v) == group(api_version))
    }

    /// Every API served, as helm's `--api-versions` takes them: each
    /// `group/version` and each `group/version/Kind`, sorted.
    pub fn api_versions(&self) -> Vec<String> {
        let versions = self.by_kind.keys().map(|(version, _)| version.clone());
        let kinds = self
            .by_kind
            .keys()
            .map(|(version, kind)| format!("{version}/{kind}"));
        let all: std::collections::BTreeSet<String> = versions.chain(kinds).collect();
        all.into_iter().collect()
    }

    pub fn get(&self, api_version: &str, kind: &str) -> Option<&Served> {
        self.by_kind
            .get(&(api_version.to_string(), kind.to_string()))
    }

    /// A dynamic API for a kind, in a namespace (or all namespaces).
    pub fn api(
        &self,
        client: &kube::Client,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Option<(Api<DynamicObject>, bool)> {
        let served = self.get(api_version, kind)?;
        let api = match (served.namespaced, namespace) {
            (true, Some(namespace)) => {
                Api::namespaced_with(client.clone(), namespace, &served.resource)
            }
            _ => Api::all_with(client.clone(), &served.resource),
        };
        Some((api, served.namespaced))
    }
}

/// The group-version-kind of an `apiVersion` and `kind`.
pub fn gvk(api_version: &str, kind: &str) -> GroupVersionKind {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, kind)
}
