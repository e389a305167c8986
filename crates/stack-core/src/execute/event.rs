//! What happens to a release during a run, as typed data: the engine says
//! which event happened and with what, the reporter decides how it reads
//! (a line, a live status, JSON) and what stays on screen.

use std::fmt;
use std::time::Duration;

/// How an interrupted run's pending revision is recovered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum Recovery {
    /// Applied again.
    Forward,
    /// Rolled back to this revision.
    Back { revision: u32 },
    /// An unfinished first install, removed.
    Removal,
}

/// One event of one release.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// Nothing to do: the release is as its last revision left it.
    Unchanged,
    /// A revision is being applied.
    Applying {
        revision: u32,
        creates: usize,
        updates: usize,
        deletes: usize,
    },
    /// The run created a namespace (reported under the namespace's name).
    CreatedNamespace,
    /// A deployment group's namespace was deleted with the group.
    DeletedNamespace,
    /// One object was applied.
    Applied {
        object: String,
    },
    /// Fields someone changed by hand are set back to the release's.
    RestoringDrift {
        object: String,
        fields: Vec<String>,
    },
    /// An object of the previous revision that this one no longer has was deleted.
    Pruned {
        object: String,
    },
    /// An object was deleted while rolling back.
    Deleted {
        object: String,
    },
    /// Waiting for an object to become ready: what it reports.
    WaitingFor {
        object: String,
        status: String,
    },
    /// A Helm hook of the release is applied and waited for.
    RunningHook {
        hook: String,
        /// `pre-install`, `post-upgrade`, …
        at: String,
    },
    /// A blue/green release's Services now select its new colour.
    Switched {
        services: Vec<String>,
        colour: String,
    },
    /// A canary release's step (numbered from 1; 0 is its promotion).
    CanaryStep {
        step: usize,
        what: String,
    },
    /// The release's test jobs are running.
    RunningTests {
        count: usize,
    },
    TestsPassed,
    /// Deployed (and tested, when it has tests).
    Deployed {
        revision: u32,
        #[serde(rename = "seconds", serialize_with = "seconds_f64")]
        duration: Duration,
    },
    /// Stopped from outside (an interrupt, a silent cluster): left pending.
    Stopped {
        because: String,
    },
    Failed {
        error: String,
    },
    /// Rolling back to `target` by applying it as revision `revision`.
    RollingBack {
        target: u32,
        revision: u32,
    },
    /// A failed first install is being removed.
    RemovingFirstInstall,
    /// Rolled back after a failure: `restored` restores `replaced`, or the
    /// release was removed (`restored` empty).
    RolledBack {
        restored: Option<u32>,
        replaced: u32,
    },
    /// `stack rollback`: this revision is deployed.
    RolledBackByHand {
        revision: u32,
    },
    RollbackFailed {
        error: String,
    },
    /// `--atomic=stack`: another release failed, this one's deployment is undone.
    Undoing,
    /// `--atomic=stack`: a release the run removed is put back.
    Restoring,
    /// A revision an interrupted run left pending is recovered.
    Recovering {
        revision: u32,
        recovery: Recovery,
    },
    /// Not started: a need did not succeed.
    Skipped {
        because: String,
    },
    /// Removed by `destroy` or prune.
    Removed,
    /// `destroy`: the release has no revision in the cluster.
    NotInstalled,
    /// `stack test`: the release has no deployed revision.
    NotDeployed,
    /// `stack test`: the deployed revision has no tests.
    NoTests,
    /// Something went wrong that does not change the outcome.
    Warning {
        message: String,
    },
}

/// `1.2s`, or `35ms` under a second.
pub fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

fn seconds_f64<S: serde::Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

impl Event {
    /// Worth keeping on screen in full, not only as the release's status:
    /// failures, rollbacks, skips, warnings, anything that undoes or restores.
    pub(crate) fn lasting(&self) -> bool {
        matches!(
            self,
            Self::RestoringDrift { .. }
                | Self::Stopped { .. }
                | Self::Failed { .. }
                | Self::RollingBack { .. }
                | Self::RemovingFirstInstall
                | Self::RolledBack { .. }
                | Self::RolledBackByHand { .. }
                | Self::RollbackFailed { .. }
                | Self::Undoing
                | Self::Restoring
                | Self::Recovering { .. }
                | Self::Skipped { .. }
                | Self::Warning { .. }
        )
    }

    /// Shown only with `-v`: per-object steps.
    pub fn detail(&self) -> bool {
        matches!(
            self,
            Self::Unchanged
                | Self::CreatedNamespace
                | Self::Applied { .. }
                | Self::Pruned { .. }
                | Self::Deleted { .. }
        )
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unchanged => f.write_str("unchanged"),
            Self::Applying {
                revision,
                creates,
                updates,
                deletes,
            } => write!(
                f,
                "applying revision {revision}: {creates} to create, {updates} to change, {deletes} to delete"
            ),
            Self::CreatedNamespace => f.write_str("created namespace"),
            Self::DeletedNamespace => f.write_str("deleted namespace"),
            Self::Applied { object } => write!(f, "applied {object}"),
            Self::RestoringDrift { object, fields } => {
                write!(f, "restoring drift in {object}: {}", fields.join(", "))
            }
            Self::Pruned { object } => write!(f, "pruned {object}"),
            Self::Deleted { object } => write!(f, "deleted {object}"),
            Self::WaitingFor { object, status } => write!(f, "waiting for {object}: {status}"),
            Self::RunningHook { hook, at } => write!(f, "running {at} hook {hook}"),
            Self::Switched { services, colour } => {
                write!(f, "switched {} to {colour}", services.join(", "))
            }
            Self::CanaryStep { step: 0, what } => write!(f, "canary: {what}"),
            Self::CanaryStep { step, what } => write!(f, "canary step {step}: {what}"),
            Self::RunningTests { count } => write!(f, "running {count} test(s)"),
            Self::TestsPassed => f.write_str("tests passed"),
            Self::Deployed { revision, duration } => {
                write!(f, "deployed revision {revision} in {}", seconds(*duration))
            }
            Self::Stopped { because } => write!(f, "stopped: {because}; left pending"),
            Self::Failed { error } => write!(f, "failed: {error}"),
            Self::RollingBack { target, revision } => {
                write!(
                    f,
                    "rolling back to revision {target} as revision {revision}"
                )
            }
            Self::RemovingFirstInstall => f.write_str("removing the failed first install"),
            Self::RolledBack {
                restored: Some(restored),
                replaced,
            } => write!(
                f,
                "rolled back: revision {restored} restores revision {replaced}"
            ),
            Self::RolledBack { restored: None, .. } => {
                f.write_str("rolled back: the release is removed")
            }
            Self::RolledBackByHand { revision } => {
                write!(f, "rolled back: revision {revision} is deployed")
            }
            Self::RollbackFailed { error } => write!(f, "rollback failed: {error}"),
            Self::Undoing => f.write_str("undoing: another release of the run failed"),
            Self::Restoring => {
                f.write_str("restoring: the run removed it, and another release failed")
            }
            Self::Recovering { revision, recovery } => write!(
                f,
                "revision {revision} was left pending by an interrupted run; recovering it ({})",
                match recovery {
                    Recovery::Forward => "applying it again".to_string(),
                    Recovery::Back { revision } => format!("rolling back to revision {revision}"),
                    Recovery::Removal => "removing the unfinished first install".to_string(),
                }
            ),
            Self::Skipped { because } => write!(f, "skipped: {because}"),
            Self::Removed => f.write_str("removed"),
            Self::NotInstalled => f.write_str("not installed"),
            Self::NotDeployed => f.write_str("not deployed: no tests to run"),
            Self::NoTests => f.write_str("has no tests"),
            Self::Warning { message } => write!(f, "warning: {message}"),
        }
    }
}
