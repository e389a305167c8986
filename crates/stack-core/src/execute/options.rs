//! How a run executes: resolved once (from the command line, in
//! `Settings`; later from a deploy request) and carried by the run's
//! session. Defaults are a plain `stack apply`'s.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionOptions {
    /// Releases at once.
    pub concurrency: usize,
    /// `--force-conflicts`: take over fields another manager owns.
    pub force_conflicts: bool,
    /// `--no-wait` turns it off: apply and move on.
    pub wait: bool,
    /// `--atomic` / `--no-atomic`: overrides each release's `atomic`.
    pub atomic: Option<bool>,
    /// `--atomic=stack`: when a release fails, undo every release the run changed.
    pub stack_atomic: bool,
    /// `--tests` / `--skip-tests`: overrides each release's `tests`.
    pub tests: Option<bool>,
    /// `--prune-releases`: remove releases of this stack that its files no longer have.
    pub prune_releases: bool,
    /// `--recover`: which way a revision left pending is recovered.
    pub recover: Direction,
    /// `--wait-for-lock`: how long to wait for another run's lock.
    pub wait_for_lock: Option<Duration>,
    /// `--adopt-helm`: take over the objects of helm releases of the same
    /// name and namespace.
    pub adopt_helm: bool,
    /// `--forget-helm`: also delete the adopted helm releases' records.
    pub forget_helm: bool,
    /// `stack rollout cleanup`: scale the previous colour of blue/green
    /// releases away now, whatever their `keepPrevious`.
    pub scale_away_previous: bool,
    /// `stack rollout promote`: how a paused canary goes on.
    pub promotion: Promotion,
}

impl Default for ExecutionOptions {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            force_conflicts: false,
            wait: true,
            atomic: None,
            stack_atomic: false,
            tests: None,
            prune_releases: false,
            adopt_helm: false,
            forget_helm: false,
            scale_away_previous: false,
            promotion: Promotion::None,
            recover: Direction::Back,
            wait_for_lock: None,
        }
    }
}

/// Releases at once unless `--concurrency` says: CPUs × 4, and at least 16.
/// A release spends its time waiting on the cluster, not on this machine's
/// CPUs: on a 2-core CI runner CPUs × 4 alone kept half the releases of a
/// large stack waiting in line while both cores were idle.
pub(crate) fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(4, |n| n.get() * 4)
        .max(16)
}

/// How `stack rollout promote` moves a paused canary on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Promotion {
    /// Not at all: a paused canary stays as it is.
    #[default]
    None,
    /// Its next steps, up to the next `pause: {}` or promotion.
    Next,
    /// Promoted now, skipping the steps left (`--full`).
    Full,
    /// This variant promoted now to be the stable version (`--variant`).
    Variant(String),
}

/// Which way a pending revision is recovered (`--recover`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Restore the last deployed revision.
    #[default]
    Back,
    /// Apply the pending revision's objects again.
    Forward,
}
