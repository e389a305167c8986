//! One release, applied: ensure its namespace, record a pending revision,
//! server-side apply what changed (in kind order, field manager `stack`),
//! wait for readiness up to the release timeout, prune what the render no
//! longer has, and record the revision as deployed.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use crate::cluster::retry::retry;
use crate::diff::FIELD_MANAGER;
use crate::engine::order::rank;
use crate::engine::report::seconds;
use crate::engine::wait::{self, Readiness};
use crate::engine::{Outcome, Session};
use crate::object::Object;
use crate::plan::{Action, ReleasePlan};
use crate::release::Release;
use crate::render::RenderedRelease;
use crate::revision::{HISTORY_LABEL, Revision, State};

fn now() -> String {
    crate::simulator::write::now()
}

pub async fn apply_release(
    session: &Session,
    release: &Release,
    rendered: &RenderedRelease,
    plan: &ReleasePlan,
) -> Outcome {
    let id = &release.id;
    if plan.up_to_date {
        session.reporter.detail(id, "unchanged");
        return Outcome::Unchanged;
    }
    match run(session, release, rendered, plan).await {
        Ok(number) => Outcome::Deployed { revision: number },
        Err(error) => {
            session.reporter.line(id, &format!("failed: {error}"));
            Outcome::Failed { error }
        }
    }
}

async fn run(
    session: &Session,
    release: &Release,
    rendered: &RenderedRelease,
    plan: &ReleasePlan,
) -> Result<u32, String> {
    let id = &release.id;
    let started = std::time::Instant::now();
    if release.options.create_namespace {
        ensure_namespace(session, &release.namespace).await?;
    }
    let number = plan.previous.as_ref().map_or(1, |p| p.number + 1);
    let mut revision = Revision {
        release: id.clone(),
        stack: session.stack_name.clone(),
        number,
        state: State::Pending,
        chart: release.chart_name.clone(),
        values_digest: crate::revision::values_digest(&rendered.values),
        commit: session.commit.clone(),
        started: now(),
        finished: None,
        objects: rendered.objects.iter().map(|o| o.body.clone()).collect(),
        tests: rendered.tests.iter().map(|o| o.body.clone()).collect(),
        tests_passed: None,
        message: None,
    };
    write_revision(session, &revision).await?;
    let (creates, updates, deletes) = plan.counts();
    session.reporter.line(id, &format!("applying revision {number}: {creates} to create, {updates} to change, {deletes} to delete"));
    let changed: BTreeSet<_> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Delete)
        .map(|c| c.key.clone())
        .collect();
    let mut objects: Vec<&Object> = rendered
        .objects
        .iter()
        .filter(|o| changed.contains(&o.key()))
        .collect();
    objects.sort_by_key(|o| rank(&o.kind));
    let previous = plan
        .previous
        .as_ref()
        .map(|p| p.objects.as_slice())
        .unwrap_or_default();
    for group in objects.chunk_by(|a, b| rank(&a.kind) == rank(&b.kind)) {
        let applies = group
            .iter()
            .map(|object| apply_object(session, id, object, previous, release.options.timeout));
        for result in futures::future::join_all(applies).await {
            result?;
        }
    }
    if release.options.wait && session.wait {
        wait_ready(session, id, &rendered.objects, release.options.timeout).await?;
    }
    for change in plan.changes.iter().filter(|c| c.action == Action::Delete) {
        delete_change(session, change).await?;
        session
            .reporter
            .detail(id, &format!("pruned {}", change.key));
    }
    revision.state = State::Deployed;
    revision.finished = Some(now());
    write_revision(session, &revision).await?;
    if let Some(previous) = &plan.previous
        && previous.state == State::Deployed
    {
        let mut superseded = previous.clone();
        superseded.state = State::Superseded;
        write_revision(session, &superseded).await?;
    }
    trim_history(session, release, number).await?;
    session.reporter.line(
        id,
        &format!(
            "deployed revision {number} in {}",
            seconds(started.elapsed())
        ),
    );
    Ok(number)
}

/// Create the namespace unless it exists. It is created, not applied: no
/// field of it is owned by `stack`, so a release that renders the namespace
/// itself keeps it as it wants it.
pub async fn ensure_namespace(session: &Session, namespace: &str) -> Result<(), String> {
    if session
        .namespaces
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .contains(namespace)
    {
        return Ok(());
    }
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(session.client.clone());
    let existing = retry(|| api.get_opt(namespace))
        .await
        .map_err(|e| format!("cannot read namespace {namespace}: {e}"))?;
    if existing.is_none() {
        let body: k8s_openapi::api::core::v1::Namespace =
            serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap_or_default();
        let params = kube::api::PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match retry(|| api.create(&params, &body)).await {
            Ok(_) => session.reporter.detail(namespace, "created namespace"),
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => return Err(format!("cannot create namespace {namespace}: {error}")),
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
async fn api_for(
    session: &Session,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    timeout: Duration,
) -> Result<Api<DynamicObject>, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = Duration::from_millis(20);
    loop {
        if let Some((api, _)) =
            session
                .resources
                .read()
                .await
                .api(&session.client, api_version, kind, namespace)
        {
            return Ok(api);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "the cluster does not serve {kind} ({api_version}); is its CRD installed?"
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
        if let Ok(fresh) = crate::cluster::resources::Resources::discover(&session.client).await {
            *session.resources.write().await = fresh;
        }
    }
}

async fn api_for_object(
    session: &Session,
    object: &Object,
    timeout: Duration,
) -> Result<Api<DynamicObject>, String> {
    api_for(
        session,
        &object.api_version,
        &object.kind,
        object.namespace.as_deref(),
        timeout,
    )
    .await
}

async fn apply_object(
    session: &Session,
    id: &str,
    object: &Object,
    previous: &[Value],
    timeout: Duration,
) -> Result<(), String> {
    let api = api_for_object(session, object, timeout).await?;
    let params = PatchParams {
        force: session.force_conflicts,
        ..PatchParams::apply(FIELD_MANAGER)
    };
    let patch = Patch::Apply(&object.body);
    let result = retry(|| api.patch(&object.name, &params, &patch)).await;
    match result {
        Ok(_) => {
            session
                .reporter
                .detail(id, &format!("applied {}", object.key()));
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let ours = previous
                .iter()
                .find(|p| crate::cluster::live::key_of(p) == object.key());
            let conflicts: Vec<String> = status
                .details
                .as_ref()
                .map(|d| d.causes.iter().map(|c| c.field.clone()).collect())
                .unwrap_or_default();
            let restorable = ours.is_some_and(|ours| {
                let fields = crate::fields::FieldSet::of_object(ours, false);
                let owned: BTreeSet<String> = fields
                    .paths()
                    .iter()
                    .map(|p| crate::fields::display(p))
                    .collect();
                !conflicts.is_empty() && conflicts.iter().all(|c| owned.contains(c))
            });
            if !restorable {
                return Err(format!(
                    "{} conflicts with another field manager: {}\nhint: pass --force-conflicts to take these fields over",
                    object.key(),
                    status.message
                ));
            }
            session.reporter.line(
                id,
                &format!(
                    "restoring drift in {}: {}",
                    object.key(),
                    conflicts.join(", ")
                ),
            );
            let forced = PatchParams {
                force: true,
                ..PatchParams::apply(FIELD_MANAGER)
            };
            retry(|| api.patch(&object.name, &forced, &patch))
                .await
                .map(|_| ())
                .map_err(|e| format!("cannot apply {}: {e}", object.key()))
        }
        Err(error) => Err(format!("cannot apply {}: {error}", object.key())),
    }
}

async fn wait_ready(
    session: &Session,
    id: &str,
    objects: &[Object],
    timeout: Duration,
) -> Result<(), String> {
    let waits: Vec<&Object> = objects
        .iter()
        .filter(|o| wait::readiness(&json!({"kind": o.kind, "spec": o.body["spec"]})).is_some())
        .collect();
    if waits.is_empty() {
        return Ok(());
    }
    let mut futures = Vec::new();
    for object in waits {
        let api = api_for_object(session, object, timeout).await?;
        let label = format!("{}/{}", object.kind, object.name);
        let reporter = session.reporter;
        let id = id.to_string();
        futures.push(async move {
            let result = wait::until_ready(api, object.name.clone(), |text| {
                reporter.line(&id, &format!("waiting for {label}: {text}"));
            })
            .await;
            result.map_err(|reason| format!("{label} failed: {reason}"))
        });
    }
    match tokio::time::timeout(timeout, futures::future::try_join_all(futures)).await {
        Ok(result) => result.map(|_| ()),
        Err(_) => Err(format!(
            "timed out after {} waiting for readiness",
            seconds(timeout)
        )),
    }
}

/// Delete the object a planned change names.
pub async fn delete_change(session: &Session, change: &crate::plan::Change) -> Result<(), String> {
    delete_object(
        session,
        &change.api_version,
        &change.key.kind,
        change.key.namespace.as_deref(),
        &change.key.name,
    )
    .await
}

pub async fn delete_object(
    session: &Session,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<(), String> {
    let Some((api, _)) =
        session
            .resources
            .read()
            .await
            .api(&session.client, api_version, kind, namespace)
    else {
        return Ok(());
    };
    let params = DeleteParams::background();
    match retry(|| api.delete(name, &params)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(format!("cannot delete {kind}/{name}: {error}")),
    }
}

pub async fn write_revision(session: &Session, revision: &Revision) -> Result<(), String> {
    let secret = revision.to_secret();
    let namespace = secret["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let name = secret["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(session.client.clone(), &namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let patch = Patch::Apply(&secret);
    retry(|| api.patch(&name, &params, &patch))
        .await
        .map(|_| ())
        .map_err(|e| format!("cannot record revision {}: {e}", revision.number))
}

/// Keep the last `historyMax` revisions.
async fn trim_history(session: &Session, release: &Release, current: u32) -> Result<(), String> {
    let keep = release.options.history_max;
    if current <= keep {
        return Ok(());
    }
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(session.client.clone(), &release.namespace);
    for number in 1..=current.saturating_sub(keep) {
        let name = crate::revision::secret_name(&release.name, number);
        let params = DeleteParams::default();
        match retry(|| api.delete(&name, &params)).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(format!("cannot trim history: {error}")),
        }
    }
    Ok(())
}

/// Delete everything a release owns, then its history.
pub async fn remove_release(session: &Session, plan: &ReleasePlan) -> Result<(), String> {
    let mut changes: Vec<_> = plan.changes.iter().collect();
    changes.sort_by_key(|c| std::cmp::Reverse(rank(&c.key.kind)));
    for change in changes {
        delete_change(session, change).await?;
    }
    let (namespace, name) = plan.id.split_once('/').unwrap_or(("default", &plan.id));
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(session.client.clone(), namespace);
    let params =
        kube::api::ListParams::default().labels(&format!("{HISTORY_LABEL}={namespace}.{name}"));
    let secrets = retry(|| api.list(&params))
        .await
        .map_err(|e| format!("cannot read history: {e}"))?;
    for secret in secrets.items {
        let secret_name = secret.metadata.name.unwrap_or_default();
        let delete = DeleteParams::default();
        let _ = retry(|| api.delete(&secret_name, &delete)).await;
    }
    session.reporter.line(&plan.id, "removed");
    Ok(())
}

/// The readiness of a live object, for `stack status`.
pub fn live_readiness(object: &Value) -> Readiness {
    wait::readiness(object).unwrap_or(Readiness::Ready)
}
