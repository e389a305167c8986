//! A Helm chart's hooks (`helm.sh/hook`), run as helm runs them:
//! `pre-install`/`pre-upgrade` hooks before the release's objects are
//! applied, `post-install`/`post-upgrade` hooks after they are ready and
//! before the tests (install on a first deploy, upgrade after). One at a
//! time in `helm.sh/hook-weight` order (then kind and name), each applied
//! and waited for (a Job completes, a Pod succeeds); a failed hook fails
//! the release, which is rolled back like any failure. Delete policies:
//! `before-hook-creation` (the default) removes the previous run's object
//! first, `hook-succeeded` and `hook-failed` remove it after. A revision
//! keeps its hooks: `pre-rollback`/`post-rollback` hooks of the revision
//! being restored run around a rollback, `pre-delete`/`post-delete` hooks
//! of the latest revision around `stack destroy`. Hooks of other events
//! are named in a warning and not run.

use std::time::Duration;

use crate::execute::Session;
use crate::execute::error::ReleaseError;
use crate::execute::event::Event;
use crate::execute::objects::delete_object;
use crate::execute::test_jobs::{replace_previous, run_to_completion};
use crate::load::render::Hook;

/// The events `stack` runs hooks at.
const RUN: [&str; 8] = [
    "pre-install",
    "pre-upgrade",
    "post-install",
    "post-upgrade",
    "pre-rollback",
    "post-rollback",
    "pre-delete",
    "post-delete",
];

/// Run the hooks of `event` that a revision kept.
pub async fn run_recorded(
    session: &Session,
    revision: &stack_kube::revision::Revision,
    event: &str,
    timeout: Duration,
) -> Result<(), ReleaseError> {
    let hooks = crate::load::render::recorded_hooks(&revision.hooks);
    run(session, &revision.release, &hooks, event, timeout).await
}

/// Run the hooks of `event`, in order.
pub(crate) async fn run(
    session: &Session,
    id: &str,
    hooks: &[Hook],
    event: &str,
    timeout: Duration,
) -> Result<(), ReleaseError> {
    let mut due: Vec<&Hook> = hooks.iter().filter(|hook| hook.runs_at(event)).collect();
    due.sort_by(|a, b| {
        (a.weight, &a.object.kind, &a.object.name).cmp(&(b.weight, &b.object.kind, &b.object.name))
    });
    for hook in due {
        session.reporter.event(
            id,
            &Event::RunningHook {
                hook: hook.object.key().to_string(),
                at: event.to_string(),
            },
        );
        run_one(session, id, hook, timeout).await?;
    }
    Ok(())
}

/// Apply one hook, wait for it, and apply its delete policy.
async fn run_one(
    session: &Session,
    id: &str,
    hook: &Hook,
    timeout: Duration,
) -> Result<(), ReleaseError> {
    let object = &hook.object;
    if hook.deletes_on("before-hook-creation") {
        replace_previous(session, std::slice::from_ref(object), timeout).await?;
    }
    let result = run_to_completion(session, id, vec![object], timeout).await;
    let policy = if result.is_ok() {
        "hook-succeeded"
    } else {
        "hook-failed"
    };
    if hook.deletes_on(policy) {
        let namespace = object.namespace.as_deref();
        delete_object(
            session,
            &object.api_version,
            &object.kind,
            namespace,
            &object.name,
        )
        .await?;
    }
    result.map_err(|failure| ReleaseError::HookFailed {
        hook: object.key().to_string(),
        failure: Box::new(failure),
    })
}

/// A warning naming the hooks `stack` does not run.
pub(crate) fn not_run(hooks: &[Hook]) -> Option<String> {
    let skipped: Vec<String> = hooks
        .iter()
        .filter(|hook| !hook.events.iter().any(|e| RUN.contains(&e.as_str())))
        .map(|hook| format!("{} ({})", hook.object.key(), hook.events.join(",")))
        .collect();
    (!skipped.is_empty()).then(|| {
        format!(
            "hooks not run: {} (stack runs pre/post-install, -upgrade, -rollback and -delete hooks)",
            skipped.join(", ")
        )
    })
}
