//! One run at a time per stack and environment: a `coordination.k8s.io/v1`
//! Lease in the `default` namespace, held while `apply`, `destroy`,
//! `rollback` or `test` runs and renewed in the background. A second run
//! fails at once naming the holder and since when (or waits, with
//! `--wait-for-lock`). A lease whose holder stopped renewing it — or whose
//! holder process on this machine is gone (a kill -9) — is taken over with
//! a warning. `stack rollout pause` asks the holder to hold a canary
//! through an annotation on the Lease, which the holder reads at its
//! canary's steps.

use stack_kube::object::dns_label;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use crate::cluster::retry::{retry, retry_for};
use crate::execute::EngineError;
use crate::execute::interrupt::Interrupt;

const NAMESPACE: &str = "default";
/// How long a lease lasts without renewal.
const LEASE_SECONDS: i32 = 30;
const RENEW_EVERY: Duration = Duration::from_secs(10);
const PID: &str = "stack.dev/pid";
/// The releases whose canary `stack rollout pause` asked the holder to
/// pause, comma-separated.
const PAUSE: &str = "stack.dev/pause";
const HOST: &str = "stack.dev/host";

/// A held lock; `release` gives it back.
pub(crate) struct Lock {
    api: Api<Lease>,
    name: String,
    renewal: tokio::task::JoinHandle<()>,
}

/// The Lease's name for a stack and environment: each dot-separated part a
/// DNS label, as an object name must be.
pub(crate) fn lease_name(stack: &str, environment: &str) -> String {
    let (stack, environment) = (dns_label(stack), dns_label(environment));
    format!("stack-lock.{stack}.{environment}")
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown-host".into())
}

fn identity() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("{user}@{} (pid {})", host(), std::process::id())
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

fn lease(name: &str, command: &str, resource_version: Option<String>) -> Lease {
    let now = now();
    let mut lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NAMESPACE,
            "labels": {stack_kube::object::MANAGED_BY_LABEL: stack_kube::object::MANAGED_BY_VALUE},
            "annotations": {PID: std::process::id().to_string(), HOST: host(), "stack.dev/command": command}},
        "spec": {"holderIdentity": identity(), "leaseDurationSeconds": LEASE_SECONDS},
    }))
    .unwrap_or_default();
    lease.metadata.resource_version = resource_version;
    if let Some(spec) = lease.spec.as_mut() {
        spec.acquire_time = Some(MicroTime(now));
        spec.renew_time = Some(MicroTime(now));
    }
    lease
}

/// Whether a lease may be taken.
#[derive(Debug, PartialEq)]
enum Takeover {
    /// Nobody holds it.
    Free,
    /// Its holder is gone: take it, with this warning.
    Abandoned(String),
    Held,
}

/// Whether a lease may be taken, and with what warning.
fn takeover(existing: &Lease) -> Takeover {
    let spec = existing.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder.is_empty() || holder == identity() {
        return Takeover::Free;
    }
    // A holder on this machine is judged by its process, not by the clock.
    let annotations = existing.metadata.annotations.clone().unwrap_or_default();
    let on_this_host = annotations.get(HOST).is_some_and(|h| *h == host());
    let pid = annotations.get(PID).and_then(|p| p.parse::<u32>().ok());
    if on_this_host
        && let Some(pid) = pid
        && cfg!(target_os = "linux")
    {
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return Takeover::Held;
        }
        return Takeover::Abandoned(format!(
            "the lock held by {holder} belongs to a process that is gone; taking it over"
        ));
    }
    let renewed = spec.renew_time.or(spec.acquire_time).map(|t| t.0);
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS));
    if let Some(renewed) = renewed
        && now().as_second() > renewed.as_second() + duration
    {
        return Takeover::Abandoned(format!(
            "the lock held by {holder} expired (last renewed {renewed}); taking it over"
        ));
    }
    Takeover::Held
}

/// The error for a lock someone else holds.
fn held(existing: &Lease, name: &str) -> EngineError {
    let spec = existing.spec.clone().unwrap_or_default();
    let command = existing
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("stack.dev/command").cloned())
        .unwrap_or_else(|| "a run".into());
    EngineError::Locked {
        lease: format!("{NAMESPACE}/{name}"),
        holder: spec.holder_identity.unwrap_or_default(),
        command,
        since: spec
            .acquire_time
            .map_or_else(|| "an unknown time".into(), |t| t.0.to_string()),
    }
}

/// Take the lock, waiting up to `wait` for it to be free.
pub(crate) async fn acquire(
    client: &kube::Client,
    name: &str,
    command: &str,
    wait: Option<Duration>,
    lost: Interrupt,
    warn: impl Fn(&str),
) -> Result<Lock, EngineError> {
    let api = crate::cluster::apis::leases(client, NAMESPACE);
    let deadline = wait.map(|w| tokio::time::Instant::now() + w);
    let failed = |context: &str| {
        EngineError::api(format!(
            "cannot take the lock {NAMESPACE}/{name}: {context}"
        ))
    };
    loop {
        let existing = retry(|| api.get_opt(name)).await.map_err(failed("read"))?;
        let attempt = match &existing {
            None => {
                let (params, body) = (PostParams::default(), lease(name, command, None));
                retry(|| api.create(&params, &body)).await
            }
            Some(existing) => {
                let warning = match takeover(existing) {
                    Takeover::Free => None,
                    Takeover::Abandoned(warning) => Some(warning),
                    Takeover::Held if deadline.is_some_and(|d| tokio::time::Instant::now() < d) => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                    Takeover::Held => return Err(held(existing, name)),
                };
                let version = existing.metadata.resource_version.clone();
                let body = lease(name, command, version);
                let params = PostParams::default();
                let result = retry(|| api.replace(name, &params, &body)).await;
                if result.is_ok()
                    && let Some(warning) = warning
                {
                    warn(&warning);
                }
                result
            }
        };
        match attempt {
            Ok(_) => break,
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => return Err(failed("write")(error)),
        }
    }
    let renewal = tokio::spawn(renew(api.clone(), name.to_string(), lost));
    Ok(Lock {
        api,
        name: name.to_string(),
        renewal,
    })
}

/// Renew the lease while the run lasts; when another run took it, stop
/// starting releases.
async fn renew(api: Api<Lease>, name: String, lost: Interrupt) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let Ok(current) = retry(|| api.get_opt(&name)).await else {
            continue;
        };
        let ours = current.as_ref().is_some_and(|lease| {
            lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(identity().as_str())
        });
        let Some(mut current) = current.filter(|_| ours) else {
            crate::execute::report::note(
                "the lock was taken by another run: starting no more releases",
                false,
            );
            lost.set();
            return;
        };
        if let Some(spec) = current.spec.as_mut() {
            spec.renew_time = Some(MicroTime(now()));
        }
        let params = PostParams::default();
        let _ = retry(|| api.replace(&name, &params, &current)).await;
    }
}

impl Lock {
    /// Give the lock back (delete the Lease, if it is still ours). Tried
    /// briefly: a lease left behind expires by itself, and a run whose
    /// cluster stopped answering should not wait longer to say so.
    pub async fn release(self) {
        self.renewal.abort();
        let brief = crate::cluster::retry::FIRST_CONTACT;
        let Ok(Some(current)) = retry_for(brief, || self.api.get_opt(&self.name)).await else {
            return;
        };
        let ours = current
            .spec
            .and_then(|s| s.holder_identity)
            .is_some_and(|h| h == identity());
        if ours {
            let params = DeleteParams::default();
            let _ = retry_for(brief, || self.api.delete(&self.name, &params)).await;
        }
    }
}

/// Run `work` holding the stack's lock for `environment`
/// (`--wait-for-lock` from the session's options); the lock is given back
/// however `work` ends. Warnings (a lock taken over) are notes on stderr.
pub async fn holding<T, E: From<EngineError>>(
    session: &crate::execute::Session,
    environment: &str,
    command: &str,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let name = lease_name(&session.stack_name, environment);
    let quiet = session.reporter.quiet;
    let lock = acquire(
        &session.client,
        &name,
        command,
        session.options.wait_for_lock,
        session.interrupt.clone(),
        |warning| crate::execute::report::note(warning, quiet),
    )
    .await?;
    set_held(session, Some(name));
    let result = work.await;
    set_held(session, None);
    lock.release().await;
    result
}

fn set_held(session: &crate::execute::Session, name: Option<String>) {
    if let Ok(mut held) = session.held_lock.lock() {
        *held = name;
    }
}

/// The releases a lease's holder is asked to pause.
fn pause_requests(lease: &Lease) -> Vec<String> {
    lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PAUSE))
        .map(|list| {
            list.split(',')
                .filter(|id| !id.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Add `release` to (or, `ask` false, take it off) the lease's pause
/// requests, retrying on a conflicting write (the holder's renewal). The
/// holder's identity when there is a run to ask, else `None`.
async fn edit_pause_requests(
    api: &Api<Lease>,
    name: &str,
    release: &str,
    ask: bool,
) -> Result<Option<String>, kube::Error> {
    loop {
        let Some(mut lease) = retry(|| api.get_opt(name)).await? else {
            return Ok(None);
        };
        let holder = lease.spec.as_ref().and_then(|s| s.holder_identity.clone());
        if holder.is_none() || (ask && takeover(&lease) != Takeover::Held) {
            return Ok(None);
        }
        let mut requests = pause_requests(&lease);
        requests.retain(|id| id != release);
        if ask {
            requests.push(release.to_string());
        }
        lease
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(PAUSE.into(), requests.join(","));
        let params = PostParams::default();
        match retry(|| api.replace(name, &params, &lease)).await {
            Ok(_) => return Ok(holder),
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => return Err(error),
        }
    }
}

/// `stack rollout pause RELEASE`: ask the run that holds the stack's lock
/// for `environment` to pause `release`'s canary at its next step. The
/// holder asked, or `None` when no run holds the lock.
pub async fn request_pause(
    client: &kube::Client,
    stack: &str,
    environment: &str,
    release: &str,
) -> Result<Option<String>, EngineError> {
    let api = crate::cluster::apis::leases(client, NAMESPACE);
    edit_pause_requests(&api, &lease_name(stack, environment), release, true)
        .await
        .map_err(EngineError::api("cannot ask the running deploy to pause"))
}

/// Whether `stack rollout pause` asked this run to pause `release`; the
/// request is taken off the lock once seen.
pub(crate) async fn pause_requested(session: &crate::execute::Session, release: &str) -> bool {
    let Some(name) = session.held_lock.lock().ok().and_then(|held| held.clone()) else {
        return false;
    };
    let api = crate::cluster::apis::leases(&session.client, NAMESPACE);
    let asked = retry(|| api.get_opt(&name))
        .await
        .ok()
        .flatten()
        .is_some_and(|lease| pause_requests(&lease).iter().any(|id| id == release));
    if asked {
        let _ = edit_pause_requests(&api, &name, release, false).await;
    }
    asked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_names_are_valid_object_names() {
        assert_eq!(
            lease_name("My Shop", "development"),
            "stack-lock.my-shop.development"
        );
        assert_eq!(
            lease_name(".deploy", "Prod_EU"),
            "stack-lock.deploy.prod-eu"
        );
        let long = lease_name(&"x".repeat(100), "development");
        assert!(
            long.split('.')
                .all(|part| !part.is_empty() && part.len() <= 63),
            "{long}"
        );
    }

    #[test]
    fn a_free_or_expired_lease_is_taken_over_a_fresh_one_is_not() {
        let mut fresh = lease("l", "apply", None);
        assert_eq!(takeover(&fresh), Takeover::Free, "our own lease");
        fresh.spec.as_mut().unwrap().holder_identity = Some("ops@elsewhere (pid 1)".into());
        assert_eq!(
            takeover(&fresh),
            Takeover::Held,
            "a live process of this machine"
        );
        fresh.spec.as_mut().unwrap().renew_time = Some(MicroTime(jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(takeover(&fresh), Takeover::Held, "however old its lease");
        let annotations = fresh.metadata.annotations.as_mut().unwrap();
        annotations.insert(HOST.into(), "elsewhere".into());
        fresh.spec.as_mut().unwrap().renew_time = Some(MicroTime(jiff::Timestamp::UNIX_EPOCH));
        assert!(matches!(takeover(&fresh), Takeover::Abandoned(text) if text.contains("expired")));
        fresh.spec.as_mut().unwrap().holder_identity = None;
        assert_eq!(takeover(&fresh), Takeover::Free);
    }
}
