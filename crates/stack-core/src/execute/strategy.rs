//! How a release's new objects take over from its old ones: the step of a
//! deploy between "revision recorded as pending" and "tests". `Rolling`
//! (the default, and today's only one) applies every changed object at once
//! and lets each workload's own rolling update replace its pods, then waits
//! for readiness. Blue/green and canary strategies are the variants planned
//! next; each rolls out and waits in its own way, and the steps around it
//! (tests, prune, the revision's record, rollback) stay the same.

use std::collections::BTreeSet;

use crate::execute::Session;
use crate::execute::error::ReleaseError;
use crate::execute::objects::{apply_all, wait_ready};
use crate::execute::readiness;
use crate::load::release::Release;
use crate::load::render::RenderedRelease;
use crate::plan::{Action, ReleasePlan};
use stack_kube::object::Object;

/// How a release is rolled out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Apply what changed; each workload rolls its pods over by itself.
    #[default]
    Rolling,
}

impl Strategy {
    /// The strategy a release declares (every release rolls today).
    pub fn of(_release: &Release) -> Self {
        Self::Rolling
    }

    /// Bring the release's changed objects into the cluster and, unless the
    /// run or the release says not to wait, wait until they are ready.
    pub(crate) async fn roll_out(
        self,
        session: &Session,
        release: &Release,
        rendered: &RenderedRelease,
        plan: &ReleasePlan,
    ) -> Result<(), ReleaseError> {
        match self {
            Self::Rolling => rolling(session, release, rendered, plan).await,
        }
    }
}

async fn rolling(
    session: &Session,
    release: &Release,
    rendered: &RenderedRelease,
    plan: &ReleasePlan,
) -> Result<(), ReleaseError> {
    let (id, timeout) = (&release.id, release.options.timeout);
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
    let previous = plan
        .deployed
        .as_ref()
        .map(|p| p.objects.parse())
        .unwrap_or_default();
    // Taking over from helm: helm's field manager owns the fields.
    let adopting = session.options.adopt_helm && plan.changes.iter().any(|c| c.helm.is_some());
    let applied = apply_all(session, id, &mut objects, &previous, timeout, adopting).await?;
    if release.options.wait && session.options.wait {
        let all: Vec<&Object> = rendered.objects.iter().collect();
        wait_ready(session, id, &all, &applied, timeout, readiness::readiness).await?;
    }
    Ok(())
}
