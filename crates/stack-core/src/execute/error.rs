//! How a run against a cluster fails before any release is applied.

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{context}: {source}")]
    Api {
        context: String,
        source: kube::Error,
    },
    #[error("another run holds the lock {lease}: {holder}, running `{command}` since {since}")]
    Locked {
        lease: String,
        holder: String,
        command: String,
        since: String,
    },
    #[error("cannot recover {release} from its interrupted run: {error}")]
    Recovery {
        release: String,
        error: ReleaseError,
    },
    #[error(
        "{} the cluster does not serve, and no CustomResourceDefinition of the selected releases defines:\n  {}",
        if objects.len() == 1 { "an object of a kind" } else { "objects of kinds" },
        objects.join("\n  ")
    )]
    UnknownKinds { objects: Vec<String> },
    #[error(
        "not deployed as the stack files say, so there is no previous colour to scale away alone: {}",
        releases.join(", ")
    )]
    NotSteady { releases: Vec<String> },
    #[error(
        "the cluster refuses {} (a server-side dry run):\n  {}",
        if objects.len() == 1 { "an object" } else { "objects" },
        objects.join("\n  ")
    )]
    Refused { objects: Vec<String> },
    #[error(
        "Kubernetes would refuse {} (by its validation rules, checked before anything is written):\n  {}",
        if objects.len() == 1 { "an object" } else { "objects" },
        objects.join("\n  ")
    )]
    Invalid { objects: Vec<String> },
    #[error(
        "{} of helm releases:\n  {}",
        if objects.len() == 1 { "the stack would take over an object" } else { "the stack would take over objects" },
        objects.join("\n  ")
    )]
    HelmOwned {
        objects: Vec<String>,
        /// Whether `--adopt-helm` was given (and some belong to a helm
        /// release of another name or namespace).
        adopting: bool,
    },
    /// The environment's image pull secret cannot be had or is missing.
    #[error("{message}")]
    PullSecret { message: String, hint: String },
    /// `apply --plan`: the render or the cluster is not what the plan saw.
    #[error("the plan {plan} cannot be applied as it is:\n  {}", problems.join("\n  "))]
    StalePlan { plan: String, problems: Vec<String> },
    /// Two group names escape to one label.
    #[error("group `{group}` escapes to `{label}`, the name of the deployed group `{other}`")]
    GroupTaken {
        group: String,
        label: String,
        other: String,
    },
}

impl EngineError {
    pub fn hint(&self) -> String {
        match self {
            Self::Api { .. } => "check that the cluster is reachable; requests were retried".into(),
            Self::Locked { .. } => "wait for it to finish, or pass --wait-for-lock 5m to wait here; a lock whose holder stopped renewing it is taken over after 30s".into(),
            Self::Recovery { .. } => "nothing else was applied; fix the cause and run `stack apply` again, or `stack rollback RELEASE REVISION`".into(),
            Self::Refused { .. } | Self::Invalid { .. } => "fix the template or the values that render it; nothing was written".into(),
            Self::HelmOwned { adopting: false, .. } => "pass --adopt-helm to take over the objects of helm releases of the same name and namespace (their uids stay); nothing was written".into(),
            Self::HelmOwned { adopting: true, .. } => "--adopt-helm takes over only a helm release of the same name and namespace as the stack's release; rename one of them. Nothing was written".into(),
            Self::NotSteady { .. } => "`stack apply` deploys their changes into the idle colour first; then `stack rollout cleanup`. Nothing was written".into(),
            Self::PullSecret { hint, .. } => hint.clone(),
            Self::StalePlan { .. } => "nothing was written; make a new plan with `stack diff --out FILE`, review it, and apply that".into(),
            Self::GroupTaken { other, .. } => format!("name the group so that it escapes differently, or `stack destroy --group {other}` first. Nothing was written"),
            Self::UnknownKinds { .. } => "fix the kind or apiVersion in the template; if a CRD of another release defines it, select that release too. Nothing was written".into(),
        }
    }
}

impl EngineError {
    pub fn api(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let context = context.into();
        move |source| Self::Api { context, source }
    }
}

/// Why one object did not become ready.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// Its readiness rule says it failed (`ProgressDeadlineExceeded`, a
    /// Job's `BackoffLimitExceeded`): the rule's words.
    #[error("{0}")]
    Failed(String),
    #[error("it was deleted while waiting")]
    Deleted,
    #[error("the watch ended")]
    WatchEnded,
    /// A pod of the current rollout fails in a way waiting will not fix (a
    /// crash loop, an image that cannot be pulled).
    #[error("pod {pod}: {failure}")]
    Pod { pod: String, failure: String },
}

/// Why a release's run (or its rollback) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// A request to the cluster failed; `action` says what was being done
    /// (`apply Deployment/web`, `record revision 3`).
    #[error("cannot {action}: {reason}")]
    Request { action: String, reason: String },
    /// The kind is not served, even after waiting for discovery.
    #[error("the cluster does not serve {kind} ({api_version}); is its CRD installed?")]
    Unserved { kind: String, api_version: String },
    /// Another field manager owns fields this release sets, and they are not
    /// the release's own fields changed by hand (drift).
    #[error(
        "{object} conflicts with another field manager: {message}\nhint: pass --force-conflicts to take these fields over"
    )]
    Conflict { object: String, message: String },
    /// An object failed while being waited for; `explanation` is what
    /// diagnosis found (its pods, its events), each on its own lines.
    #[error("{object} failed: {reason}{explanation}")]
    Failed {
        object: String,
        reason: NotReady,
        explanation: String,
    },
    /// The release's timeout passed with objects still not ready.
    #[error("timed out after {after} waiting for {waiting}{explanation}")]
    TimedOut {
        after: String,
        /// The objects still waited for, or `readiness`.
        waiting: String,
        explanation: String,
    },
    /// The timeout passed while deleting (`waiting for the release's
    /// objects to be deleted`).
    #[error("timed out {0}")]
    Deleting(&'static str),
    /// A test job failed; `logs` holds the tails of its pods' logs.
    #[error("test failed: {failure}{logs}")]
    TestFailed {
        failure: Box<ReleaseError>,
        logs: String,
    },
    /// A Helm hook failed (or timed out).
    #[error("hook {hook} failed: {failure}")]
    HookFailed {
        hook: String,
        failure: Box<ReleaseError>,
    },
    /// Stopped from outside: the cluster stopped answering, or the run was
    /// interrupted (Ctrl-C, SIGTERM, the lock taken over).
    #[error("{because}")]
    Stopped { because: String },
    /// A release's task panicked: its state is unknown.
    #[error("internal error: {message}")]
    Panicked { message: String },
    /// No rollback was tried (after a panic): the next `stack apply`
    /// recovers the pending revision.
    #[error("not attempted; the next `stack apply` recovers its pending revision")]
    NotAttempted,
    /// `--atomic=stack` cannot undo a release: what it would need is missing.
    #[error("{0}")]
    CannotUndo(&'static str),
}

impl ReleaseError {
    /// A failed request, with what was being done.
    pub fn request(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let action = action.into();
        move |error| Self::Request {
            action,
            reason: error.to_string(),
        }
    }
}
