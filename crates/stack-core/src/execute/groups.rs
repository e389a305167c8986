//! A deployment group's record: a ConfigMap
//! `stack-group.<stack>.<environment>.<group>` in `default` (beside the
//! run locks), written as the group deploys — its name as given, its
//! releases, namespaces and URLs, when it was created and when it expires
//! — and read by `stack groups list` and `prune`. A name that escapes to
//! the label of another group's record is refused before anything is
//! written.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;

use crate::cluster::retry::retry;
use crate::execute::{EngineError, Session};
use crate::load::group::{GROUP_LABEL, GROUP_NAME_ANNOTATION, Group};
use crate::load::project::Project;
use stack_kube::object::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, dns_label};
use stack_kube::revision::STACK_LABEL;

const NAMESPACE: &str = "default";
const ENVIRONMENT_LABEL: &str = "stack.dev/environment";

/// What a group's record holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupRecord {
    /// As given: `mr/26`.
    pub group: String,
    /// Escaped: `mr--26`.
    pub label: String,
    pub releases: Vec<String>,
    pub namespaces: Vec<String>,
    pub urls: Vec<String>,
    /// RFC 3339, UTC.
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// The record's `resourceVersion` when it was read (the write that
    /// updates it goes with it).
    #[serde(skip)]
    pub resource_version: Option<String>,
}

impl GroupRecord {
    /// Whether it expired by `now` (both as `stack_kube::clock` writes them).
    pub fn expired(&self, now: &str) -> bool {
        self.expires
            .as_deref()
            .is_some_and(|expires| expires <= now)
    }

    fn to_config_map(&self, stack: &str, environment: &str) -> ConfigMap {
        let lines = |items: &[String]| items.join("\n");
        let mut data = BTreeMap::from([
            ("releases".to_string(), lines(&self.releases)),
            ("namespaces".to_string(), lines(&self.namespaces)),
            ("urls".to_string(), lines(&self.urls)),
            ("created".to_string(), self.created.clone()),
        ]);
        if let Some(expires) = &self.expires {
            data.insert("expires".into(), expires.clone());
        }
        serde_json::from_value(json!({
            "metadata": {
                "name": record_name(stack, environment, &self.label),
                "namespace": NAMESPACE,
                "labels": {
                    MANAGED_BY_LABEL: MANAGED_BY_VALUE,
                    STACK_LABEL: stack,
                    ENVIRONMENT_LABEL: dns_label(environment),
                    GROUP_LABEL: self.label,
                },
                "annotations": {GROUP_NAME_ANNOTATION: self.group},
            },
            "data": data,
        }))
        .unwrap_or_default()
    }

    fn from_config_map(map: &ConfigMap) -> Option<Self> {
        let labels = map.metadata.labels.as_ref()?;
        let annotations = map.metadata.annotations.as_ref()?;
        let data = map.data.clone().unwrap_or_default();
        let lines = |key: &str| -> Vec<String> {
            data.get(key)
                .map(|text| text.lines().map(str::to_string).collect())
                .unwrap_or_default()
        };
        Some(Self {
            group: annotations.get(GROUP_NAME_ANNOTATION)?.clone(),
            label: labels.get(GROUP_LABEL)?.clone(),
            releases: lines("releases"),
            namespaces: lines("namespaces"),
            urls: lines("urls"),
            created: data.get("created").cloned().unwrap_or_default(),
            expires: data.get("expires").cloned(),
            resource_version: map.metadata.resource_version.clone(),
        })
    }
}

/// The record's name: each dot-separated part a DNS label.
fn record_name(stack: &str, environment: &str, label: &str) -> String {
    format!(
        "stack-group.{}.{}.{label}",
        dns_label(stack),
        dns_label(environment)
    )
}

/// The record of `group`, if it was deployed.
pub async fn read(
    client: &kube::Client,
    stack: &str,
    environment: &str,
    label: &str,
) -> Result<Option<GroupRecord>, EngineError> {
    let api = crate::cluster::apis::config_maps(client, NAMESPACE);
    let name = record_name(stack, environment, label);
    let found = retry(|| api.get_opt(&name))
        .await
        .map_err(EngineError::api(format!(
            "cannot read the group record {NAMESPACE}/{name}"
        )))?;
    Ok(found.as_ref().and_then(GroupRecord::from_config_map))
}

/// Every group of the stack in `environment`, oldest first.
pub async fn list(
    client: &kube::Client,
    stack: &str,
    environment: &str,
) -> Result<Vec<GroupRecord>, EngineError> {
    let api = crate::cluster::apis::config_maps(client, NAMESPACE);
    let selector = format!(
        "{STACK_LABEL}={stack},{ENVIRONMENT_LABEL}={},{GROUP_LABEL}",
        dns_label(environment)
    );
    let params = ListParams::default().labels(&selector);
    let maps = retry(|| api.list(&params))
        .await
        .map_err(EngineError::api("cannot list the deployment groups"))?;
    let mut records: Vec<GroupRecord> = maps
        .items
        .iter()
        .filter_map(GroupRecord::from_config_map)
        .collect();
    records.sort_by(|a, b| (&a.created, &a.group).cmp(&(&b.created, &b.group)));
    Ok(records)
}

/// Refuse a group whose label another group's record holds (two names
/// that escape alike); nothing is written.
pub async fn check_name(
    client: &kube::Client,
    stack: &str,
    project: &Project,
) -> Result<Option<GroupRecord>, EngineError> {
    let Some(group) = &project.environment.group else {
        return Ok(None);
    };
    let existing = read(client, stack, project.environment_name(), &group.label).await?;
    match existing {
        Some(record) if record.group != group.name => Err(EngineError::GroupTaken {
            group: group.name.clone(),
            label: group.label.clone(),
            other: record.group,
        }),
        other => Ok(other),
    }
}

/// Write the group's record for this deploy: its releases, namespaces and
/// URLs added to what it had, and its expiry `ttl` from now (a new group:
/// else the environment's `previews.ttl`; else as it was). Nothing is
/// written when the record says this already.
pub async fn record(
    session: &Session,
    stack: &str,
    project: &Project,
    existing: Option<GroupRecord>,
    ttl: Option<Duration>,
) -> Result<(), EngineError> {
    let Some(group) = &project.environment.group else {
        return Ok(());
    };
    let environment = project.environment_name();
    let mut record = existing.clone().unwrap_or_else(|| GroupRecord {
        group: group.name.clone(),
        label: group.label.clone(),
        releases: Vec::new(),
        namespaces: Vec::new(),
        urls: Vec::new(),
        created: stack_kube::clock::now(),
        expires: None,
        resource_version: None,
    });
    for &index in &project.selection.releases {
        let release = &project.releases[index];
        add(&mut record.releases, release.id.clone());
        add(&mut record.namespaces, release.namespace.clone());
        for url in project.urls(index) {
            add(&mut record.urls, url);
        }
    }
    // `--ttl` sets the expiry anew; a new group without it gets the
    // environment's `previews.ttl` (so a deploy that changes nothing
    // writes nothing).
    let ttl = ttl.or_else(|| {
        existing
            .is_none()
            .then_some(project.environment.environment.previews.ttl)
            .flatten()
    });
    if let Some(ttl) = ttl {
        record.expires = Some(stack_kube::clock::after(ttl));
    }
    if existing.as_ref() == Some(&record) {
        return Ok(());
    }
    let api = crate::cluster::apis::config_maps(&session.client, NAMESPACE);
    let mut body = record.to_config_map(stack, environment);
    let name = record_name(stack, environment, &group.label);
    let failed = EngineError::api(format!("cannot write the group record {NAMESPACE}/{name}"));
    let params = PostParams::default();
    // Replaced at the resourceVersion `check_name` read: a run that wrote
    // it since makes this one fail (409) rather than lose its releases.
    let written = match &record.resource_version {
        Some(version) => {
            body.metadata.resource_version = Some(version.clone());
            retry(|| api.replace(&name, &params, &body)).await
        }
        None => retry(|| api.create(&params, &body)).await,
    };
    written.map(|_| ()).map_err(failed)
}

fn add(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// How long the deletion of a group's namespaces is waited for (their
/// objects are finalized by the cluster).
const NAMESPACES_GONE: Duration = Duration::from_secs(120);

/// After a group's releases are gone: delete the namespaces made for it
/// (those labelled with its label), wait for them to go, and delete its
/// record. The names of the namespaces deleted.
pub async fn remove(
    session: &Session,
    stack: &str,
    environment: &str,
    record: &GroupRecord,
) -> Result<Vec<String>, EngineError> {
    let namespaces = crate::cluster::apis::namespaces(&session.client);
    let mut deleted = Vec::new();
    for name in &record.namespaces {
        let found = retry(|| namespaces.get_opt(name))
            .await
            .map_err(EngineError::api(format!("cannot read namespace {name}")))?;
        let ours = found
            .and_then(|ns| ns.metadata.labels)
            .is_some_and(|labels| labels.get(GROUP_LABEL) == Some(&record.label));
        if ours {
            let params = DeleteParams::background();
            match retry(|| namespaces.delete(name, &params)).await {
                Ok(_) => deleted.push(name.clone()),
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => {
                    return Err(EngineError::api(format!("cannot delete namespace {name}"))(
                        error,
                    ));
                }
            }
        }
    }
    let erased = crate::cluster::apis::namespaces_erased(&session.client);
    let gone = futures::future::join_all(
        deleted
            .iter()
            .map(|name| crate::execute::wait::until_gone(erased.clone(), name.clone())),
    );
    if tokio::time::timeout(NAMESPACES_GONE, gone).await.is_err() {
        crate::execute::report::note(
            &format!(
                "namespaces of group {} are still being deleted: {}",
                record.group,
                deleted.join(", ")
            ),
            session.reporter.quiet,
        );
    }
    let api = crate::cluster::apis::config_maps(&session.client, NAMESPACE);
    let name = record_name(stack, environment, &record.label);
    let params = DeleteParams::default();
    match retry(|| api.delete(&name, &params)).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(error) => {
            return Err(EngineError::api(format!(
                "cannot delete the group record {NAMESPACE}/{name}"
            ))(error));
        }
    }
    Ok(deleted)
}

/// The labels and annotations of a namespace made for a group's release.
pub(crate) fn namespace_metadata(group: &Group) -> serde_json::Value {
    json!({
        "labels": {GROUP_LABEL: group.label, MANAGED_BY_LABEL: MANAGED_BY_VALUE},
        "annotations": {GROUP_NAME_ANNOTATION: group.name},
    })
}
