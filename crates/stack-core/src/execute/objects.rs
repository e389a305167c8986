//! Object-level work the release steps share: ensuring a namespace,
//! server-side applying one object (taking back drift, stopping at foreign
//! owners), deleting one, and waiting for a set of objects to be ready —
//! with pods watched too, so a crash loop fails at once instead of at the
//! timeout, and every failure explained (see `diagnose`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, PatchParams};
use serde_json::{Value, json};

use crate::cluster::apis;
use crate::cluster::apply::Applied;
use crate::cluster::retry::retry;
use crate::execute::Session;
use crate::execute::diagnose;
use crate::execute::error::{NotReady, ReleaseError};
use crate::execute::event::Event;
use crate::execute::event::seconds;
use crate::execute::feeds::Source;
use crate::execute::readiness::Readiness;
use crate::execute::wait;
use crate::plan::diff::FIELD_MANAGER;
use stack_kube::object::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, Object, ObjectKey};

/// Create the namespace unless it exists. It is created, not applied: no
/// field of it is owned by `stack`, so a release that renders the namespace
/// itself keeps it as it wants it.
pub(crate) async fn ensure_namespace(
    session: &Session,
    namespace: &str,
) -> Result<(), ReleaseError> {
    create_namespace(session, namespace).await?;
    crate::execute::pull_secrets::ensure(session, namespace)
        .await
        .map_err(ReleaseError::request(format!(
            "write the image pull secret into namespace {namespace}"
        )))
}

/// Create the namespace unless this run knows it exists.
async fn create_namespace(session: &Session, namespace: &str) -> Result<(), ReleaseError> {
    let known = || {
        session
            .namespaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(namespace)
    };
    if known() {
        return Ok(());
    }
    // Releases of one namespace started together: one of them creates it,
    // the others wait for that instead of racing it.
    let gate = std::sync::Arc::clone(
        session
            .namespace_gates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(namespace.to_string())
            .or_default(),
    );
    let _creating = gate.lock().await;
    if known() {
        return Ok(());
    }
    let api = crate::cluster::apis::namespaces(&session.client);
    let existing = retry(|| api.get_opt(namespace))
        .await
        .map_err(ReleaseError::request(format!("read namespace {namespace}")))?;
    if existing.is_none() {
        let mut metadata = match &session.group {
            Some(group) => crate::execute::groups::namespace_metadata(group),
            None => json!({}),
        };
        metadata["name"] = namespace.into();
        let body: k8s_openapi::api::core::v1::Namespace =
            serde_json::from_value(json!({ "metadata": metadata })).unwrap_or_default();
        let params = kube::api::PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match retry(|| api.create(&params, &body)).await {
            Ok(_) => session.reporter.event(namespace, &Event::CreatedNamespace),
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => {
                return Err(ReleaseError::request(format!(
                    "create namespace {namespace}"
                ))(error));
            }
        }
    }
    session
        .namespaces
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(namespace.to_string());
    Ok(())
}

/// The dynamic API of an object's kind; when the kind is not served yet (a
/// CRD applied moments ago), discovery is refreshed until it is.
pub(crate) async fn api_for(
    session: &Session,
    object: &Object,
    timeout: Duration,
) -> Result<Api<DynamicObject>, ReleaseError> {
    let (api_version, kind) = (&object.api_version, &object.kind);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = Duration::from_millis(20);
    loop {
        if let Some((api, _)) = session.resources.read().await.api(
            &session.client,
            api_version,
            kind,
            object.namespace.as_deref(),
        ) {
            return Ok(api);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ReleaseError::Unserved {
                kind: kind.clone(),
                api_version: api_version.clone(),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
        if let Ok(fresh) = crate::cluster::resources::Resources::discover(
            &session.client,
            crate::cluster::retry::PATIENCE,
        )
        .await
        {
            *session.resources.write().await = fresh;
        }
    }
}

/// Send one server-side apply.
async fn patch(
    session: &Session,
    api: &Api<DynamicObject>,
    object: &Object,
    params: &PatchParams,
) -> Result<Applied, kube::Error> {
    crate::cluster::apply::apply(
        &session.client,
        api.resource_url(),
        &object.name,
        params,
        &object.body,
    )
    .await
}

/// Server-side apply one object. A conflict on fields our `previous`
/// revision set is drift and is taken back; a conflict on fields another
/// manager owns stops here, naming it, unless `force`.
pub(crate) async fn apply_object(
    session: &Session,
    id: &str,
    object: &Object,
    previous: &[Value],
    timeout: Duration,
    force: bool,
) -> Result<Applied, ReleaseError> {
    let api = api_for(session, object, timeout).await?;
    let params = PatchParams {
        force: force || session.options.force_conflicts,
        ..PatchParams::apply(FIELD_MANAGER)
    };
    match patch(session, &api, object, &params).await {
        Ok(applied) => {
            session.reporter.event(
                id,
                &Event::Applied {
                    object: object.key().to_string(),
                },
            );
            Ok(applied)
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let conflicts: Vec<String> = status
                .details
                .as_ref()
                .map(|d| d.causes.iter().map(|c| c.field.clone()).collect())
                .unwrap_or_default();
            if !is_drift(object, previous, &conflicts) {
                return Err(ReleaseError::Conflict {
                    object: object.key().to_string(),
                    message: status.message,
                });
            }
            session.reporter.event(
                id,
                &Event::RestoringDrift {
                    object: object.key().to_string(),
                    fields: conflicts,
                },
            );
            let forced = PatchParams::apply(FIELD_MANAGER).force();
            patch(session, &api, object, &forced)
                .await
                .map_err(ReleaseError::request(format!("apply {}", object.key())))
        }
        Err(error) => Err(ReleaseError::request(format!("apply {}", object.key()))(
            error,
        )),
    }
}

/// Whether every conflicting field is one our previous revision set.
fn is_drift(object: &Object, previous: &[Value], conflicts: &[String]) -> bool {
    let Some(ours) = previous
        .iter()
        .find(|p| crate::cluster::live::key_of(p) == object.key())
    else {
        return false;
    };
    let fields = stack_kube::fields::FieldSet::of_object(ours, false);
    let owned: BTreeSet<String> = fields
        .paths()
        .iter()
        .map(|p| stack_kube::fields::display(p))
        .collect();
    !conflicts.is_empty() && conflicts.iter().all(|c| owned.contains(c))
}

/// What a run applied: each object's uid and generation as the server answered.
pub(crate) type AppliedSet = BTreeMap<ObjectKey, Applied>;

/// Apply objects in kind order, each stage's objects at once.
pub(crate) async fn apply_all(
    session: &Session,
    id: &str,
    objects: &mut [&Object],
    previous: &[Value],
    timeout: Duration,
    force: bool,
) -> Result<AppliedSet, ReleaseError> {
    objects.sort_by_key(|o| super::order::rank(&o.kind));
    let mut applied = AppliedSet::new();
    let stage = |object: &&Object| super::order::stage(&object.kind);
    for group in objects.chunk_by(|a, b| stage(a) == stage(b)) {
        let applies = group
            .iter()
            .map(|object| apply_object(session, id, object, previous, timeout, force));
        for (object, result) in group.iter().zip(futures::future::join_all(applies).await) {
            applied.insert(object.key(), result?);
        }
    }
    Ok(applied)
}

/// Delete an object; gone already is fine. Whether it is gone now (see
/// `apply::remove_release`); a kind no longer served has
/// nothing to delete.
pub(crate) async fn delete_object(
    session: &Session,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<bool, ReleaseError> {
    let Some((api, _)) =
        session
            .resources
            .read()
            .await
            .api(&session.client, api_version, kind, namespace)
    else {
        return Ok(true);
    };
    let params = DeleteParams::background();
    match retry(|| api.delete(name, &params)).await {
        // A Status: deleted. The object itself: deleted when it carries no
        // deletion timestamp (Services and Pods are answered with what was
        // removed), else still going (finalizers, a grace period).
        Ok(answer) => Ok(answer
            .left()
            .is_none_or(|object| object.metadata.deletion_timestamp.is_none())),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(true),
        Err(error) => Err(ReleaseError::request(format!("delete {kind}/{name}"))(
            error,
        )),
    }
}

/// Delete the object a planned change names.
pub(crate) async fn delete_change(
    session: &Session,
    change: &crate::plan::Change,
) -> Result<bool, ReleaseError> {
    delete_object(
        session,
        &change.api_version,
        &change.key.kind,
        change.key.namespace.as_deref(),
        &change.key.name,
    )
    .await
}

/// Wait until every object that has a readiness rule is ready, judged by
/// `rule`; the first failure (or the timeout) is explained.
pub(crate) async fn wait_ready(
    session: &Session,
    id: &str,
    objects: &[&Object],
    applied: &AppliedSet,
    timeout: Duration,
    rule: fn(&Value) -> Option<Readiness>,
) -> Result<(), ReleaseError> {
    let waits: Vec<&Object> = objects
        .iter()
        .copied()
        .filter(|o| rule(&json!({"kind": o.kind, "spec": o.body["spec"]})).is_some())
        .collect();
    if waits.is_empty() {
        return Ok(());
    }
    let since = tokio::time::Instant::now();
    let mut futures = Vec::new();
    for object in waits {
        let api = api_for(session, object, timeout).await?;
        let applied = applied.get(&object.key()).cloned();
        futures.push(wait_one(session, id, object, api, applied, since, rule));
    }
    let results = tokio::time::timeout(timeout, futures::future::try_join_all(futures)).await;
    let failure = match results {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(failure)) => failure,
        Err(_) => {
            let pending = pending_objects(session, objects, rule).await;
            let names: Vec<String> = pending.iter().map(|(o, _)| label(o)).collect();
            let mut explained = String::new();
            for (object, api) in pending {
                explained.push_str(&explanation(session, object, &api).await);
            }
            return Err(ReleaseError::TimedOut {
                after: seconds(timeout),
                waiting: if names.is_empty() {
                    "readiness".into()
                } else {
                    names.join(", ")
                },
                explanation: explained,
            });
        }
    };
    let (object, api, reason) = failure;
    Err(ReleaseError::Failed {
        object: label(object),
        reason,
        explanation: explanation(session, object, &api).await,
    })
}

fn label(object: &Object) -> String {
    format!("{}/{}", object.kind, object.name)
}

type Failure<'a> = (&'a Object, Api<DynamicObject>, NotReady);

/// Wait for one object, with a workload's pods watched for failures.
async fn wait_one<'a>(
    session: &Session,
    id: &str,
    object: &'a Object,
    api: Api<DynamicObject>,
    applied: Option<Applied>,
    since: tokio::time::Instant,
    rule: fn(&Value) -> Option<Readiness>,
) -> Result<(), Failure<'a>> {
    let name = label(object);
    let reporter = session.reporter.clone();
    let feed = session.feeds.of(
        &session.client,
        Source {
            url: api.resource_url().to_string(),
            api_version: object.api_version.clone(),
            kind: object.kind.clone(),
            labels: Some(format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}")),
        },
    );
    let pods = match (
        object.body["spec"]["selector"]["matchLabels"].as_object(),
        &object.namespace,
    ) {
        (Some(labels), Some(namespace)) if object.kind != "Job" && !labels.is_empty() => {
            use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Pod};
            let pods = apis::erased::<Pod>(&session.client, namespace);
            let source = Source {
                url: pods.resource_url().to_string(),
                api_version: "v1".into(),
                kind: "Pod".into(),
                labels: None,
            };
            Some(wait::Pods {
                opener: Some(Box::new(move || session.feeds.of(&session.client, source))),
                after: wait::PODS_AFTER,
                labels: labels.clone(),
                replica_sets: apis::erased::<ReplicaSet>(&session.client, namespace),
            })
        }
        _ => None,
    };
    let watched = wait::Watched {
        feed,
        name: object.name.clone(),
        applied,
        since,
        vanishes: wait::may_vanish(&object.body),
    };
    wait::until_ready(watched, rule, pods, |text| {
        reporter.event(
            id,
            &Event::WaitingFor {
                object: name.clone(),
                status: text.to_string(),
            },
        );
    })
    .await
    .map_err(|reason| (object, api, reason))
}

/// The objects of a set that are not ready yet.
async fn pending_objects<'a>(
    session: &Session,
    objects: &[&'a Object],
    rule: fn(&Value) -> Option<Readiness>,
) -> Vec<(&'a Object, Api<DynamicObject>)> {
    let mut pending = Vec::new();
    for object in objects {
        let Ok(api) = api_for(session, object, Duration::ZERO).await else {
            continue;
        };
        let live = retry(|| api.get_opt(&object.name)).await.ok().flatten();
        let value = live.and_then(|l| serde_json::to_value(l).ok());
        let ready = value
            .as_ref()
            .is_some_and(|v| matches!(rule(v), None | Some(Readiness::Ready)));
        if !ready {
            pending.push((*object, api));
        }
    }
    pending
}

/// Indented lines that explain why an object is not ready.
async fn explanation(session: &Session, object: &Object, api: &Api<DynamicObject>) -> String {
    let lines = diagnose::explain(&session.client, api, &object.body).await;
    let name = label(object);
    let mut text = String::new();
    for line in lines {
        text.push_str(&format!("\n    {name}: {line}"));
    }
    text
}
