//! A release's tests (`templates/tests/`): after the release is ready, each
//! test object replaces the one of the previous run, is applied, and is
//! waited for (a Job completes, a Pod succeeds; a Job its TTL removed after
//! it finished counts as done). A failed test fails the release, with the
//! tail of its pods' logs.

use std::time::Duration;

use crate::execute::error::ReleaseError;
use crate::execute::event::Event;
use crate::execute::objects::{api_for, apply_all, delete_object, wait_ready};
use crate::execute::{Session, diagnose, readiness, wait};
use stack_kube::object::Object;

/// Lines of each failed test pod's log that are shown.
const LOG_LINES: i64 = 20;

pub async fn run(
    session: &Session,
    id: &str,
    tests: &[Object],
    timeout: Duration,
) -> Result<(), ReleaseError> {
    if tests.is_empty() {
        return Ok(());
    }
    session
        .reporter
        .event(id, &Event::RunningTests { count: tests.len() });
    replace_previous(session, tests, timeout).await?;
    let Err(failure) = run_to_completion(session, id, tests.iter().collect(), timeout).await else {
        session.reporter.event(id, &Event::TestsPassed);
        return Ok(());
    };
    let mut logs = String::new();
    for test in tests {
        for (pod, log) in diagnose::log_tail(&session.client, &test.body, LOG_LINES).await {
            let log = log.trim_end();
            if log.is_empty() {
                continue;
            }
            logs.push_str(&format!("\n    log of pod {pod}:"));
            for line in log.lines() {
                logs.push_str(&format!("\n      {line}"));
            }
        }
    }
    Err(ReleaseError::TestFailed {
        failure: Box::new(failure),
        logs,
    })
}

/// Apply objects that run once (tests, hooks) and wait until they have run:
/// a Job completes, a Pod succeeds.
pub(crate) async fn run_to_completion(
    session: &Session,
    id: &str,
    mut objects: Vec<&Object>,
    timeout: Duration,
) -> Result<(), ReleaseError> {
    let applied = apply_all(session, id, &mut objects, &[], timeout, true).await?;
    wait_ready(
        session,
        id,
        &objects,
        &applied,
        timeout,
        readiness::test_readiness,
    )
    .await
}

/// Delete the objects of an earlier run (tests, hooks) and wait for them to go.
pub(crate) async fn replace_previous(
    session: &Session,
    tests: &[Object],
    timeout: Duration,
) -> Result<(), ReleaseError> {
    let deletions = tests.iter().map(|test| async move {
        delete_object(
            session,
            &test.api_version,
            &test.kind,
            test.namespace.as_deref(),
            &test.name,
        )
        .await?;
        let api = api_for(session, test, timeout).await?;
        wait::until_gone(api, test.name.clone()).await;
        Ok::<(), ReleaseError>(())
    });
    match tokio::time::timeout(timeout, futures::future::try_join_all(deletions)).await {
        Ok(result) => result.map(|_| ()),
        Err(_) => Err(ReleaseError::Deleting(
            "deleting the previous run's test objects",
        )),
    }
}
