//! Execution: plan against the live cluster, then apply releases as a DAG —
//! each starts as soon as all its needs succeeded, at most `concurrency` at a
//! time — and destroy them in reverse. The only module besides `cluster`
//! that does I/O.

pub mod apply;
pub mod countdown;
pub mod deploy;
pub(crate) mod diagnose;
pub mod error;
pub mod event;
pub(crate) mod feeds;
pub(crate) mod helm_records;
pub mod history;
pub(crate) mod hooks;
pub mod interrupt;
pub mod lock;
pub mod objects;
pub mod options;
pub mod order;
mod planning;
pub mod readiness;
pub mod recover;
pub mod report;
pub mod rollback;
pub(crate) mod schedule;
pub(crate) mod strategy;
pub mod test_jobs;
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
pub use options::ExecutionOptions;
pub use planning::{Planned, plan};
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
