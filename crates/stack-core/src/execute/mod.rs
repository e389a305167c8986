//! Execution: plan against the live cluster, then apply releases as a DAG —
//! each starts as soon as all its needs succeeded, at most `concurrency` at a
//! time — and destroy them in reverse. The only module besides `cluster`
//! that does I/O.

pub mod apply;
pub mod blue_green;
pub mod canary;
pub mod countdown;
pub mod deploy;
pub(crate) mod diagnose;
pub mod error;
pub mod event;
pub(crate) mod feeds;
pub mod groups;
pub(crate) mod helm_records;
pub mod history;
pub mod hooks;
pub mod interrupt;
pub mod lock;
pub mod objects;
pub mod options;
pub mod order;
mod planning;
pub mod pull_secrets;
pub mod readiness;
pub mod recover;
pub mod report;
pub mod rollback;
pub mod run;
pub(crate) mod schedule;
pub mod strategy;
pub mod test_jobs;
pub mod verdict;
pub mod wait;

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use serde_json::Value;
use tokio::sync::RwLock;

use crate::cluster::contact::Contact;
use crate::cluster::live;
use crate::cluster::resources::Resources;
use stack_kube::object::ObjectKey;

pub use error::EngineError;
pub use options::{ExecutionOptions, Promotion};
pub use planning::{Planned, plan, plan_with_history, read_history};
pub use report::Reporter;
pub use schedule::{Finished, Outcome, Rollback, apply};

/// Everything a run shares.
pub struct Session {
    pub client: kube::Client,
    /// Whether the cluster still answers.
    pub contact: Contact,
    pub resources: RwLock<Resources>,
    pub reporter: Reporter,
    /// Recorded on revisions, to tell this stack's releases from others'.
    pub stack_name: String,
    pub commit: Option<String>,
    /// Namespaces known to exist.
    pub namespaces: Mutex<BTreeSet<String>>,
    /// One gate per namespace being made sure of, so that one release
    /// creates it while the others wait.
    pub namespace_gates: Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    /// How the run executes.
    pub options: ExecutionOptions,
    /// Set by Ctrl-C or SIGTERM: start no more releases.
    pub interrupt: interrupt::Interrupt,
    /// The shared watches that waiting reads.
    pub feeds: feeds::Feeds,
    /// The Lease of the lock this run holds, while it holds it.
    pub held_lock: Mutex<Option<String>>,
    /// What the run writes of the environment's image pull secret.
    pub pull_secrets: Mutex<Option<std::sync::Arc<pull_secrets::Plan>>>,
    /// The deployment group the run deploys, if any: the namespaces it
    /// makes are labelled as the group's.
    pub group: Option<crate::load::group::Group>,
}

impl Session {
    /// A session on a cluster whose `resources` were discovered.
    pub fn new(
        client: kube::Client,
        contact: Contact,
        resources: Resources,
        reporter: Reporter,
        stack_name: String,
        commit: Option<String>,
        options: ExecutionOptions,
    ) -> Self {
        Self {
            client,
            contact,
            resources: RwLock::new(resources),
            reporter,
            stack_name,
            commit,
            namespaces: Mutex::new(BTreeSet::new()),
            namespace_gates: Mutex::new(HashMap::new()),
            options,
            interrupt: interrupt::Interrupt::default(),
            feeds: feeds::Feeds::default(),
            held_lock: Mutex::new(None),
            pull_secrets: Mutex::new(None),
            group: None,
        }
    }
}

impl Session {
    /// Why nothing more may start, if so: the run was interrupted, or the
    /// cluster stopped answering.
    pub fn stopped(&self) -> Option<&'static str> {
        if self.interrupt.is_set() {
            Some("the run was interrupted")
        } else if self.contact.lost().is_some() {
            Some("the cluster stopped answering")
        } else {
            None
        }
    }

    /// What Helm charts render for on this cluster: its version (`/version`)
    /// and the APIs discovery found.
    pub async fn capabilities(&self) -> Result<crate::load::render::Capabilities, EngineError> {
        let info = self
            .client
            .apiserver_version()
            .await
            .map_err(EngineError::api("reading the cluster's version"))?;
        Ok(crate::load::render::Capabilities {
            kube_version: kube_version(&info),
            api_versions: self.resources.read().await.api_versions(),
        })
    }

    /// The live objects in every kind and namespace that `objects` (as a
    /// revision stores them) are in — one LIST each — limited to what
    /// `selector` picks.
    pub(crate) fn live_around<'a>(
        &'a self,
        objects: impl IntoIterator<Item = &'a Value>,
        selector: Option<&'a str>,
    ) -> impl std::future::Future<Output = Result<HashMap<ObjectKey, Value>, kube::Error>> + Send + 'a
    {
        // The scopes are collected here, so the future holds no iterator.
        let scopes: BTreeSet<live::Scope> = objects.into_iter().map(live::scope_of).collect();
        async move {
            let resources = self.resources.read().await.clone();
            let (objects, _, _) =
                live::fetch_selected(&self.client, &resources, scopes, selector).await?;
            Ok(objects)
        }
    }
}

/// A server's version as helm's `--kube-version` takes it: its
/// `gitVersion` when that is `vMAJOR.MINOR.PATCH…` and agrees with its
/// `major`/`minor`, else `vMAJOR.MINOR.0` from those (`28+` on some
/// providers reads as 28).
fn kube_version(info: &k8s_openapi::apimachinery::pkg::version::Info) -> String {
    let number = |text: &str| -> String { text.chars().take_while(char::is_ascii_digit).collect() };
    let (major, minor) = (number(&info.major), number(&info.minor));
    let parts: Vec<String> = info
        .git_version
        .strip_prefix('v')
        .unwrap_or_default()
        .splitn(3, '.')
        .map(number)
        .collect();
    let agrees = parts.len() == 3 && !parts[2].is_empty() && parts[0] == major && parts[1] == minor;
    if agrees || major.is_empty() || minor.is_empty() {
        info.git_version.clone()
    } else {
        format!("v{major}.{minor}.0")
    }
}

#[cfg(test)]
mod kube_version_tests {
    use k8s_openapi::apimachinery::pkg::version::Info;

    fn info(git_version: &str, major: &str, minor: &str) -> Info {
        Info {
            git_version: git_version.into(),
            major: major.into(),
            minor: minor.into(),
            ..Info::default()
        }
    }

    #[test]
    fn a_servers_version_reads_as_helm_takes_it() {
        assert_eq!(super::kube_version(&info("v1.37.2", "1", "37")), "v1.37.2");
        assert_eq!(
            super::kube_version(&info("v1.30.4-gke.1", "1", "30+")),
            "v1.30.4-gke.1"
        );
        assert_eq!(super::kube_version(&info("", "1", "28+")), "v1.28.0");
        assert_eq!(
            super::kube_version(&info("v0.0.0-master", "1", "37")),
            "v1.37.0"
        );
    }
}
