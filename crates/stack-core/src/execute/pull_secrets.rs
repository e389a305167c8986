//! The environment's image pull secret in the namespaces a run deploys
//! into (`imagePullSecrets`). Decided before the run's first write:
//! `external` — the Secret must exist in each namespace, or the run is
//! refused naming the namespaces it is missing from; `managed` — where it
//! is missing, or its `stack.dev/refreshed-at` is older than
//! `refreshEvery` (or `stack pull-secrets refresh` asks), a
//! `kubernetes.io/dockerconfigjson` Secret is written, its docker config
//! from a SOPS-encrypted file or from a credentials command run now (a
//! failing command refuses the run). Each namespace's `default`
//! ServiceAccount is given the secret too. Its value is registered as a
//! secret of the run and never printed.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::cluster::retry::retry;
use crate::execute::{EngineError, Session};
use crate::load::config::{PullSecretSpec, PullSource};
use crate::load::project::Project;
use crate::plan::diff::FIELD_MANAGER;

/// When a managed pull secret was last written (RFC 3339).
pub const REFRESHED: &str = "stack.dev/refreshed-at";

/// How long a credentials command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What a run does about its pull secret.
pub struct Plan {
    name: String,
    /// The docker config to write, when a namespace needs it (managed).
    config: Option<Zeroizing<String>>,
    /// Namespaces whose Secret is written.
    write: BTreeSet<String>,
    /// Namespaces whose `default` ServiceAccount lacks the secret.
    accounts: BTreeSet<String>,
    done: Mutex<BTreeSet<String>>,
}

fn refused(message: String, hint: &str) -> EngineError {
    EngineError::PullSecret {
        message,
        hint: hint.into(),
    }
}

/// Whether a Secret written at `refreshed` is due for a refresh.
fn stale(refreshed: Option<&str>, every: Duration) -> bool {
    let Some(at) = refreshed.and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
        return true;
    };
    let every = jiff::SignedDuration::try_from(every).unwrap_or(jiff::SignedDuration::MAX);
    at.checked_add(every)
        .is_ok_and(|due| due <= jiff::Timestamp::now())
}

/// Decide, before anything is written, what the run does about the pull
/// secret in `namespaces` (`force`: refresh it everywhere).
pub async fn prepare(
    session: &Session,
    project: &Project,
    namespaces: &BTreeSet<String>,
    force: bool,
) -> Result<Option<Plan>, EngineError> {
    let Some(spec) = &project.environment.environment.pull_secret else {
        return Ok(None);
    };
    let name = spec.name().to_string();
    let mut missing = Vec::new();
    let mut write = BTreeSet::new();
    let mut accounts = BTreeSet::new();
    for namespace in namespaces {
        let api = crate::cluster::apis::secrets(&session.client, namespace);
        let found = retry(|| api.get_opt(&name))
            .await
            .map_err(EngineError::api(format!(
                "cannot read secret {namespace}/{name}"
            )))?;
        let refreshed = found.as_ref().and_then(|s| {
            s.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REFRESHED).cloned())
        });
        match spec {
            PullSecretSpec::External { .. } if found.is_none() => missing.push(namespace.clone()),
            PullSecretSpec::Managed { refresh_every, .. }
                if force || found.is_none() || stale(refreshed.as_deref(), *refresh_every) =>
            {
                write.insert(namespace.clone());
            }
            _ => {}
        }
        if !account_has(session, namespace, &name).await? {
            accounts.insert(namespace.clone());
        }
    }
    if !missing.is_empty() {
        return Err(refused(
            format!(
                "the image pull secret `{name}` (imagePullSecrets: external) is missing in {}: {}",
                if missing.len() == 1 {
                    "namespace"
                } else {
                    "namespaces"
                },
                missing.join(", ")
            ),
            "create it there first (`kubectl create secret docker-registry NAME -n NAMESPACE …`), or make it `managed`; nothing was written",
        ));
    }
    let config = if write.is_empty() {
        None
    } else {
        Some(docker_config(project, spec).await?)
    };
    if let Some(config) = &config {
        project.masks.register(config);
    }
    Ok(Some(Plan {
        name,
        config,
        write,
        accounts,
        done: Mutex::new(BTreeSet::new()),
    }))
}

/// Whether the namespace's `default` ServiceAccount names the secret
/// (a namespace or account that is not there yet does not).
async fn account_has(session: &Session, namespace: &str, name: &str) -> Result<bool, EngineError> {
    let api = crate::cluster::apis::service_accounts(&session.client, namespace);
    let account = retry(|| api.get_opt("default"))
        .await
        .map_err(EngineError::api(format!(
            "cannot read {namespace}/default's ServiceAccount"
        )))?;
    Ok(account
        .and_then(|a| a.image_pull_secrets)
        .is_some_and(|secrets| secrets.iter().any(|s| s.name == name)))
}

/// The docker config of a managed pull secret: its decrypted file, or what
/// its command prints (a docker config, or a password for `username`).
async fn docker_config(
    project: &Project,
    spec: &PullSecretSpec,
) -> Result<Zeroizing<String>, EngineError> {
    let PullSecretSpec::Managed {
        registry,
        source,
        username,
        ..
    } = spec
    else {
        return Err(refused(
            "an external pull secret is not written".into(),
            "this is a bug",
        ));
    };
    let printed = match source {
        PullSource::DockerConfig(_) => {
            let config = project
                .environment
                .pull_config
                .as_deref()
                .cloned()
                .unwrap_or(Value::Null);
            return Ok(Zeroizing::new(config.to_string()));
        }
        PullSource::Command(argv) => run(argv, &project.masks).await?,
    };
    let text = printed.trim();
    if let Ok(config) = serde_json::from_str::<Value>(text)
        && config.get("auths").is_some()
    {
        return Ok(Zeroizing::new(config.to_string()));
    }
    project.masks.register(text);
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{text}"));
    project.masks.register(&auth);
    let config =
        json!({"auths": {registry: {"username": username, "password": text, "auth": auth}}});
    Ok(Zeroizing::new(config.to_string()))
}

/// Run a credentials command (no shell), within [`COMMAND_TIMEOUT`]; its
/// output, or why it failed (its error output masked).
async fn run(
    argv: &[String],
    masks: &crate::mask::Masks,
) -> Result<Zeroizing<String>, EngineError> {
    let shown = argv.join(" ");
    let failed = |why: String| {
        refused(
            format!("the pull secret's credentials command `{shown}` {why}"),
            "run it yourself to see why (is it installed, are you logged in?); nothing was written",
        )
    };
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| failed("is empty".into()))?;
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child)
        .await
        .map_err(|_| {
            failed(format!(
                "did not finish within {}s",
                COMMAND_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|error| failed(format!("cannot run: {error}")))?;
    let stdout = Zeroizing::new(String::from_utf8_lossy(&output.stdout).into_owned());
    if !output.status.success() {
        let stderr = masks.text(String::from_utf8_lossy(&output.stderr).trim());
        let first = stderr.lines().next().unwrap_or_default().to_string();
        return Err(failed(format!(
            "failed ({}){}",
            output.status,
            if first.is_empty() {
                String::new()
            } else {
                format!(": {first}")
            }
        )));
    }
    if stdout.trim().is_empty() {
        return Err(failed("printed nothing".into()));
    }
    Ok(stdout)
}

/// Write the pull secret (when due) and give it to the `default`
/// ServiceAccount of `namespace`, once per run.
pub(crate) async fn ensure(session: &Session, namespace: &str) -> Result<(), kube::Error> {
    let Some(plan) = session.pull_secrets.lock().ok().and_then(|p| p.clone()) else {
        return Ok(());
    };
    let first = plan
        .done
        .lock()
        .is_ok_and(|mut done| done.insert(namespace.to_string()));
    if !first {
        return Ok(());
    }
    let params = kube::api::PatchParams::apply(FIELD_MANAGER).force();
    if let (true, Some(config)) = (plan.write.contains(namespace), &plan.config) {
        let body = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": plan.name,
                "namespace": namespace,
                "labels": {stack_kube::object::MANAGED_BY_LABEL: stack_kube::object::MANAGED_BY_VALUE},
                "annotations": {REFRESHED: stack_kube::clock::now()},
            },
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(config.as_bytes())},
        });
        let api = crate::cluster::apis::secrets(&session.client, namespace);
        let patch = kube::api::Patch::Apply(&body);
        retry(|| api.patch(&plan.name, &params, &patch)).await?;
    }
    if plan.accounts.contains(namespace) {
        let body = json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": namespace},
            "imagePullSecrets": [{"name": plan.name}],
        });
        let api = crate::cluster::apis::service_accounts(&session.client, namespace);
        let patch = kube::api::Patch::Apply(&body);
        retry(|| api.patch("default", &params, &patch)).await?;
    }
    Ok(())
}

/// Under the lock, before the releases: the pull secret written into every
/// namespace the plan has (each namespace made sure of first).
pub(crate) async fn write(session: &Session, plan: &Plan) -> Result<(), EngineError> {
    for namespace in plan.namespaces() {
        crate::execute::objects::ensure_namespace(session, &namespace)
            .await
            .map_err(|error| {
                refused(
                    format!("cannot write the pull secret into namespace {namespace}: {error}"),
                    "check that the cluster is reachable, then run again",
                )
            })?;
    }
    Ok(())
}

/// `stack pull-secrets refresh`: under the stack's lock, the managed pull
/// secret written anew into every namespace of the selection; the
/// namespaces written.
pub async fn refresh(
    session: &Session,
    project: &Project,
    environment: &str,
) -> Result<Vec<String>, EngineError> {
    let namespaces = namespaces_of(project, &project.selection.releases);
    let Some(plan) = prepare(session, project, &namespaces, true).await? else {
        return Ok(Vec::new());
    };
    let plan = std::sync::Arc::new(plan);
    if let Ok(mut slot) = session.pull_secrets.lock() {
        *slot = Some(std::sync::Arc::clone(&plan));
    }
    let work = async {
        write(session, &plan).await?;
        Ok::<_, EngineError>(plan.write.iter().cloned().collect())
    };
    crate::execute::lock::holding(
        session,
        environment,
        "stack pull-secrets refresh",
        Box::pin(work),
    )
    .await
}

impl Plan {
    /// Whether the plan writes anything.
    pub fn writes(&self) -> bool {
        !self.write.is_empty() || !self.accounts.is_empty()
    }

    /// The namespaces it writes into.
    pub fn namespaces(&self) -> BTreeSet<String> {
        self.write.union(&self.accounts).cloned().collect()
    }
}

/// The namespaces the selected releases deploy into.
pub fn namespaces_of(project: &Project, indices: &[usize]) -> BTreeSet<String> {
    indices
        .iter()
        .map(|&index| project.releases[index].namespace.clone())
        .collect()
}
